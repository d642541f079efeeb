from PIL import Image

from media.images import load_rgb, to_rgb
from tests.images import encode, photo


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def test_la_keeps_opaque_grey():
    image = Image.new("LA", (4, 4), (100, 255))
    assert to_rgb(image).getpixel((0, 0)) == (100, 100, 100)


def test_draft_decodes_large_jpeg_at_reduced_scale_but_not_below_min_side():
    import io

    big = photo("astronaut").resize((2048, 2048))
    image = Image.open(io.BytesIO(encode(big, "JPEG")))
    rgb = load_rgb(image, min_side=256)
    assert rgb.mode == "RGB"
    assert 256 <= min(rgb.size) < 2048
