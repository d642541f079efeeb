"""Score an upload with the active model and route it by the current policy.

Safe to run twice for the same upload (a redelivered task): a worker first claims the upload's
lease (services/leases.py), so a duplicate message finds it held and does nothing; the score is
unique per upload and model version, and routing is a conditional update from ``pending`` that
changes one row or none.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from PIL import Image

from media.frames import Frame, batched, frames_to_score
from media.video import FrameSampler, sampling_interval
from moderation.classifiers import classifier_for
from moderation.imaging import ALLOWED_FORMATS, perceptual_hash
from moderation.ml.loading import Classifier
from moderation.models import KnownImage, ModelVersion, Score, Upload
from moderation.routing import Route, RoutingOutcome, route_scores
from moderation.services.display import display_prepare
from moderation.services.intake import UndecodableImage, original_decode
from moderation.services.known_images import known_image_matches
from moderation.services.leases import (
    LEASE_CLEARED,
    lease_kept_alive,
    lease_owner_name,
    upload_lease_claim,
    upload_lease_expire,
    upload_lease_release,
    uploads_lease_expired,
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


SCORING_BATCH = 8  # frames per classifier call: enough to batch, little memory for large frames


@dataclass(frozen=True)
class FramesScored:
    """The model's scores for each scored frame of one upload, and the time decoding and scoring
    took. ``times``: a video's sampled frames' times in seconds (``None`` for an image)."""

    per_frame: list[tuple[int, dict[str, float]]]
    animated: bool
    seconds: float
    times: list[float] | None = None
    covered: bool | None = None  # a video: whether the sampler scanned all of it (FrameSampler.covered)
    whys: list[str] | None = None  # a video: why each frame was sampled ("sample" or "scene")

    @property
    def category_scores(self) -> dict[str, float]:
        """Per category, the maximum over frames: a harmful picture in any frame counts."""
        categories = self.per_frame[0][1]
        return {name: max(scores[name] for _, scores in self.per_frame) for name in categories}

    @property
    def worst_frame(self) -> int:
        """The index of the frame with the highest score in any category (the first on a tie)."""
        return max(self.per_frame, key=lambda item: max(item[1].values()))[0]

    @property
    def frames_record(self) -> list[dict]:
        """What ``Score.frames`` stores: empty for a still image."""
        if not self.animated:
            return []
        if self.times is not None:
            whys = self.whys or ["sample"] * len(self.times)
            return [
                {"index": index, "time": time, "why": why, "scores": scores}
                for (index, scores), time, why in zip(self.per_frame, self.times, whys, strict=True)
            ]
        return [{"index": index, "scores": scores} for index, scores in self.per_frame]


def _decoded_frames(data: bytes, min_side: int) -> Iterator[Frame]:
    """The frames to score, decoded lazily; any decoding error is :class:`UndecodableImage` (the
    classifier's errors, raised between frames, are not: they are worth a retry)."""
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        frames = frames_to_score(image, cap=settings.VIGIL_MAX_SCORED_FRAMES, min_side=min_side)
        with image:
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                yield frame
    except Exception as exc:
        raise UndecodableImage(f"the stored original cannot be decoded ({type(exc).__name__})") from None


class _VideoFrames:
    """A video's sampled frames (:class:`media.video.FrameSampler`, scanning when the video's
    pixels fit ``VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS``), numbered in order, with each one's time and
    why it was sampled. A decoding error is :class:`UndecodableImage`, as for images."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.times: list[float] = []
        self.whys: list[str] = []
        self.sampler: FrameSampler | None = None

    def __iter__(self) -> Iterator[Frame]:
        try:
            self.sampler = FrameSampler(io.BytesIO(self.data), scan_megapixels=settings.VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS)
            for index, sampled in enumerate(self.sampler):
                self.times.append(sampled.time)
                self.whys.append(sampled.why)
                yield Frame(index, sampled.image)
        except Exception as exc:
            raise UndecodableImage(f"the stored video cannot be decoded ({type(exc).__name__}: {exc})") from None

    @property
    def covered(self) -> bool:
        return self.sampler is not None and self.sampler.covered


def _rejecting(scores: dict[str, float], thresholds: dict[str, dict[str, float]]) -> bool:
    return any(name in thresholds and score >= thresholds[name]["reject_from"] for name, score in scores.items())


def frames_score(
    *,
    upload: Upload,
    classifier: Classifier,
    on_first_frame: Callable[[Image.Image], None] | None = None,
    stop_at: dict[str, dict[str, float]] | None = None,
) -> FramesScored:
    """Score every frame :func:`media.frames.frames_to_score` picks (a video's: those
    :func:`media.video.sample_frames` picks), in batches. ``on_first_frame`` sees frame 0 before
    it is scored (the pHash is computed from it). ``stop_at`` (a policy's thresholds): a video
    stops after the batch where a frame reaches a category's ``reject_from`` (it will be rejected
    whatever the rest shows)."""
    started = time.perf_counter()
    data = original_decode(upload, lambda stored: stored)  # a missing file: UndecodableImage
    video = upload.kind == Upload.Kind.VIDEO
    frames = _VideoFrames(data) if video else _decoded_frames(data, classifier.min_decode_side)
    per_frame: list[tuple[int, dict[str, float]]] = []
    for batch in batched(frames, SCORING_BATCH):
        if not per_frame and on_first_frame is not None:
            on_first_frame(batch[0].image)
        scores = classifier.predict([f.image for f in batch])
        per_frame += zip((frame.index for frame in batch), scores, strict=True)
        if video and stop_at and any(_rejecting(s, stop_at) for s in scores):
            break
    if not per_frame:
        raise UndecodableImage("the stored video has no frame to score")
    seconds = time.perf_counter() - started
    if not video:
        return FramesScored(per_frame, upload.frames > 1, seconds)
    kept = len(per_frame)
    return FramesScored(per_frame, True, seconds, frames.times[:kept], frames.covered, frames.whys[:kept])


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


def upload_route(*, upload: Upload, score: Score) -> Routed:
    """Route a pending upload by the current policy (storing the pHash the worker computed). Falsy
    if it was no longer pending."""
    policy = policy_current()
    outcome = _sparse_video_to_humans(upload, score, route_scores(score.category_scores, policy.thresholds))
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
    try:
        with lease_kept_alive(upload_id=upload.pk, owner=owner):
            return _score_and_route(upload)
    finally:
        upload_lease_release(upload_id=upload.pk, owner=owner)  # nothing left to release once routed


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
    model that fails is logged and skipped, so a candidate cannot disturb production. Receivers
    hear of the scores (:func:`shadow_scores_announce`: the review queue's disagreement key)."""
    scores = []
    for shadow in model_versions_shadow():
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
