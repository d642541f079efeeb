"""Fine-tuned checkpoints: the whole network plus everything needed to serve it.

A checkpoint is one ``torch.save`` file holding the backbone name and split point, the
preprocessing, the calibration temperature and the test-time flip switch (how it is served, see
:class:`moderation.ml.network.ServingNet`), the categories its outputs route as (one, or several
for a multi-label head), the
training config, metrics and the full ``state_dict`` (backbone included), so serving it needs
neither the training data nor the original pretrained weights. It is written atomically (temporary file, then rename).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from moderation.ml.datasets import CLASSES
from moderation.ml.files import atomic_write
from moderation.ml.loading import FINETUNED_ARCHITECTURE
from moderation.ml.network import HarmfulNet
from moderation.ml.transforms import Preprocessing

FORMAT = "vigil.harmfulnet/1"
ARCHITECTURE = FINETUNED_ARCHITECTURE


class CheckpointError(ValueError):
    pass


def output_categories(config: dict) -> list[str]:
    """The categories the network's outputs score, in order: ``categories`` when it names two or
    more (a multi-label head), else the one ``category`` (a single harmful-vs-safe output, the
    format every earlier checkpoint has)."""
    named = list(config.get("categories") or [])
    if len(named) >= 2:
        return named
    return named or [config.get("category", "weapon")]


def save(
    path: str | Path,
    net: HarmfulNet,
    *,
    config,
    preprocessing: Preprocessing,
    metrics: dict,
    temperature: float = 1.0,
) -> Path:
    """``temperature``: the calibration fitted on validation logits (:mod:`moderation.ml.calibration`);
    the test-time flip comes from ``config["tta_flip"]``."""
    config = asdict(config) if is_dataclass(config) else dict(config)
    payload = {
        "format": FORMAT,
        "architecture": ARCHITECTURE,
        "backbone": config["backbone"],
        "unfreeze": int(config.get("unfreeze", 0)),
        "dropout": float(config.get("dropout", 0.0)),
        "pool": config.get("pool", "avg"),
        "category": output_categories(config)[0],
        "categories": output_categories(config),
        "classes": list(CLASSES),
        "preprocessing": preprocessing.as_dict(),
        "temperature": float(temperature),
        "flip": bool(config.get("tta_flip", False)),
        "config": config,
        "metrics": metrics,
        "created_at": datetime.now(UTC).isoformat(),
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    path = Path(path)
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return path


def read(path: str | Path) -> dict:
    """The checkpoint's contents, checked for format; tensors stay on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a Vigil fine-tuned checkpoint (format {FORMAT})")
    return payload


def serving_options(meta: dict) -> dict:
    """How the checkpoint's network is served: its calibration temperature and test-time flip.
    Checkpoints written before either existed serve as they always did (T = 1, no flip)."""
    return {"temperature": float(meta.get("temperature", 1.0)), "flip": bool(meta.get("flip", False))}


def load(path: str | Path) -> tuple[HarmfulNet, dict]:
    """The network, in eval mode with its fine-tuned weights, and the checkpoint's metadata."""
    payload = read(path)
    net = HarmfulNet.build(
        payload["backbone"],
        unfreeze=payload["unfreeze"],
        dropout=payload["dropout"],
        pool=payload.get("pool", "avg"),
        pretrained=False,
        outputs=len(payload.get("categories") or [payload["category"]]),
    )
    net.load_state_dict(payload.pop("state_dict"), strict=True)
    return net.eval(), payload
