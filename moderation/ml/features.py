"""Compute what the frozen part of the network outputs, once, and keep it on disk.

Fine-tuning on a CPU is fast when the expensive frozen backbone runs once per image (and per
augmented view) instead of once per epoch. The cache key covers everything the output depends
on: backbone, split point, preprocessing, augmentation view and seed, and every file's path,
size and modification time, so a changed dataset is recomputed, never reused stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from moderation.ml.datasets import ImageDataset, Sample
from moderation.ml.files import atomic_write
from moderation.ml.network import HarmfulNet


def cache_key(samples: Sequence[Sample], **parts) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for sample in samples:
        stat = sample.path.stat()
        digest.update(f"{sample.path}\0{sample.label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


@torch.inference_mode()
def compute_frozen_features(
    net: HarmfulNet,
    samples: Sequence[Sample],
    transform,
    *,
    device: torch.device,
    batch_size: int = 32,
    workers: int = 0,
    seed: int = 0,
    min_side: int | None = None,
    progress=None,
) -> torch.Tensor:
    """``net.frozen_features`` for every sample, in order, as float16 on the CPU.

    ``seed`` fixes the random augmentation, so the same view is reproduced exactly.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        ImageDataset(samples, transform, min_side=min_side),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        generator=generator,
    )
    net.eval()
    outputs = []
    for images, _labels in loader:
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        outputs.append(net.frozen_features(images).to("cpu", torch.float16))
        if progress is not None:
            progress.update(len(images))
    return torch.cat(outputs)


def cached_frozen_features(
    net: HarmfulNet,
    samples: Sequence[Sample],
    transform,
    *,
    cache_dir: Path | None,
    key_parts: dict,
    **kwargs,
) -> torch.Tensor:
    """:func:`compute_frozen_features`, read from ``cache_dir`` when an identical run cached it."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{cache_key(samples, **key_parts)}.pt"
        if path.is_file():
            features = torch.load(path, map_location="cpu", weights_only=True)
            if kwargs.get("progress") is not None:
                kwargs["progress"].update(len(samples))
            return features
    features = compute_frozen_features(net, samples, transform, **kwargs)
    if path is not None:
        with atomic_write(path) as handle:
            torch.save(features, handle)
    return features
