"""Intake validation: accepted formats and conversions, and hostile files refused with a message."""

import io
import struct
import zlib

import pytest
from PIL import Image

from moderation.imaging import ImageRejected, display_webp, inspect_image, perceptual_hash, read_limited
from tests.images import encode, photo, solid

LIMITS = {"max_pixels": 4_000_000, "max_frames": 20}


def inspect(data: bytes, **overrides):
    return inspect_image(data, **{**LIMITS, **overrides})


def derivative(data: bytes) -> Image.Image:
    """The display derivative (made by the worker or on first view) of an image intake accepts."""
    inspect(data)
    return Image.open(io.BytesIO(display_webp(data, max_side=256)))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_allowed_formats_are_accepted(fmt):
    result = inspect(solid((300, 200), fmt=fmt))
    assert (result.format, result.width, result.height, result.extension) == (
        fmt,
        300,
        200,
        {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}[fmt],
    )
    assert len(result.sha256) == 64


def test_display_derivative_is_resized_webp_without_metadata():
    image = photo("chelsea")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS info
    display = derivative(encode(image, "JPEG", exif=exif.tobytes(), comment=b"private"))
    assert display.format == "WEBP"
    assert max(display.size) == 256
    assert not display.getexif()
    assert "exif" not in display.info and "comment" not in display.info


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encode(Image.new("RGB", (300, 100), "red"), "JPEG", exif=exif.tobytes())
    result = inspect(data)
    assert (result.width, result.height) == (100, 300)
    assert derivative(data).size == (85, 256)


def test_palette_with_transparency_becomes_white_not_black():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    data = encode(image, "PNG", transparency=0)
    display = derivative(data).convert("RGB")
    assert min(display.getpixel((20, 20))) > 240  # every channel near white


def test_cmyk_jpeg_is_converted():
    data = encode(Image.new("CMYK", (50, 50), (0, 255, 255, 0)), "JPEG")
    display = derivative(data).convert("RGB")
    red, green, blue = display.getpixel((25, 25))
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_png_is_scaled_not_clipped():
    image = Image.new("I;16", (32, 32), 30000)
    display = derivative(encode(image, "PNG")).convert("L")
    assert 240 <= display.getpixel((16, 16)) <= 255


def test_perceptual_hash_survives_rescaling():
    picture = photo("chelsea")
    small = picture.resize((picture.width // 3, picture.height // 3))
    distance = bin(int(perceptual_hash(picture), 16) ^ int(perceptual_hash(small), 16)).count("1")
    assert len(perceptual_hash(picture)) == 16 and distance <= 2


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _gif_bomb_in_frame_2() -> bytes:
    """A valid 8x8 GIF, then a second frame declaring a 10,000 x 10,000 canvas."""
    first = Image.new("P", (8, 8), 0)
    first.putpalette([0, 0, 0, 255, 255, 255])
    data = encode(first, "GIF")
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 10_000, 10_000) + b"\x00\x02\x02\x4c\x01\x00"
    return data[:-1] + frame + b";"


def _gif(frames: int) -> bytes:
    images = [Image.new("RGB", (8, 8), (i * 9 % 256, 255 - i * 9 % 256, 0)) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, this is text pretending to be a jpg\n", "not a JPEG, PNG, WebP or GIF"),
        (solid((200, 200))[:300], "corrupt or truncated"),
        (solid((64, 64), fmt="PNG")[:60] + b"<html><script>alert(1)</script></html>", "corrupt or truncated"),
        (_png_header_only(100_000, 100_000), "the limit is 4,000,000 pixels"),
        (_png_header_only(3_000, 3_000), "the limit is 4,000,000 pixels"),
        (_gif_bomb_in_frame_2(), "the limit is 4,000,000 pixels"),
        (_gif(25), "25 frames; the limit is 20"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "not a JPEG, PNG, WebP or GIF"),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "not a JPEG, PNG, WebP or GIF"),
    ],
    ids=[
        "text",
        "truncated-jpeg",
        "html-after-png-header",
        "huge-dimensions",
        "over-the-limit",
        "bomb-in-frame-2",
        "too-many-frames",
        "bmp",
        "tiff",
    ],
)
def test_hostile_files_are_refused_with_a_message(data, message):
    with pytest.raises(ImageRejected, match=message):
        inspect(data)


def test_read_limited_refuses_empty_and_oversized_files():
    with pytest.raises(ImageRejected, match="empty"):
        read_limited(io.BytesIO(b""), max_bytes=10)
    with pytest.raises(ImageRejected, match="larger than"):
        read_limited(io.BytesIO(b"x" * 11), max_bytes=10)
    assert read_limited(io.BytesIO(b"x" * 10), max_bytes=10) == b"x" * 10
