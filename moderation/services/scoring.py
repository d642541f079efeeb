"""Score an upload with the active model and route it by the current policy.

Safe to run twice for the same upload (a redelivered task): the score is unique per upload and
model version, and routing is a conditional update from ``pending`` that changes one row or none.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from moderation.classifiers import classifier_for
from moderation.imaging import ALLOWED_FORMATS, perceptual_hash
from moderation.ml.images import load_rgb
from moderation.models import KnownImage, ModelVersion, Score, Upload
from moderation.routing import Route, RoutingOutcome, route_scores
from moderation.services.display import display_prepare
from moderation.services.intake import UndecodableImage, original_decode
from moderation.services.known_images import known_image_matches
from moderation.services.model_versions import model_version_ensure_active, model_versions_shadow
from moderation.services.outcomes import outcome_send
from moderation.services.policies import policy_current
from moderation.signals import UPLOAD_DECIDED, upload_routed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringResult:
    upload_id: uuid.UUID
    status: str
    routed_now: bool


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    seconds: float


def _decode(upload: Upload, min_side: int) -> Decoded:
    """Read the stored original and decode it to RGB (:func:`original_decode` says what fails how)."""
    started = time.perf_counter()
    image = original_decode(
        upload, lambda data: load_rgb(Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS), min_side=min_side)
    )
    return Decoded(image, time.perf_counter() - started)


def score_create(*, upload: Upload, model_version: ModelVersion, decoded: Decoded | None = None) -> Score:
    """Run the model on ``upload`` (decoding it unless ``decoded`` is given) and store its score;
    returns the existing score if there is one (with ``decoded``, the first attempt's path, it is
    not looked up first: the unique constraint catches the rare redelivery that already scored)."""
    if decoded is None:
        existing = Score.objects.filter(upload=upload, model_version=model_version).first()
        if existing is not None:
            return existing
    classifier = classifier_for(model_version)
    if decoded is None:
        decoded = _decode(upload, classifier.min_decode_side)
    started = time.perf_counter()
    category_scores = classifier.predict([decoded.image])[0]
    latency_ms = (decoded.seconds + time.perf_counter() - started) * 1000
    try:
        with transaction.atomic():
            return Score.objects.create(
                upload=upload,
                model_version=model_version,
                harmful_score=max(category_scores.values()),
                category_scores=category_scores,
                latency_ms=latency_ms,
            )
    except IntegrityError:
        return Score.objects.get(upload=upload, model_version=model_version)


@dataclass(frozen=True)
class Routed:
    """Whether routing changed the upload (truthy), and whether a human will now look at it."""

    changed: bool
    for_humans: bool = False

    def __bool__(self) -> bool:
        return self.changed


def upload_route(*, upload: Upload, score: Score) -> Routed:
    """Route a pending upload by the current policy (storing the pHash the worker computed). Falsy
    if it was no longer pending."""
    policy = policy_current()
    outcome = route_scores(score.category_scores, policy.thresholds)
    known_bad = known_image_matches(phash=upload.phash, label=KnownImage.Label.HARMFUL)
    if known_bad:
        nearest = known_bad[0]
        outcome = RoutingOutcome(
            Route.REJECT,
            f"matches an image humans rejected (upload {nearest.known.upload_id}, pHash distance {nearest.distance})",
        )
    now = timezone.now()
    final = outcome.route in (Route.APPROVE, Route.REJECT)
    with transaction.atomic():
        changed = Upload.objects.filter(pk=upload.pk, status=Upload.Status.PENDING).update(
            phash=upload.phash,
            status=outcome.route.value,
            decided_by=Upload.DecidedBy.AUTO if final else "",
            status_reason=outcome.reason[:255],
            score=score,
            policy=policy,
            routed_at=now,
            decided_at=now if final else None,
            updated_at=now,
        )
        if changed != 1:
            return Routed(changed=False)
        upload.status = outcome.route.value
        return Routed(changed=True, for_humans=_announce(upload.pk))


def _announce(upload_id: uuid.UUID) -> bool:
    """Tell receivers (the review queue; webhooks, when final) that the upload was routed. Runs in
    the routing transaction. True if a receiver put it before a human (a round: queued, failed,
    or an audit sample)."""
    upload = Upload.objects.select_related("score__model_version", "policy").get(pk=upload_id)
    responses = upload_routed.send(sender=Upload, upload=upload)
    if upload.is_final:
        outcome_send(upload=upload, event=UPLOAD_DECIDED)
    return any(response is not None for _, response in responses)


def upload_mark_failed(*, upload_id: uuid.UUID, reason: str, phash: str = "") -> Routed:
    """Send a pending upload to the human queue as ``failed``, with the reason shown to moderators
    (and the pHash, when the picture decoded but the model failed)."""
    now = timezone.now()
    changes = {"phash": phash} if phash else {}
    with transaction.atomic():
        changed = Upload.objects.filter(pk=upload_id, status=Upload.Status.PENDING).update(
            status=Upload.Status.FAILED, status_reason=reason[:255], routed_at=now, updated_at=now, **changes
        )
        if changed != 1:
            return Routed(changed=False)
        return Routed(changed=True, for_humans=_announce(upload_id))


def upload_score(*, upload_id: uuid.UUID | str) -> ScoringResult:
    """Score and route one upload. Raises on transient errors (the task retries); an image that
    cannot be decoded, or one that used up its attempts, ends ``failed`` in the human queue."""
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Upload.Status.PENDING:
        return ScoringResult(upload.pk, upload.status, routed_now=False)
    Upload.objects.filter(pk=upload.pk).update(score_attempts=F("score_attempts") + 1)
    upload.score_attempts += 1
    try:
        model_version = model_version_ensure_active()
        decoded = None
        if not upload.phash:  # the first attempt: decode once for the hash and the model
            decoded = _decode(upload, classifier_for(model_version).min_decode_side)
            upload.phash = perceptual_hash(decoded.image)  # stored by the routing update
        score = score_create(upload=upload, model_version=model_version, decoded=decoded)
    except UndecodableImage as exc:
        routed = upload_mark_failed(upload_id=upload.pk, reason=f"Could not be scored: {exc}")
        return ScoringResult(upload.pk, Upload.Status.FAILED, routed_now=bool(routed))
    except Exception as exc:
        if upload.score_attempts >= settings.VIGIL_SCORE_MAX_ATTEMPTS:
            logger.exception("scoring %s failed %d times; sending it to humans", upload.pk, upload.score_attempts)
            routed = upload_mark_failed(
                upload_id=upload.pk,
                reason=f"Scoring failed {upload.score_attempts} times: {type(exc).__name__}",
                phash=upload.phash,
            )
            if routed.for_humans:
                display_prepare(upload=upload)
            return ScoringResult(upload.pk, Upload.Status.FAILED, routed_now=bool(routed))
        raise
    routed = upload_route(upload=upload, score=score)
    if not routed:
        upload.refresh_from_db(fields=["status"])
        return ScoringResult(upload.pk, upload.status, routed_now=False)
    if routed.for_humans:
        display_prepare(upload=upload)  # ready before a moderator opens it
    scores_create_shadow(upload=upload)
    return ScoringResult(upload.pk, upload.status, routed_now=True)


def scores_create_shadow(*, upload: Upload) -> list[Score]:
    """Score ``upload`` with every shadow model version too. Shadow scores never route; a shadow
    model that fails is logged and skipped, so a candidate cannot disturb production."""
    scores = []
    for shadow in model_versions_shadow():
        try:
            scores.append(score_create(upload=upload, model_version=shadow))
        except Exception:
            logger.exception("shadow model %s failed on upload %s", shadow.name, upload.pk)
    return scores


def uploads_requeue_stale(*, older_than_seconds: int) -> list[uuid.UUID]:
    """Re-enqueue uploads stuck in ``pending`` or ``fetching`` (a lost message, a broker outage at
    upload time).

    Returns the ids sent again. Touching ``updated_at`` first keeps the next sweep from sending
    the same upload while this message is still on its way."""
    from moderation.tasks import fetch_remote_upload, score_upload

    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    sent = []
    for status, task in ((Upload.Status.PENDING, score_upload), (Upload.Status.FETCHING, fetch_remote_upload)):
        ids = list(Upload.objects.filter(status=status, updated_at__lt=cutoff).values_list("pk", flat=True)[:1000])
        for upload_id in ids:
            Upload.objects.filter(pk=upload_id, status=status).update(updated_at=timezone.now())
            task.delay(str(upload_id))
        sent += ids
    return sent
