"""Validate an uploaded image with Pillow before anything is stored; make its derivative and
perceptual hash (in the worker, from pixels it decodes anyway).

Only the JPEG, PNG, WebP and GIF decoders ever run. The checks, in order: byte size; the header
(format allowlist, dimensions, frame count, pixel limit, with Pillow's decompression-bomb
warning turned into an error); ``verify()``; then a fresh open and a decode of the whole first
frame (JPEGs at 1/8 scale: every byte of the stream is still entropy-decoded, so truncation and
corruption are caught, at a few milliseconds for a 1-megapixel photo). The display derivative
is re-encoded from decoded pixels, so no metadata survives.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import IO

from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageFile

from media.frames import frame_at, frame_count
from media.images import load_rgb

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
EXIF_ORIENTATION = 0x0112
DISPLAY_FORMAT = "WEBP"
# Pillow's own choice for thumbnails: 29 ms against Lanczos's 44 ms from 2000x1500 to 1024 px (of a
# derivative's 81 ms), a difference a moderator does not see at display size.
DISPLAY_RESAMPLE = Image.Resampling.BICUBIC
DISPLAY_CONTENT_TYPE = "image/webp"
NOT_AN_IMAGE = "The file is not a JPEG, PNG, WebP or GIF image."


class ImageRejected(ValueError):
    """The upload is not an image Vigil accepts; ``str(exc)`` is safe to show the submitter."""


@dataclass(frozen=True)
class InspectedImage:
    data: bytes
    format: str
    width: int
    height: int
    frames: int
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def byte_size(self) -> int:
        return len(self.data)

    def content(self) -> ContentFile:
        """The bytes, for storage."""
        return ContentFile(self.data)

    def close(self) -> None:
        """Nothing to release: the bytes are in memory (see ``InspectedVideo.close``)."""


def read_limited(file: IO[bytes], *, max_bytes: int) -> bytes:
    """Read at most ``max_bytes``; a longer stream is refused without reading it all."""
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is larger than the {filesizeformat(max_bytes)} limit.")
    if not data:
        raise ImageRejected("The file is empty.")
    return data


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError:
        raise ImageRejected(NOT_AN_IMAGE) from None


def _check_dimensions(image: Image.Image, *, max_pixels: int, max_frames: int) -> int:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width}x{height} pixels ({width * height:,}); the limit is {max_pixels:,} pixels."
        )
    frames = getattr(image, "n_frames", 1)
    if frames > max_frames:
        raise ImageRejected(f"The image has {frames} frames; the limit is {max_frames}.")
    return frames


def inspect_image(data: bytes, *, max_pixels: int, max_frames: int) -> InspectedImage:
    """Check ``data`` and decode it once; raise :class:`ImageRejected` with a clear message."""
    saved_truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    # Pillow's own bomb check (on open and on every seek) then fires at our limit, as an error.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _inspect(data, max_pixels=max_pixels, max_frames=max_frames)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"The image decompresses to too many pixels; the limit is {max_pixels:,} pixels.") from None
    except Exception as exc:  # decoders raise many types on hostile input; none may become a 500
        raise ImageRejected(f"The image data is corrupt or truncated ({type(exc).__name__}).") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved_truncated


def _inspect(data: bytes, *, max_pixels: int, max_frames: int) -> InspectedImage:
    with _open(data) as image:
        fmt = image.format
        frames = _check_dimensions(image, max_pixels=max_pixels, max_frames=max_frames)
        # A later frame may declare a larger canvas than the first (a bomb in frame 2, say).
        for index in range(1, frames):
            image.seek(index)
            _check_dimensions(image, max_pixels=max_pixels, max_frames=max_frames)
        image.seek(0)
        image.verify()
    with _open(data) as image:
        if image.format != fmt:
            raise ImageRejected("The file changed format between reads.")
        _check_dimensions(image, max_pixels=max_pixels, max_frames=max_frames)
        width, height = image.size
        if image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width  # upright, as displayed
        if fmt == "JPEG":
            image.draft("RGB", (1, 1))  # the smallest DCT scale; the whole stream is still read
        load_rgb(image)  # decode, turn upright, convert: what the worker will do, failing here instead
        return InspectedImage(
            data=data,
            format=fmt,
            width=width,
            height=height,
            frames=frames,
            sha256=hashlib.sha256(data).hexdigest(),
        )


def display_webp(data: bytes, *, max_side: int, frame: int = 0) -> bytes:
    """The display derivative: the upright picture (frame ``frame`` of an animated image,
    composited), at most ``max_side`` pixels on its long side, re-encoded as a still WebP from
    decoded pixels (no metadata survives). Raises on undecodable data, ``IndexError`` for a
    frame the image does not have."""
    with _open(data) as image:
        still = frame == 0 and frame_count(image) == 1
        rgb = load_rgb(image, min_side=max_side) if still else frame_at(image, frame)
        rgb.thumbnail((max_side, max_side), DISPLAY_RESAMPLE)
        display = io.BytesIO()
        rgb.save(display, format=DISPLAY_FORMAT, quality=85, method=1)  # 3x faster than 4, 15 % larger
        return display.getvalue()


def video_still_webp(data: bytes, *, at: float, max_side: int) -> bytes:
    """The display derivative of a video: the frame at ``at`` seconds, as a still WebP like an
    image's (no metadata survives)."""
    from media.video import frame_at_time

    rgb = frame_at_time(io.BytesIO(data), at)
    rgb.thumbnail((max_side, max_side), DISPLAY_RESAMPLE)
    display = io.BytesIO()
    rgb.save(display, format=DISPLAY_FORMAT, quality=85, method=1)
    return display.getvalue()


def perceptual_hash(rgb: Image.Image) -> str:
    """64-bit pHash (hex) of a decoded picture; robust to scale, so any decode size ≥ 32 px does."""
    import imagehash  # the worker's: the web process never hashes

    return str(imagehash.phash(rgb))
