"""Known images: perceptual hashes humans labelled, matched against new uploads."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from hashes.pdq import hamming  # bits apart of two hex hashes of one length: pHash's 64 as PDQ's 256
from moderation.models import KnownImage, Upload

CHUNKS = [f"c{i}" for i in range(8)]


def _chunks(phash: str) -> dict[str, int]:
    value = int(phash, 16)
    return {name: (value >> (8 * (7 - i))) & 0xFF for i, name in enumerate(CHUNKS)}


@dataclass(frozen=True)
class Match:
    known: KnownImage
    distance: int


def known_image_matches(*, phash: str, max_distance: int | None = None, label: str | None = None) -> list[Match]:
    """Known images within ``max_distance`` bits (default ``VIGIL_KNOWN_IMAGE_DISTANCE``, at most 7
    so the byte index finds every one), nearest first."""
    max_distance = settings.VIGIL_KNOWN_IMAGE_DISTANCE if max_distance is None else max_distance
    max_distance = min(max_distance, 7)
    if not phash or max_distance < 0:
        return []
    query = Q()
    for name, value in _chunks(phash).items():
        query |= Q(**{name: value})
    candidates = KnownImage.objects.filter(query)
    if label:
        candidates = candidates.filter(label=label)
    matches = [Match(known, hamming(phash, known.phash)) for known in candidates.select_related("upload")]
    return sorted((m for m in matches if m.distance <= max_distance), key=lambda m: (m.distance, m.known.pk))


def known_image_record(*, upload: Upload, label: str, labelled_by: AbstractBaseUser | None) -> KnownImage | None:
    """Remember the human label of ``upload``'s picture; the latest label of a hash stands."""
    if not upload.phash:
        return None
    known, _ = KnownImage.objects.update_or_create(
        phash=upload.phash,
        defaults={"label": label, "upload": upload, "labelled_by": labelled_by, **_chunks(upload.phash)},
    )
    return known


def known_image_forget(*, upload: Upload) -> int:
    """Drop the entry this upload's decision created (its decision was undone)."""
    return KnownImage.objects.filter(phash=upload.phash, upload=upload).delete()[0]
