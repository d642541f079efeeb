import io

import pytest
import torch
from PIL import Image

from media.images import load_rgb, open_rgb
from moderation.ml.transforms import Preprocessing, eval_transform, to_batch, train_transform
from tests.images import encode, photo

LITE0 = Preprocessing(size=224, crop_pct=0.875, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_palette_with_transparency_is_flattened_on_white():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = 0
    image.putpixel((1, 1), 1)
    rgb = load_rgb(Image.open(io.BytesIO(encode(image, "PNG"))))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 1)) == (255, 0, 0)


def test_cmyk_jpeg_converts_to_the_same_colours():
    rgb = Image.new("RGB", (16, 16), (200, 30, 30))
    decoded = load_rgb(Image.open(io.BytesIO(encode(rgb.convert("CMYK"), "JPEG", quality=95))))
    assert decoded.mode == "RGB"
    red, green, blue = decoded.getpixel((8, 8))
    assert red > 150 and green < 80 and blue < 80


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    image = Image.new("I;16", (4, 4), 30000)
    image.putpixel((0, 0), 60000)
    rgb = load_rgb(Image.open(io.BytesIO(encode(image, "PNG"))))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    # 30000 of 60000 is mid-grey, not white as clipping to 255 would give
    assert 120 <= rgb.getpixel((1, 1))[0] <= 135


def test_exif_orientation_is_applied():
    # A landscape picture whose EXIF says "rotate 90° clockwise to display" (orientation 6).
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red band at the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = load_rgb(Image.open(io.BytesIO(encode(image, "JPEG", quality=95, exif=exif.tobytes()))))
    assert upright.size == (20, 40)
    red, _, blue = upright.getpixel((10, 2))  # the left band is now at the top
    assert red > 200 and blue < 60


def test_open_rgb_draft_decodes_a_large_jpeg_at_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    photo("astronaut").resize((4000, 3000)).save(path, quality=85)
    rgb = open_rgb(path, min_side=256)
    assert rgb.mode == "RGB"
    assert min(rgb.size) >= 256
    assert rgb.size[0] <= 1000  # decoded at 1/4 scale or less, not at 4000 px


def test_eval_transform_shape_range_and_normalisation():
    tensor = eval_transform(LITE0)(Image.new("RGB", (320, 240), (255, 255, 255)))
    assert tensor.shape == (3, 224, 224)
    assert tensor.dtype == torch.float32
    assert torch.allclose(tensor, torch.ones_like(tensor))  # (1 - 0.5) / 0.5


def test_squash_keeps_what_is_at_the_edge_of_a_wide_frame_and_crop_does_not():
    wide = Image.new("RGB", (448, 224), (255, 255, 255))
    wide.paste((0, 0, 0), (0, 0, 40, 224))  # a dark object at the left edge
    squash = eval_transform(Preprocessing(size=224, mean=(0, 0, 0), std=(1, 1, 1), resize_mode="squash"))(wide)
    crop = eval_transform(Preprocessing(size=224, mean=(0, 0, 0), std=(1, 1, 1), resize_mode="crop"))(wide)
    assert squash[:, :, :10].mean() < 0.05
    assert crop.min() > 0.95


def test_train_transform_is_random_but_reproducible_with_a_seed():
    pre = Preprocessing(size=64, resize_mode="squash")
    image = photo("chelsea")
    transform = train_transform(pre)
    torch.manual_seed(1)
    first = transform(image)
    torch.manual_seed(1)
    again = transform(image)
    different = transform(image)
    assert first.shape == (3, 64, 64)
    assert torch.equal(first, again)
    assert not torch.equal(first, different)


def test_preprocessing_round_trips_through_a_dict_and_rejects_unknown_modes():
    pre = Preprocessing(size=288, resize_mode="squash")
    assert Preprocessing.from_dict(pre.as_dict()) == pre
    with pytest.raises(ValueError, match="resize_mode"):
        Preprocessing(resize_mode="stretch")


def test_to_batch_stacks_images_of_different_sizes():
    batch = to_batch([photo("coffee"), photo("rocket")], LITE0)
    assert batch.shape == (2, 3, 224, 224)
