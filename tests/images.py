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
