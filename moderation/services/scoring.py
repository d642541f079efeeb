"""Score an upload with the active model and route it by the current policy.

Safe to run twice for the same upload (a redelivered task): a worker first claims the upload's
lease (services/leases.py), so a duplicate message finds it held and does nothing; the score is
unique per upload and model version, and routing is a conditional update from ``pending`` that
changes one row or none.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from PIL import Image

from hashes.services.matching import (
    hash_matches_record,
    lists_outcome,
    upload_hashes_store,
    upload_hashes_stored,
    upload_list_matches,
)
from media.video import sampling_interval
from moderation.classifiers import classifier_for
from moderation.imaging import perceptual_hash
from moderation.models import KnownImage, ModelVersion, Score, ThresholdPolicy, Upload
from moderation.routing import Route, RoutingOutcome, route_scores
from moderation.services.display import display_prepare, displays_catch_up
from moderation.services.frame_scoring import FramesScored, frames_score, stills_score
from moderation.services.intake import UndecodableImage, scoring_enqueue
from moderation.services.known_images import known_image_matches
from moderation.services.leases import (
    LEASE_CLEARED,
    lease_owner_name,
    leases_kept_alive,
    upload_lease_claim,
    upload_lease_expire,
    uploads_lease_claim_batch,
    uploads_lease_expired,
    uploads_lease_release,
)
from moderation.services.model_versions import model_version_ensure_active, model_versions_shadow
from moderation.services.outcomes import outcome_send
from moderation.services.policies import policy_current
from moderation.signals import UPLOAD_DECIDED, upload_routed, upload_shadow_scored

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringResult:
    upload_id: uuid.UUID
    status: str
    routed_now: bool


def score_create(*, upload: Upload, model_version: ModelVersion, scored: FramesScored | None = None) -> Score:
    """Run the model on ``upload``'s frames (unless ``scored`` is given) and store its score;
    returns the existing score if there is one (with ``scored``, the first attempt's path, it is
    not looked up first: the unique constraint catches the rare redelivery that already scored)."""
    if scored is None:
        existing = Score.objects.filter(upload=upload, model_version=model_version).first()
        if existing is not None:
            return existing
        scored = frames_score(upload=upload, classifier=classifier_for(model_version))
    category_scores = scored.category_scores
    try:
        with transaction.atomic():
            return Score.objects.create(
                upload=upload,
                model_version=model_version,
                harmful_score=max(category_scores.values()),
                category_scores=category_scores,
                latency_ms=scored.seconds * 1000,
                worst_frame=scored.worst_frame,
                frames=scored.frames_record,
                covered=scored.covered,
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


def _sparse_video_to_humans(upload: Upload, score: Score, outcome: RoutingOutcome) -> RoutingOutcome:
    """Fail closed on videos the sampler did not look at whole. A scanned video (every frame
    decoded, a scene that changed scored: ``Score.covered``) may be auto-approved; otherwise only
    the regular samples and keyframes were looked at, so an insert shorter than the interval that
    does not start on a keyframe could go unseen, and a video sampled more sparsely than
    ``VIGIL_VIDEO_APPROVE_MAX_INTERVAL`` is never auto-approved (it may still be auto-rejected)."""
    if upload.kind != Upload.Kind.VIDEO or outcome.route != Route.APPROVE:
        return outcome
    if upload.duration_seconds is None:
        return RoutingOutcome(Route.QUEUE, "video of unknown length: a human decides")
    if score.covered:
        return outcome
    interval = sampling_interval(upload.duration_seconds)
    if interval <= settings.VIGIL_VIDEO_APPROVE_MAX_INTERVAL:
        return outcome
    return RoutingOutcome(
        Route.QUEUE,
        f"video sampled every {interval:.1f} s and not scanned whole: a shorter insert could be missed, "
        "so a human decides",
    )


def upload_route(
    *, upload: Upload, score: Score, policy: ThresholdPolicy | None = None, scored: FramesScored | None = None
) -> Routed:
    """Route a pending upload by the current policy, the hash lists and the images humans rejected
    (storing the pHash and the frames' PDQ hashes the worker computed: ``scored``, or what an
    earlier attempt stored). Falsy if it was no longer pending."""
    policy = policy or policy_current()
    outcome = _sparse_video_to_humans(upload, score, route_scores(score.category_scores, policy.thresholds))
    hashes = scored.hashes if scored is not None else upload_hashes_stored(upload_id=upload.pk)
    matches = upload_list_matches(hashes=hashes)
    outcome = lists_outcome(outcome, matches, unhashed=scored.unhashed if scored is not None else 0)
    known_bad = known_image_matches(phash=upload.phash, label=KnownImage.Label.HARMFUL)
    if known_bad and outcome.route != Route.REJECT:
        nearest = known_bad[0]
        outcome = RoutingOutcome(
            Route.REJECT,
            f"matches an image humans rejected (upload {nearest.known.upload_id}, pHash distance {nearest.distance})",
        )
    now = timezone.now()
    final = outcome.route in (Route.APPROVE, Route.REJECT)
    with transaction.atomic():
        sampled = {"frames": len(score.frames)} if upload.kind == Upload.Kind.VIDEO and score.frames else {}
        changed = Upload.objects.filter(
            pk=upload.pk, status=Upload.Status.PENDING
        ).update(
            **sampled,  # a video: the frames actually sampled (scene changes add, an early stop removes)
            phash=upload.phash,
            status=outcome.route.value,
            decided_by=Upload.DecidedBy.AUTO if final else "",
            status_reason=outcome.reason[:255],
            score=score,
            policy=policy,
            routed_at=now,
            decided_at=now if final else None,
            updated_at=now,
            **LEASE_CLEARED,
        )
        if changed != 1:
            return Routed(changed=False)
        if scored is not None:
            upload_hashes_store(upload_id=upload.pk, hashes=scored.hashes)
        hash_matches_record(upload_id=upload.pk, matches=matches)
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
            status=Upload.Status.FAILED,
            status_reason=reason[:255],
            routed_at=now,
            updated_at=now,
            **LEASE_CLEARED,
            **changes,
        )
        if changed != 1:
            return Routed(changed=False)
        return Routed(changed=True, for_humans=_announce(upload_id))


def interrupted_reason(times: int) -> str:
    return (
        f"Scoring stopped its worker {times} times (killed mid-task; the file may crash the decoder): "
        "it is not decoded again, a human decides from the original"
    )


def upload_score(*, upload_id: uuid.UUID | str, worker: str | None = None) -> ScoringResult:
    """Score and route one upload. Raises on transient errors (the task retries); an image that
    cannot be decoded, or one that used up its attempts, ends ``failed`` in the human queue.

    Holds the upload's lease while it works (``worker``: the Celery node name, for the record);
    an upload whose lease another worker holds alive is left to it. An upload whose earlier
    attempts were interrupted ``VIGIL_SCORE_MAX_INTERRUPTIONS`` times (each one a worker that
    died on it) is not decoded again: it goes to humans as ``failed`` with the reason."""
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Upload.Status.PENDING:
        return ScoringResult(upload.pk, upload.status, routed_now=False)
    owner = lease_owner_name(worker)
    if not upload_lease_claim(upload_id=upload.pk, status=Upload.Status.PENDING, owner=owner, count_attempt=True):
        upload.refresh_from_db(fields=["status"])  # another worker has it in hand, or it moved on
        return ScoringResult(upload.pk, upload.status, routed_now=False)
    upload.refresh_from_db(fields=["score_attempts", "lease_interruptions"])
    if upload.lease_interruptions >= settings.VIGIL_SCORE_MAX_INTERRUPTIONS:
        logger.error(
            "upload %s interrupted scoring %d times; sending it to humans", upload.pk, upload.lease_interruptions
        )
        # No display derivative: making one decodes the file, which is what kills workers.
        routed = upload_mark_failed(upload_id=upload.pk, reason=interrupted_reason(upload.lease_interruptions))
        return ScoringResult(upload.pk, Upload.Status.FAILED, routed_now=bool(routed))
    companions = _batch_companions(upload, owner)
    leased = [upload.pk, *(companion.pk for companion in companions)]
    try:
        with leases_kept_alive(upload_ids=leased, owner=owner):
            if companions:
                return _batch_score_and_route(upload, companions)
            result = _score_and_route(upload)
        # Nothing else waits to be scored: one derivative a batch put off (as much time as a queued
        # upload's own derivative took before batching, so an upload arriving now waits no longer).
        displays_catch_up(limit=1)
        return result
    finally:
        uploads_lease_release(upload_ids=leased, owner=owner)  # nothing left to release once routed
        if companions:
            _resend_unrouted(companions)


def _batch_companions(upload: Upload, owner: str) -> list[Upload]:
    """Other pending still images to score in one model call with ``upload`` (leased to ``owner``),
    up to ``VIGIL_SCORING_BATCH_SIZE`` in all: whatever is waiting now, never a wait for more, so
    a lone upload is scored at once and batches grow only with the backlog. Only a first attempt
    at a still image batches (a retried or interrupted upload is scored alone)."""
    size = settings.VIGIL_SCORING_BATCH_SIZE
    first_attempt = upload.score_attempts == 1 and upload.lease_interruptions == 0 and not upload.phash
    if size <= 1 or not first_attempt or upload.kind != Upload.Kind.IMAGE or upload.frames > 1:
        return []
    return uploads_lease_claim_batch(owner=owner, limit=size - 1, exclude=upload.pk)


def _resend_unrouted(companions: list[Upload]) -> None:
    """Companions a batch left pending (the model or the database failed on them) are sent again
    as tasks of their own, after a short pause: their own messages may already have been taken
    (and found them leased), and a retried upload is scored alone."""
    left = Upload.objects.filter(
        pk__in=[companion.pk for companion in companions], status=Upload.Status.PENDING, lease_owner=""
    ).values_list("pk", flat=True)
    for upload_id in left:
        logger.warning("upload %s was not routed in its batch; sending it again to be scored alone", upload_id)
        scoring_enqueue(upload_id, countdown=RESEND_AFTER_SECONDS)


RESEND_AFTER_SECONDS = 2


def _score_and_route(upload: Upload) -> ScoringResult:
    try:
        model_version = model_version_ensure_active()
        scored = None
        if not upload.phash:  # the first attempt: decode once for the hash and the model

            def hash_first_frame(image: Image.Image) -> None:
                upload.phash = perceptual_hash(image)  # stored by the routing update (or the failure's)

            scored = frames_score(
                upload=upload,
                classifier=classifier_for(model_version),
                on_first_frame=hash_first_frame,
                stop_at=policy_current().thresholds,
            )
        score = score_create(upload=upload, model_version=model_version, scored=scored)
    except UndecodableImage as exc:
        return _undecodable(upload, exc)
    except Exception as exc:
        return _attempt_failed(upload, exc)
    return _route_and_follow(upload, score, scored=scored)


def _batch_score_and_route(upload: Upload, companions: list[Upload]) -> ScoringResult:
    """Score ``upload`` and its ``companions`` (still images, first attempts) in one model call,
    then store and route each on its own. One that fails stays with itself: an undecodable file
    goes to humans as failed; any other error leaves a companion pending (sent again alone by
    :func:`_resend_unrouted`) and, for ``upload``, is raised once the others are routed (its task
    retries)."""
    model_version = model_version_ensure_active()
    classifier = classifier_for(model_version)
    policy, shadows = policy_current(), model_versions_shadow()  # once for the batch
    results: dict[uuid.UUID, ScoringResult] = {}
    own_error: Exception | None = None
    for still in stills_score(uploads=[upload, *companions], classifier=classifier):
        member = still.upload
        try:
            if still.undecodable is not None:
                results[member.pk] = _undecodable(member, still.undecodable)
                continue
            try:
                if still.error is not None:
                    raise still.error
                score = score_create(upload=member, model_version=model_version, scored=still.scored)
            except Exception as exc:
                results[member.pk] = _attempt_failed(member, exc)
                continue
            # Uploads are waiting to be scored: their routing comes before display derivatives,
            # made once the backlog is gone (displays_catch_up) or on first view.
            results[member.pk] = _route_and_follow(
                member, score, policy=policy, shadows=shadows, display=False, scored=still.scored
            )
        except Exception as exc:
            if member.pk == upload.pk:
                own_error = exc
            else:
                logger.warning("upload %s failed in its batch (%s: %s)", member.pk, type(exc).__name__, exc)
    if own_error is not None:
        raise own_error
    return results[upload.pk]


def _undecodable(upload: Upload, exc: UndecodableImage) -> ScoringResult:
    routed = upload_mark_failed(upload_id=upload.pk, reason=f"Could not be scored: {exc}")
    return ScoringResult(upload.pk, Upload.Status.FAILED, routed_now=bool(routed))


def _attempt_failed(upload: Upload, exc: Exception) -> ScoringResult:
    """A transient failure: raised again (a retry) until the upload has used its attempts, then it
    goes to humans as failed."""
    if upload.score_attempts < settings.VIGIL_SCORE_MAX_ATTEMPTS:
        raise exc
    logger.error("scoring %s failed %d times; sending it to humans", upload.pk, upload.score_attempts, exc_info=exc)
    routed = upload_mark_failed(
        upload_id=upload.pk,
        reason=f"Scoring failed {upload.score_attempts} times: {type(exc).__name__}",
        phash=upload.phash,
    )
    if routed.for_humans:
        display_prepare(upload=upload)
    return ScoringResult(upload.pk, Upload.Status.FAILED, routed_now=bool(routed))


def _route_and_follow(
    upload: Upload,
    score: Score,
    *,
    policy: ThresholdPolicy | None = None,
    shadows: list[ModelVersion] | None = None,
    display: bool = True,
    scored: FramesScored | None = None,
) -> ScoringResult:
    """Route a scored upload; then its display derivative (when humans will look, unless
    ``display`` is false) and shadow scores."""
    routed = upload_route(upload=upload, score=score, policy=policy, scored=scored)
    if not routed:
        upload.refresh_from_db(fields=["status"])
        return ScoringResult(upload.pk, upload.status, routed_now=False)
    if routed.for_humans and display:
        display_prepare(upload=upload)  # ready before a moderator opens it
    scores_create_shadow(upload=upload, shadows=shadows)
    return ScoringResult(upload.pk, upload.status, routed_now=True)


def scores_create_shadow(*, upload: Upload, shadows: list[ModelVersion] | None = None) -> list[Score]:
    """Score ``upload`` with every shadow model version too. Shadow scores never route; a shadow
    model that fails is logged and skipped, so a candidate cannot disturb production. Receivers
    hear of the scores (:func:`shadow_scores_announce`: the review queue's disagreement key)."""
    scores = []
    for shadow in model_versions_shadow() if shadows is None else shadows:
        try:
            scores.append(score_create(upload=upload, model_version=shadow))
        except Exception:
            logger.exception("shadow model %s failed on upload %s", shadow.name, upload.pk)
    shadow_scores_announce(upload=upload, scores=scores)
    return scores


def shadow_scores_announce(*, upload: Upload, scores: list[Score]) -> None:
    """Send ``upload_shadow_scored`` for the shadow scores just stored (none: nothing is sent). A
    receiver that fails is logged, never raised."""
    if not scores:
        return
    for receiver, response in upload_shadow_scored.send_robust(sender=Upload, upload=upload, scores=scores):
        if isinstance(response, Exception):
            logger.error(
                "upload %s: a receiver of its shadow scores failed (%s)",
                upload.pk,
                receiver,
                exc_info=(type(response), response, response.__traceback__),
            )


OVERTAKEN_CANDIDATES = 200  # the oldest idle pending uploads looked at each sweep


def uploads_overtaken() -> list[uuid.UUID]:
    """Pending uploads no worker has started on, idle for two lease periods, although an upload
    submitted after they became pending was routed at least a lease period ago. The queues are
    first in, first out, so their message is gone (a worker killed between taking it from the
    broker and claiming the upload: kombu's filesystem transport deletes it on fetch, Redis holds
    it back for an hour). In a plain backlog the older uploads are ahead of the newer ones, so
    nothing is sent twice; where it is (an upload held in a busy worker's prefetch), the copy finds
    the upload routed or leased and does nothing."""
    lease = timezone.timedelta(seconds=settings.VIGIL_SCORING_LEASE_SECONDS)
    now = timezone.now()
    routed_after = Upload.objects.filter(
        created_at__gt=OuterRef("updated_at"), routed_at__isnull=False, routed_at__lt=now - lease
    )
    idle = (
        Upload.objects.filter(
            status=Upload.Status.PENDING, lease_owner="", score_attempts=0, updated_at__lt=now - 2 * lease
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:OVERTAKEN_CANDIDATES]
    )
    return list(Upload.objects.filter(pk__in=list(idle)).filter(Exists(routed_after)).values_list("pk", flat=True))


def uploads_requeue_stale(*, older_than_seconds: int) -> list[uuid.UUID]:
    """Re-enqueue uploads stuck in ``pending`` or ``fetching``. Two kinds:

    - *interrupted*: a worker started on it and stopped renewing its lease (it died mid-task):
      sent again at once, whatever its age (the lease's expiry, ``VIGIL_SCORING_LEASE_SECONDS``,
      is the wait), its interruption counted;
    - *overtaken* (:func:`uploads_overtaken`): never started although uploads that became pending
      after it have been scored: its message was lost between the broker and the worker's claim
      (a worker killed in that instant); sent again at once;
    - *never started* (a message lost before any worker began, a broker outage at upload time):
      sent again once idle for ``older_than_seconds``, so a long queue is not flooded with copies.

    Returns the ids sent again. Each one's ``updated_at`` is touched first (and an interrupted
    one's lease cleared), so the next sweep leaves it alone for ``older_than_seconds`` while the
    message is on its way; a duplicate message finds the lease taken and does nothing."""
    from moderation.tasks import fetch_remote_upload, score_upload

    statuses = (Upload.Status.PENDING, Upload.Status.FETCHING)
    tasks = {Upload.Status.PENDING: score_upload, Upload.Status.FETCHING: fetch_remote_upload}
    sent = []
    for upload_id in uploads_lease_expired(statuses=statuses):
        if upload_lease_expire(upload_id=upload_id, statuses=statuses):
            status = Upload.objects.values_list("status", flat=True).get(pk=upload_id)
            if task := tasks.get(status):
                logger.warning("upload %s: its worker stopped renewing the lease; sending it again", upload_id)
                task.delay(str(upload_id))
                sent.append(upload_id)
    for upload_id in uploads_overtaken():
        if Upload.objects.filter(pk=upload_id, status=Upload.Status.PENDING, lease_owner="").update(
            updated_at=timezone.now()
        ):
            logger.warning("upload %s: uploads sent after it were scored first; sending it again", upload_id)
            score_upload.delay(str(upload_id))
            sent.append(upload_id)
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    for status, task in tasks.items():
        ids = list(
            Upload.objects.filter(status=status, lease_owner="", updated_at__lt=cutoff).values_list("pk", flat=True)[
                :1000
            ]
        )
        for upload_id in ids:
            if Upload.objects.filter(pk=upload_id, status=status, lease_owner="").update(updated_at=timezone.now()):
                task.delay(str(upload_id))
                sent.append(upload_id)
    return sent
