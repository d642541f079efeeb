"""Turn any accepted image into an 8-bit RGB picture the way a person would see it.

EXIF orientation is applied; palette and alpha images are composited onto white (a transparent
pixel is not black); CMYK goes through Pillow's conversion; 16-bit and 32-bit greyscale are scaled
down to 8 bits instead of being clipped. Large JPEGs are decoded at reduced scale with ``draft()``
when the target size allows it, which is several times faster than a full decode.
"""

from __future__ import annotations

from PIL import Image, ImageOps

WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an RGB copy of ``image`` with transparency flattened onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    import numpy as np

    array = np.asarray(image.convert("I") if image.mode != "F" else image, dtype=np.float64)
    high = float(array.max()) if array.size else 0.0
    scale = 255.0 / high if high > 255 else 1.0
    eight_bit = np.clip(array * scale, 0, 255).astype("uint8")
    return Image.fromarray(eight_bit, mode="L").convert("RGB")


def load_rgb(image: Image.Image, *, min_side: int | None = None) -> Image.Image:
    """Decode ``image`` (already opened, not yet loaded) to upright RGB.

    ``min_side``: the smallest short side the caller needs. For JPEGs, Pillow's ``draft()`` then
    lets libjpeg decode at 1/2, 1/4 or 1/8 scale while keeping at least that size.
    """
    if min_side and image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK"):
        width, height = image.size
        scale = min(width, height) / min_side
        if scale >= 2:
            image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
    image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def open_rgb(path, *, min_side: int | None = None) -> Image.Image:
    """Open an image file and decode it to upright RGB (see :func:`load_rgb`); the file is closed."""
    with Image.open(path) as image:
        rgb = load_rgb(image, min_side=min_side)
        rgb.load()
        return rgb
