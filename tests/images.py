"""Test images: generated with Pillow, or the real photos bundled in scikit-image."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (40, 120, 200), fmt: str = "JPEG") -> bytes:
    return encode(Image.new("RGB", size, color), fmt)


@cache
def photo(name: str) -> Image.Image:
    """A real photo from scikit-image: astronaut, chelsea, coffee, motorcycle, rocket..."""
    import skimage.data

    array = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return Image.fromarray(array).convert("RGB")


def photo_jpeg(name: str, quality: int = 90) -> bytes:
    return encode(photo(name), "JPEG", quality=quality)


def animated(frames: list[Image.Image], fmt: str = "GIF", **params) -> bytes:
    """An animated GIF, WebP or PNG (APNG) of ``frames`` (all the first frame's size)."""
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def photo_frames(names: list[str], size: tuple[int, int] = (300, 200)) -> list[Image.Image]:
    """scikit-image photos resized to one canvas, as frames of an animation."""
    return [photo(name).resize(size, Image.Resampling.LANCZOS) for name in names]


def labelled_folder(root, *, train: int = 10, val: int = 5, test: int = 0, seed: int = 0) -> None:
    """A small ImageFolder dataset in the paper's layout (``train|val[|test]/safe|harmful``).

    "harmful" crops come from the rocket and motorcycle photos, "safe" from the cat and coffee
    photos: real pictures, so pretrained features separate them as they would real classes.
    Crops vary in position, size and aspect ratio, so every file differs.
    """
    import random
    from pathlib import Path

    rng = random.Random(seed)
    sources = {"harmful": ("rocket", "motorcycle"), "safe": ("chelsea", "coffee")}
    for split, count in (("train", train), ("val", val), ("test", test)):
        if not count:
            continue
        for label, names in sources.items():
            folder = Path(root) / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                source = photo(names[index % len(names)])
                width, height = source.size
                crop_w = rng.randint(width // 2, width)
                crop_h = rng.randint(height // 2, height)
                left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
                crop = source.crop((left, top, left + crop_w, top + crop_h)).resize((crop_w // 2, crop_h // 2))
                crop.save(folder / f"{label}_{index:03d}.jpg", quality=88)
