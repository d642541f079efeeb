"""Probe a video and pick the frames to score, with PyAV (FFmpeg's libraries, no binary).

A video is scored on sampled frames: one every :func:`sampling_interval` seconds (about 1 s for
short clips, growing to 5 s for long ones) plus every keyframe (each sampled no later than
:data:`KEYFRAME_GAP` seconds after it; encoders start a keyframe at a scene cut). Between those,
:class:`FrameSampler` scans: it decodes every frame in order and every :data:`CHECK_INTERVAL`
seconds compares a thumbnail with the last frame scored, scoring any frame whose scene changed, so
an insert of a couple of seconds is scored wherever it sits, even in a stream whose encoder put no
keyframe at the cut. Videos too large to decode whole in the worker's budget are sampled by
seeking to the keyframe before each sample instead, and say so (``covered`` is false).

Never imports Django: the web process probes uploads with it, the worker samples frames.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import av
from PIL import Image

VIDEO_CODECS = ("h264", "hevc", "vp8", "vp9", "av1")
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
KEYFRAME_GAP = 1.0  # seconds: a keyframe is sampled no later than this after it
MIN_INTERVAL, MAX_INTERVAL = 1.0, 5.0
FULL_INTERVAL_AT = 1800.0  # seconds of video at which the interval reaches MAX_INTERVAL
TRUNCATION_SLACK = 1.0  # seconds the packets may fall short of the declared duration
# Scanning (FrameSampler): a thumbnail every CHECK_INTERVAL seconds is compared with the previous
# one; SCENE_CELLS of its cells changing by more than SCENE_LEVELS grey levels is a cut (a camera
# panning 24 px/s over 480p changes at most 26 % of them, a cut between photos 68 % or more in nine
# cases of ten: bench/video.py's footage), and a regular sample where no cell changed that much
# since the last frame scored is that frame again.
CHECK_INTERVAL = 0.5
THUMBNAIL = (64, 36)
SCENE_LEVELS = 24
SCENE_CELLS = 0.4
MIN_SCENE_BUDGET = 60  # scene samples allowed beyond the regular ones (at least; or twice as many as them)

Source = str | IO[bytes]
NOT_A_VIDEO = "The file is not an MP4, MOV, WebM or MKV video."
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska and WebM
MP4_ATOMS = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}  # ISO BMFF and QuickTime


class VideoRejected(ValueError):
    """The file is not a video Vigil accepts; ``str(exc)`` is safe to show the submitter."""


@dataclass(frozen=True)
class VideoLimits:
    max_seconds: float
    max_pixels: int
    max_fps: float


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found. ``container`` is ``mp4``, ``mov``, ``webm`` or ``mkv``."""

    container: str
    codec: str
    duration: float
    width: int
    height: int
    fps: float
    keyframes: tuple[float, ...]

    @property
    def extension(self) -> str:
        return self.container


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame: its time in seconds from the start, the upright RGB picture, and why it
    was sampled: ``sample`` (a regular or keyframe time) or ``scene`` (the scene changed)."""

    time: float
    image: Image.Image
    why: str = "sample"


def sampling_interval(duration: float) -> float:
    """Seconds between regular samples: 1 s up to about a minute, then growing with the square
    root of the length, 5 s from half an hour on (a 10 s clip: 10 samples; 30 min: 360)."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, MAX_INTERVAL * math.sqrt(max(duration, 0.0) / FULL_INTERVAL_AT)))


def sample_times(
    duration: float, keyframes: tuple[float, ...] | list[float], *, interval: float | None = None
) -> list[float]:
    """The times to sample, ascending: every ``interval`` seconds (:func:`sampling_interval` by
    default) from 0, and for every keyframe a sample at most :data:`KEYFRAME_GAP` seconds after
    it: the keyframe itself (one decoded frame), or, when the previous sample is closer than the
    gap, the previous sample plus the gap (so dense keyframes cost one sample a gap, not all)."""
    step = interval or sampling_interval(duration)
    times = [n * step for n in range(max(1, math.ceil(duration / step)))]  # all before the end
    inside = sorted(k for k in keyframes if 0 <= k < duration)
    for key in inside:
        at = bisect.bisect_left(times, key)
        if at < len(times) and times[at] <= key + KEYFRAME_GAP:
            continue
        previous = times[at - 1] if at else -math.inf
        deferred = previous + KEYFRAME_GAP
        if deferred >= duration:
            deferred = inside[-1]  # the last keyframe stands for those in the final second
        bisect.insort(times, key if key - previous >= KEYFRAME_GAP else deferred)
    return times


def _codec(stream) -> str:
    """The stream's format (``av1``), not the decoder FFmpeg picked for it (``libdav1d``)."""
    return stream.codec_context.codec.canonical_name


def _container_name(container: av.container.InputContainer, codec: str) -> str:
    demuxer = container.format.name
    if demuxer.startswith("mov"):
        brand = (container.metadata.get("major_brand") or "").strip()
        return "mov" if brand == "qt" else "mp4"
    if demuxer.startswith("matroska"):
        codecs = {_codec(s) for s in container.streams if s.codec_context is not None}
        return "webm" if codecs <= {"vp8", "vp9", "av1", "opus", "vorbis"} else "mkv"
    raise VideoRejected(NOT_A_VIDEO)


def _demuxer(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with ``head``, from its magic bytes, or None. Only
    these two demuxers ever run: FFmpeg's probing would also open playlists (HLS, concat) that
    reference other files and URLs."""
    if head[:4] == EBML_MAGIC:
        return "matroska"
    if head[4:8] in MP4_ATOMS:
        return "mov"
    return None


def looks_like_video(head: bytes) -> bool:
    """Whether a file starting with ``head`` (16 bytes do) is in a container :func:`probe` opens."""
    return _demuxer(head) is not None


def _open(source: Source) -> av.container.InputContainer:
    if isinstance(source, str):
        with open(source, "rb") as handle:
            head = handle.read(16)
    else:
        source.seek(0)
        head = source.read(16)
        source.seek(0)
    demuxer = _demuxer(head)
    if demuxer is None:
        raise VideoRejected(NOT_A_VIDEO)
    try:
        return av.open(source, mode="r", format=demuxer, options={"enable_drefs": "0"})
    except av.FFmpegError:
        raise VideoRejected("The video is damaged or truncated: its header or index cannot be read.") from None


def _stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoRejected("The file has no video stream.")
    return container.streams.video[0]


def probe(source: Source, *, limits: VideoLimits) -> VideoInfo:
    """Check a video against ``limits`` and that it is whole and decodes: the container, a video
    stream in an accepted codec, its size, frame rate and length; every packet is read (not
    decoded) to find the keyframes and a truncated file; the first frame and the last keyframe
    are decoded. Raises :class:`VideoRejected` with a message for the submitter."""
    try:
        with _open(source) as container:
            return _probe(container, limits)
    except VideoRejected:
        raise
    except Exception as exc:  # demuxers and decoders raise many types on hostile input
        raise VideoRejected(f"The video data is corrupt or truncated ({type(exc).__name__}).") from None


def _probe(container: av.container.InputContainer, limits: VideoLimits) -> VideoInfo:
    stream = _stream(container)
    codec = _codec(stream)
    name = _container_name(container, codec)
    if codec not in VIDEO_CODECS:
        accepted = ", ".join(CODEC_NAMES.values())
        raise VideoRejected(f"The video is encoded as {codec}; accepted codecs are {accepted}.")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width < 1 or height < 1:
        raise VideoRejected("The video has no pixels.")
    if width * height > limits.max_pixels:
        raise VideoRejected(
            f"The video is {width}x{height} pixels ({width * height:,}); the limit is {limits.max_pixels:,} pixels."
        )
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if fps > limits.max_fps:
        raise VideoRejected(f"The video has {fps:g} frames a second; the limit is {limits.max_fps:g}.")
    declared = _declared_duration(container, stream)
    if declared is not None and declared > limits.max_seconds:
        raise VideoRejected(f"The video lasts {declared:.0f} seconds; the limit is {limits.max_seconds:g}.")
    keyframes, end = _index(container, stream, max_seconds=limits.max_seconds)
    if not keyframes:
        raise VideoRejected("The video has no frames.")
    if declared is not None and end < declared - TRUNCATION_SLACK:
        raise VideoRejected(f"The video is truncated: it declares {declared:.1f} s but its data stops at {end:.1f} s.")
    duration = declared if declared is not None else end
    for at in {keyframes[0], keyframes[-1]}:
        if _decode_at(container, stream, at) is None:
            raise VideoRejected(f"The video does not decode at {at:.1f} s.")
    return VideoInfo(name, codec, duration, width, height, fps, tuple(keyframes))


def _declared_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _seconds(pts: int | None, stream: av.video.stream.VideoStream) -> float:
    start = stream.start_time or 0
    return float(((pts or 0) - start) * stream.time_base)


def _index(container: av.container.InputContainer, stream, *, max_seconds: float) -> tuple[list[float], float]:
    """Read every packet of ``stream`` without decoding: the keyframe times and where the data
    ends. Stops past ``max_seconds`` (a file that hides its length is refused there)."""
    keyframes: list[float] = []
    end = 0.0
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        at = _seconds(packet.pts, stream)
        end = max(end, at + float((packet.duration or 0) * stream.time_base))
        if end > max_seconds + TRUNCATION_SLACK:
            raise VideoRejected(f"The video lasts more than {max_seconds:g} seconds, the limit.")
        if packet.is_keyframe:
            keyframes.append(max(at, 0.0))
    return sorted(keyframes), end


def _decode_at(container, stream, at: float) -> av.VideoFrame | None:
    """The first frame at or after ``at`` seconds, from the keyframe before it; None past the end."""
    container.seek(_pts(at, stream), stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        if frame.pts is not None and _seconds(frame.pts, stream) >= at - _half_frame(stream):
            return frame
    return None


def _pts(at: float, stream) -> int:
    return round(Fraction(at).limit_denominator(1_000_000) / stream.time_base) + (stream.start_time or 0)


def _half_frame(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return 0.5 / float(rate) if rate else 0.001


class FrameSampler:
    """The frames of one video to score, in order: iterate it for each :class:`VideoFrame`.

    Probes ``source`` when made (raising :class:`VideoRejected`), then samples in one of two ways:

    - **scan** (when the video's decoded pixels fit ``scan_megapixels``): every frame is decoded
      in order and a frame is yielded at each :func:`sample_times` time, and besides, every
      :data:`CHECK_INTERVAL` seconds a thumbnail of the current frame is compared with the one
      looked at before: a cut (:func:`scene_differs`) is yielded too, so an insert longer than
      the check interval is scored wherever it sits, whether or not the encoder put a keyframe
      there. ``covered`` is then true once the whole video was looked at that way, unless the
      cuts outgrew their budget (twice the regular samples), which is reported, not hidden.
    - **seek** (longer or larger videos): the keyframe before each sample is sought and only the
      frames from it to the sample are decoded; ``covered`` stays false.

    ``scene_samples`` counts the cuts. When scanning, a regular sample whose thumbnail matches
    the last frame yielded in every cell (:func:`same_picture`) is not yielded again
    (``unchanged`` counts them): a still scene costs the model one frame. Frames are yielded one
    at a time so a caller scoring in batches holds only a batch, and may stop early (``covered``
    then stays false).
    """

    def __init__(
        self,
        source: Source,
        *,
        max_side: int | None = None,
        interval: float | None = None,
        limits: VideoLimits | None = None,
        scan_megapixels: float = math.inf,
    ) -> None:
        self.source = source
        self.max_side = max_side
        limits = limits or VideoLimits(max_seconds=math.inf, max_pixels=2**62, max_fps=math.inf)
        self.info = probe(source, limits=limits)
        self.times = sample_times(self.info.duration, self.info.keyframes, interval=interval)
        frames = self.info.duration * (self.info.fps or 30.0)
        self.scanned = frames * self.info.width * self.info.height / 1e6 <= scan_megapixels
        self.covered = False
        self.scene_samples = 0
        self.unchanged = 0
        self.scene_budget = max(2 * len(self.times), MIN_SCENE_BUDGET)

    def __iter__(self) -> Iterator[VideoFrame]:
        with _open(self.source) as container:
            stream = _stream(container)
            stream.thread_type = "AUTO"
            if self.scanned:
                yield from self._scan(container, stream)
                self.covered = self.scene_samples <= self.scene_budget
            else:
                yield from self._seek(container, stream)

    def _frame(self, frame: av.VideoFrame, stream, why: str) -> VideoFrame:
        return VideoFrame(round(_seconds(frame.pts, stream), 3), _picture(frame, self.max_side), why)

    def _scan(self, container, stream) -> Iterator[VideoFrame]:
        half = _half_frame(stream)
        due = iter(self.times)
        next_sample = next(due, math.inf)
        next_check = CHECK_INTERVAL
        scored = previous = None  # thumbnails: of the last frame yielded, of the last frame looked at
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            at = _seconds(frame.pts, stream)
            if at >= next_sample - half:
                while next_sample <= at + half:
                    next_sample = next(due, math.inf)
                next_check = at + CHECK_INTERVAL
                previous = thumbnail = _thumbnail(frame)
                if scored is not None and same_picture(scored, thumbnail):
                    self.unchanged += 1  # the frame scored last, again: nothing new for the model
                    continue
                yield self._frame(frame, stream, "sample")
                scored = thumbnail
            elif at >= next_check - half:
                next_check = at + CHECK_INTERVAL
                thumbnail = _thumbnail(frame)
                cut = previous is not None and scene_differs(previous, thumbnail)
                previous = thumbnail
                if cut:
                    self.scene_samples += 1
                    if self.scene_samples <= self.scene_budget:
                        yield self._frame(frame, stream, "scene")
                        scored = thumbnail

    def _seek(self, container, stream) -> Iterator[VideoFrame]:
        keyframes = self.info.keyframes
        decoded: Iterator[av.VideoFrame] | None = None
        position = -math.inf  # time of the last frame decoded
        last: av.VideoFrame | None = None
        for at in self.times:
            before = bisect.bisect_right(keyframes, at + _half_frame(stream))
            keyframe = keyframes[before - 1] if before else 0.0
            if decoded is None or keyframe > position or at < position:
                container.seek(_pts(keyframe, stream), stream=stream, backward=True, any_frame=False)
                decoded, last = container.decode(stream), None
            frame = _advance(decoded, stream, at, last)
            if frame is None:
                return
            last = frame
            position = _seconds(frame.pts, stream)
            yield self._frame(frame, stream, "sample")


def sample_frames(
    source: Source, *, max_side: int | None = None, interval: float | None = None, limits: VideoLimits | None = None
) -> Iterator[VideoFrame]:
    """Yield a :class:`FrameSampler`'s frames (scanning whatever the size). ``interval``
    overrides the regular step. Raises :class:`VideoRejected` if the file does not probe
    (``limits``: none by default)."""
    return iter(FrameSampler(source, max_side=max_side, interval=interval, limits=limits))


def _thumbnail(frame: av.VideoFrame):
    """A small grey picture of ``frame`` for comparing scenes (one scaling call, no RGB)."""
    return frame.reformat(width=THUMBNAIL[0], height=THUMBNAIL[1], format="gray").to_ndarray().astype("int16")


def same_picture(before, after) -> bool:
    """Whether two thumbnails show the same picture: no cell changed by more than
    :data:`SCENE_LEVELS`. A cell is about as large as four pixels of the model's input (a 480p
    frame is scaled to 224-288 px), so what this cannot see the model could hardly see either."""
    return bool((abs(after - before) <= SCENE_LEVELS).all())


def scene_differs(before, after) -> bool:
    """Whether two thumbnails half a second apart show a cut: enough cells (:data:`SCENE_CELLS`,
    40 %) changed by more than :data:`SCENE_LEVELS` grey levels. Camera motion, compression noise
    and a moving part of the frame do not count, nor does a slow fade (each half second changes
    too little): the regular samples look at those, as they are skipped only when nothing moved.
    Heuristic thresholds, measured on generated footage; every scored frame's ``why`` and the
    video's ``covered`` are stored with its score, so their effect can be seen."""
    changed = (abs(after - before) > SCENE_LEVELS).mean()
    return bool(changed >= SCENE_CELLS)


def _advance(decoded: Iterator[av.VideoFrame], stream, at: float, last: av.VideoFrame | None) -> av.VideoFrame | None:
    if last is not None and _seconds(last.pts, stream) >= at - _half_frame(stream):
        return last
    for frame in decoded:
        if frame.pts is not None and _seconds(frame.pts, stream) >= at - _half_frame(stream):
            return frame
    return None


def _picture(frame: av.VideoFrame, max_side: int | None) -> Image.Image:
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    image = frame.to_image(width=width, height=height)
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 360:
        image = image.rotate(rotation, expand=True)  # the display matrix: counter-clockwise degrees
    return image


def frame_at_time(source: Source, at: float, *, max_side: int | None = None) -> Image.Image:
    """The frame shown at ``at`` seconds (the first at or after it), as upright RGB. Raises
    :class:`VideoRejected` if the file does not open, ``IndexError`` past the last frame."""
    with _open(source) as container:
        stream = _stream(container)
        frame = _decode_at(container, stream, at)
        if frame is None:
            raise IndexError(f"the video has no frame at {at:.3f} s")
        return _picture(frame, max_side)
