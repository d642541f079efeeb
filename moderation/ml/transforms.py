"""Preprocessing owned by a model version; the eval transform is also the serving transform."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    @property
    def resize_to(self) -> int:
        return round(self.size / self.crop_pct)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            size=int(data["size"]),
            crop_pct=float(data.get("crop_pct", 0.875)),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            interpolation=data.get("interpolation", "bicubic"),
        )


def eval_transform(pre: Preprocessing):
    """Resize the short side, centre-crop, scale to [0, 1] and normalise (torchvision v2)."""
    import torch
    from torchvision.transforms import InterpolationMode, v2

    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(pre.resize_to, interpolation=InterpolationMode(pre.interpolation), antialias=True),
            v2.CenterCrop(pre.size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(pre.mean), std=list(pre.std)),
        ]
    )


def to_batch(images: list[Image.Image], pre: Preprocessing) -> torch.Tensor:
    import torch

    transform = eval_transform(pre)
    return torch.stack([transform(image) for image in images])
