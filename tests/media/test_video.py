"""Probing videos and sampling their frames, on clips PyAV encodes in the test."""

from __future__ import annotations

import io
import itertools

import av
import pytest
from PIL import Image, ImageStat

from media.video import (
    CHECK_INTERVAL,
    KEYFRAME_GAP,
    FrameSampler,
    VideoLimits,
    VideoRejected,
    probe,
    sample_frames,
    sample_times,
    sampling_interval,
)
from tests.images import photo_frames, photo_jpeg
from tests.videos import audio_only, clip_with_insert, encode_video, faststart_mp4

LIMITS = VideoLimits(max_seconds=600, max_pixels=4096 * 2160, max_fps=120)
FORMATS = [
    pytest.param("mp4", "libx264", "h264", id="h264-mp4"),
    pytest.param("mov", "libx264", "h264", id="h264-mov"),
    pytest.param("mkv", "libx264", "h264", id="h264-mkv"),
    pytest.param("webm", "libvpx-vp9", "vp9", id="vp9-webm"),
    pytest.param("webm", "libvpx", "vp8", id="vp8-webm"),
    pytest.param("mp4", "libx265", "hevc", id="h265-mp4"),
    pytest.param("mkv", "libx265", "hevc", id="h265-mkv"),
    pytest.param("webm", "libsvtav1", "av1", id="av1-webm"),
    pytest.param("mp4", "libsvtav1", "av1", id="av1-mp4"),
]


def _rejected(data: bytes, limits: VideoLimits = LIMITS) -> str:
    with pytest.raises(VideoRejected) as caught:
        probe(io.BytesIO(data), limits=limits)
    return str(caught.value)


def _rocket(image: Image.Image) -> bool:
    """Whether the frame looks more like the rocket photo than the coffee one."""
    coffee, rocket = (ImageStat.Stat(frame.resize(image.size)).mean for frame in photo_frames(["coffee", "rocket"]))
    mean = ImageStat.Stat(image).mean
    return sum(abs(a - b) for a, b in zip(mean, rocket, strict=True)) < sum(
        abs(a - b) for a, b in zip(mean, coffee, strict=True)
    )


@pytest.mark.parametrize(
    ("seconds", "low", "high"), [(1, 1, 1), (10, 1, 1), (60, 1, 1), (300, 1.9, 2.2), (1800, 5, 5), (7200, 5, 5)]
)
def test_the_interval_grows_with_the_length(seconds, low, high):
    assert low <= sampling_interval(seconds) <= high


def test_a_ten_second_clip_gets_about_ten_samples_and_half_an_hour_about_360():
    assert 10 <= len(sample_times(10, [0.0])) <= 11
    assert 355 <= len(sample_times(1800, [0.0])) <= 365
    intervals = [sampling_interval(s) for s in (10, 60, 120, 300, 600, 1200, 1800)]
    assert intervals == sorted(intervals)


def test_every_keyframe_has_a_sample_within_the_gap_after_it():
    keyframes = [0.0, 6.0, 6.5, 12.3, 30.0]
    times = sample_times(40, keyframes, interval=5)
    assert times == sorted(times)
    for key in keyframes:
        assert any(key <= t <= key + KEYFRAME_GAP for t in times), key
    assert 6.0 in times and 12.3 in times  # scene cuts are sampled on the keyframe itself


def test_dense_keyframes_cost_one_sample_a_gap_not_one_per_keyframe():
    every_frame = [i / 25 for i in range(25 * 60)]  # an all-intra minute at 25 fps
    times = sample_times(60, every_frame, interval=5)
    assert len(times) <= 60 / KEYFRAME_GAP + 2
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= KEYFRAME_GAP + 1e-9  # still, no two-second stretch unsampled


@pytest.mark.parametrize(("container", "encoder", "codec"), FORMATS)
def test_probe_reads_the_facts(container, encoder, codec):
    if encoder not in av.codecs_available:
        pytest.skip(f"{encoder} is not in this PyAV build")
    info = probe(
        io.BytesIO(clip_with_insert(seconds=20, insert_at=6, container=container, codec=encoder)), limits=LIMITS
    )
    assert (info.container, info.codec, info.width, info.height, info.fps) == (container, codec, 96, 64, 5.0)
    assert info.duration == pytest.approx(20, abs=0.25)
    assert 6.0 in info.keyframes and 8.0 in info.keyframes


@pytest.mark.parametrize(("container", "encoder", "codec"), FORMATS)
def test_a_two_second_insert_between_long_intervals_is_sampled_on_its_keyframe(container, encoder, codec):
    if encoder not in av.codecs_available:
        pytest.skip(f"{encoder} is not in this PyAV build")
    data = clip_with_insert(seconds=20, insert_at=6, container=container, codec=encoder, gop=250)
    # Seeking (a video too large to scan): regular samples at 0, 5, 10, 15 would miss it.
    frames = list(FrameSampler(io.BytesIO(data), interval=5, scan_megapixels=0))
    assert [f.time for f in frames] == [0.0, 5.0, 6.0, 8.0, 10.0, 15.0]
    assert [f.time for f in frames if _rocket(f.image)] == [6.0]
    assert all(f.image.mode == "RGB" and f.image.size == (96, 64) for f in frames)
    # Scanning: the same keyframes; the regular samples showing the frame scored last are not scored again.
    sampler = FrameSampler(io.BytesIO(data), interval=5)
    frames = list(sampler)
    assert [(f.time, _rocket(f.image)) for f in frames] == [(0.0, False), (6.0, True), (8.0, False)]
    assert sampler.unchanged == 3 and sampler.covered


@pytest.mark.parametrize("insert_at", [21.2, 22.6, 23.4])
def test_an_insert_without_a_keyframe_is_scored_by_the_scan_wherever_it_sits(insert_at):
    # An encoder told to mark no cuts: one keyframe, and regular samples at 20 and 25 s around the insert.
    data = clip_with_insert(seconds=40, insert_at=insert_at, cut_keyframes=False, gop=1000)
    sampler = FrameSampler(io.BytesIO(data), interval=5)
    assert sampler.info.keyframes == (0.0,) and sampler.scanned
    frames = list(sampler)
    scenes = [f for f in frames if f.why == "scene"]
    assert [f.time for f in frames if f.why == "sample"] == [0.0]  # the others show the same coffee
    assert sampler.unchanged == 7
    # Scored within a check interval of the cut, and again when the scene changes back.
    assert len(scenes) == 2 and all(_rocket(f.image) != (f is scenes[1]) for f in scenes)
    assert insert_at <= scenes[0].time <= insert_at + CHECK_INTERVAL + 0.2
    assert insert_at + 2 <= scenes[1].time <= insert_at + 2 + CHECK_INTERVAL + 0.2
    assert sampler.covered and sampler.scene_samples == 2


def test_without_the_scan_the_same_insert_is_missed_and_the_sampler_says_it_did_not_cover():
    data = clip_with_insert(seconds=40, insert_at=21.2, cut_keyframes=False, gop=1000)
    sampler = FrameSampler(io.BytesIO(data), interval=5, scan_megapixels=0)  # too large to scan
    frames = list(sampler)
    assert not sampler.scanned and not sampler.covered
    assert [f.time for f in frames] == [5.0 * n for n in range(8)]
    assert not any(_rocket(f.image) for f in frames)


def test_a_slow_fade_is_no_cut_but_every_regular_sample_during_it_is_scored():
    coffee, rocket = photo_frames(["coffee", "rocket"], size=(96, 64))
    fps, fade = 10, (12.0, 16.0)  # 4 s fade: each half second alone changes little

    def picture(index: int) -> Image.Image:
        share = min(1.0, max(0.0, (index / fps - fade[0]) / (fade[1] - fade[0])))
        return Image.blend(coffee, rocket, share)

    data = encode_video(picture, frames=30 * fps, fps=fps, gop=1000)
    sampler = FrameSampler(io.BytesIO(data), interval=2)
    frames = list(sampler)
    assert [(f.time, f.why) for f in frames] == [(t, "sample") for t in (0.0, 14.0, 16.0)]
    assert _rocket(frames[-1].image) and sampler.unchanged == 12


def test_a_camera_panning_over_a_photo_is_no_cut():
    wide = photo_frames(["coffee"], size=(192, 96))[0]
    data = encode_video(lambda i: wide.crop((i, 0, i + 96, 64)), frames=96, fps=8, gop=1000)  # 8 px a second
    sampler = FrameSampler(io.BytesIO(data), interval=5)
    assert [f.why for f in sampler] == ["sample"] * 3 and sampler.scene_samples == 0


def test_a_video_that_never_settles_stops_adding_scenes_and_is_not_covered():
    noise = [Image.effect_noise((96, 64), 120).convert("RGB") for _ in range(4)]
    shifted = [Image.eval(frame, lambda v, k=k: (v + 64 * k) % 256) for k, frame in enumerate(noise)]
    data = encode_video(lambda i: shifted[i % 4], frames=200, fps=5, gop=1000)  # 40 s of flicker
    sampler = FrameSampler(io.BytesIO(data), interval=5)
    sampler.scene_budget = 10
    frames = list(sampler)
    assert len([f for f in frames if f.why == "scene"]) == 10
    assert sampler.scene_samples > 10 and not sampler.covered


def test_a_still_video_adds_no_scene_samples_and_is_covered():
    data = clip_with_insert(seconds=30, insert_at=40, cut_keyframes=False, gop=1000)  # the insert never comes
    sampler = FrameSampler(io.BytesIO(data), interval=5)
    assert [f.why for f in sampler] == ["sample"] and sampler.covered and sampler.unchanged == 5


def test_stopping_early_leaves_the_video_not_covered():
    sampler = FrameSampler(io.BytesIO(clip_with_insert(seconds=10, insert_at=3)))
    frames = iter(sampler)
    next(frames)
    frames.close()
    assert not sampler.covered


def test_seeking_samples_each_second_of_a_short_clip_and_reads_from_a_path(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_with_insert(seconds=10, insert_at=3))
    frames = list(FrameSampler(str(path), max_side=48, scan_megapixels=0))
    assert [f.time for f in frames] == [float(s) for s in range(10)]
    assert [f.time for f in frames if _rocket(f.image)] == [3.0, 4.0]
    assert frames[0].image.size == (48, 32)


def test_frames_come_one_at_a_time_so_a_caller_can_stop_early():
    frames = sample_frames(io.BytesIO(clip_with_insert(seconds=10, insert_at=3)))
    first = next(frames)
    assert first.time == 0.0
    frames.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "The file is not an MP4, MOV, WebM or MKV video.", id="empty"),
        pytest.param(b"GIF89a" + b"\x00" * 100, "The file is not an MP4, MOV, WebM or MKV video.", id="gif"),
        pytest.param(photo_jpeg("coffee"), "The file is not an MP4, MOV, WebM or MKV video.", id="jpeg"),
        pytest.param(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
            "The file is not an MP4, MOV, WebM or MKV video.",
            id="hls-playlist-never-opened",
        ),
        pytest.param(
            b"\x00\x00\x00\x18ftypmp42" + b"x" * 500,
            "The video is damaged or truncated: its header or index cannot be read.",
            id="garbage-with-an-mp4-header",
        ),
    ],
)
def test_what_is_not_a_video_is_refused_with_a_message(data, message):
    assert _rejected(data) == message


def test_audio_only_has_no_video_stream():
    assert _rejected(audio_only()) == "The file has no video stream."


def test_a_video_stream_without_frames_is_refused():
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        output.start_encoding()  # the header, then no frame at all
    assert _rejected(buffer.getvalue()) in ("The video has no frames.", "The file has no video stream.")


@pytest.mark.parametrize("container", ["webm", "mkv"])
def test_a_truncated_file_is_refused(container):
    codec = "libvpx-vp9" if container == "webm" else "libx264"
    data = clip_with_insert(seconds=20, insert_at=6, container=container, codec=codec)
    assert "truncated" in _rejected(data[: len(data) // 2])


def test_a_truncated_mp4_is_refused_whether_its_index_comes_first_or_last(tmp_path):
    index_last = clip_with_insert(seconds=20, insert_at=6)
    assert "damaged or truncated" in _rejected(index_last[: len(index_last) // 2])
    index_first = faststart_mp4(tmp_path / "fast.mp4", seconds=20)
    assert "truncated: it declares 20.0 s" in _rejected(index_first[: len(index_first) // 2])


def test_each_limit_has_its_message():
    data = clip_with_insert(seconds=20, insert_at=6)
    assert _rejected(data, VideoLimits(10, 10**8, 120)) == "The video lasts 20 seconds; the limit is 10."
    assert (
        _rejected(data, VideoLimits(60, 1000, 120)) == "The video is 96x64 pixels (6,144); the limit is 1,000 pixels."
    )
    assert _rejected(data, VideoLimits(60, 10**8, 4)) == "The video has 5 frames a second; the limit is 4."


def test_codecs_outside_the_list_are_refused():
    data = encode_video(lambda i: Image.new("RGB", (8, 8)), frames=10, codec="mpeg4")
    assert "encoded as mpeg4; accepted codecs are H.264, H.265, VP8, VP9, AV1" in _rejected(data)


def test_a_small_change_in_a_still_scene_is_scored_at_the_next_regular_sample():
    """Below the scene threshold (a small object over part of the frame) the regular samples
    still look: only a frame identical to the last one scored is skipped."""
    coffee = photo_frames(["coffee"], size=(320, 180))[0]
    marked = coffee.copy()
    marked.paste((255, 0, 0), (150, 80, 170, 100))  # 20 x 20 pixels: well under 4 % of the frame
    data = encode_video(lambda i: marked if 60 <= i < 90 else coffee, frames=150, fps=5, gop=1000, size=(320, 180))
    frames = list(FrameSampler(io.BytesIO(data), interval=5))  # regular samples at 0, 5, 10, 15, 20, 25
    assert [(f.time, f.why) for f in frames] == [(0.0, "sample"), (15.0, "sample"), (20.0, "sample")]
