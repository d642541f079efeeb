"""Operational figures from the roll-ups: latency percentiles, throughput and queue depth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from metrics.models import LatencyBin, QueueHour
from metrics.selectors.windows import Window
from metrics.services.rollups import duration_of_bin
from moderation.models import ModelVersion


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float | None
    p95: float | None


def latency_percentiles(*, metric: str, window: Window, model_version: ModelVersion | None = None) -> Percentiles:
    """p50/p95 from the summed histogram: the middle of the bin holding the percentile (bins are
    about 12 % wide, so the figure is within about 6 %)."""
    rows = LatencyBin.objects.filter(metric=metric, hour__gte=window.since, hour__lt=window.until)
    if model_version is not None:
        rows = rows.filter(model_version=model_version)
    histogram = list(rows.values("bin").annotate(n=Sum("count")).order_by("bin").values_list("bin", "n"))
    total = sum(n for _, n in histogram)
    if not total:
        return Percentiles(0, None, None)

    def percentile(q: float) -> float:
        rank = q * total
        seen = 0
        for b, n in histogram:
            seen += n
            if seen >= rank:
                return duration_of_bin(b)
        return duration_of_bin(histogram[-1][0])

    return Percentiles(total, percentile(0.5), percentile(0.95))


@dataclass(frozen=True)
class Throughput:
    scored: int
    per_second: float  # over the whole window
    peak_hour: datetime | None
    peak_per_second: float
    hourly: list[tuple[datetime, int]]

    @property
    def per_hour(self) -> float:
        return self.per_second * 3600

    @property
    def peak_per_hour(self) -> int:
        return round(self.peak_per_second * 3600)


def throughput(*, hourly: list[tuple[datetime, int]], window: Window) -> Throughput:
    """From the scored-per-hour series of a window summary."""
    scored = sum(n for _, n in hourly)
    peak = max(hourly, key=lambda row: row[1], default=(None, 0))
    return Throughput(
        scored=scored,
        per_second=scored / (window.until - window.since).total_seconds(),
        peak_hour=peak[0],
        peak_per_second=peak[1] / 3600,
        hourly=hourly,
    )


def queue_depth_series(*, window: Window) -> list[tuple[datetime, int]]:
    """Queue depth at the end of each hour with activity: rounds opened minus rounds closed,
    counted from the first round ever (the depth at the window's start is the running total)."""
    before = QueueHour.objects.filter(hour__lt=window.since).aggregate(
        depth=Coalesce(Sum(F("opened") - F("closed")), 0)
    )["depth"]
    series = []
    depth = before
    for hour, opened, closed in (
        QueueHour.objects.filter(hour__gte=window.since, hour__lt=window.until)
        .order_by("hour")
        .values_list("hour", "opened", "closed")
    ):
        depth += opened - closed
        series.append((hour, depth))
    return series
