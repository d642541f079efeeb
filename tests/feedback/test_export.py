import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pgtrigger
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.roles import Role
from feedback.services.export import ExportFilters, export_imagefolder, export_rows, export_zip_stream
from reviews.models import Decision, ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.factories import make_round, make_upload, make_user
from tests.images import solid


def decide(moderator, label, *, score=0.3, data=None, category=""):
    upload = make_upload(data=data or solid(color=(len(Decision.objects.all()) * 7 % 255, 20, 99)))
    round_ = make_round(upload, score=score)
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, category=category)


@pytest.mark.django_db
def test_imagefolder_export_writes_images_and_both_manifests(tmp_path, moderator):
    decisions = [decide(moderator, "harmful", score=0.9, category="weapon") for _ in range(5)]
    decisions += [decide(moderator, "safe", score=0.1) for _ in range(10)]
    summary = export_imagefolder(tmp_path / "out", ExportFilters(), val_fraction=0.2, seed=1)
    assert summary.images == 15
    assert summary.by_split_label == {"train/harmful": 4, "val/harmful": 1, "train/safe": 8, "val/safe": 2}
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    lines = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").open()]
    assert rows == [{k: str(v) if v is not None else "" for k, v in line.items()} for line in lines]
    by_upload = {str(d.upload_id): d for d in decisions}
    for row in rows:
        decision = by_upload[row["upload_id"]]
        data = (tmp_path / "out" / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] == decision.upload.sha256
        assert row["file"] == f"{row['split']}/{row['label']}/{row['sha256']}.jpg"
        assert (row["label"], row["category"], row["moderator"]) == (decision.label, decision.category, "moderator")
        assert float(row["model_score"]) == decision.model_score
        assert row["model_version"] == "baseline-imagenet-nsfw-v1"
    # The trainer reads this layout and manifest as it is.
    from moderation.ml.datasets import load_split

    assert len(load_split(tmp_path / "out", "val")) == 3


@pytest.mark.django_db
def test_split_is_reproducible_and_stable_as_data_grows(moderator):
    for i in range(20):
        decide(moderator, "harmful" if i % 2 else "safe")
    first = {r.sha256: r.split for r in export_rows(ExportFilters(), val_fraction=0.25, seed=7)}
    assert first == {r.sha256: r.split for r in export_rows(ExportFilters(), val_fraction=0.25, seed=7)}
    assert first != {r.sha256: r.split for r in export_rows(ExportFilters(), val_fraction=0.25, seed=8)}
    for _ in range(4):
        decide(moderator, "safe")
    grown = {r.sha256: r.split for r in export_rows(ExportFilters(), val_fraction=0.25, seed=7)}
    moved = [sha for sha, split in first.items() if grown[sha] != split]
    assert len(moved) <= 1  # one more val slot for "safe" may pull one image over


@pytest.mark.django_db
def test_latest_standing_decision_wins_per_image(moderator):
    same = solid(color=(1, 2, 3))
    older = decide(moderator, "harmful", data=same)
    with pgtrigger.ignore("reviews.Decision:decision_append_only"):  # back-date it for the test
        Decision.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    decide(moderator, "safe", data=same)  # the same bytes uploaded again and approved later
    undone = decide(moderator, "harmful")
    decision_undo(moderator=moderator, decision_id=undone.pk)  # undone: not standing, not exported
    rows = list(export_rows(ExportFilters()))
    assert [(r.sha256, r.label) for r in rows] == [(older.upload.sha256, "safe")]


@pytest.mark.django_db
def test_filters(moderator):
    other = make_user(Role.MODERATOR, username="other")
    decide(moderator, "harmful", score=0.2, category="nudity")  # overturned: model leaned safe
    decide(moderator, "safe", score=0.1)
    decide(other, "harmful", score=0.9, category="weapon")

    def labels(**kwargs):
        return sorted((r.label, r.category, r.moderator) for r in export_rows(ExportFilters(**kwargs)))

    assert labels(label="harmful") == [("harmful", "nudity", "moderator"), ("harmful", "weapon", "other")]
    assert labels(category="weapon") == [("harmful", "weapon", "other")]
    assert labels(moderator="other") == [("harmful", "weapon", "other")]
    assert labels(overturned_only=True) == [("harmful", "nudity", "moderator")]
    assert labels(since=timezone.now() + timedelta(minutes=1)) == []
    assert labels(model_version="no-such-model") == []


@pytest.mark.django_db
def test_zip_stream_holds_the_same_files(moderator, tmp_path):
    for label in ("harmful", "safe", "safe"):
        decide(moderator, label)
    data = b"".join(export_zip_stream(ExportFilters(), val_fraction=0.34, seed=3))
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert names[:2] == ["manifest.csv", "manifest.jsonl"]
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert sorted(names[2:]) == sorted(r["file"] for r in rows)
    for row in rows:
        assert hashlib.sha256(archive.read(row["file"])).hexdigest() == row["sha256"]
    assert archive.testzip() is None


@pytest.mark.django_db
def test_export_command_formats(moderator, tmp_path):
    decide(moderator, "harmful")
    decide(moderator, "safe")
    call_command("export_feedback", str(tmp_path / "folder"))
    assert (tmp_path / "folder" / "manifest.csv").is_file()
    call_command("export_feedback", str(tmp_path / "m.jsonl"), "--format", "jsonl")
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
    call_command("export_feedback", str(tmp_path / "m.csv"), "--format", "csv", "--label", "safe")
    assert len((tmp_path / "m.csv").read_text().splitlines()) == 2  # header + one row
    call_command("export_feedback", str(tmp_path / "all.zip"), "--format", "zip")
    assert zipfile.ZipFile(tmp_path / "all.zip").testzip() is None


@pytest.mark.django_db
def test_an_animation_is_exported_as_its_worst_frame(tmp_path, moderator):
    """The trainer reads one picture per file: an animated upload's label goes with the frame the
    model found worst, not with frame 0."""
    from PIL import Image

    from media.frames import frame_at
    from tests.factories import score_frames
    from tests.images import animated, photo_frames

    gif = animated(photo_frames(["chelsea", "coffee", "astronaut"]), "GIF")
    upload = score_frames(
        make_upload(data=gif),
        {
            0: {"weapon": 0.001, "nudity": 0.01},
            1: {"weapon": 0.002, "nudity": 0.01},
            2: {"weapon": 0.3, "nudity": 0.01},
        },
    )
    round_ = make_round(upload)  # keeps the per-frame score
    round_claim(round_id=round_.pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="weapon")
    decide(moderator, "safe")

    export_imagefolder(tmp_path / "out", ExportFilters(), val_fraction=0, seed=1)
    rows = {row["upload_id"]: row for row in csv.DictReader((tmp_path / "out" / "manifest.csv").open())}
    row = rows[str(upload.pk)]
    assert row["file"] == f"train/harmful/{upload.sha256}-frame2.png" and row["frame"] == "2"
    exported = Image.open(tmp_path / "out" / row["file"])
    assert exported.format == "PNG"
    expected = frame_at(Image.open(io.BytesIO(gif)), 2)
    assert exported.convert("RGB").tobytes() == expected.tobytes()
    [still] = [r for r in rows.values() if r["upload_id"] != str(upload.pk)]
    assert still["frame"] == "" and still["file"].endswith(".jpg")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(export_zip_stream(ExportFilters(), val_fraction=0, seed=1))))
    assert archive.read(row["file"]) == (tmp_path / "out" / row["file"]).read_bytes()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_video_is_exported_as_its_worst_sampled_frames_with_its_label(tmp_path, moderator, admin_user, settings):
    settings.VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS = 0  # every regular sample, still pictures or not
    from PIL import Image

    from media.video import frame_at_time
    from moderation.services.policies import policy_create
    from moderation.services.scoring import upload_score
    from tests.videos import clip_with_insert

    thresholds = {
        "weapon": {"approve_below": 0.002, "reject_from": 0.5},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    policy_create(thresholds=thresholds, reason="approve the cat", created_by=admin_user)
    video = clip_with_insert(seconds=8, insert_at=4, safe="chelsea", harmful="astronaut", size=(320, 224))
    upload = make_upload(data=video)
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == "queued"
    worst_time = upload.score.frames[upload.score.worst_frame]["time"]
    round_ = ReviewRound.objects.get(upload=upload, status="open")
    round_claim(round_id=round_.pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="weapon")

    summary = export_imagefolder(tmp_path / "out", ExportFilters(), val_fraction=0, seed=1)
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    # The two sampled frames of the insert (4 s and 5 s), the worst first; not the cat around them.
    assert [float(row["frame_time"]) for row in rows] == [worst_time, 9.0 - worst_time]
    assert rows[0]["file"] == f"train/harmful/{upload.sha256}-t{worst_time:.3f}.png"
    assert int(rows[0]["frame"]) == upload.score.worst_frame and summary.images == 2
    for row in rows:
        assert (row["label"], row["split"], row["upload_id"]) == ("harmful", "train", str(upload.pk))
        exported = Image.open(tmp_path / "out" / row["file"]).convert("RGB")
        assert exported.tobytes() == frame_at_time(io.BytesIO(video), float(row["frame_time"])).tobytes()


def _sampled(*scores: float) -> list[dict]:
    return [{"index": i, "time": i * 0.5, "scores": {"weapon": s, "nudity": 0.0}} for i, s in enumerate(scores)]


@pytest.mark.parametrize(
    ("label", "scores", "expected"),
    [
        # Harmful: only frames scored at least half the worst; neighbours under a second apart are skipped.
        ("harmful", (0.1, 0.9, 0.85, 0.2, 0.6, 0.5), [(1, 0.5), (4, 2.0)]),
        # Safe: the highest-scored frames (hard negatives), up to three, a second apart.
        ("safe", (0.1, 0.3, 0.05, 0.2, 0.25, 0.01, 0.02), [(1, 0.5), (4, 2.0), (6, 3.0)]),
    ],
)
def test_which_frames_of_a_video_are_exported(label, scores, expected):
    from feedback.services.export import video_frames_to_export

    assert video_frames_to_export(_sampled(*scores), label) == expected
    assert video_frames_to_export([], label) == [(0, 0.0)]
