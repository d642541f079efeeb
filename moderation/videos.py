"""Validate an uploaded video with PyAV before anything is stored (media/video.py does the
probing: container, codec, limits, a read of every packet, the first and last keyframes decoded).
The counterpart of :mod:`moderation.imaging` for videos."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from django.template.defaultfilters import filesizeformat

from media.video import VideoInfo, VideoLimits, VideoRejected, probe, sample_times

FORMATS = {"mp4": "MP4", "mov": "MOV", "webm": "WEBM", "mkv": "MKV"}
CONTENT_TYPES = {"MP4": "video/mp4", "MOV": "video/quicktime", "WEBM": "video/webm", "MKV": "video/x-matroska"}


SPOOL_IN_MEMORY = 8 * 1024 * 1024  # a video larger than this waits on disk, not in the web process's memory
BLOCK = 1024 * 1024


@dataclass(frozen=True)
class InspectedVideo:
    """A video that passed the checks. ``file`` holds its bytes: spooled to a temporary file
    beyond :data:`SPOOL_IN_MEMORY`, so a 100 MB upload is never held in memory whole; call
    :meth:`close` when done (the temporary file goes with it)."""

    file: IO[bytes]
    byte_size: int
    info: VideoInfo
    sha256: str

    @property
    def format(self) -> str:
        return FORMATS[self.info.container]

    @property
    def extension(self) -> str:
        return self.info.extension

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def frames(self) -> int:
        """The frames the worker will sample at least (more where scenes change, fewer if it
        stops early at a reject): stored at intake, set to the frames sampled once routed."""
        return len(sample_times(self.info.duration, self.info.keyframes))

    def content(self) -> File:
        """The bytes, for storage, from the start."""
        self.file.seek(0)
        return File(self.file)

    def close(self) -> None:
        self.file.close()


def inspect_video(head: bytes, rest: IO[bytes], *, limits: VideoLimits, max_bytes: int) -> InspectedVideo:
    """Spool ``head`` and the rest of the stream (refusing more than ``max_bytes`` as soon as it
    is passed), hashing as it goes, then check the video; raise
    :class:`~media.video.VideoRejected` with a clear message (the spooled copy is then closed)."""
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (the result owns it)
    try:
        digest, size, block = hashlib.sha256(), 0, head
        while block:
            size += len(block)
            if size > max_bytes:
                raise VideoRejected(f"The video is larger than the {filesizeformat(max_bytes)} limit.")
            digest.update(block)
            spooled.write(block)
            block = rest.read(BLOCK)
        spooled.seek(0)
        info = probe(spooled, limits=limits)
    except BaseException:
        spooled.close()
        raise
    return InspectedVideo(file=spooled, byte_size=size, info=info, sha256=digest.hexdigest())


__all__ = ["CONTENT_TYPES", "InspectedVideo", "VideoRejected", "inspect_video"]
