"""PDQ: Meta's 256-bit perceptual hash, the format trust-and-safety teams share (ThreatExchange,
the Hasher-Matcher-Actioner, industry hash lists). Computed with ``pdqhash`` (the reference C++
implementation) from pixels the worker has already decoded; the web process only parses and
compares hex strings, so it never imports the extension.

Hashes travel as 64 lowercase hex digits, most significant first (the order ``pdqhash`` returns
the bits in, and the one ThreatExchange and HMA files use). Two hashes within
``VIGIL_PDQ_DISTANCE`` bits (31 by default, the usual cut) are the same picture; a hash of
quality below ``VIGIL_PDQ_MIN_QUALITY`` (a flat or nearly blank picture) is not matched on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

BITS = 256
HEX_DIGITS = BITS // 4
CHUNK_BITS = 16
CHUNKS = BITS // CHUNK_BITS  # 16 indexed chunks: see chunk_probes
MAX_INDEXED_DISTANCE = 2 * CHUNKS - 1  # 31

_HEX = re.compile(r"[0-9a-f]{64}")


class InvalidPdq(ValueError):
    """Not a PDQ hash; the message says why, in words for whoever sent it."""


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int


HASH_MAX_SIDE = 512  # PDQ's own reduction keeps 64 × 64; larger input only costs (7 ms at 512², 385 at 2048²)


def pdq_compute(image: Image.Image) -> PdqHash:
    """The PDQ hash and quality (0–100) of a decoded picture (larger than 512 px: reduced to that
    first, with a box filter, which moves the hash by a few bits at most)."""
    import numpy as np
    import pdqhash  # the worker's (and the match API's, for an uploaded image)

    if image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > HASH_MAX_SIDE:
        image = image.copy()
        image.thumbnail((HASH_MAX_SIDE, HASH_MAX_SIDE), Image.Resampling.BOX)
    bits, quality = pdqhash.compute(np.asarray(image))
    return PdqHash(bits_to_hex(bits)[0], int(quality))


def bits_to_hex(bits) -> list[str]:
    """Rows of 256 bits (most significant first, as ``pdqhash`` returns them) as PDQ hex."""
    import numpy as np

    packed = np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1, BITS), axis=1)
    return [row.tobytes().hex() for row in packed]


def pdq_parse(text: str) -> str:
    """A PDQ hash as sent (64 hex digits, either case, surrounding spaces ignored), normalised to
    lowercase; :class:`InvalidPdq` otherwise."""
    value = text.strip().lower()
    if len(value) != HEX_DIGITS:
        raise InvalidPdq(f"a PDQ hash is {HEX_DIGITS} hex digits; got {len(value)} characters")
    if not _HEX.fullmatch(value):
        raise InvalidPdq("a PDQ hash is hex digits (0-9, a-f) only")
    return value


def hamming(a: str, b: str) -> int:
    """Bits apart of two hex hashes of one length (PDQ's 256, and the known images' 64-bit pHash)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def chunks(pdq: str) -> list[int]:
    """The hash's sixteen 16-bit chunks, most significant first (the index columns b0..b15)."""
    return [int(pdq[i : i + 4], 16) for i in range(0, HEX_DIGITS, 4)]


def chunk_probes(pdq: str) -> list[list[int]]:
    """For each chunk, the values an indexed hash within 31 bits of ``pdq`` may hold there, if it
    holds one of them anywhere: the chunk itself and its 16 one-bit neighbours.

    Why this finds every match: two hashes 31 bits apart or less differ in at most one bit in at
    least one of their 16 chunks (were every chunk 2 bits apart, they would be 32 apart), so each
    match holds a probed value in some chunk. 16 × 17 index look-ups, a few thousand candidates in
    a million uniformly spread hashes, each then checked at full length (multi-index hashing,
    Norouzi et al.; the pigeonhole idea of the 64-bit pHash index, one bit wider)."""
    return [[value, *(value ^ (1 << bit) for bit in range(CHUNK_BITS))] for value in chunks(pdq)]
