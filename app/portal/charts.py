"""Line charts as inline SVG, drawn on the server: no chart library, no JavaScript.

A chart is re-rendered whole by the htmx partial that polls a running job, so it only has to
be correct and readable: axes with labelled ticks, one polyline per series, labelled horizontal
limits (the run's planned ε, the dataset's budget), labelled vertical marks (where a halted run
was resumed), and a text alternative (``<desc>``) for screen readers. Hover values need no
script: every point (thinned to at most ``MAX_POINTS`` a series) is a circle with an SVG
``<title>``, which browsers show as a tooltip ("step 81: ε 0.613").

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

__all__ = ["MAX_POINTS", "MIN_RENDERED_WIDTH", "MIN_TEXT_PX", "line_chart"]

COLOURS = ("#1f5fbf", "#b3261e", "#2e7d32", "#6a1b9a")


MIN_RENDERED_WIDTH = 340  # px: the narrowest a chart is drawn (.charts minmax(340px, 1fr))
MIN_TEXT_PX = 12  # px: the smallest text at that width
MAX_POINTS = 200  # hover points a series: enough to read off, few enough for a 2 s poll


def _font_size(width: int) -> int:
    """The font size in the chart's units that renders at least MIN_TEXT_PX at MIN_RENDERED_WIDTH."""
    return -(-MIN_TEXT_PX * width // MIN_RENDERED_WIDTH)  # ceiling


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _step(x: float) -> str:
    return str(int(x)) if x == int(x) else _fmt(x)


def _thinned(pts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most MAX_POINTS of ``pts`` (sorted), evenly spread, always the first and the last."""
    if len(pts) <= MAX_POINTS:
        return list(pts)
    last = len(pts) - 1
    return [pts[round(i * last / (MAX_POINTS - 1))] for i in range(MAX_POINTS)]


def _describe(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
              limits: Sequence[tuple[float, str]], marks: Sequence[tuple[float, str]]) -> str:
    """The chart in words, for a screen reader (and anyone without the picture)."""
    said = []
    for name, pts in series:
        if pts:
            first, last = min(pts), max(pts)
            said.append(f"{name}: {len(pts)} points from step {_step(first[0])} to step {_step(last[0])}, "
                        f"latest {_fmt(last[1])} at step {_step(last[0])}")
        else:
            said.append(f"{name}: no data yet")
    said += [f"{label}: {_fmt(value)}" for value, label in limits]
    said += [f"{label} at step {_step(x)}" for x, label in marks]
    return f"{title}. " + "; ".join(said) + "."


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *, title: str, width: int = 480, height: int = 260, limit: float | None = None,
    limit_label: str = "limit", from_zero: bool = True, limits: Sequence[tuple[float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
) -> Markup:
    """An SVG line chart of ``series`` (name, [(x, y), ...]); empty series give a "no data" chart.

    ``limits``: horizontal dashed lines (value, label), ``limit``/``limit_label`` being one more;
    ``marks``: vertical dashed lines (step, label), e.g. ``(81, "resumed")``. With ``from_zero``
    (the default) the y-axis runs from 0 (or the lowest value, if below 0); pass
    ``from_zero=False`` only for a quantity where zero means nothing."""
    fs = _font_size(width)
    pad_l, pad_r, pad_t, pad_b = round(fs * 4.2), round(fs * .8), round(fs * 3), round(fs * 2.4)
    series = [(name, sorted(pts)) for name, pts in series]
    lines = ([(limit, limit_label)] if limit is not None else []) + list(limits)
    points = [p for _, pts in series for p in pts]
    ys = [y for _, y in points] + [value for value, _ in lines]
    head = (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
            f'preserveAspectRatio="xMidYMid meet" aria-label="{escape(title)}" font-size="{fs}">'
            f'<title>{escape(title)}</title><desc>{escape(_describe(title, series, lines, marks))}</desc>'
            f'<text x="{pad_l}" y="{fs + 2}" font-size="{fs}" class="chart-title">{escape(title)}</text>')
    if not points:
        return Markup(head + f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" '
                      f'font-size="{fs}" class="chart-empty">no data yet</text></svg>')
    xs = [x for x, _ in points] + [x for x, _ in marks]
    x0, x1 = min(xs), max(xs)
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
    for i, (value, label) in enumerate(lines):
        # labels alternate right and left, so that two close limits do not print over each other
        at, anchor = (right, "end") if i % 2 == 0 else (pad_l + 4, "start")
        parts.append(f'<line x1="{pad_l}" y1="{sy(value):.1f}" x2="{right}" y2="{sy(value):.1f}" '
                     f'class="limit limit-{i}"/>')
        # above its line, or below it where the line runs along the top (the legend is above it)
        y = sy(value) - 4 if sy(value) - 4 - fs >= pad_t else sy(value) + fs + 2
        parts.append(f'<text x="{at}" y="{y:.1f}" text-anchor="{anchor}" font-size="{fs}" '
                     f'class="tick limit-label">{escape(label)} {_fmt(value)}</text>')
    for x, label in marks:
        parts.append(f'<line x1="{sx(x):.1f}" y1="{pad_t}" x2="{sx(x):.1f}" y2="{bottom}" class="segment"/>')
        parts.append(f'<text x="{sx(x) + 3:.1f}" y="{pad_t + fs}" font-size="{fs}" class="mark">'
                     f'{escape(label)}</text>')
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                         f'<title>{escape(name)}</title></polyline>')
            last_x, last_y = pts[-1]
            parts.append(f'<circle cx="{sx(last_x):.1f}" cy="{sy(last_y):.1f}" r="3" fill="{colour}"/>')
            parts += [f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{colour}">'
                      f'<title>step {_step(x)}: {escape(name)} {_fmt(y)}</title></circle>'
                      for x, y in _thinned(pts)]
        parts.append(f'<text x="{pad_l + 8 + round(fs * 9) * i}" y="{pad_t - fs // 2}" fill="{colour}" '
                     f'font-size="{fs}" class="legend">'
                     f'{escape(name)}{": " + _fmt(pts[-1][1]) if pts else ""}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
