"""PDQ on real photos (scikit-image's): the same picture re-encoded, resized or slightly cropped
stays within ``VIGIL_PDQ_DISTANCE`` bits; different photos are far outside it."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image, ImageEnhance

from hashes.pdq import InvalidPdq, chunk_probes, chunks, hamming, pdq_compute, pdq_parse
from tests.images import photo

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "motorcycle")
THRESHOLD = 31


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


VARIANTS = {
    "jpeg q30": lambda im: _jpeg(im, 30),
    "webp q50": lambda im: Image.open(io.BytesIO(_webp(im))),
    "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "double size, then jpeg": lambda im: _jpeg(im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC), 70),
    "border trimmed, 1% each side": lambda im: _crop(im, 0.01),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "thumbnail 160 px": lambda im: im.resize((160, round(160 * im.height / im.width))),
}


def _webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=50)
    return buffer.getvalue()


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_re_encoded_resized_or_cropped_photo_matches_its_original(name, variant):
    original = pdq_compute(photo(name))
    changed = pdq_compute(VARIANTS[variant](photo(name)))

    assert original.quality >= 50 and changed.quality >= 50
    assert hamming(original.hex, changed.hex) <= THRESHOLD


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(PHOTOS, 2)))
def test_different_photos_are_far_apart(a, b):
    assert hamming(pdq_compute(photo(a)).hex, pdq_compute(photo(b)).hex) > 3 * THRESHOLD


def test_a_heavy_crop_is_a_different_picture_to_pdq():
    """PDQ is not crop-invariant: past a border trim (about 1% a side) a crop is another picture to
    it (docs/hash-lists.md says so); a fifth cut off is far past the threshold."""
    original = photo("astronaut")
    assert hamming(pdq_compute(original).hex, pdq_compute(_crop(original, 0.1)).hex) > THRESHOLD


def test_a_flat_picture_hashes_with_no_quality():
    assert pdq_compute(Image.new("RGB", (300, 200), (120, 130, 140))).quality < 50


def test_a_large_picture_hashes_like_its_reduction():
    original = photo("coffee")
    big = original.resize((original.width * 4, original.height * 4), Image.Resampling.BICUBIC)
    assert hamming(pdq_compute(big).hex, pdq_compute(original).hex) <= 8


def test_hex_is_the_bit_order_pdqhash_returns():
    import numpy as np
    import pdqhash

    image = photo("astronaut")  # 512 px: hashed as it is
    bits, _ = pdqhash.compute(np.asarray(image.convert("RGB")))
    hexed = pdq_compute(image).hex
    assert [int(c) for c in f"{int(hexed, 16):0256b}"] == [int(b) for b in bits]


@pytest.mark.parametrize(
    ("text", "message"),
    [("abc", "64 hex digits; got 3"), ("z" * 64, "hex digits"), ("", "got 0"), ("0x" + "a" * 62, "hex digits")],
)
def test_parse_refuses_what_is_not_a_pdq_hash(text, message):
    with pytest.raises(InvalidPdq, match=message):
        pdq_parse(text)


def test_parse_normalises_case_and_spaces():
    assert pdq_parse("  " + "AB" * 32 + "\n") == "ab" * 32


def test_every_hash_within_31_bits_holds_a_probed_chunk_value():
    import random

    rng = random.Random(7)
    for _ in range(300):
        base = rng.getrandbits(256)
        other = base
        for bit in rng.sample(range(256), rng.randint(0, 31)):
            other ^= 1 << bit
        probes = chunk_probes(f"{base:064x}")
        assert any(value in probes[i] for i, value in enumerate(chunks(f"{other:064x}")))
