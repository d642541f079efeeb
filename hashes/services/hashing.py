"""Hash a picture sent to the match API, validated as an upload is; nothing is stored (the worker hashes
uploads from its own decode: moderation/services/frame_scoring.py)."""

from __future__ import annotations

import io
import warnings
from typing import IO

from django.conf import settings
from PIL import Image

from hashes.pdq import HASH_MAX_SIDE, PdqHash, pdq_compute
from media.images import load_rgb
from moderation.imaging import ALLOWED_FORMATS, ImageRejected, read_limited
from moderation.services.intake import UploadRejected, image_inspect


def image_pdq(*, file: IO[bytes]) -> PdqHash:
    """The PDQ hash of an image file's first frame (upright, as the worker hashes an upload), after
    the intake's checks (size, format, pixel and frame limits, decompression bombs, a full decode).
    :class:`UploadRejected` says what is wrong with the file, in words for whoever sent it."""
    try:
        data = read_limited(file, max_bytes=settings.VIGIL_MAX_UPLOAD_BYTES)
    except ImageRejected as exc:
        raise UploadRejected(str(exc)) from None
    image_inspect(data)  # the intake's validation: raises UploadRejected
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                rgb = load_rgb(image, min_side=HASH_MAX_SIDE)  # JPEGs decoded at the scale PDQ keeps
                return pdq_compute(rgb)
    except Exception as exc:  # inspected already, so unlikely; a hostile file must never be a 500
        raise UploadRejected(f"The image data is corrupt or truncated ({type(exc).__name__}).") from None
