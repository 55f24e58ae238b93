"""Line charts as inline SVG, drawn on the server: no chart library, no JavaScript.

A chart is re-rendered whole by the htmx partial that polls a running job, so it only has to
be correct and readable: axes with labelled ticks, one polyline per series, an optional
horizontal limit (the ε budget), and a text alternative for screen readers.

Readable: the SVG scales with its box, so text is sized in the chart's own units such that it is
at least ``MIN_TEXT_PX`` high at the narrowest width the portal lays a chart out at
(``MIN_RENDERED_WIDTH``, the ``.charts`` grid's column minimum in static/portal.css). Honest: by
default the y-axis starts at zero (loss, accuracy and ε are never negative, and a
zoomed-in axis makes a small change look large); a series below zero extends the axis down.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["MIN_RENDERED_WIDTH", "MIN_TEXT_PX", "line_chart"]

COLOURS = ("#1f5fbf", "#b3261e", "#2e7d32", "#6a1b9a")


MIN_RENDERED_WIDTH = 340  # px: the narrowest a chart is drawn (.charts minmax(340px, 1fr))
MIN_TEXT_PX = 12  # px: the smallest text at that width


def _font_size(width: int) -> int:
    """The font size in the chart's units that renders at least MIN_TEXT_PX at MIN_RENDERED_WIDTH."""
    return -(-MIN_TEXT_PX * width // MIN_RENDERED_WIDTH)  # ceiling


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *, title: str, width: int = 480, height: int = 260, limit: float | None = None,
    limit_label: str = "limit", from_zero: bool = True,
) -> Markup:
    """An SVG line chart of ``series`` (name, [(x, y), ...]); empty series give a "no data" chart.

    With ``from_zero`` (the default) the y-axis runs from 0 (or the lowest value, if below 0);
    pass ``from_zero=False`` only for a quantity where zero means nothing."""
    fs = _font_size(width)
    pad_l, pad_r, pad_t, pad_b = round(fs * 4.2), round(fs * .8), round(fs * 3), round(fs * 2.4)
    points = [p for _, pts in series for p in pts]
    ys = [y for _, y in points] + ([limit] if limit is not None else [])
    head = (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
            f'preserveAspectRatio="xMidYMid meet" aria-label="{escape(title)}" font-size="{fs}">'
            f'<title>{escape(title)}</title>'
            f'<text x="{pad_l}" y="{fs + 2}" font-size="{fs}" class="chart-title">{escape(title)}</text>')
    if not points:
        return Markup(head + f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" '
                      f'font-size="{fs}" class="chart-empty">no data yet</text></svg>')
    x0, x1 = min(x for x, _ in points), max(x for x, _ in points)
    y0, y1 = min(ys), max(ys)
    if from_zero:
        y0, y1 = min(0.0, y0), max(0.0, y1)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return pad_t + (1 - (y - y0) / (y1 - y0)) * plot_h

    bottom, right = pad_t + plot_h, pad_l + plot_w
    parts = [head,
             f'<line x1="{pad_l}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" class="axis"/>']
    for value in (y0, (y0 + y1) / 2, y1):  # lowest first: with from_zero, the lowest tick is 0
        parts.append(f'<text x="{pad_l - 4}" y="{sy(value) + fs / 3:.1f}" text-anchor="end" font-size="{fs}" '
                     f'class="tick">{_fmt(value)}</text>')
    parts += [f'<text x="{pad_l}" y="{height - 6}" font-size="{fs}" class="tick">step {_fmt(x0)}</text>',
              f'<text x="{right}" y="{height - 6}" text-anchor="end" font-size="{fs}" class="tick">'
              f'step {_fmt(x1)}</text>']
    if limit is not None:
        parts.append(f'<line x1="{pad_l}" y1="{sy(limit):.1f}" x2="{pad_l + plot_w}" y2="{sy(limit):.1f}" '
                     'class="limit"/>')
        parts.append(f'<text x="{pad_l + plot_w}" y="{sy(limit) - 4:.1f}" text-anchor="end" font-size="{fs}" '
                     f'class="tick">{escape(limit_label)} {_fmt(limit)}</text>')
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                         f'<title>{escape(name)}</title></polyline>')
            last_x, last_y = max(pts)
            parts.append(f'<circle cx="{sx(last_x):.1f}" cy="{sy(last_y):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{pad_l + 8 + round(fs * 9) * i}" y="{pad_t - fs // 2}" fill="{colour}" '
                     f'font-size="{fs}" class="legend">'
                     f'{escape(name)}{": " + _fmt(max(pts)[1]) if pts else ""}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
