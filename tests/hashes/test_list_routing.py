"""Hash lists act on uploads when the worker routes them: a reject list's match rejects, a queue
list's keeps the upload from automatic approval, a tag is recorded only; every scored frame is
looked up, and every match is recorded with its list (real baseline model, in-process)."""

from __future__ import annotations

import pytest
from PIL import Image

from hashes.models import HashEntry, HashList, HashMatch, UploadHash
from hashes.pdq import pdq_compute
from moderation.models import Upload
from moderation.services.policies import policy_create, policy_current
from moderation.services.scoring import upload_score
from tests.factories import make_upload
from tests.images import animated, encode, photo, photo_frames, photo_jpeg, solid

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def approve_everything():
    """A policy under which the model alone approves every upload (so only a list can stop it)."""
    thresholds = {name: {"approve_below": 0.9999, "reject_from": 1.0} for name in policy_current().thresholds}
    return policy_create(thresholds=thresholds, reason="tests: the lists decide")


def _listed(name: str, action: str, *pictures: Image.Image, category: str = "", enabled: bool = True) -> HashList:
    hash_list = HashList.objects.create(name=name, action=action, category=category, enabled=enabled)
    for picture in pictures:
        HashEntry.objects.create(hash_list=hash_list, pdq=pdq_compute(picture).hex, labels="shared")
    return hash_list


def _scored(upload: Upload) -> Upload:
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    return upload


def test_a_re_encoded_resized_copy_of_a_listed_picture_is_rejected_and_the_match_recorded(uploader, approve_everything):
    listed = _listed("industry-csam-like", "reject", photo("astronaut"), category="violence")
    copy = photo("astronaut").resize((384, 384), Image.Resampling.LANCZOS)

    upload = _scored(make_upload(uploader, encode(copy, "JPEG", quality=60)))

    assert upload.status == Upload.Status.REJECTED and upload.decided_by == Upload.DecidedBy.AUTO
    assert "industry-csam-like" in upload.status_reason and "(violence)" in upload.status_reason
    match = HashMatch.objects.get(upload=upload)
    assert (match.hash_list, match.action, match.category) == (listed, "reject", "violence")
    assert 0 <= match.distance <= 31 and match.labels == "shared" and match.frame == 0
    stored = UploadHash.objects.get(upload=upload, frame=0)
    assert stored.quality >= 50 and len(stored.pdq) == 64


def test_a_queue_list_sends_what_the_model_would_approve_to_a_human(uploader, approve_everything):
    _listed("watch", "queue", photo("coffee"))

    upload = _scored(make_upload(uploader, photo_jpeg("coffee", quality=70)))

    assert upload.status == Upload.Status.QUEUED
    assert "watch" in upload.status_reason and "a human decides" in upload.status_reason
    assert upload.review_rounds.filter(status="open").count() == 1


def test_a_tag_list_only_records_the_match(uploader, approve_everything):
    _listed("seen-before", "tag", photo("rocket"))

    upload = _scored(make_upload(uploader, photo_jpeg("rocket")))

    assert upload.status == Upload.Status.APPROVED
    assert HashMatch.objects.get(upload=upload).action == "tag"


def test_a_picture_on_no_list_is_untouched_but_its_hash_is_kept(uploader, approve_everything):
    _listed("other", "reject", photo("astronaut"))

    upload = _scored(make_upload(uploader, photo_jpeg("chelsea")))

    assert upload.status == Upload.Status.APPROVED and not HashMatch.objects.exists()
    assert UploadHash.objects.filter(upload=upload).count() == 1


def test_a_disabled_list_is_not_matched(uploader, approve_everything):
    _listed("paused", "reject", photo("astronaut"), enabled=False)

    upload = _scored(make_upload(uploader, photo_jpeg("astronaut")))

    assert upload.status == Upload.Status.APPROVED and not HashMatch.objects.exists()


def test_the_strongest_list_decides_and_every_match_is_recorded(uploader, approve_everything):
    _listed("tags", "tag", photo("astronaut"))
    _listed("rejects", "reject", photo("astronaut"))

    upload = _scored(make_upload(uploader, photo_jpeg("astronaut")))

    assert upload.status == Upload.Status.REJECTED and "rejects" in upload.status_reason
    assert set(HashMatch.objects.filter(upload=upload).values_list("list_name", flat=True)) == {"tags", "rejects"}


def test_a_flat_picture_is_not_acted_on_although_its_hash_is_listed(uploader, approve_everything):
    flat = Image.new("RGB", (200, 150), (90, 90, 90))
    _listed("flat", "reject", flat)

    upload = _scored(make_upload(uploader, solid((200, 150), (90, 90, 90))))

    assert upload.status == Upload.Status.APPROVED and not HashMatch.objects.exists()
    assert UploadHash.objects.get(upload=upload).quality < 50


def test_a_listed_picture_in_a_later_frame_of_an_animation_is_found(uploader, approve_everything):
    frames = photo_frames(["coffee", "chelsea", "rocket"])
    _listed("frames", "reject", frames[2])

    upload = _scored(make_upload(uploader, animated(frames)))

    assert upload.status == Upload.Status.REJECTED
    assert HashMatch.objects.get(upload=upload).frame == 2
    assert sorted(UploadHash.objects.filter(upload=upload).values_list("frame", flat=True)) == [0, 1, 2]


def test_a_picture_the_hasher_fails_on_goes_to_a_human(uploader, approve_everything, monkeypatch):
    def broken(image):
        raise RuntimeError("hasher down")

    monkeypatch.setattr("moderation.services.frame_scoring.pdq_compute", broken)

    upload = _scored(make_upload(uploader, photo_jpeg("chelsea")))

    assert upload.status == Upload.Status.QUEUED and "PDQ hash could not be computed" in upload.status_reason


def test_batched_companions_are_matched_each_on_its_own(uploader, approve_everything, settings):
    settings.VIGIL_SCORING_BATCH_SIZE = 4
    _listed("batch", "reject", photo("rocket"))
    uploads = [make_upload(uploader, photo_jpeg(name)) for name in ("coffee", "rocket", "chelsea")]

    _scored(uploads[0])

    statuses = {u.pk: Upload.objects.get(pk=u.pk).status for u in uploads}
    assert statuses == {uploads[0].pk: "approved", uploads[1].pk: "rejected", uploads[2].pk: "approved"}
    assert HashMatch.objects.get().upload_id == uploads[1].pk
    assert UploadHash.objects.count() == 3


def test_a_listed_picture_in_a_video_is_found_in_its_sampled_frames(uploader, approve_everything):
    from tests.videos import encode_video

    size = (320, 240)
    coffee, rocket = (photo(name).resize(size, Image.Resampling.LANCZOS) for name in ("coffee", "rocket"))
    _listed("video", "reject", rocket)
    data = encode_video(lambda i: coffee if i < 20 else rocket, frames=40, fps=10, size=size, keyframes_at={20})

    upload = _scored(make_upload(uploader, data))

    assert upload.kind == Upload.Kind.VIDEO and upload.status == Upload.Status.REJECTED
    match = HashMatch.objects.get(upload=upload)
    assert match.frame > 0 and match.list_name == "video"
    assert UploadHash.objects.filter(upload=upload).count() >= 2


def test_the_api_and_the_upload_page_show_the_hash_and_the_match(uploader, moderator, approve_everything, client):
    from rest_framework.test import APIClient

    _listed("shown", "queue", photo("coffee"), category="violence")
    upload = _scored(make_upload(uploader, photo_jpeg("coffee", quality=75)))
    api = APIClient()
    api.force_authenticate(moderator)

    body = api.get(f"/api/v1/uploads/{upload.pk}/").json()

    assert body["pdq"]["hash"] == UploadHash.objects.get(upload=upload).pdq and body["pdq"]["quality"] >= 50
    [match] = body["hash_matches"]
    assert (match["list"], match["action"], match["category"], match["frame"]) == ("shown", "queue", "violence", 0)
    client.force_login(moderator)
    page = client.get(f"/uploads/{upload.pk}/").content.decode()
    assert body["pdq"]["hash"] in page and "<strong>shown</strong> (violence)" in page


@pytest.mark.parametrize("fmt", ["pdq", "hma"])
def test_a_list_imported_from_a_file_acts_on_a_matching_upload(uploader, approve_everything, tmp_path, fmt):
    from django.core.management import call_command

    listed = pdq_compute(photo("motorcycle")).hex
    path = tmp_path / f"list.{fmt}"
    if fmt == "pdq":
        path.write_text(f"# shared by a partner\n{listed.upper()} weapon partner-42\n")
    else:
        path.write_text(f"{listed},1234567890,987,2026-11-30T10:00:00+0000,weapon partner-42\n")

    call_command("hashlist_import", str(path), "--list=partner", "--create", "--action=reject", "--category=weapon")
    copy = photo("motorcycle").resize((500, 337), Image.Resampling.LANCZOS)
    upload = _scored(make_upload(uploader, encode(copy, "WEBP", quality=60)))

    assert upload.status == Upload.Status.REJECTED and "partner" in upload.status_reason
    match = HashMatch.objects.get(upload=upload)
    assert match.pdq == listed and match.labels == "weapon partner-42"
    assert match.entry.source_id == ("1234567890" if fmt == "hma" else "")


def test_the_image_views_do_not_read_hashes_and_the_api_list_reads_them_once_a_page(uploader, moderator, client):
    """Hashes are read where an upload is shown whole (detail, API), not by every thumbnail."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    uploads = [_scored(make_upload(uploader, photo_jpeg(name))) for name in ("coffee", "rocket", "astronaut")]
    client.force_login(moderator)
    with CaptureQueriesContext(connection) as image_view:
        assert client.get(f"/uploads/{uploads[0].pk}/image").status_code == 200
    assert not [q["sql"] for q in image_view.captured_queries if "hashes_" in q["sql"]]

    api = APIClient()
    api.force_authenticate(uploader)
    with CaptureQueriesContext(connection) as listing:
        body = api.get("/api/v1/uploads/").json()
    assert {r["pdq"]["hash"] for r in body["results"]} == set(
        UploadHash.objects.filter(frame=0).values_list("pdq", flat=True)
    )
    assert len([q for q in listing.captured_queries if "hashes_" in q["sql"]]) == 2  # not one per upload
