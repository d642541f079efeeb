import pytest

from hashes.pdq import hamming
from moderation.models import KnownImage, Upload
from moderation.services.known_images import known_image_matches, known_image_record
from reviews.models import ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.factories import make_round, make_upload, route_with, with_phash
from tests.images import photo_jpeg


def flip(phash: str, bits: int) -> str:
    return f"{int(phash, 16) ^ ((1 << bits) - 1):016x}"


def route(upload: Upload, value: float = 0.0001) -> Upload:
    return route_with(upload, {"weapon": value, "nudity": 0.0})


@pytest.mark.django_db
def test_a_rejected_picture_is_remembered_and_a_near_copy_is_auto_rejected(moderator):
    original = make_upload(data=photo_jpeg("astronaut"))
    round_ = round_claim(round_id=make_round(original).pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="other")
    known = KnownImage.objects.get()
    original.refresh_from_db()
    assert (known.phash, known.label, known.upload, known.labelled_by) == (
        original.phash,
        "harmful",
        original,
        moderator,
    )
    # A re-encoded, smaller copy: a different file with the same or a nearby perceptual hash.
    copy = with_phash(make_upload(data=photo_jpeg("astronaut", quality=60)))
    assert copy.sha256 != original.sha256 and hamming(copy.phash, original.phash) <= 4
    copy = route(copy)  # a score the thresholds would approve
    assert (copy.status, copy.decided_by) == ("rejected", "auto")
    assert "matches an image humans rejected" in copy.status_reason
    assert not ReviewRound.objects.filter(upload=copy).exists()


@pytest.mark.django_db
def test_matching_finds_every_hash_within_the_distance():
    base = with_phash(make_upload())
    for bits in range(9):
        KnownImage.objects.all().delete()
        upload = Upload(phash=flip(base.phash, bits))
        known_image_record(upload=Upload.objects.get(pk=base.pk), label="harmful", labelled_by=None)
        KnownImage.objects.filter(phash=base.phash).update(phash=upload.phash)  # move the entry away by `bits`
        found = known_image_matches(phash=base.phash, max_distance=7)
        assert [m.distance for m in found] == ([] if bits > 7 else [bits]), bits


@pytest.mark.django_db
def test_an_approved_match_routes_as_before_and_undo_forgets(moderator):
    upload = make_upload(data=photo_jpeg("coffee"))
    round_ = round_claim(round_id=make_round(upload).pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert KnownImage.objects.get().label == "safe"
    again = route(make_upload(data=photo_jpeg("coffee", quality=70)), value=0.2)
    assert again.status == "queued"  # routed by the thresholds, not by the match
    assert [m.known.label for m in known_image_matches(phash=again.phash)] == ["safe"]
    decision_undo(moderator=moderator)
    assert not KnownImage.objects.exists()
