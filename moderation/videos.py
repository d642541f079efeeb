"""Validate an uploaded video with PyAV before anything is stored (media/video.py does the
probing: container, codec, limits, a read of every packet, the first and last keyframes decoded).
The counterpart of :mod:`moderation.imaging` for videos."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from media.video import VideoInfo, VideoLimits, VideoRejected, probe, sample_times

FORMATS = {"mp4": "MP4", "mov": "MOV", "webm": "WEBM", "mkv": "MKV"}
CONTENT_TYPES = {"MP4": "video/mp4", "MOV": "video/quicktime", "WEBM": "video/webm", "MKV": "video/x-matroska"}


@dataclass(frozen=True)
class InspectedVideo:
    data: bytes
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


def inspect_video(data: bytes, *, limits: VideoLimits) -> InspectedVideo:
    """Check ``data``; raise :class:`~media.video.VideoRejected` with a clear message."""
    return InspectedVideo(
        data=data, info=probe(io.BytesIO(data), limits=limits), sha256=hashlib.sha256(data).hexdigest()
    )


__all__ = ["CONTENT_TYPES", "InspectedVideo", "VideoRejected", "inspect_video"]
