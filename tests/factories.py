"""Factories for records, built through the services so they hold the same invariants."""

from __future__ import annotations

import io
import itertools

from django.contrib.auth.models import AbstractUser

from accounts.roles import Role
from accounts.services import user_create
from moderation.models import Upload
from moderation.services.intake import upload_create
from tests.images import solid

_counter = itertools.count(1)


def make_user(
    role: Role = Role.UPLOADER, username: str | None = None, password: str = "pw-for-tests-1"
) -> AbstractUser:
    return user_create(username=username or f"{role.value}{next(_counter)}", role=role, password=password)


def make_upload(submitter: AbstractUser | None = None, data: bytes | None = None, **kwargs) -> Upload:
    upload, _ = upload_create(
        submitter=submitter or make_user(),
        file=io.BytesIO(data if data is not None else solid(color=(next(_counter) % 255, 80, 160))),
        **kwargs,
    )
    return upload


def with_phash(upload: Upload) -> Upload:
    """Give the upload its perceptual hash as the scoring worker does (from its decoded original)."""
    from PIL import Image

    from media.frames import frames_to_score
    from moderation.imaging import perceptual_hash
    from moderation.services.intake import original_decode

    def first_frame(data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as image:
            return next(frames_to_score(image, cap=1, min_side=256)).image

    if not upload.phash:
        upload.phash = perceptual_hash(original_decode(upload, first_frame))
        Upload.objects.filter(pk=upload.pk).update(phash=upload.phash)
    return upload


def make_round(upload: Upload | None = None, *, reason: str = "model", score: float | None = None, **kwargs):
    """Put an upload in the human queue the way routing does: status queued (or failed) and an
    open review round. ``score`` gives it a harmful score without running a model."""
    from moderation.models import Score
    from moderation.services.model_versions import model_version_ensure_active
    from moderation.services.policies import policy_current
    from reviews.services.rounds import round_open

    upload = with_phash(upload or make_upload())
    changes = {
        "status": Upload.Status.FAILED if reason == "failed" else Upload.Status.QUEUED,
        "policy": policy_current(),
    }
    if score is not None:
        changes["score"] = Score.objects.create(
            upload=upload,
            model_version=model_version_ensure_active(),
            harmful_score=score,
            category_scores={"weapon": score},
            latency_ms=1.0,
        )
    Upload.objects.filter(pk=upload.pk).update(**changes)
    upload.refresh_from_db()
    return round_open(upload=upload, reason=reason, **kwargs)


def route_with(upload: Upload, category_scores: dict[str, float]) -> Upload:
    """Route ``upload`` as the scoring task would, from the given scores (no model run)."""
    from moderation.models import Score
    from moderation.services.model_versions import model_version_ensure_active
    from moderation.services.scoring import upload_route

    score = Score.objects.create(
        upload=upload,
        model_version=model_version_ensure_active(),
        harmful_score=max(category_scores.values()),
        category_scores=category_scores,
        latency_ms=1.0,
    )
    with_phash(upload)
    assert upload_route(upload=upload, score=score)
    upload.refresh_from_db()
    return upload


def score_frames(upload: Upload, per_frame: dict[int, dict[str, float]]) -> Upload:
    """Give an animated upload a routing score from per-frame scores, as the worker records them
    (no model run): the max over frames per category, the worst frame, the frames."""
    from moderation.models import Score
    from moderation.services.model_versions import model_version_ensure_active

    categories = next(iter(per_frame.values()))
    category_scores = {c: max(scores[c] for scores in per_frame.values()) for c in categories}
    score = Score.objects.create(
        upload=upload,
        model_version=model_version_ensure_active(),
        harmful_score=max(category_scores.values()),
        category_scores=category_scores,
        latency_ms=1.0,
        worst_frame=max(per_frame, key=lambda index: max(per_frame[index].values())),
        frames=[{"index": index, "scores": scores} for index, scores in per_frame.items()],
    )
    Upload.objects.filter(pk=upload.pk).update(score=score)
    upload.refresh_from_db()
    return upload


def make_shadow_version(name: str = "shadow-candidate"):
    """A candidate put in shadow through the registry (it shares the baseline's weights file:
    tests that use it store its scores with :func:`score_in_shadow` instead of running it)."""
    import hashlib

    from moderation.models import ModelVersion
    from moderation.services.model_versions import model_version_ensure_active, model_version_shadow

    base = model_version_ensure_active()
    candidate = ModelVersion.objects.create(
        name=name,
        architecture=base.architecture,
        weights=base.weights,
        weights_sha256=hashlib.sha256(name.encode()).hexdigest(),
    )
    return model_version_shadow(model_version=candidate)


def score_in_shadow(upload: Upload, model_version, category_scores: dict[str, float]):
    """Store a shadow model's score for an already routed upload and announce it, as the worker
    does after routing (``scores_create_shadow``), without running the model."""
    from moderation.models import Score
    from moderation.services.scoring import shadow_scores_announce

    score = Score.objects.create(
        upload=upload,
        model_version=model_version,
        harmful_score=max(category_scores.values()),
        category_scores=category_scores,
        latency_ms=1.0,
    )
    shadow_scores_announce(upload=upload, scores=[score])
    return score
