"""Small server-side SVG charts: no JavaScript library, numbers shown beside them in tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 320, 220, 32


def _polyline(points: Sequence[tuple[float, float]], css: str) -> SafeString:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return format_html('<polyline class="{}" fill="none" points="{}"/>', css, coords)


def _frame(title: str, body: SafeString, x_label: str, y_label: str) -> SafeString:
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}">'
        "<title>{title}</title>"
        '<rect class="axis" x="{p}" y="{p}" width="{iw}" height="{ih}" fill="none"/>'
        '<text class="label" x="{cx}" y="{xl}" text-anchor="middle">{x_label}</text>'
        '<text class="label" x="10" y="{cy}" text-anchor="middle" transform="rotate(-90 10 {cy})">{y_label}</text>'
        "{body}</svg>",
        w=WIDTH,
        h=HEIGHT,
        p=PAD,
        iw=inner_w,
        ih=inner_h,
        cx=WIDTH / 2,
        xl=HEIGHT - 6,
        cy=HEIGHT / 2,
        title=title,
        x_label=x_label,
        y_label=y_label,
        body=body,
    )


def _scale(x: float, y: float, x_max: float = 1.0, y_max: float = 1.0) -> tuple[float, float]:
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    return PAD + inner_w * (x / x_max if x_max else 0), PAD + inner_h * (1 - (y / y_max if y_max else 0))


def curve_chart(
    title: str,
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    marks: Sequence[tuple[float, float, str]] = (),
) -> SafeString:
    """A curve in the unit square (ROC, precision-recall), with optional marked points."""
    parts = []
    if diagonal:
        parts.append(_polyline([_scale(0, 0), _scale(1, 1)], "diagonal"))
    if xs:
        parts.append(_polyline([_scale(x, y) for x, y in zip(xs, ys, strict=True)], "curve"))
    parts.append(
        format_html_join(
            "",
            '<circle class="mark" cx="{}" cy="{}" r="4"><title>{}</title></circle>',
            ((f"{cx:.1f}", f"{cy:.1f}", label) for cx, cy, label in ((*_scale(x, y), label) for x, y, label in marks)),
        )
    )
    return _frame(title, mark_safe("".join(parts)), x_label, y_label)


def series_chart(title: str, series: Sequence[tuple[datetime, float]], *, y_label: str) -> SafeString:
    """A step line over time (queue depth, hourly volume)."""
    if not series:
        return _frame(title, mark_safe(""), "time", y_label)
    start, end = series[0][0].timestamp(), series[-1][0].timestamp()
    span = max(end - start, 1.0)
    top = max(max(v for _, v in series), 1)
    points = []
    previous = None
    for when, value in series:
        x = (when.timestamp() - start) / span
        if previous is not None:
            points.append(_scale(x, previous, 1, top))  # hold the last value until this hour: a step
        points.append(_scale(x, value, 1, top))
        previous = value
    labels = format_html(
        '<text class="tick" x="{}" y="{}">{}</text><text class="tick" x="{}" y="{}" text-anchor="end">{}</text>'
        '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
        PAD,
        HEIGHT - PAD + 12,
        series[0][0].strftime("%m-%d %H:%M"),
        WIDTH - PAD,
        HEIGHT - PAD + 12,
        series[-1][0].strftime("%m-%d %H:%M"),
        PAD - 3,
        PAD + 4,
        f"{top:g}",
    )
    return _frame(title, mark_safe(_polyline(points, "curve") + labels), "time (UTC)", y_label)
