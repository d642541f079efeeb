"""Video scoring time on this machine, against the Wikimedia proposal's estimate.

    python -m bench.video [--long-minutes 30] [--out bench/results/video.json]   (make bench-video)

Generates three H.264 MP4s with PyAV (setup, not timed): a 10-second clip, a 2-minute 1080p
video and a long 480p video (30 minutes by default), all 25 fps, encoded with x264's
``ultrafast`` preset, which marks no scene cuts: a keyframe every 10 s only, the hard case. Each
shows harmless scikit-image photos through a slowly panning camera (24 px/s, so no two frames are
alike), changing every 7 s, with 2-second inserts of the rocket photo
at odd times (one in the short ones, five in the long one, at different offsets from the sampling
grid). Then, as the worker does it:

- **probe**: ``media.video.probe`` (every packet read, keyframes listed, first/last decoded);
- **decode**: ``media.video.FrameSampler``: the growing interval plus keyframes, and the scan for
  changed scenes (every frame decoded, a thumbnail compared every 0.5 s), frames reduced to the
  model's decode size;
- **inference**: the offline baseline (ONNX weapon backbone + open_nsfw) on those frames in
  batches of 8, as ``moderation/services/scoring.py`` does;

and reports frames sampled (of them, scene changes), each time, the total, how many inserts a
sampled frame fell in, whether the video counts as covered (may be auto-approved), and the ratio
of the long video's total to the proposal's estimate (60 s for 30 minutes of 480p at 5 s
intervals on a CPU). The long video is measured a second time without the scan (seeking to the
keyframe before each sample, as before scene detection) as the baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from fractions import Fraction
from pathlib import Path

PROPOSAL_SECONDS_PER_30_MIN = 60.0
FPS = 25
PAN_SPEED = 24  # pixels a second the camera pans over each photo
BATCH = 8


def _photos(size: tuple[int, int]):
    from tests.images import photo

    names = ["chelsea", "coffee", "astronaut", "camera", "coins", "horse"]
    return [photo(name).convert("RGB").resize(size) for name in names if name], photo("rocket").convert("RGB").resize(
        size
    )


def generate(path: Path, *, seconds: int, size: tuple[int, int], inserts: list[float]) -> None:
    """Harmless photos, each for 7 s, seen through a slowly panning camera (so no two frames are
    the same, as in real footage), with 2-second still inserts of the rocket."""
    import av
    from PIL import Image

    width, height = size
    safe, harmful = _photos(size)
    wide = [photo.resize((width * 5 // 4, height * 5 // 4), Image.Resampling.BILINEAR) for photo in safe]
    insert = av.VideoFrame.from_image(harmful)
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(10 * FPS)}
        for index in range(seconds * FPS):
            t = index / FPS
            if any(at <= t < at + 2 for at in inserts):
                frame = insert
            else:
                photo = wide[int(t // 7) % len(wide)]
                x, y = int(t % 7 * PAN_SPEED), int(t % 7 * PAN_SPEED / 3)  # pixels a second
                frame = av.VideoFrame.from_image(photo.crop((x, y, x + width, y + height)))
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def measure(path: Path, classifier, inserts: list[float], *, scan: bool = True) -> dict:
    from media.video import FrameSampler, VideoLimits

    limits = VideoLimits(max_seconds=10**6, max_pixels=2**40, max_fps=1000)
    started = time.perf_counter()
    sampler = FrameSampler(
        str(path),
        max_side=max(classifier.min_decode_side * 2, 256),
        limits=limits,
        scan_megapixels=math.inf if scan else 0,
    )
    probed = time.perf_counter() - started
    decode = inference = 0.0
    times: list[float] = []
    batch = []
    clock = time.perf_counter()
    for frame in sampler:
        batch.append(frame)
        times.append(frame.time)
        if len(batch) == BATCH:
            decode += time.perf_counter() - clock
            clock = time.perf_counter()
            classifier.predict([f.image for f in batch])
            inference += time.perf_counter() - clock
            batch, clock = [], time.perf_counter()
    decode += time.perf_counter() - clock
    if batch:
        clock = time.perf_counter()
        classifier.predict([f.image for f in batch])
        inference += time.perf_counter() - clock
    info = sampler.info
    return {
        "duration_s": round(info.duration, 1),
        "size": f"{info.width}x{info.height}",
        "keyframes": len(info.keyframes),
        "frames_sampled": len(times),
        "scene_samples": sampler.scene_samples,
        "probe_s": round(probed, 2),
        "decode_s": round(decode, 2),
        "inference_s": round(inference, 2),
        "total_s": round(probed + decode + inference, 2),
        "inserts_found": f"{sum(any(at <= t < at + 2 for t in times) for at in inserts)}/{len(inserts)}",
        "covered": sampler.covered,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-minutes", type=int, default=30)
    parser.add_argument("--out", default="bench/results/video.json")
    args = parser.parse_args(argv)

    from moderation.ml.baseline import BaselineClassifier, export_serving

    folder = Path(tempfile.mkdtemp(prefix="vigil-bench-video-"))
    classifier = BaselineClassifier(serving=export_serving(folder / "baseline.onnx"))
    long = args.long_minutes * 60
    # The long video's inserts sit at different offsets from its 5 s sampling grid (0.3 … 3.9 s past a sample).
    shares, offsets = (0.13, 0.31, 0.5, 0.67, 0.88), (0.3, 1.2, 2.1, 3.0, 3.9)
    long_inserts = [round(long * share / 5) * 5 + offset for share, offset in zip(shares, offsets, strict=True)]
    cases = [
        ("10 s clip, 480p", 10, (854, 480), [4.3]),
        ("2 min, 1080p", 120, (1920, 1080), [61.3]),
        (f"{args.long_minutes} min, 480p", long, (854, 480), long_inserts),
    ]
    results = {}
    for name, seconds, size, inserts in cases:
        path = folder / f"{seconds}s-{size[1]}p.mp4"
        began = time.perf_counter()
        generate(path, seconds=seconds, size=size, inserts=inserts)
        print(
            f"generated {name} in {time.perf_counter() - began:.0f} s ({path.stat().st_size / 1e6:.1f} MB)", flush=True
        )
        results[name] = measure(path, classifier, inserts)
        if seconds == long:
            results[f"{name}, no scan (baseline)"] = measure(path, classifier, inserts, scan=False)
        path.unlink()
    long_total = results[cases[-1][0]]["total_s"]
    estimate = PROPOSAL_SECONDS_PER_30_MIN * args.long_minutes / 30
    results["long video vs the proposal's estimate"] = {
        "estimate_s": estimate,
        "measured_s": long_total,
        "ratio": round(long_total / estimate, 2),
    }
    columns = [
        "duration_s",
        "size",
        "keyframes",
        "frames_sampled",
        "scene_samples",
        "probe_s",
        "decode_s",
        "inference_s",
        "total_s",
        "inserts_found",
        "covered",
    ]
    print(f"{'video':<30}" + "".join(f"{c:>15}" for c in columns))
    for name, result in results.items():
        if "total_s" in result:
            print(f"{name:<30}" + "".join(f"{result[c]!s:>15}" for c in columns))
    baseline = results[f"{cases[-1][0]}, no scan (baseline)"]["total_s"]
    print(f"long video with the scan vs without: {long_total / baseline:.2f} x the time")
    print(f"long video: {long_total} s measured, proposal {estimate:.0f} s, ratio {long_total / estimate:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
