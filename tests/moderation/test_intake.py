import io

import pytest

from moderation.models import Upload
from moderation.services.intake import UploadRejected, upload_create
from tests.conftest import stored_files
from tests.images import solid


@pytest.mark.django_db
def test_upload_is_stored_under_random_names_and_scoring_enqueued_after_commit(
    uploader, media_root, django_capture_on_commit_callbacks
):
    data = solid((120, 80))
    with django_capture_on_commit_callbacks() as callbacks:
        upload, created = upload_create(submitter=uploader, file=io.BytesIO(data), filename="holiday.jpg")
    assert created
    assert len(callbacks) == 1
    upload.refresh_from_db()
    assert upload.status == Upload.Status.PENDING
    assert (upload.format, upload.width, upload.height, upload.byte_size) == ("JPEG", 120, 80, len(data))
    assert upload.original_filename == "holiday.jpg"
    assert "holiday" not in upload.original.name
    assert upload.original.name.endswith(f"{upload.pk.hex}.jpg")
    # Only the original: the display derivative and the pHash come from the worker (or a first view).
    assert stored_files(media_root) == [upload.original.name]
    assert (upload.display.name, upload.phash) == ("", "")
    assert (media_root / upload.original.name).read_bytes() == data


@pytest.mark.django_db
def test_rejected_image_leaves_no_row_and_no_file(uploader, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(UploadRejected, match="not a JPEG"):
        upload_create(submitter=uploader, file=io.BytesIO(b"GIF89a but not really"))
    assert callbacks == []
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_database_error_after_files_are_written_removes_them(uploader, media_root, monkeypatch):
    def broken_create(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Upload.objects, "create", broken_create)
    with pytest.raises(RuntimeError):
        upload_create(submitter=uploader, file=io.BytesIO(solid()))
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_repeated_external_id_returns_the_first_upload(uploader, media_root):
    first, created = upload_create(submitter=uploader, file=io.BytesIO(solid()), external_id="post-1")
    again, created_again = upload_create(
        submitter=uploader, file=io.BytesIO(solid(color=(1, 2, 3))), external_id="post-1"
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Upload.objects.count() == 1
    assert len(stored_files(media_root)) == 1


@pytest.mark.django_db
def test_external_id_is_unique_per_submitter_only(uploader, moderator):
    a, _ = upload_create(submitter=uploader, file=io.BytesIO(solid()), external_id="same")
    b, created = upload_create(submitter=moderator, file=io.BytesIO(solid()), external_id="same")
    assert created and a.pk != b.pk


@pytest.mark.django_db
def test_metadata_must_be_an_object(uploader):
    with pytest.raises(UploadRejected, match="JSON object"):
        upload_create(submitter=uploader, file=io.BytesIO(solid()), metadata=["not", "an", "object"])
    assert not Upload.objects.exists()


@pytest.mark.django_db
def test_byte_limit_is_enforced(uploader, settings, media_root):
    settings.VIGIL_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(UploadRejected, match="larger than the 1000\xa0bytes limit"):
        upload_create(submitter=uploader, file=io.BytesIO(solid((400, 400))))
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_oversized_metadata_is_refused(uploader, media_root):
    with pytest.raises(UploadRejected, match="metadata is larger than 16 KB"):
        upload_create(submitter=uploader, file=io.BytesIO(solid()), metadata={"blob": "x" * 17_000})
    assert not Upload.objects.exists() and stored_files(media_root) == []
