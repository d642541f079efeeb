"""Test videos, encoded with PyAV in memory."""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction

import av
from PIL import Image

from tests.images import photo_frames

CONTAINERS = {"mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "matroska"}


def encode_video(
    picture_at: Callable[[int], Image.Image],
    *,
    frames: int,
    fps: int = 10,
    container: str = "mp4",
    codec: str = "libx264",
    size: tuple[int, int] = (96, 64),
    keyframes_at: set[int] = frozenset(),
    gop: int | None = None,
    audio: bool = False,
) -> bytes:
    """Encode ``frames`` pictures (``picture_at(i)``, resized to ``size``); frames listed in
    ``keyframes_at`` are forced to be keyframes (as an encoder does at a scene cut)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=CONTAINERS[container]) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "sc_threshold": "0"}  # keyframes only where asked
        for index in range(frames):
            frame = av.VideoFrame.from_image(picture_at(index).resize(size))
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            if index in keyframes_at:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def audio_only(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=44100)
        samples = int(seconds * 44100)
        import numpy as np

        for start in range(0, samples, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype="float32"), format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def clip_with_insert(
    *,
    seconds: int,
    insert_at: float,
    insert_seconds: float = 2,
    fps: int = 5,
    container: str = "mp4",
    codec: str = "libx264",
    safe: str = "coffee",
    harmful: str = "rocket",
    size: tuple[int, int] = (96, 64),
    cut_keyframes: bool = True,
    **options,
) -> bytes:
    """A clip of a harmless photo (``safe``) with ``insert_seconds`` of another (``harmful``)
    from ``insert_at`` seconds; the insert starts on a keyframe, like a scene cut, unless
    ``cut_keyframes`` is false (an encoder told not to mark cuts)."""
    safe_frame, harmful_frame = photo_frames([safe, harmful], size=size)
    start, stop = round(insert_at * fps), round((insert_at + insert_seconds) * fps)
    return encode_video(
        lambda i: harmful_frame if start <= i < stop else safe_frame,
        frames=seconds * fps,
        fps=fps,
        container=container,
        codec=codec,
        size=size,
        keyframes_at={start, stop} if cut_keyframes else frozenset(),
        **options,
    )


def faststart_mp4(path, *, seconds: int, fps: int = 5) -> bytes:
    """An MP4 with its index (moov) before the data, as streaming sites write them."""
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index in range(seconds * fps):
            frame = av.VideoFrame.from_image(Image.new("RGB", (96, 64), (index % 256, 0, 0)))
            frame.pts = index
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path.read_bytes()
