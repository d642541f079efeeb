"""Preprocessing owned by a model version; the eval transform is also the serving transform."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from PIL import Image


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"
    # "crop": resize the short side to size / crop_pct, then centre-crop a square (ImageNet style);
    # "squash": resize the whole picture to size x size (the source paper), so nothing at the
    # edges of a wide frame (a weapon at the side of a CCTV shot) is cut off.
    resize_mode: str = "crop"

    def __post_init__(self) -> None:
        if self.resize_mode not in ("crop", "squash"):
            raise ValueError(f"resize_mode must be 'crop' or 'squash', not {self.resize_mode!r}")

    @property
    def resize_to(self) -> int:
        """The short side the decoded picture needs before the final resize."""
        return self.size if self.resize_mode == "squash" else round(self.size / self.crop_pct)

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
            resize_mode=data.get("resize_mode", "crop"),
        )


def eval_transform(pre: Preprocessing):
    """Resize the short side, centre-crop, scale to [0, 1] and normalise (torchvision v2)."""
    import torch
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(pre.interpolation)
    if pre.resize_mode == "squash":
        geometry = [v2.Resize((pre.size, pre.size), interpolation=interpolation, antialias=True)]
    else:
        geometry = [v2.Resize(pre.resize_to, interpolation=interpolation, antialias=True), v2.CenterCrop(pre.size)]
    return v2.Compose(
        [
            v2.PILToTensor(),
            *geometry,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(pre.mean), std=list(pre.std)),
        ]
    )


def to_batch(images: list[Image.Image], pre: Preprocessing) -> torch.Tensor:
    import torch

    transform = eval_transform(pre)
    return torch.stack([transform(image) for image in images])


def train_transform(pre: Preprocessing, *, min_crop_area: float = 0.8):
    """Augmentation for fine-tuning: random crops that keep most of the picture, flips, mild colour.

    Crops keep at least ``min_crop_area`` of the picture: a small weapon at the edge of a frame
    must stay in view, or the "harmful" label on the crop would be false.
    """
    import torch
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(pre.interpolation)
    # Squashing first makes the crops' aspect ratios relative to the whole picture, as at serving.
    squash = [v2.Resize((pre.size, pre.size), interpolation=interpolation, antialias=True)]
    return v2.Compose(
        [
            v2.PILToTensor(),
            *(squash if pre.resize_mode == "squash" else []),
            v2.RandomResizedCrop(pre.size, scale=(min_crop_area, 1.0), interpolation=interpolation, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.02),
            v2.RandomGrayscale(p=0.05),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(pre.mean), std=list(pre.std)),
        ]
    )
