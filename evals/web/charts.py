"""Server-side SVG charts: daily lines, daily bars and ranked horizontal bars, with real axes.

No chart library and no script: each chart is a small SVG string built here, so pages render
complete on the first response, print well, and load nothing from anywhere. Every data label is
escaped; every point and bar carries a <title>, the browser's own tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

PALETTE = ("#2f5bd3", "#d9480f", "#2b8a3e", "#862e9c", "#0b7285", "#c2255c", "#5c940d", "#495057")
Formatter = Callable[[float], str]

_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 14, 12, 38


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1-2-5 steps)."""
    if high <= low:
        high = low + 1
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def percent(value: float) -> str:
    return f"{100 * value:.0f} %"


def usd(value: float) -> str:
    if value >= 10 or value == 0:
        return f"${value:,.0f}"
    return f"${value:.2f}" if value >= 1 else f"${value:.{3 if value >= 0.01 else 4}f}"


def count(value: float) -> str:
    return f"{value / 1000:.0f}k" if value >= 10_000 else f"{value:,.0f}"


def _date_label(day: date) -> str:
    return day.strftime("%b %d")


def _frame(
    width: int,
    height: int,
    ticks: Sequence[float],
    y_of,
    y_format: Formatter,
    y_label: str,
    days: Sequence[date],
    x_of,
) -> list[str]:
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(y_label)}">'
    ]
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid-line" x1="{_LEFT}" x2="{width - _RIGHT}"'
            f' y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(tick))}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{height - _BOTTOM}"'
        f' y2="{height - _BOTTOM}"/>'
    )
    step = max(1, math.ceil(len(days) / 8))
    for index in range(0, len(days), step):
        x = x_of(index)
        anchor = "end" if x > width - _RIGHT - 20 else "middle"  # keep the last label inside
        parts.append(
            f'<text x="{x:.1f}" y="{height - _BOTTOM + 15}" text-anchor="{anchor}">'
            f"{_date_label(days[index])}</text>"
        )
    parts.append(
        f'<text x="{_LEFT}" y="{height - 6}" class="title">{escape(y_label)}'
        f'</text><text x="{width - _RIGHT}" y="{height - 6}" text-anchor="end">'
        "day (UTC)</text>"
    )
    return parts


def _legend(names: Sequence[str]) -> str:
    if len(names) < 2:
        return ""
    items = "".join(
        f'<span><i class="swatch-{i % len(PALETTE)}"></i>{escape(name)}</span>'
        for i, name in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def line_chart(
    series: Mapping[str, Mapping[date, float | None]],
    *,
    y_label: str,
    y_format: Formatter,
    width: int = 640,
    height: int = 230,
    y_max: float | None = None,
) -> Markup:
    """One line per series over the union of days; gaps where a series has no value."""
    days = sorted({day for points in series.values() for day in points})
    values = [v for points in series.values() for v in points.values() if v is not None]
    if not days or not values:
        return Markup('<p class="empty">No data in this window.</p>')
    ticks = nice_ticks(0.0, max(values) if y_max is None else y_max)
    top = ticks[-1] or 1.0
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def x_of(index: int) -> float:
        return _LEFT + (plot_w * index / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = _frame(width, height, ticks, y_of, y_format, y_label, days, x_of)
    for number, (name, points) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        path, pen_down = [], False
        for index, day in enumerate(days):
            value = points.get(day)
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x_of(index):.1f},{y_of(value):.1f}")
            pen_down = True
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}"'
            ' stroke-width="2" stroke-linejoin="round"/>'
        )
        for index, day in enumerate(days):
            if (value := points.get(day)) is not None:
                parts.append(
                    f'<circle cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" r="2.6" fill="{colour}">'
                    f"<title>{escape(name)} · {day.isoformat()}: {escape(y_format(value))}"
                    "</title></circle>"
                )
    parts.append("</svg>")
    return Markup("".join(parts) + _legend(list(series)))


def bar_chart(
    points: Mapping[date, float],
    *,
    y_label: str,
    y_format: Formatter,
    width: int = 640,
    height: int = 230,
) -> Markup:
    """One bar per day."""
    days = sorted(points)
    if not days:
        return Markup('<p class="empty">No data in this window.</p>')
    ticks = nice_ticks(0.0, max(points.values()) or 1.0)
    top = ticks[-1] or 1.0
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = plot_w / len(days)

    def x_of(index: int) -> float:
        return _LEFT + slot * (index + 0.5)

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = _frame(width, height, ticks, y_of, y_format, y_label, days, x_of)
    bar_w = max(1.0, slot * 0.72)
    for index, day in enumerate(days):
        value = points[day]
        y = y_of(value)
        parts.append(
            f'<rect x="{x_of(index) - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}"'
            f' height="{_TOP + plot_h - y:.1f}" fill="{PALETTE[0]}" rx="1.5">'
            f"<title>{day.isoformat()}: {escape(y_format(value))}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(
    rows: Sequence[tuple[str, float, str]],
    *,
    x_label: str,
    x_format: Formatter,
    width: int = 640,
    bar_height: int = 20,
) -> Markup:
    """Ranked horizontal bars: (label, value, annotation) each, largest first as given."""
    if not rows:
        return Markup('<p class="empty">No data in this window.</p>')
    label_w, right = 170, 150
    ticks = nice_ticks(0.0, max(value for _, value, _ in rows) or 1.0, 4)
    top = ticks[-1] or 1.0
    plot_w = width - label_w - right
    height = _TOP + len(rows) * (bar_height + 6) + 34

    def x_of(value: float) -> float:
        return label_w + plot_w * value / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(x_label)}">'
    ]
    axis_y = height - 34
    for tick in ticks:
        x = x_of(tick)
        parts.append(
            f'<line class="grid-line" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}"'
            f' y2="{axis_y}"/><text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle">'
            f"{escape(x_format(tick))}</text>"
        )
    for index, (label, value, note) in enumerate(rows):
        y = _TOP + index * (bar_height + 6)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end"'
            f' class="title">{escape(label[:30])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(1.0, x_of(value) - label_w):.1f}"'
            f' height="{bar_height}" fill="{PALETTE[0]}" rx="2">'
            f"<title>{escape(label)}: {escape(x_format(value))} ({escape(note)})</title></rect>"
            f'<text x="{x_of(value) + 6:.1f}" y="{y + bar_height * 0.7:.1f}">'
            f"{escape(x_format(value))} · {escape(note)}</text>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 4}" class="title">{escape(x_label)}</text></svg>'
    )
    return Markup("".join(parts))


def xy_chart(
    series: Mapping[str, Sequence[tuple[float, float, float | None, float | None, str]]],
    *,
    x_label: str,
    y_label: str,
    x_format: Formatter,
    y_format: Formatter,
    lines: bool,
    width: int = 1000,
    height: int = 300,
    y_max: float | None = None,
) -> Markup:
    """Points (x, y, y_low, y_high, label) per series, with interval whiskers where low/high
    are given; `lines` joins each series in x order (a training curve), else a scatter whose
    points are labelled. Full card width, so drawn wider than the half-width charts."""
    points = [p for values in series.values() for p in values]
    if not points:
        return Markup('<p class="empty">No data yet.</p>')
    xs = [p[0] for p in points]
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs))
    y_top = y_max if y_max is not None else max(p[1] if p[3] is None else p[3] for p in points)
    y_ticks = nice_ticks(0.0, y_top)
    x_low, x_high = x_ticks[0], x_ticks[-1] or 1.0
    top = y_ticks[-1] or 1.0
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def x_of(value: float) -> float:
        return _LEFT + plot_w * (value - x_low) / ((x_high - x_low) or 1.0)

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(y_label)} by {escape(x_label)}">'
    ]
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid-line" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}"'
            f' y2="{y:.1f}"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(tick))}</text>"
        )
    base = height - _BOTTOM
    parts.append(f'<line class="axis" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base}" y2="{base}"/>')
    for tick in x_ticks:
        anchor = "end" if tick == x_ticks[-1] else "middle"  # keep the last label inside
        parts.append(
            f'<text x="{x_of(tick):.1f}" y="{base + 15}" text-anchor="{anchor}">'
            f"{escape(x_format(tick))}</text>"
        )
    parts.append(
        f'<text x="{_LEFT}" y="{height - 6}" class="title">{escape(y_label)}</text>'
        f'<text x="{width - _RIGHT}" y="{height - 6}" text-anchor="end">{escape(x_label)}</text>'
    )
    for number, values in enumerate(series.values()):
        colour = PALETTE[number % len(PALETTE)]
        ordered = sorted(values)
        if lines and len(ordered) > 1:
            path = " ".join(
                f"{'L' if i else 'M'}{x_of(x):.1f},{y_of(y):.1f}"
                for i, (x, y, *_rest) in enumerate(ordered)
            )
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, low, high, label in ordered:
            if low is not None and high is not None:
                parts.append(
                    f'<line x1="{x_of(x):.1f}" x2="{x_of(x):.1f}" y1="{y_of(low):.1f}"'
                    f' y2="{y_of(high):.1f}" stroke="{colour}" stroke-width="1.5"/>'
                )
            parts.append(
                f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="3.2" fill="{colour}">'
                f"<title>{escape(label)}: {escape(x_format(x))}, {escape(y_format(y))}"
                "</title></circle>"
            )
            if not lines:
                parts.append(
                    f'<text x="{x_of(x) + 6:.1f}" y="{y_of(y) - 6:.1f}">{escape(label)}</text>'
                )
    parts.append("</svg>")
    return Markup("".join(parts) + _legend(list(series)))


_SPAN_COLOURS = {
    "queued": "#adb5bd",
    "retry": "#d9480f",
    "backoff": "#f59f00",
    "provider": "#2f5bd3",
    "parse": "#2b8a3e",
}


def timeline_chart(spans: Sequence, *, width: int = 640, row_h: int = 22) -> Markup:
    """Horizontal spans on one time axis (ms), one row each; a child span is indented."""
    if not spans:
        return Markup('<p class="empty">No timings stored for this call.</p>')
    label_w = 210
    end = max(s.start_ms + s.duration_ms for s in spans) or 1.0
    ticks = nice_ticks(0.0, end)
    plot_w = width - label_w - _RIGHT
    height = _TOP + row_h * len(spans) + _BOTTOM

    def x_of(ms: float) -> float:
        return label_w + plot_w * ms / (ticks[-1] or 1.0)

    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" role="img"'
        ' aria-label="call timeline">'
    ]
    for tick in ticks:
        x = x_of(tick)
        parts.append(
            f'<line class="grid-line" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}"'
            f' y2="{height - _BOTTOM}"/><text x="{x:.1f}" y="{height - _BOTTOM + 15}"'
            f' text-anchor="middle">{tick:g}</text>'
        )
    for row, span in enumerate(spans):
        y = _TOP + row * row_h
        parts.append(
            f'<text x="{6 + 14 * span.depth}" y="{y + row_h * 0.68:.1f}">{escape(span.label)}'
            f'</text><rect x="{x_of(span.start_ms):.1f}" y="{y + 3}"'
            f' width="{max(1.0, x_of(span.start_ms + span.duration_ms) - x_of(span.start_ms)):.1f}"'
            f' height="{row_h - 6}" fill="{_SPAN_COLOURS.get(span.kind, PALETTE[-1])}">'
            f"<title>{escape(span.label)}: {span.duration_ms:.1f} ms from"
            f" {span.start_ms:.1f} ms</title></rect>"
        )
    parts.append(
        f'<text x="{width - _RIGHT}" y="{height - 6}" text-anchor="end">ms since the call'
        " started</text></svg>"
    )
    return Markup("".join(parts))
