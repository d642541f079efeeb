"""The hash-list file formats trust-and-safety teams exchange, read and written line by line so a
million-hash file never sits in memory.

- ``pdq``: one PDQ hash (64 hex digits) a line, optionally followed, after whitespace, a comma or a
  tab, by labels (separated by spaces or commas). Blank lines and lines starting with ``#`` are
  skipped.
- ``hma``: the CSV of the Hasher-Matcher-Actioner and ThreatExchange (python-threatexchange's
  ``HMASerialization``): ``hash, indicator_id, first_descriptor_id, added_on, labels`` with the
  labels separated by spaces; its 4-column ThreatExchange CLI variant (``CliIndicatorSerialization``:
  ``hash, first_descriptor_id, added_on, labels``) is read too. A header row is skipped. The
  indicator id becomes the entry's ``source_id``; the CLI variant has none (a descriptor id is
  one opinion about a hash, not the hash's id).
- ``auto``: ``hma`` when the first data row is a header or has 5 columns (4 for the CLI variant)
  with a numeric descriptor id where those formats put it; ``pdq`` otherwise.

Parsing yields a :class:`HashRow` or a :class:`LineError` (with its line number) per data line;
the caller decides what an error means (:func:`hashes.services.lists.hash_list_import` refuses the
whole file).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from hashes.pdq import InvalidPdq, pdq_parse

FORMATS = ("pdq", "hma")
LABELS_MAX = 255  # HashEntry.labels
SOURCE_ID_MAX = 64  # HashEntry.source_id
HEADER_NAMES = {"hash", "pdq", "indicator", "signal", "signal_value"}
_LABEL_SEPARATORS = re.compile(r"[\s,]+")
_HASH_THEN_REST = re.compile(r"(\S+?)(?:[\s,]+(.*))?")


@dataclass(frozen=True)
class HashRow:
    line: int
    pdq: str
    labels: str = ""
    source_id: str = ""


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class ExportRow:
    """One hash to write; ``indicator_id`` and ``added_on`` are used by ``hma`` only."""

    pdq: str
    labels: str
    indicator_id: str
    added_on: datetime | None


def labels_normalise(text: str) -> str:
    """Labels as Vigil keeps them: separated by one space, repeats dropped, order kept."""
    return " ".join(dict.fromkeys(label for label in _LABEL_SEPARATORS.split(text) if label))


def format_detect(line: str) -> str:
    """``hma`` or ``pdq``, from the first data line (not blank, not a ``#`` comment)."""
    cells = _csv_cells(line)
    if cells and cells[0].strip().lower() in HEADER_NAMES:
        return "hma"
    if len(cells) == 5 and cells[2].strip().isdigit():
        return "hma"
    if len(cells) == 4 and cells[1].strip().isdigit():
        return "hma"
    return "pdq"


def rows_parse(lines: Iterable[str], fmt: str = "auto") -> Iterator[HashRow | LineError]:
    """Each data line of a hash-list file as a :class:`HashRow`, or a :class:`LineError` saying
    what is wrong with it (line numbers count from 1, blank and comment lines included).

    ``fmt``: ``pdq``, ``hma`` or ``auto`` (decided by the first data line)."""
    if fmt not in (*FORMATS, "auto"):
        raise ValueError(f"unknown format {fmt!r}: one of auto, {', '.join(FORMATS)}")
    numbered = ((number, line.rstrip("\r\n")) for number, line in enumerate(lines, start=1))
    data = ((number, line) for number, line in numbered if line.strip() and not line.lstrip().startswith("#"))
    first = next(data, None)
    if first is None:
        return
    if fmt == "auto":
        fmt = format_detect(first[1])
    parse = _pdq_row if fmt == "pdq" else _hma_row
    if fmt == "hma" and _is_header(first[1]):
        first = next(data, None)
        if first is None:
            return
    for number, line in itertools.chain([first], data):
        yield parse(number, line)


def _is_header(line: str) -> bool:
    cells = _csv_cells(line)
    return bool(cells) and cells[0].strip().lower() in HEADER_NAMES


def _csv_cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return []


def _pdq_row(number: int, line: str) -> HashRow | LineError:
    match = _HASH_THEN_REST.fullmatch(line.strip())
    try:
        pdq = pdq_parse(match.group(1))
    except InvalidPdq as exc:
        return LineError(number, str(exc))
    return _row(number, pdq, labels_normalise(match.group(2) or ""), "")


def _hma_row(number: int, line: str) -> HashRow | LineError:
    try:
        cells = next(csv.reader([line]))
    except csv.Error as exc:
        return LineError(number, f"not a CSV row ({exc})")
    if len(cells) == 5:
        raw, source_id, _descriptor, _added_on, labels = cells
    elif len(cells) == 4:
        raw, _descriptor, _added_on, labels = cells
        source_id = ""
    else:
        return LineError(
            number,
            f"{len(cells)} columns; an HMA row has 5 (hash, indicator_id, first_descriptor_id, added_on, labels) "
            "or 4 (hash, first_descriptor_id, added_on, labels)",
        )
    try:
        pdq = pdq_parse(raw)
    except InvalidPdq as exc:
        return LineError(number, str(exc))
    return _row(number, pdq, labels_normalise(labels), source_id.strip())


def _row(number: int, pdq: str, labels: str, source_id: str) -> HashRow | LineError:
    if len(labels) > LABELS_MAX:
        return LineError(number, f"the labels are longer than {LABELS_MAX} characters")
    if len(source_id) > SOURCE_ID_MAX:
        return LineError(number, f"the indicator id is longer than {SOURCE_ID_MAX} characters")
    return HashRow(number, pdq, labels, source_id)


def lines_write(rows: Iterable[ExportRow], fmt: str) -> Iterator[str]:
    """``rows`` in ``fmt`` (``pdq`` or ``hma``), one line each, newline included. ``hma`` rows
    carry the indicator id twice (as indicator and first descriptor id: ThreatExchange readers
    need both, and a Vigil entry has one id) and ``added_on`` as ThreatExchange writes it."""
    if fmt == "pdq":
        for row in rows:
            yield f"{row.pdq} {row.labels}\n" if row.labels else f"{row.pdq}\n"
    elif fmt == "hma":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            added_on = row.added_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000") if row.added_on else ""
            writer.writerow([row.pdq, row.indicator_id, row.indicator_id, added_on, row.labels])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
