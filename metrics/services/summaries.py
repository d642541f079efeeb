"""Window summaries: the cells of a standard window, summed once and reused.

A summary is used while the roll-ups have not changed since it was computed, or while it is
younger than its window's allowance (``VIGIL_METRICS_MAX_STALENESS`` seconds, times 1 for 24 h,
2 for 7 d, 5 for 30 d, 10 for 90 d); otherwise it is recomputed, by the page that
needs it or, usually first, by the beat task. Pages show when their figures were computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from metrics.models import RollupState, ScoreCell, WindowSummary
from metrics.selectors.traffic import COUNTS, Cell, traffic_cells
from metrics.selectors.windows import WINDOWS, Window, window_named
from moderation.bins import parse_cell
from moderation.models import ModelVersion

# How stale each window may be, in units of VIGIL_METRICS_MAX_STALENESS (seconds).
STALENESS_FACTOR = {"24h": 1, "7d": 2, "30d": 5, "90d": 10}


@dataclass(frozen=True)
class Summary:
    window: Window
    cells: list[Cell]
    hourly: list[tuple[datetime, int]]
    computed_at: datetime


def _fresh(row: WindowSummary, window: Window, changed_at: datetime | None, now: datetime) -> bool:
    if (row.since, row.until) != (window.since, window.until):
        return False
    unchanged = changed_at is None or row.computed_at >= changed_at
    allowance = timedelta(seconds=settings.VIGIL_METRICS_MAX_STALENESS * STALENESS_FACTOR.get(window.key, 1))
    return unchanged or now - row.computed_at <= allowance


def _compute(model_version: ModelVersion, window: Window) -> WindowSummary:
    cells = traffic_cells(model_version=model_version, window=window)
    hourly = (
        ScoreCell.objects.filter(model_version=model_version, hour__gte=window.since, hour__lt=window.until)
        .values("hour")
        .annotate(n=Sum("scored"))
        .order_by("hour")
        .values_list("hour", "n")
    )
    row, _ = WindowSummary.objects.update_or_create(
        model_version=model_version,
        window=window.key,
        defaults={
            "since": window.since,
            "until": window.until,
            "computed_at": timezone.now(),
            "cells": [_entry(c) for c in cells],
            "hourly": [[hour.isoformat(), n] for hour, n in hourly],
        },
    )
    return row


def _key(cell: Cell) -> str:
    return "|".join(f"{name}={b}" for name, b in sorted(cell.bins.items()))


def _entry(cell: Cell) -> list:
    """[cell key, counts in COUNTS order] and, where harmful labels name categories, {category: n}."""
    named = [cell.harmful_by_category] if cell.harmful_by_category else []
    return [_key(cell), *(cell.counts[name] for name in COUNTS), *named]


def _cell(entry: list) -> Cell:
    key, counts, named = entry[0], entry[1 : len(COUNTS) + 1], entry[len(COUNTS) + 1 :]
    by_category = named[0] if named else {}
    return Cell(bins=parse_cell(key), counts=dict(zip(COUNTS, counts, strict=True)), harmful_by_category=by_category)


def window_summary(*, model_version: ModelVersion, window: Window) -> Summary:
    now = timezone.now()
    changed_at = RollupState.objects.filter(pk=1).values_list("changed_at", flat=True).first()
    row = WindowSummary.objects.filter(model_version=model_version, window=window.key).first()
    if row is None or not _fresh(row, window, changed_at, now):
        row = _compute(model_version, window)
    return Summary(
        window=window,
        cells=[_cell(entry) for entry in row.cells],
        hourly=[(parse_datetime(hour), n) for hour, n in row.hourly],
        computed_at=row.computed_at,
    )


def summaries_refresh() -> int:
    """Recompute the stale summaries of the model versions that score traffic (the beat task)."""
    now = timezone.now()
    changed_at = RollupState.objects.filter(pk=1).values_list("changed_at", flat=True).first()
    versions = ModelVersion.objects.filter(status__in=[ModelVersion.Status.ACTIVE, ModelVersion.Status.SHADOW])
    done = 0
    for model_version in versions:
        for key in WINDOWS:
            window = window_named(key, now=now)
            row = WindowSummary.objects.filter(model_version=model_version, window=key).first()
            if row is None or not _fresh(row, window, changed_at, now):
                _compute(model_version, window)
                done += 1
    return done
