"""Opening review rounds: when the model sends an upload to humans, and when QC samples an
automatic decision for audit."""

from __future__ import annotations

import hashlib

from django.db.models import Max

from moderation.models import Score, Upload
from reviews.disagreement import disagreement
from reviews.models import QueueSettings, ReviewRound


def models_disagreement(upload: Upload) -> float:
    """How much the other models that scored ``upload`` (shadow candidates: every score but the
    routing one) disagree with the one that routed it, under the policy that routed it; the largest
    over those models (:mod:`reviews.disagreement`). 0 without a routing score or another score."""
    score = upload.score
    if score is None:
        return 0.0
    thresholds = upload.policy.thresholds if upload.policy else {}
    others = Score.objects.filter(upload_id=upload.pk).exclude(pk=score.pk).values_list("category_scores", flat=True)
    return max((disagreement(score.category_scores, other, thresholds) for other in others), default=0.0)


def queue_keys(upload: Upload) -> dict:
    """The sort keys a round carries: the harmful score, the top category, how uncertain it is and
    how much the models that scored it disagree.

    Uncertainty is the distance of the top category's score from the middle of its review band,
    in half-band widths (0 at the middle, 1 at either edge). A failed upload has no score and
    counts as most uncertain. Disagreement: :func:`models_disagreement` (0 until a shadow model
    scored the upload; :func:`rounds_rekey_disagreement` updates the open round then).
    """
    keys = {"source_id": upload.submitter_id, "uploaded_at": upload.created_at}
    score = upload.score
    if score is None:
        return {**keys, "harmful_score": None, "category": "", "uncertainty": 0.0, "disagreement": 0.0}
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
        "disagreement": models_disagreement(upload),
    }


def rounds_rekey_disagreement(*, upload_id) -> int:
    """Recompute the disagreement key of the upload's open round, once a shadow model scored it
    (the round opened when the active model routed it, before the shadow models ran). Returns the
    rounds updated (0 when none is open: already decided, or never queued)."""
    upload = Upload.objects.select_related("score", "policy").get(pk=upload_id)
    return ReviewRound.objects.filter(upload_id=upload_id, status=ReviewRound.Status.OPEN).update(
        disagreement=models_disagreement(upload)
    )


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
