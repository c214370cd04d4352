"""Small inline SVG charts: the page must draw without any script or stylesheet from the network,
and a few bars need no plotting library. Colours come from the page's CSS classes."""

from __future__ import annotations

import math
from html import escape
from typing import Optional, Sequence

Row = tuple[str, float, Optional[Sequence[float]], str]  # label, value, 95% interval or None, css class


def _nice_max(value: float) -> float:
    """The axis end: the next 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value - 1e-12)


def bars(rows: Sequence[Row], axis_max: Optional[float] = None, percent: bool = True, label_width: int = 190) -> str:
    """Horizontal bars with 95% interval whiskers, one row per figure."""
    highest = max([v for _, v, _, _ in rows] + [hi for *_, ci, _ in rows if ci for hi in ci[1:]], default=0.0)
    top = axis_max or _nice_max(highest)
    plot, row_height = 300, 22
    width, height = label_width + plot + 70, row_height * len(rows) + 24
    x = lambda v: label_width + plot * max(0.0, min(v, top)) / top  # noqa: E731
    fmt = (lambda v: f"{100 * v:.1f}%") if percent else (lambda v: f"{v:.3f}")  # noqa: E731
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             _axis(label_width, plot, len(rows) * row_height + 4, top, fmt)]
    for k, (label, value, ci, css) in enumerate(rows):
        y = k * row_height + 4
        parts.append(f'<text class="label" x="{label_width - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="{css}" x="{label_width}" y="{y + 3}" width="{x(value) - label_width:.1f}" height="{row_height - 8}"/>')
        if ci:
            lo, hi = x(ci[0]), x(ci[1])
            middle = y + row_height / 2 - 1
            parts.append(f'<path class="whisker" d="M{lo:.1f},{middle}H{hi:.1f}M{lo:.1f},{middle - 5}v10M{hi:.1f},{middle - 5}v10"/>')
        end = x(ci[1]) if ci else x(value)
        parts.append(f'<text class="value" x="{end + 6:.1f}" y="{y + 14}">{fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def columns(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], reference: Optional[tuple[str, Sequence[float]]] = None) -> str:
    """Grouped columns per position (a share per series), with an optional dashed reference level."""
    values = [v for _, vs, _ in series for v in vs] + list(reference[1] if reference else [])
    top = _nice_max(max(values, default=0.0))
    legend = [(name, css) for name, _, css in series] + ([(reference[0], "reference-key")] if reference else [])
    plot_height, group, left = 140, 14 * len(series) + 10, 44
    width, height = max(left + group * len(labels) + 10, left + 170 * len(legend)), plot_height + 58
    y = lambda v: 8 + plot_height * (1 - min(v, top) / top)  # noqa: E731
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for tick in (0, top / 2, top):
        parts.append(f'<path class="grid" d="M{left},{y(tick):.1f}H{width - 6}"/>')
        parts.append(f'<text class="label" x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{100 * tick:.0f}%</text>')
    for g, label in enumerate(labels):
        x0 = left + g * group + 5
        for s, (_, vs, css) in enumerate(series):
            parts.append(f'<rect class="{css}" x="{x0 + 14 * s}" y="{y(vs[g]):.1f}" width="12" height="{y(0) - y(vs[g]):.1f}">'
                         f'<title>{escape(series[s][0])} at {escape(label)}: {100 * vs[g]:.1f}%</title></rect>')
        parts.append(f'<text class="label" x="{x0 + 7 * len(series)}" y="{plot_height + 24}" text-anchor="middle">{escape(label)}</text>')
        if reference:
            parts.append(f'<path class="reference" d="M{x0 - 3},{y(reference[1][g]):.1f}h{group - 4}"/>')
    for k, (name, css) in enumerate(legend):
        lx = left + k * 170
        parts.append(f'<rect class="{css}" x="{lx}" y="{plot_height + 36}" width="10" height="10"/>'
                     f'<text class="label" x="{lx + 14}" y="{plot_height + 45}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axis(left: int, plot: int, y: float, top: float, fmt) -> str:
    return "".join(
        f'<path class="grid" d="M{left + plot * f:.1f},0V{y}"/><text class="label" x="{left + plot * f:.1f}" y="{y + 14}" '
        f'text-anchor="middle">{fmt(top * f)}</text>'
        for f in (0, 0.5, 1)
    )
