"""Scoring on the real baseline model, then routing; in-process (the e2e test runs a worker)."""

import imagehash
import pytest
from PIL import Image

from media.frames import frame_at
from moderation.models import Score, Upload
from moderation.serializers import UploadOutput
from moderation.services.model_versions import BASELINE_NAME, model_version_ensure_active
from moderation.services.policies import policy_create
from moderation.services.scoring import upload_score, uploads_requeue_stale
from tests.factories import make_upload
from tests.images import animated, photo_frames, photo_jpeg

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_real_photo_is_scored_and_auto_approved(uploader):
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.routed_now and result.status == "approved"
    assert (upload.status, upload.decided_by) == ("approved", "auto")
    assert upload.decided_at is not None and upload.policy.version == 1
    score = upload.score
    assert score.model_version.name == BASELINE_NAME
    assert set(score.category_scores) == {"weapon", "nudity"}
    assert score.harmful_score == max(score.category_scores.values()) < 0.002
    assert score.latency_ms > 0


def test_scoring_twice_is_harmless(uploader):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    upload_score(upload_id=upload.pk)
    again = upload_score(upload_id=upload.pk)
    assert not again.routed_now
    assert Score.objects.filter(upload=upload).count() == 1


def test_existing_score_is_reused_when_a_redelivered_task_finds_the_upload_pending(uploader):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    upload_score(upload_id=upload.pk)
    first_score = Score.objects.get(upload=upload)
    Upload.objects.filter(pk=upload.pk).update(status="pending", decided_by="", score=None)
    upload_score(upload_id=upload.pk)
    assert Score.objects.filter(upload=upload).count() == 1
    upload.refresh_from_db()
    assert upload.score_id == first_score.pk and upload.status == "approved"


@pytest.mark.parametrize(
    ("thresholds", "status", "decided_by"),
    [
        (
            {
                "weapon": {"approve_below": 0.0, "reject_from": 1.0},
                "nudity": {"approve_below": 0.2, "reject_from": 0.8},
            },
            "queued",
            "",
        ),
        (
            {
                "weapon": {"approve_below": 0.0, "reject_from": 0.0},
                "nudity": {"approve_below": 0.2, "reject_from": 0.8},
            },
            "rejected",
            "auto",
        ),
    ],
)
def test_routing_follows_the_current_policy(uploader, admin_user, thresholds, status, decided_by):
    # A category that rejects everything has no human band: saved only with the confirmation.
    policy = policy_create(thresholds=thresholds, reason="test", created_by=admin_user, confirm_no_human_band=True)
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by, upload.policy_id) == (status, decided_by, policy.pk)
    assert upload.status_reason


def test_undecodable_stored_image_goes_to_humans_as_failed(uploader, media_root):
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    (media_root / upload.original.name).write_bytes(b"disk corruption")
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.status == upload.status == "failed"
    assert "could not be scored" in upload.status_reason.lower()
    assert not Score.objects.exists()


def test_upload_that_keeps_failing_ends_failed_after_max_attempts(uploader, settings, monkeypatch):
    settings.VIGIL_SCORE_MAX_ATTEMPTS = 2
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    model_version_ensure_active()

    def explode(**kwargs):
        raise RuntimeError("model crashed")

    monkeypatch.setattr("moderation.services.scoring.score_create", explode)
    with pytest.raises(RuntimeError):
        upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.status, upload.score_attempts) == ("pending", 1)
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.status == upload.status == "failed"
    assert upload.score_attempts == 2
    assert "failed 2 times" in upload.status_reason


def test_stale_pending_uploads_are_requeued(uploader):
    """Publishes to the configured broker for real; the e2e worker fixture purges the queue."""
    from django.utils import timezone

    stale = make_upload(uploader)
    fresh = make_upload(uploader)
    old = timezone.now() - timezone.timedelta(minutes=10)
    Upload.objects.filter(pk=stale.pk).update(updated_at=old)
    fresh_touched_at = Upload.objects.get(pk=fresh.pk).updated_at
    assert uploads_requeue_stale(older_than_seconds=300) == [stale.pk]
    stale.refresh_from_db()
    assert stale.updated_at > old
    assert Upload.objects.get(pk=fresh.pk).updated_at == fresh_touched_at
    assert uploads_requeue_stale(older_than_seconds=300) == []  # the touch holds off the next sweep


def test_missing_original_goes_to_humans_as_failed(uploader, media_root):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    (media_root / upload.original.name).unlink()
    assert upload_score(upload_id=upload.pk).status == "failed"
    upload.refresh_from_db()
    assert "missing" in upload.status_reason


# --- Animated images: every frame counts -------------------------------------------------------

# A cat and a cup of coffee first, the astronaut (weapon ~0.005 on the baseline, the cat ~0.0002)
# in frame 3: a policy approving weapon below 0.002 approves the first frame but not the animation.
CAT_THEN_ASTRONAUT = ["chelsea", "coffee", "chelsea", "astronaut", "coffee"]
APPROVES_THE_CAT = {
    "weapon": {"approve_below": 0.002, "reject_from": 0.5},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_a_harmful_later_frame_keeps_an_animation_from_being_approved(uploader, admin_user, fmt):
    policy_create(thresholds=APPROVES_THE_CAT, reason="approve the cat", created_by=admin_user)
    upload = make_upload(uploader, animated(photo_frames(CAT_THEN_ASTRONAUT), fmt))
    assert upload.frames == 5
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    score = upload.score

    assert [frame["index"] for frame in score.frames] == [0, 1, 2, 3, 4]
    per_frame = {frame["index"]: frame["scores"] for frame in score.frames}
    assert score.category_scores == {c: max(s[c] for s in per_frame.values()) for c in ("weapon", "nudity")}
    assert score.harmful_score == max(score.category_scores.values())
    assert score.worst_frame == max(per_frame, key=lambda i: max(per_frame[i].values())) == 3
    first, worst = per_frame[0], per_frame[3]
    assert first["weapon"] < 0.002 <= worst["weapon"] < 0.5  # the first frame alone would be approved
    assert max(first.values()) < 0.2

    assert upload.status == "queued" and upload.decided_by == ""
    assert upload.phash == str(imagehash.phash(frame_at(Image.open(upload.original), 0)))  # from frame 0

    shown = UploadOutput(Upload.objects.select_related("score__model_version").get(pk=upload.pk)).data
    assert (shown["frames"], shown["worst_frame"], shown["category_scores"]) == (5, 3, score.category_scores)
    assert shown["scored_frames"][3] == {"index": 3, "category_scores": worst}


def test_a_still_image_records_no_frames(uploader):
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.score.frames, upload.score.worst_frame) == ([], 0)
    shown = UploadOutput(upload).data
    assert (shown["frames"], shown["worst_frame"], shown["scored_frames"]) == (1, None, [])


def test_beyond_the_cap_only_the_sampled_frames_are_scored(uploader, settings):
    settings.VIGIL_MAX_SCORED_FRAMES = 2
    upload = make_upload(uploader, animated(photo_frames(CAT_THEN_ASTRONAUT), "GIF"))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert [frame["index"] for frame in upload.score.frames] == [0, 4]  # first and last
    assert upload.score.worst_frame in (0, 4)


def test_shadow_models_score_the_same_frames(uploader, tiny_checkpoint):
    from moderation.services.model_versions import model_version_register, model_version_shadow

    shadow = model_version_shadow(model_version=model_version_register(checkpoint=tiny_checkpoint, name="tiny-shadow"))
    upload = make_upload(uploader, animated(photo_frames(CAT_THEN_ASTRONAUT), "WEBP"))
    upload_score(upload_id=upload.pk)
    active = upload.scores.exclude(model_version=shadow).get()
    beside = upload.scores.get(model_version=shadow)
    assert [f["index"] for f in beside.frames] == [f["index"] for f in active.frames] == [0, 1, 2, 3, 4]
    per_frame = [frame["scores"] for frame in beside.frames]
    assert beside.category_scores == {c: max(s[c] for s in per_frame) for c in beside.category_scores}


def test_a_real_shadow_models_disagreement_orders_the_queue(uploader, admin_user, moderator, tiny_checkpoint):
    """The worker scores with the active model, routes (the round opens), then scores in shadow:
    the open round's disagreement key comes from the two real scores, and "most informative
    first" serves the rounds by it."""
    from moderation.services.model_versions import model_version_register, model_version_shadow
    from reviews.disagreement import disagreement
    from reviews.models import ReviewRound
    from reviews.selectors.queue import Ordering
    from reviews.services.claims import rounds_claim

    everything = {name: {"approve_below": 0.0, "reject_from": 1.0} for name in ("weapon", "nudity")}
    policy = policy_create(thresholds=everything, reason="humans see everything", created_by=admin_user)
    shadow = model_version_shadow(model_version=model_version_register(checkpoint=tiny_checkpoint, name="tiny-shadow"))
    keys = {}
    for name in ("astronaut", "chelsea", "coffee"):
        upload = make_upload(uploader, photo_jpeg(name))
        upload_score(upload_id=upload.pk)
        upload.refresh_from_db()
        active, beside = upload.score, upload.scores.get(model_version=shadow)
        assert upload.status == "queued" and active.model_version != shadow
        round_ = ReviewRound.objects.get(upload=upload, status="open")
        expected = disagreement(active.category_scores, beside.category_scores, policy.thresholds)
        assert round_.disagreement == pytest.approx(expected)
        keys[round_.pk] = round_.disagreement
    assert max(keys.values()) > 0  # a zero-shot model and a ten-photo fine-tune do not agree on everything
    claimed = rounds_claim(moderator=moderator, ordering=Ordering.INFORMATIVE, limit=3)
    assert [keys[r.pk] for r in claimed] == sorted(keys.values(), reverse=True)


# --- Videos: sampled frames, each with its time ------------------------------------------------


def _video(**options) -> bytes:
    from tests.videos import clip_with_insert

    return clip_with_insert(safe="chelsea", harmful="astronaut", size=(320, 224), **options)


def test_a_two_second_insert_keeps_a_video_from_being_approved_and_its_time_is_the_worst(
    uploader, admin_user, settings
):
    settings.VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS = 0  # every regular sample, still pictures or not
    policy_create(thresholds=APPROVES_THE_CAT, reason="approve the cat", created_by=admin_user)
    upload = make_upload(uploader, _video(seconds=10, insert_at=4, container="webm", codec="libvpx-vp9"))
    assert upload.kind == "video" and upload.frames == 10
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    score = upload.score

    assert [f["time"] for f in score.frames] == [float(t) for t in range(10)]
    assert [f["index"] for f in score.frames] == list(range(10))
    by_time = {f["time"]: f["scores"] for f in score.frames}
    assert score.category_scores == {c: max(s[c] for s in by_time.values()) for c in ("weapon", "nudity")}
    worst = score.frames[score.worst_frame]
    assert worst["time"] in (4.0, 5.0)  # inside the insert
    assert by_time[0.0]["weapon"] < 0.002 <= worst["scores"]["weapon"] < 0.5  # the cat alone would pass
    assert upload.status == "queued" and upload.phash

    shown = UploadOutput(Upload.objects.select_related("score__model_version").get(pk=upload.pk)).data
    assert (shown["kind"], shown["worst_frame"], shown["worst_time"]) == ("video", score.worst_frame, worst["time"])
    assert shown["scored_frames"][4] == {"index": 4, "time": 4.0, "category_scores": by_time[4.0]}
    assert shown["duration_seconds"] == pytest.approx(10, abs=0.25)


def test_a_sparsely_sampled_video_is_auto_approved_only_when_scanned_whole(uploader, admin_user, settings):
    """Between regular samples only keyframes are seen unless the worker scanned every frame for
    changed scenes: a video whose interval exceeds VIGIL_VIDEO_APPROVE_MAX_INTERVAL and that was
    too large to scan goes to a human instead of being approved."""
    policy_create(thresholds=APPROVES_THE_CAT, reason="approve the cat", created_by=admin_user)
    harmless = _video(seconds=4, insert_at=10)  # the insert lies past the end: all cat
    settings.VIGIL_VIDEO_APPROVE_MAX_INTERVAL = 0.5  # the 1 s interval is sparser than promised
    approved = make_upload(uploader, harmless)
    upload_score(upload_id=approved.pk)
    approved.refresh_from_db()
    assert (approved.status, approved.decided_by, approved.score.covered) == ("approved", "auto", True)

    settings.VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS = 0  # too large to decode whole
    queued = make_upload(uploader, harmless, external_id="again")
    upload_score(upload_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.decided_by, queued.score.covered) == ("queued", "", False)
    assert queued.status_reason == (
        "video sampled every 1.0 s and not scanned whole: a shorter insert could be missed, so a human decides"
    )


def test_an_insert_the_encoder_did_not_mark_is_found_by_the_scan_and_routed(uploader, admin_user):
    policy_create(thresholds=APPROVES_THE_CAT, reason="approve the cat", created_by=admin_user)
    upload = make_upload(uploader, _video(seconds=40, insert_at=21.4, cut_keyframes=False, gop=1000))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    scenes = [f for f in upload.score.frames if f["why"] == "scene"]
    assert [f["time"] for f in scenes] == [21.4, 23.4]  # at the cut, before the next sample; and back
    approve_below = APPROVES_THE_CAT["weapon"]["approve_below"]
    assert scenes[0]["scores"]["weapon"] >= approve_below > scenes[1]["scores"]["weapon"]
    assert upload.status == "queued"
    assert [(f["time"], f["why"]) for f in upload.score.frames] == [(0.0, "sample"), (21.4, "scene"), (23.4, "scene")]
    assert upload.frames == 3  # the frames actually sampled: the still cat once, not at every regular sample


def test_a_video_stops_scoring_once_a_frame_reaches_reject_from(uploader, admin_user, settings):
    settings.VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS = 0  # every regular sample, still pictures or not
    thresholds = {
        "weapon": {"approve_below": 0.001, "reject_from": 0.002},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    policy_create(thresholds=thresholds, reason="reject the astronaut", created_by=admin_user)
    upload = make_upload(uploader, _video(seconds=30, insert_at=2))
    assert upload.frames == 30
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by) == ("rejected", "auto")
    assert len(upload.score.frames) == 8  # the first batch held the insert: the other 22 never decoded
    assert upload.score.frames[upload.score.worst_frame]["time"] in (2.0, 3.0)


def test_an_undecodable_stored_video_goes_to_humans_as_failed(uploader, media_root):
    from django.core.files.storage import default_storage

    upload = make_upload(uploader, _video(seconds=4, insert_at=1))
    with default_storage.open(upload.original.name, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42" + b"x" * 100)
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.status == upload.status == "failed"
    assert upload.status_reason.startswith("Could not be scored: the stored video cannot be decoded")


def test_a_queued_videos_display_is_its_worst_frame_and_each_sampled_frame_can_be_viewed(uploader, admin_user, client):
    import io

    from django.core.files.storage import default_storage

    policy_create(thresholds=APPROVES_THE_CAT, reason="approve the cat", created_by=admin_user)
    upload = make_upload(uploader, _video(seconds=6, insert_at=2))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    worst = upload.score.worst_frame
    assert upload.status == "queued" and upload.display.name.endswith(f"-f{worst}.webp")
    with default_storage.open(upload.display.name) as handle, Image.open(handle) as shown:
        assert shown.format == "WEBP" and shown.size == (320, 224)

    client.force_login(uploader)
    frame = client.get(f"/uploads/{upload.pk}/frames/0")
    assert frame.status_code == 200 and frame["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(frame.content)).size == (320, 224)
    assert client.get(f"/uploads/{upload.pk}/frames/{upload.frames}").status_code == 404
