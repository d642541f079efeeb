"""Decode an upload's frames and run the model on them: one upload's frames (a still image, an
animation's sampled frames, a video's), or the first frames of a batch of still images in one
model call (:func:`stills_score`). No routing and no database writes here: the scoring service
(``moderation/services/scoring.py``) stores and routes what this returns.

Why batch: the networks run several images in one call at a lower cost each (docs/benchmarks.md,
"Batched, quantized scoring"). A batch never lets one image harm the others: each is decoded on
its own (one that cannot be decoded is reported alone), and when the batched model call fails,
each image is scored alone so that the failure stays with the image that caused it.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from PIL import Image

from hashes.pdq import PdqHash, pdq_compute
from media.frames import Frame, batched, frames_to_score
from media.video import FrameSampler
from moderation.imaging import ALLOWED_FORMATS, perceptual_hash
from moderation.ml.loading import Classifier
from moderation.models import Upload
from moderation.services.intake import UndecodableImage, original_decode

logger = logging.getLogger(__name__)

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
    hashes: list[tuple[int, PdqHash]] = field(default_factory=list)  # each scored frame's PDQ hash
    unhashed: int = 0  # scored frames whose PDQ hash could not be computed (never auto-approved)

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


def frame_hash(frame: Frame) -> PdqHash | None:
    """The PDQ hash of a decoded frame, or None if the hasher failed on it (logged: routing then
    leaves the upload to a human rather than approve a picture no hash list was checked for)."""
    try:
        return pdq_compute(frame.image)
    except Exception:
        logger.exception("the PDQ hash of frame %d could not be computed", frame.index)
        return None


class _FrameHashes:
    """The PDQ hashes of the frames scored so far (and how many could not be hashed)."""

    def __init__(self) -> None:
        self.hashes: list[tuple[int, PdqHash]] = []
        self.unhashed = 0

    def add(self, frame: Frame) -> None:
        hashed = frame_hash(frame)
        if hashed is None:
            self.unhashed += 1
        else:
            self.hashes.append((frame.index, hashed))


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
    it is scored (the pHash is computed from it); every scored frame's PDQ hash is computed from
    the same decode. ``stop_at`` (a policy's thresholds): a video stops after the batch where a
    frame reaches a category's ``reject_from`` (it will be rejected whatever the rest shows)."""
    started = time.perf_counter()
    data = original_decode(upload, lambda stored: stored)  # a missing file: UndecodableImage
    video = upload.kind == Upload.Kind.VIDEO
    frames = _VideoFrames(data) if video else _decoded_frames(data, classifier.min_decode_side)
    per_frame: list[tuple[int, dict[str, float]]] = []
    hashes = _FrameHashes()
    for batch in batched(frames, SCORING_BATCH):
        if not per_frame and on_first_frame is not None:
            on_first_frame(batch[0].image)
        for frame in batch:
            hashes.add(frame)
        scores = classifier.predict([f.image for f in batch])
        per_frame += zip((frame.index for frame in batch), scores, strict=True)
        if video and stop_at and any(_rejecting(s, stop_at) for s in scores):
            break
    if not per_frame:
        raise UndecodableImage("the stored video has no frame to score")
    seconds = time.perf_counter() - started
    if not video:
        return FramesScored(per_frame, upload.frames > 1, seconds, hashes=hashes.hashes, unhashed=hashes.unhashed)
    kept = len(per_frame)
    return FramesScored(
        per_frame,
        True,
        seconds,
        frames.times[:kept],
        frames.covered,
        frames.whys[:kept],
        hashes=hashes.hashes,
        unhashed=hashes.unhashed,
    )


@dataclass(frozen=True)
class StillScored:
    """One still image of a batch: its scores (:class:`FramesScored`) or why it has none.

    ``undecodable``: the stored file is missing or cannot be decoded (it goes to humans as
    failed); ``error``: anything else (storage unreachable, the model failed on it alone), worth a
    retry on its own."""

    upload: Upload
    scored: FramesScored | None = None
    undecodable: UndecodableImage | None = None
    error: Exception | None = None


def stills_score(*, uploads: list[Upload], classifier: Classifier) -> list[StillScored]:
    """Score the still images ``uploads`` in one model call: each is read and decoded on its own
    (its pHash computed from the decode, set on ``upload.phash``, and its PDQ hash, returned with
    its scores), then the decoded pictures go
    through the classifier together. Each result's ``seconds`` is its own decode plus the batch's
    model time (what the upload waited for)."""
    results: dict[uuid.UUID, StillScored] = {}
    decoded: list[tuple[Upload, Image.Image, float]] = []
    hashes: dict[uuid.UUID, _FrameHashes] = {}
    for upload in uploads:
        started = time.perf_counter()
        try:
            data = original_decode(upload, lambda stored: stored)
            frame = next(_decoded_frames(data, classifier.min_decode_side))
            image = frame.image
            upload.phash = perceptual_hash(image)
            hashes[upload.pk] = _FrameHashes()
            hashes[upload.pk].add(frame)
        except UndecodableImage as exc:
            results[upload.pk] = StillScored(upload, undecodable=exc)
            continue
        except Exception as exc:  # a storage error: this upload alone retries
            results[upload.pk] = StillScored(upload, error=exc)
            continue
        decoded.append((upload, image, time.perf_counter() - started))
    for (upload, _, decode_seconds), outcome in zip(decoded, _predict_isolated(classifier, decoded), strict=True):
        if isinstance(outcome, Exception):
            results[upload.pk] = StillScored(upload, error=outcome)
        else:
            scores, model_seconds = outcome
            hashed = hashes[upload.pk]
            scored = FramesScored(
                [(0, scores)], False, decode_seconds + model_seconds, hashes=hashed.hashes, unhashed=hashed.unhashed
            )
            results[upload.pk] = StillScored(upload, scored)
    return [results[upload.pk] for upload in uploads]


def _predict_isolated(
    classifier: Classifier, decoded: list[tuple[Upload, Image.Image, float]]
) -> list[tuple[dict[str, float], float] | Exception]:
    """Each picture's scores and the model time they took: one call for all of them; if that call
    fails, one call each, so only the picture that fails the model is left without scores."""
    if not decoded:
        return []
    started = time.perf_counter()
    try:
        scores = classifier.predict([image for _, image, _ in decoded])
        seconds = time.perf_counter() - started
        return [(row, seconds) for row in scores]
    except Exception:
        logger.exception("scoring a batch of %d images failed; scoring each alone", len(decoded))
    outcomes: list[tuple[dict[str, float], float] | Exception] = []
    for upload, image, _ in decoded:
        started = time.perf_counter()
        try:
            outcomes.append((classifier.predict([image])[0], time.perf_counter() - started))
        except Exception as exc:
            logger.warning("the model failed on upload %s (%s)", upload.pk, type(exc).__name__)
            outcomes.append(exc)
    return outcomes
