"""Opening review rounds: when the model sends an upload to humans, and when QC samples an
automatic decision for audit."""

from __future__ import annotations

import hashlib

from django.db.models import Max

from moderation.models import Upload
from reviews.models import QueueSettings, ReviewRound


def queue_keys(upload: Upload) -> dict:
    """The sort keys a round carries: the harmful score, the top category and how uncertain it is.

    Uncertainty is the distance of the top category's score from the middle of its review band,
    in half-band widths (0 at the middle, 1 at either edge). A failed upload has no score and
    counts as most uncertain.
    """
    keys = {"source_id": upload.submitter_id, "uploaded_at": upload.created_at}
    score = upload.score
    if score is None:
        return {**keys, "harmful_score": None, "category": "", "uncertainty": 0.0}
    category, value = max(score.category_scores.items(), key=lambda item: item[1])
    bounds = (upload.policy.thresholds if upload.policy else {}).get(category)
    if bounds:
        middle = (bounds["approve_below"] + bounds["reject_from"]) / 2
        half_width = max((bounds["reject_from"] - bounds["approve_below"]) / 2, 1e-6)
    else:
        middle, half_width = 0.5, 0.5
    return {
        **keys,
        "harmful_score": score.harmful_score,
        "category": category,
        "uncertainty": abs(value - middle) / half_width,
    }


def round_open(
    *, upload: Upload, reason: str, excluded_moderator=None, reopened_from: ReviewRound | None = None, **extra
) -> ReviewRound:
    """Open the next round for ``upload``. The caller holds the transaction; the database refuses a
    second open round for the same upload (``one_open_round_per_upload``)."""
    number = (upload.review_rounds.aggregate(n=Max("number"))["n"] or 0) + 1
    return ReviewRound.objects.create(
        upload=upload,
        number=number,
        reason=reason,
        excluded_moderator=excluded_moderator,
        reopened_from=reopened_from,
        **queue_keys(upload),
        **extra,
    )


def audit_sampled(upload: Upload, rate: float) -> bool:
    """Whether this upload falls in the audit sample. Decided by a hash of its id, so the choice is
    uniform, reproducible, and the same on every redelivery of the routing message."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(b"vigil-audit:" + upload.pk.bytes).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def rounds_open_for_routed(*, upload: Upload) -> ReviewRound | None:
    """Put a freshly routed upload in front of humans when it needs them: always when the model
    was unsure or failed, and for a configurable sample of automatic approvals and rejections."""
    if upload.review_rounds.filter(status=ReviewRound.Status.OPEN).exists():
        return None
    if upload.status == Upload.Status.QUEUED:
        return round_open(upload=upload, reason=ReviewRound.Reason.MODEL)
    if upload.status == Upload.Status.FAILED:
        return round_open(upload=upload, reason=ReviewRound.Reason.FAILED)
    settings = QueueSettings.load()
    rate = settings.audit_approved_rate if upload.status == Upload.Status.APPROVED else settings.audit_rejected_rate
    if upload.decided_by == Upload.DecidedBy.AUTO and audit_sampled(upload, rate):
        return round_open(upload=upload, reason=ReviewRound.Reason.AUDIT)
    return None
