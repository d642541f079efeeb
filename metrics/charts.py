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


EMPTY = "not enough data yet"


def _frame(title: str, body: SafeString, x_label: str, y_label: str, *, empty: bool = False) -> SafeString:
    """Axes, their labels, and ``body`` (tick labels and curves), or "not enough data yet"."""
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    if empty:
        body = format_html(
            '<text class="empty" x="{}" y="{}" text-anchor="middle">{}</text>', WIDTH / 2, HEIGHT / 2, EMPTY
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}{note}">'
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
        xl=HEIGHT - 4,
        cy=HEIGHT / 2,
        title=title,
        note=f": {EMPTY}" if empty else "",
        x_label=x_label,
        y_label=y_label,
        body=body,
    )


def _scale(x: float, y: float, x_max: float = 1.0, y_max: float = 1.0) -> tuple[float, float]:
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    return PAD + inner_w * (x / x_max if x_max else 0), PAD + inner_h * (1 - (y / y_max if y_max else 0))


def _x_tick(x: float, text: str, anchor: str = "middle") -> SafeString:
    sx, _ = _scale(x, 0)
    return format_html(
        '<line class="tickmark" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"/>'
        '<text class="tick" x="{x}" y="{ty}" text-anchor="{a}">{t}</text>',
        x=f"{sx:.1f}",
        y0=HEIGHT - PAD,
        y1=HEIGHT - PAD + 3,
        ty=HEIGHT - PAD + 13,
        a=anchor,
        t=text,
    )


def _y_tick(y: float, text: str, y_max: float = 1.0) -> SafeString:
    _, sy = _scale(0, y, 1, y_max)
    return format_html(
        '<line class="tickmark" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/>'
        '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{t}</text>',
        x0=PAD - 3,
        x1=PAD,
        y=f"{sy:.1f}",
        tx=PAD - 5,
        ty=f"{sy + 3:.1f}",
        t=text,
    )


def _unit_ticks() -> str:
    return "".join(_x_tick(v, f"{v:g}") + _y_tick(v, f"{v:g}") for v in (0, 0.5, 1))


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
    """A curve in the unit square (ROC, precision-recall), with optional marked points; ticks at 0,
    0.5 and 1 on both axes. Fewer than two points make no curve: it says so instead."""
    if len(xs) < 2:
        return _frame(title, mark_safe(""), x_label, y_label, empty=True)
    parts = [_unit_ticks()]
    if diagonal:
        parts.append(_polyline([_scale(0, 0), _scale(1, 1)], "diagonal"))
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
    """A step line over time (queue depth, hourly volume); time ticks at both ends, value ticks at
    0, half and the top. Fewer than two points make no line: it says so instead."""
    if len(series) < 2:
        return _frame(title, mark_safe(""), "time (UTC)", y_label, empty=True)
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
    ticks = [
        _x_tick(0, series[0][0].strftime("%m-%d %H:%M"), "start"),
        _x_tick(1, series[-1][0].strftime("%m-%d %H:%M"), "end"),
        _y_tick(0, "0", top),
        _y_tick(top, f"{top:g}", top),
    ]
    if top >= 2:
        ticks.append(_y_tick(top / 2, f"{top / 2:g}", top))
    return _frame(title, mark_safe("".join(ticks) + _polyline(points, "curve")), "time (UTC)", y_label)
