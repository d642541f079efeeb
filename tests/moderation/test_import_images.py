"""``manage.py import_images DIR``: real files through the real intake; --wait against a scorer thread."""

from __future__ import annotations

import io
import os
import pathlib
import queue
import re
import threading
import time

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connections

from moderation.management.commands import import_images
from moderation.models import Upload
from moderation.services.model_versions import model_version_ensure_active
from moderation.services.policies import policy_current
from moderation.services.scoring import upload_mark_failed, upload_score
from tests.conftest import stored_files
from tests.factories import make_user, route_with
from tests.images import photo_jpeg, solid

CORRUPT = "The image data is corrupt or truncated (OSError)."
NOT_AN_IMAGE = "The file is not a JPEG, PNG, WebP or GIF image, nor an MP4, MOV, WebM or MKV video."


def run(*args: str) -> tuple[str, str, int]:
    """Run the command as a script would see it: (stdout, stderr, exit status)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_images", *args, "--no-progress", stdout=out, stderr=err)
        status = 0
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        status = exc.returncode
    return out.getvalue(), err.getvalue(), status


@pytest.fixture
def src(tmp_path):
    """An empty folder to import (beside, not above, the media root)."""
    root = tmp_path / "src"
    root.mkdir()
    return root


@pytest.fixture
def folder(tmp_path):
    """Two good images, a corrupt JPEG, a text file named .jpg, hidden things and a nested folder."""
    root = tmp_path / "drop"
    (root / "holiday" / "day2").mkdir(parents=True)
    (root / ".cache").mkdir()
    files = {
        "a.jpg": solid((64, 48), (200, 30, 30)),
        "b.png": solid((40, 40), (30, 200, 30), fmt="PNG"),
        "corrupt.jpg": photo_jpeg("coffee")[:3000],
        "notes.jpg": b"shopping list: milk, eggs\n",
        ".hidden.jpg": solid(),
        ".cache/thumb.jpg": solid(),
        "holiday/cat.jpg": photo_jpeg("chelsea"),
        "holiday/day2/rocket.gif": solid((30, 60), (10, 10, 10), fmt="GIF"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def uploads_by_path() -> dict[str, Upload]:
    return {u.metadata["import_path"]: u for u in Upload.objects.all()}


def files_of(uploads) -> list[str]:
    return sorted(u.original.name for u in uploads)  # the derivative is the worker's


@pytest.mark.django_db
def test_top_level_files_are_imported_and_rejections_listed(folder, uploader, media_root):
    out, err, status = run(str(folder), "--user", "uploader")

    assert status == 1
    assert re.search(
        rf"^{re.escape(str(folder))} as uploader: 2 submitted, 0 already imported, 2 rejected; "
        r"4 files in \d+\.\d s \(\d+\.\d files/s\)$",
        out,
        re.MULTILINE,
    )
    assert "skipped: 2 hidden, 1 subfolder (use --recursive)" in out
    assert f"rejected (2):\n  corrupt.jpg: {CORRUPT}\n  notes.jpg: {NOT_AN_IMAGE}\n" in err
    assert "CommandError: 2 files rejected (listed above)" in err

    uploads = uploads_by_path()
    assert sorted(uploads) == ["a.jpg", "b.png"]
    a, b = uploads["a.jpg"], uploads["b.png"]
    assert (a.external_id, a.original_filename, a.format, a.width, a.height) == (
        "import:a.jpg",
        "a.jpg",
        "JPEG",
        64,
        48,
    )
    assert (b.external_id, b.original_filename, b.format) == ("import:b.png", "b.png", "PNG")
    assert a.metadata == {"import_path": "a.jpg"}
    assert {u.submitter for u in uploads.values()} == {uploader}
    assert {u.status for u in uploads.values()} == {Upload.Status.PENDING}
    assert stored_files(media_root) == files_of(uploads.values())
    assert (media_root / a.original.name).read_bytes() == (folder / "a.jpg").read_bytes()


@pytest.mark.django_db
def test_recursive_imports_subfolders_but_not_hidden_ones(folder, uploader, media_root):
    out, _, status = run(str(folder), "--user", "uploader", "--recursive")

    assert status == 1
    assert ": 4 submitted, 0 already imported, 2 rejected; 6 files in " in out
    assert "skipped: 2 hidden\n" in out
    uploads = uploads_by_path()
    assert sorted(uploads) == ["a.jpg", "b.png", "holiday/cat.jpg", "holiday/day2/rocket.gif"]
    assert uploads["holiday/day2/rocket.gif"].external_id == "import:holiday/day2/rocket.gif"
    assert uploads["holiday/day2/rocket.gif"].original_filename == "rocket.gif"
    assert uploads["holiday/cat.jpg"].format == "JPEG"
    assert stored_files(media_root) == files_of(uploads.values())


@pytest.mark.django_db
def test_rerun_is_idempotent_and_adds_only_new_files(folder, uploader, media_root):
    run(str(folder), "--user", "uploader")
    first = {path: u.pk for path, u in uploads_by_path().items()}
    stored_before = stored_files(media_root)
    (folder / "c.webp").write_bytes(solid((20, 30), fmt="WEBP"))

    out, _, status = run(str(folder), "--user", "uploader")

    assert status == 1  # the same two files are still rejected
    assert ": 1 submitted, 2 already imported, 2 rejected; 5 files in " in out
    uploads = uploads_by_path()
    assert sorted(uploads) == ["a.jpg", "b.png", "c.webp"]
    assert {path: uploads[path].pk for path in first} == first
    assert Upload.objects.count() == 3
    assert stored_files(media_root) == sorted([*stored_before, *files_of([uploads["c.webp"]])])

    out, _, _ = run(str(folder), "--user", "uploader")
    assert ": 0 submitted, 3 already imported, 2 rejected; " in out
    assert Upload.objects.count() == 3


@pytest.mark.django_db
def test_clean_folder_exits_zero(src, uploader):
    (src / "one.jpg").write_bytes(solid())
    (src / "two.jpg").write_bytes(solid(color=(1, 2, 3)))

    out, err, status = run(str(src), "--user", "uploader")

    assert status == 0
    assert ": 2 submitted, 0 already imported, 0 rejected; 2 files in " in out
    assert err == ""
    assert Upload.objects.count() == 2


@pytest.mark.django_db
def test_videos_are_imported_under_their_own_byte_limit(src, uploader, settings, media_root):
    from tests.videos import clip_with_insert

    clip = clip_with_insert(seconds=3, insert_at=1)
    settings.VIGIL_MAX_UPLOAD_BYTES = len(clip) - 1  # images: smaller than the clip
    settings.VIGIL_MAX_VIDEO_BYTES = len(clip)
    (src / "clip.mp4").write_bytes(clip)
    (src / "broken.webm").write_bytes(clip[: len(clip) // 2])

    out, err, status = run(str(src), "--user", "uploader")

    assert status == 1 and ": 1 submitted, 0 already imported, 1 rejected; " in out
    assert "  broken.webm: The video" in err
    upload = uploads_by_path()["clip.mp4"]
    assert (upload.kind, upload.byte_size, upload.format) == ("video", len(clip), "MP4")
    assert upload.duration_seconds == pytest.approx(3, abs=0.25)
    assert stored_files(media_root) == [upload.original.name]


@pytest.mark.django_db
def test_empty_folder_imports_nothing(src, uploader):
    out, err, status = run(str(src), "--user", "uploader")
    assert (status, err) == (0, "")
    assert ": 0 submitted, 0 already imported, 0 rejected; 0 files in " in out
    assert not Upload.objects.exists()


@pytest.mark.django_db
def test_oversized_empty_and_special_files_never_abort_the_import(src, uploader, settings, media_root):
    settings.VIGIL_MAX_UPLOAD_BYTES = 2000
    (src / "big.png").write_bytes(solid((300, 300), (5, 5, 5), fmt="PNG") + os.urandom(3000))
    (src / "empty.jpg").write_bytes(b"")
    (src / "small.jpg").write_bytes(solid((16, 16)))
    (src / "dangling.jpg").symlink_to(src / "nowhere.jpg")
    os.mkfifo(src / "pipe.jpg")

    out, err, status = run(str(src), "--user", "uploader")

    assert status == 1
    assert ": 1 submitted, 0 already imported, 2 rejected; 3 files in " in out
    assert "skipped: 2 not a regular file\n" in out
    assert "  big.png: The file is larger than the 2.0\xa0KB limit.\n" in err
    assert "  empty.jpg: The file is empty.\n" in err
    assert sorted(uploads_by_path()) == ["small.jpg"]
    assert len(stored_files(media_root)) == 1


@pytest.mark.django_db
def test_an_unreadable_file_is_rejected_and_the_import_goes_on(src, uploader, monkeypatch):
    (src / "locked.jpg").write_bytes(solid())
    (src / "open.jpg").write_bytes(solid(color=(7, 7, 7)))
    real_open = pathlib.Path.open

    def open_(self, *args, **kwargs):
        if self.name == "locked.jpg":  # chmod 000 does not stop root, who may run the tests
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_)
    out, err, status = run(str(src), "--user", "uploader")

    assert status == 1
    assert ": 1 submitted, 0 already imported, 1 rejected; 2 files in " in out
    assert "  locked.jpg: The file cannot be read: Permission denied.\n" in err
    assert sorted(uploads_by_path()) == ["open.jpg"]


@pytest.mark.django_db
def test_a_path_too_long_for_external_id_gets_a_stable_hashed_id(src, uploader):
    nested = src / ("d" * 120) / ("e" * 120)
    nested.mkdir(parents=True)
    (nested / "picture.jpg").write_bytes(solid())
    relative = f"{'d' * 120}/{'e' * 120}/picture.jpg"

    run(str(src), "--user", "uploader", "--recursive")
    out, _, status = run(str(src), "--user", "uploader", "--recursive")

    assert status == 0
    assert ": 0 submitted, 1 already imported, 0 rejected; " in out
    upload = Upload.objects.get()
    assert upload.metadata == {"import_path": relative}
    assert len(upload.external_id) == 255
    assert upload.external_id.startswith(f"import:{'d' * 120}/")
    assert re.fullmatch(r"import:[de/]{183}#[0-9a-f]{64}", upload.external_id)


def test_import_key_is_the_relative_path_or_a_hash_for_long_and_undecodable_names():
    assert import_images.import_key("a/b.jpg") == ("import:a/b.jpg", "a/b.jpg")
    exactly = "x" * 248
    assert import_images.import_key(exactly) == (f"import:{exactly}", exactly)
    long_id, long_shown = import_images.import_key("x" * 249)
    assert long_shown == "x" * 249 and len(long_id) == 255
    undecodable = os.fsdecode(b"caf\xe9.jpg")
    key, shown = import_images.import_key(undecodable)
    assert shown == "caf\ufffd.jpg"
    assert re.fullmatch(r"import:caf\ufffd\.jpg#[0-9a-f]{64}", key)
    assert key != import_images.import_key(os.fsdecode(b"caf\xea.jpg"))[0]


@pytest.mark.django_db
def test_missing_folder_and_unknown_user_are_command_errors(src, uploader):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_images", str(src / "nope"), "--user", "uploader")
    (src / "file.jpg").write_bytes(solid())
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_images", str(src / "file.jpg"), "--user", "uploader")
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("import_images", str(src), "--user", "ghost")
    uploader.is_active = False
    uploader.save()
    with pytest.raises(CommandError, match="user 'uploader' is inactive"):
        call_command("import_images", str(src), "--user", "uploader")
    assert not Upload.objects.exists()


@pytest.mark.django_db
def test_submitter_defaults_to_the_only_api_client(src, api_client_and_token):
    (src / "one.jpg").write_bytes(solid())
    out, _, status = run(str(src))
    assert status == 0
    assert " as api-acme: 1 submitted," in out
    assert Upload.objects.get().submitter == api_client_and_token[0].user


@pytest.mark.django_db
def test_without_exactly_one_api_client_the_user_must_be_named(src, uploader):
    from accounts.services import api_client_create

    with pytest.raises(CommandError, match="there is no API client: name the submitter with --user"):
        call_command("import_images", str(src))
    api_client_create(name="one")
    api_client_create(name="two")
    with pytest.raises(CommandError, match="there is more than one API client"):
        call_command("import_images", str(src))


@pytest.mark.django_db(transaction=True)
def test_exit_status_of_the_real_entry_point(folder, monkeypatch):
    monkeypatch.setattr("moderation.services.intake.scoring_enqueue", lambda upload_id: None)  # no broker
    make_user(username="uploader")
    argv = ["manage.py", "import_images", str(folder), "--user", "uploader", "--no-progress"]

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(argv).execute()
    assert exited.value.code == 1
    (folder / "corrupt.jpg").unlink()
    (folder / "notes.jpg").unlink()
    ManagementUtility(argv).execute()  # returns: exit status 0
    assert Upload.objects.count() == 2


@pytest.mark.django_db
def test_wait_times_out_when_nothing_scores(src, uploader):
    """In a test transaction the enqueue-on-commit never fires: the uploads stay pending."""
    (src / "one.jpg").write_bytes(solid())
    (src / "two.jpg").write_bytes(solid(color=(9, 9, 9)))

    started = time.monotonic()
    out, err, status = run(str(src), "--user", "uploader", "--wait", "--timeout", "0.5")

    assert 0.5 <= time.monotonic() - started < 10
    assert status == 2
    assert "scored 0 of 2 uploads: 0 approved, 0 rejected, 0 queued, 0 failed" in out
    assert "still pending after 0.5 s: 2" in err
    assert "CommandError: timed out waiting for scoring (is a worker running?)" in err


@pytest.mark.django_db
def test_wait_counts_uploads_scored_before_a_rerun(src, uploader):
    for index in range(3):
        (src / f"{index}.jpg").write_bytes(solid(color=(index, 50, 50)))
    run(str(src), "--user", "uploader")
    uploads = uploads_by_path()
    route_with(uploads["0.jpg"], {"weapon": 0.0, "nudity": 0.0})
    route_with(uploads["1.jpg"], {"weapon": 0.9, "nudity": 0.0})
    upload_mark_failed(upload_id=uploads["2.jpg"].pk, reason="test")

    out, err, status = run(str(src), "--user", "uploader", "--wait", "--timeout", "0")

    assert status == 0
    assert ": 0 submitted, 3 already imported, 0 rejected; " in out
    assert "scored 3 of 3 uploads: 1 approved, 1 rejected, 0 queued, 1 failed" in out
    assert err == ""


class ScorerThread(threading.Thread):
    """Stands in for the Celery worker: takes the ids intake enqueues after commit and scores them."""

    def __init__(self, score) -> None:
        super().__init__(daemon=True)
        self.ids: queue.Queue = queue.Queue()
        self.score = score
        self.errors: list[BaseException] = []
        self.scored: list = []

    def run(self) -> None:
        try:
            while (upload_id := self.ids.get(timeout=60)) is not None:
                time.sleep(0.1)  # so the command's wait loop finds some still pending
                self.score(Upload.objects.get(pk=upload_id))
                self.scored.append(upload_id)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()

    def __enter__(self) -> ScorerThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.ids.put(None)
        self.join(timeout=120)
        assert not self.is_alive() and not self.errors, self.errors


SCORES_BY_NAME = {
    "approve": {"weapon": 0.0, "nudity": 0.0},
    "reject": {"weapon": 0.9, "nudity": 0.0},
    "queue": {"weapon": 0.1, "nudity": 0.0},
}


def score_by_name(upload: Upload) -> None:
    """Route each upload by its file name: approve-*, reject-*, queue-* (the baseline's cold-start
    thresholds), fail-* goes to humans as failed."""
    kind = upload.original_filename.split("-")[0]
    if kind == "fail":
        upload_mark_failed(upload_id=upload.pk, reason="Could not be scored: test")
    else:
        route_with(upload, SCORES_BY_NAME[kind])


@pytest.mark.django_db(transaction=True)
def test_wait_follows_a_worker_until_every_upload_is_scored(src, monkeypatch):
    make_user(username="uploader")
    model_version_ensure_active()  # saved before the scorer thread routes
    policy_current()
    names = ["approve-1.jpg", "approve-2.jpg", "fail-1.jpg", "queue-1.jpg", "reject-1.jpg", "reject-2.jpg"]
    for index, name in enumerate(names):
        (src / name).write_bytes(solid(color=(index * 30, 100, 100)))
    (src / "notes.jpg").write_bytes(b"not an image")
    monkeypatch.setattr(import_images, "POLL_SECONDS", 0.05)

    with ScorerThread(score_by_name) as scorer:
        monkeypatch.setattr("moderation.services.intake.scoring_enqueue", scorer.ids.put)
        out, err, status = run(str(src), "--user", "uploader", "--wait", "--timeout", "60")

    assert status == 1  # notes.jpg
    assert ": 6 submitted, 0 already imported, 1 rejected; 7 files in " in out
    assert "scored 6 of 6 uploads: 2 approved, 2 rejected, 1 queued, 1 failed" in out
    assert f"  notes.jpg: {NOT_AN_IMAGE}" in err
    assert "still pending" not in err
    statuses = {u.original_filename: u.status for u in Upload.objects.all()}
    assert statuses == {
        "approve-1.jpg": "approved",
        "approve-2.jpg": "approved",
        "fail-1.jpg": "failed",
        "queue-1.jpg": "queued",
        "reject-1.jpg": "rejected",
        "reject-2.jpg": "rejected",
    }
    assert sorted(scorer.scored) == sorted(Upload.objects.values_list("pk", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wait_with_the_real_model_scoring_real_photos(src, monkeypatch):
    make_user(username="uploader")
    model_version_ensure_active()
    policy_current()
    (src / "cat.jpg").write_bytes(photo_jpeg("chelsea"))
    (src / "coffee.jpg").write_bytes(photo_jpeg("coffee"))
    monkeypatch.setattr(import_images, "POLL_SECONDS", 0.05)

    with ScorerThread(lambda upload: upload_score(upload_id=upload.pk)) as scorer:
        monkeypatch.setattr("moderation.services.intake.scoring_enqueue", scorer.ids.put)
        out, err, status = run(str(src), "--user", "uploader", "--wait", "--timeout", "120")

    assert (status, err) == (0, "")
    assert "scored 2 of 2 uploads: 2 approved, 0 rejected, 0 queued, 0 failed" in out
    assert {u.status for u in Upload.objects.all()} == {"approved"}
    assert all(u.score is not None for u in Upload.objects.select_related("score"))
