"""Labelled image sets for training and evaluation.

Two layouts are read, both the source paper's:

- an ImageFolder directory: ``<root>/<split>/safe/*`` and ``<root>/<split>/harmful/*``
  (``split`` is ``train``, ``val`` or ``test``); a directory with ``safe/`` and ``harmful/``
  directly inside is one unnamed split;
- a manifest (``manifest.csv`` at the root, as a feedback export writes it) with at least the
  columns ``file`` and ``label``, and optionally ``split`` and ``category`` (a harmful image's
  category, which a multi-label head learns); ``file`` is relative to the root.

A folder with ``safe/`` and ``harmful/`` directly inside may bring its splits in a separate file
(``SPLITS.csv`` at the root is read by itself, or any file given as ``splits_file``) with the
columns ``file`` (relative to the root, under ``safe/`` or ``harmful/``) and ``split``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CLASSES = ("safe", "harmful")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv"}
MANIFEST = "manifest.csv"
SPLITS = "SPLITS.csv"


class DatasetError(ValueError):
    """The directory is not a labelled dataset Vigil can read; the message says why."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # index into CLASSES: 0 safe, 1 harmful
    category: str = ""  # a harmful image's category, from a manifest's ``category`` column


def image_files(path: Path, *, videos: bool = False) -> list[Path]:
    """Image files (and video files, with ``videos``) under ``path`` (recursively, sorted), or
    ``path`` itself if it is a file."""
    if path.is_file():
        return [path]
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES if videos else IMAGE_SUFFIXES
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _folder_samples(root: Path) -> list[Sample]:
    samples = []
    for label, name in enumerate(CLASSES):
        folder = root / name
        if folder.is_dir():
            samples.extend(Sample(path, label) for path in image_files(folder))
    return samples


def _manifest_samples(root: Path, split: str | None) -> list[Sample]:
    samples = []
    with (root / MANIFEST).open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "label"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{root / MANIFEST} lacks the column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if split is not None and row.get("split", "") != split:
                continue
            if row["label"] not in CLASSES:
                raise DatasetError(f"{root / MANIFEST}:{line}: label must be one of {CLASSES}, not {row['label']!r}")
            category = (row.get("category") or "") if row["label"] == "harmful" else ""
            samples.append(Sample(root / row["file"], CLASSES.index(row["label"]), category))
    return samples


def _splits_samples(root: Path, splits_file: Path, split: str) -> list[Sample]:
    samples = []
    with splits_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "split"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{splits_file} lacks the column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if row["split"] != split:
                continue
            label = Path(row["file"]).parts[0] if row["file"] else ""
            if label not in CLASSES:
                raise DatasetError(f"{splits_file}:{line}: {row['file']!r} is not under safe/ or harmful/")
            samples.append(Sample(root / row["file"], CLASSES.index(label)))
    return samples


def splits_file_for(root: str | Path, splits_file: str | Path | None = None) -> Path | None:
    """The splits file that applies to ``root``: the one given (it must exist), else
    ``root/SPLITS.csv`` when there is one, else None."""
    if splits_file:
        path = Path(splits_file)
        if not path.is_file():
            raise DatasetError(f"the splits file {path} does not exist")
        return path
    found = Path(root) / SPLITS
    return found if found.is_file() else None


def load_split(root: str | Path, split: str | None, *, splits_file: str | Path | None = None) -> list[Sample]:
    """The samples of one split (``None``: the whole directory as one split). A split comes from
    ``root/<split>/``, the manifest, or a splits file (:func:`splits_file_for`)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory")
    splits = splits_file_for(root, splits_file)
    if (root / MANIFEST).is_file():
        samples = _manifest_samples(root, split)
    elif split and splits is not None and not (root / split).is_dir():
        samples = _splits_samples(root, splits, split)
    else:
        samples = _folder_samples(root / split if split else root)
    if not samples:
        where = f"{root}/{split}" if split else str(root)
        raise DatasetError(
            f"no labelled images in {where}: expected safe/ and harmful/ folders of images there "
            f"(or a {MANIFEST} with file,label[,split] columns at {root})"
        )
    return samples


def load_evaluation_split(
    root: str | Path, *, splits_file: str | Path | None = None
) -> tuple[str | None, list[Sample]]:
    """The split to evaluate on: ``test`` if present, else ``val``, else the directory itself."""
    root = Path(root)
    splits_file_for(root, splits_file)  # a missing --splits file is an error, not "no split"
    for split in ("test", "val"):
        try:
            return split, load_split(root, split, splits_file=splits_file)
        except DatasetError:
            continue
    return None, load_split(root, None)


def class_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts = dict.fromkeys(CLASSES, 0)
    for sample in samples:
        counts[CLASSES[sample.label]] += 1
    return counts


class ImageDataset:
    """A torch ``Dataset`` of decoded, transformed images (``map``-style)."""

    def __init__(self, samples: Sequence[Sample], transform, *, min_side: int | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.min_side = min_side

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from media.images import open_rgb

        sample = self.samples[index]
        try:
            image = open_rgb(sample.path, min_side=self.min_side)
        except Exception as exc:  # any unreadable file: say which one, instead of a decoder traceback
            raise DatasetError(f"cannot read {sample.path}: {type(exc).__name__}: {exc}") from exc
        return self.transform(image), sample.label
