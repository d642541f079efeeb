"""Decide once: the near copies of a picture under review that wait in the queue with it.

A group is computed when the review page is shown, never stored: the open rounds of the same kind
(model unsure, or not scored) whose upload's PDQ hash is within ``VIGIL_PDQ_DISTANCE`` bits of
this one's, that the moderator could claim. It fails closed:

- only still images: an animation's or a video's first frame says nothing about the rest of it;
- only hashes of quality ``VIGIL_PDQ_MIN_QUALITY`` or more, on both sides: flat or nearly blank
  pictures collide with one another;
- never audits, second reviews or reopened rounds: each of those asks for a look of its own;
- never a copy that matched a hash list the picture under review did not match: the moderator
  sees this picture's list banners only, and a list's match asks for a look at that picture (a
  copy 31 bits from this one may be 31 bits from a listed picture this one is 62 bits from).
"""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet

from hashes.models import HashMatch, UploadHash
from hashes.selectors import pdq_near
from moderation.models import Upload
from reviews.models import ReviewRound
from reviews.selectors.queue import rounds_claimable

GROUPED_REASONS = (ReviewRound.Reason.MODEL, ReviewRound.Reason.FAILED)


def _still_image_hashes() -> QuerySet[UploadHash]:
    return UploadHash.objects.filter(
        frame=0,
        quality__gte=settings.VIGIL_PDQ_MIN_QUALITY,
        upload__kind=Upload.Kind.IMAGE,
        upload__frames=1,
    )


def round_near_copies(
    *, round_: ReviewRound, moderator: AbstractBaseUser, among: Collection[int] | None = None, now=None
) -> list[ReviewRound]:
    """The other open rounds of ``round_``'s reason whose still image is a near copy of its upload,
    claimable by ``moderator``, oldest first, at most ``VIGIL_GROUP_DECISION_MAX - 1``. Each carries
    ``copy_distance``, its PDQ bits from ``round_``'s picture. ``among`` keeps only those rounds
    (the ones a page showed, checked again before they are decided)."""
    if round_.reason not in GROUPED_REASONS:
        return []
    own = _still_image_hashes().filter(upload_id=round_.upload_id).first()
    if own is None:
        return []
    shown_lists = HashMatch.objects.filter(upload_id=round_.upload_id, hash_list__isnull=False).values("hash_list")
    flagged_otherwise = HashMatch.objects.filter(upload_id=OuterRef("upload_id")).exclude(hash_list__in=shown_lists)
    rounds = (
        rounds_claimable(moderator=moderator, now=now)
        .filter(reason=round_.reason)
        .exclude(pk=round_.pk)
        .exclude(upload_id=round_.upload_id)
        .exclude(Exists(flagged_otherwise))
    )
    if among is not None:
        rounds = rounds.filter(pk__in=list(among))
    hashes = _still_image_hashes().filter(upload_id__in=rounds.values("upload_id"))
    near = {found.row.upload_id: found.distance for found in pdq_near(hashes, own.pdq, serial=True)}
    if not near:
        return []
    cap = max(settings.VIGIL_GROUP_DECISION_MAX - 1, 0)
    members = list(rounds.filter(upload_id__in=list(near)).select_related("upload").order_by("uploaded_at", "id")[:cap])
    for member in members:
        member.copy_distance = near[member.upload_id]
    return members
