"""Export human decisions as training data.

**Which label an image gets.** An image is identified by its bytes (sha256). Its label is the
standing human decision: the latest decision whose review round is ``decided`` (undone ones never
count), and across several uploads of the same bytes, the latest such decision wins.

**Split.** ``val_fraction`` of each label goes to ``val`` (rounded), the rest to ``train``: the
images of a label with the smallest ``sha256(seed:sha256)``. Exactly stratified, reproducible for a
seed, and an image keeps its split as the dataset grows, so models trained on successive exports
are compared on stable validation images.

**Animations.** The trainer reads one picture per file, so an animated upload is exported as
the frame its routing score found worst (a PNG, ``<sha256>-frame<k>.png``, ``frame`` in the
manifest): the first frame of a GIF whose fourth frame shows the gun would teach the wrong thing.
A video likewise, but several frames, each a row with the video's label and split (one split per
video, so its frames never sit on both sides): ``<sha256>-t<seconds>.png`` (``frame`` and
``frame_time`` say which). Up to :data:`VIDEO_FRAMES` sampled frames at least
:data:`VIDEO_FRAME_GAP` seconds apart, the highest-scored first: for a video labelled harmful only
those scored at least :data:`HARMFUL_SHARE` of its worst (the label is about the bad frames, not
the cat before them); for one labelled safe, its highest-scored frames (the hard negatives).

**Memory.** Rows stream from the database in chunks and image bytes are copied in blocks; only
each image's sha256 and label are held (for the split), never the images.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.core.files.storage import default_storage
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from PIL import Image

from media.frames import frame_at
from media.video import frame_at_time
from moderation.models import Upload
from reviews.models import Decision, ReviewRound

SPLITS = ("train", "val")
MANIFEST_COLUMNS = (
    "file",
    "label",
    "split",
    "sha256",
    "category",
    "model_score",
    "model_version",
    "moderator",
    "decided_at",
    "upload_id",
    "frame",
    "frame_time",
)
BLOCK = 256 * 1024


@dataclass(frozen=True)
class ExportFilters:
    since: datetime | None = None
    until: datetime | None = None
    model_version: str = ""  # name
    label: str = ""
    category: str = ""
    moderator: str = ""  # username
    overturned_only: bool = False  # humans disagreed with the model's lean (score >= 0.5 harmful)


@dataclass(frozen=True)
class ExportRow:
    file: str
    label: str
    split: str
    sha256: str
    category: str
    model_score: float | None
    model_version: str
    moderator: str
    decided_at: str
    upload_id: str
    storage_name: str
    # Animated uploads: the index of the frame exported (the one the model scored worst), as a PNG
    # image; the trainer reads one picture per file, and the label is about the whole animation.
    # None for a still image, exported as stored.
    frame: int | None = None
    # Videos: the exported frame's time in seconds (the sampled frame the model scored worst).
    frame_time: float | None = None

    def manifest(self) -> dict:
        return {name: getattr(self, name) for name in MANIFEST_COLUMNS}


def standing_decisions(filters: ExportFilters) -> QuerySet[Decision]:
    """Each upload's standing decision, filtered, ordered by image then newest first."""
    decided = Decision.objects.filter(round__status=ReviewRound.Status.DECIDED)
    later = decided.filter(upload=OuterRef("upload"), created_at__gt=OuterRef("created_at"))
    rows = decided.filter(~Exists(later))
    if filters.since:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(created_at__lt=filters.until)
    if filters.model_version:
        rows = rows.filter(model_version__name=filters.model_version)
    if filters.label:
        rows = rows.filter(label=filters.label)
    if filters.category:
        rows = rows.filter(category=filters.category)
    if filters.moderator:
        rows = rows.filter(moderator__username=filters.moderator)
    if filters.overturned_only:
        rows = rows.filter(
            Q(label=Decision.Label.HARMFUL, model_score__lt=0.5) | Q(label=Decision.Label.SAFE, model_score__gte=0.5)
        )
    return rows.order_by("upload__sha256", "-created_at", "-id")


def _unique_images(rows: QuerySet[Decision], *fields_: str) -> Iterator[tuple]:
    """One row per image (sha256): the first, i.e. the latest standing decision."""
    previous = None
    for row in rows.values_list("upload__sha256", *fields_).iterator(chunk_size=2000):
        if row[0] != previous:
            previous = row[0]
            yield row


def _val_images(filters: ExportFilters, *, val_fraction: float, seed: int) -> set[str]:
    by_label: dict[str, list[tuple[bytes, str]]] = {}
    for sha256, label in _unique_images(standing_decisions(filters), "label"):
        rank = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
        by_label.setdefault(label, []).append((rank, sha256))
    chosen: set[str] = set()
    for images in by_label.values():
        images.sort()
        chosen.update(sha256 for _, sha256 in images[: round(val_fraction * len(images))])
    return chosen


def export_rows(filters: ExportFilters, *, val_fraction: float = 0.2, seed: int = 13) -> Iterator[ExportRow]:
    """The export, one row per image, streamed. ``file`` is where the image sits in the
    ImageFolder layout: ``<split>/<label>/<sha256>.<ext>``."""
    val = _val_images(filters, val_fraction=val_fraction, seed=seed)
    rows = standing_decisions(filters).annotate(
        mv_name=F("model_version__name"), moderator_name=F("moderator__username")
    )
    for (
        sha256,
        label,
        category,
        score,
        mv_name,
        moderator,
        decided_at,
        upload_id,
        original,
        frames,
        worst_frame,
        kind,
        sampled,
    ) in _unique_images(
        rows,
        "label",
        "category",
        "model_score",
        "mv_name",
        "moderator_name",
        "created_at",
        "upload_id",
        "upload__original",
        "upload__frames",
        "upload__score__worst_frame",
        "upload__kind",
        "upload__score__frames",
    ):
        split = "val" if sha256 in val else "train"
        if kind == Upload.Kind.VIDEO:
            pictures = [(index, at, f"{sha256}-t{at:.3f}.png") for index, at in video_frames_to_export(sampled, label)]
        elif frames > 1:
            pictures = [(worst_frame or 0, None, f"{sha256}-frame{worst_frame or 0}.png")]
        else:
            pictures = [(None, None, f"{sha256}.{original.rsplit('.', 1)[-1].lower() if '.' in original else 'img'}")]
        for frame, frame_time, name in pictures:
            yield ExportRow(
                file=f"{split}/{label}/{name}",
                label=label,
                split=split,
                sha256=sha256,
                category=category,
                model_score=score,
                model_version=mv_name or "",
                moderator=moderator,
                decided_at=decided_at.isoformat(),
                upload_id=str(upload_id),
                storage_name=original,
                frame=frame,
                frame_time=frame_time,
            )


VIDEO_FRAMES = 3
VIDEO_FRAME_GAP = 1.0  # seconds between a video's exported frames (neighbours look alike)
HARMFUL_SHARE = 0.5


def video_frames_to_export(sampled: list[dict] | None, label: str) -> list[tuple[int, float]]:
    """A video's frames to export, as (sampled frame index, time), highest-scored first (see the
    module's docstring); the first frame when the video has no scored frames."""
    if not sampled:
        return [(0, 0.0)]
    ranked = sorted(sampled, key=lambda f: (-max(f["scores"].values()), f["time"]))
    worst = max(ranked[0]["scores"].values())
    chosen: list[dict] = []
    for frame in ranked:
        if len(chosen) == VIDEO_FRAMES:
            break
        if label == Decision.Label.HARMFUL and max(frame["scores"].values()) < HARMFUL_SHARE * worst:
            break
        if all(abs(frame["time"] - other["time"]) >= VIDEO_FRAME_GAP for other in chosen):
            chosen.append(frame)
    return [(frame["index"], float(frame["time"])) for frame in chosen]


@dataclass
class ExportSummary:
    images: int = 0
    by_split_label: dict[str, int] = field(default_factory=dict)  # "train/harmful": n

    def count(self, row: ExportRow) -> None:  # a file (a video counts once per exported frame)
        self.images += 1
        key = f"{row.split}/{row.label}"
        self.by_split_label[key] = self.by_split_label.get(key, 0) + 1


def _copy(row: ExportRow, target) -> None:
    """The stored original, block by block; for an animation, its exported frame as PNG."""
    with default_storage.open(row.storage_name, "rb") as source:
        if row.frame_time is not None:
            frame_at_time(source, row.frame_time).save(target, format="PNG")
            return
        if row.frame is not None:
            with Image.open(source) as image:
                frame_at(image, row.frame).save(target, format="PNG")
            return
        while block := source.read(BLOCK):
            target.write(block)


class _Manifests:
    """manifest.csv (what the trainer reads) and manifest.jsonl, written side by side."""

    def __init__(self, csv_handle, jsonl_handle) -> None:
        self.csv = csv.DictWriter(csv_handle, fieldnames=MANIFEST_COLUMNS)
        self.csv.writeheader()
        self.jsonl = jsonl_handle

    def add(self, row: ExportRow) -> None:
        self.csv.writerow(row.manifest())
        self.jsonl.write(json.dumps(row.manifest()) + "\n")


def export_imagefolder(
    destination: str | Path, filters: ExportFilters, *, val_fraction: float = 0.2, seed: int = 13
) -> ExportSummary:
    """Write ``train/`` and ``val/`` with ``safe/`` and ``harmful/`` (the source paper's layout) and
    both manifests into ``destination``, which must be empty or absent."""
    root = Path(destination)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    with (root / "manifest.csv").open("w", newline="") as c, (root / "manifest.jsonl").open("w") as j:
        manifests = _Manifests(c, j)
        for row in export_rows(filters, val_fraction=val_fraction, seed=seed):
            path = root / row.file
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as target:
                _copy(row, target)
            manifests.add(row)
            summary.count(row)
    return summary


class _Echo:
    """A file-like whose write returns the text, so csv.writer yields lines (Django's recipe)."""

    def write(self, value: str) -> str:
        return value


def manifest_lines(rows: Iterator[ExportRow], fmt: str) -> Iterator[str]:
    """The manifest as text lines, ``csv`` (with its header) or ``jsonl``, one row at a time."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row.manifest()) + "\n"
        return
    writer = csv.DictWriter(_Echo(), fieldnames=MANIFEST_COLUMNS)
    yield writer.writeheader()
    for row in rows:
        yield writer.writerow(row.manifest())


def export_manifest(handle, filters: ExportFilters, *, fmt: str, val_fraction: float = 0.2, seed: int = 13) -> int:
    """Write only the manifest, as ``csv`` or ``jsonl``, to a text handle. Returns the row count."""
    count = 0
    for line in manifest_lines(export_rows(filters, val_fraction=val_fraction, seed=seed), fmt):
        handle.write(line)
        count += 1
    return count - (fmt == "csv")  # the header is not a row


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that hands its bytes over as they come (zipfile then
    writes data descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def export_zip_stream(filters: ExportFilters, *, val_fraction: float = 0.2, seed: int = 13) -> Iterator[bytes]:
    """The ImageFolder layout and both manifests as a zip, produced while it is sent. The
    manifests come first (deflated, one pass over the rows each), then the images (stored: they
    are compressed already), so nothing accumulates but the zip directory's entries."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, fmt in (("manifest.csv", "csv"), ("manifest.jsonl", "jsonl")):
            info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as entry:
                text = io.TextIOWrapper(entry, encoding="utf-8", newline="")
                export_manifest(text, filters, fmt=fmt, val_fraction=val_fraction, seed=seed)
                text.flush()
                text.detach()
            yield sink.take()
        for row in export_rows(filters, val_fraction=val_fraction, seed=seed):
            info = zipfile.ZipInfo(row.file, date_time=datetime.now().timetuple()[:6])
            with archive.open(info, "w", force_zip64=True) as entry:
                _copy(row, entry)
            yield sink.take()
    yield sink.take()
