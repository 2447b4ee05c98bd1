"""Charts drawn on the server as inline SVG (pure: data in, markup out; nothing to load).

Every text that goes into the markup is escaped here. Colours are presentation attributes, not
style attributes, so that the pages' Content-Security-Policy needs no inline styles. Each chart
carries a title and a description for screen readers, and each bar a tooltip (<title>); the
pages also show the same figures as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Distinguishable for the common kinds of colour blindness (Okabe and Ito's palette, with a
# darker yellow), then grey for the rest.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#b8a100",
           "#6a3d9a")
OTHER_COLOUR = "#8a94a6"
OTHER = "Other types"

WIDTH, HEIGHT = 960, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 26


@dataclass(frozen=True)
class Series:
    """One stacked layer: its name, colour and a value for each bar."""

    name: str
    colour: str
    values: tuple[float, ...]

    @property
    def total(self) -> float:
        return sum(self.values)


def top_series(counts: dict[str, list[float]], most: int = len(PALETTE) - 1) -> list[Series]:
    """Series for the named value lists, biggest total first; past `most`, the rest are summed
    into one grey series, "Other types"."""
    ranked = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown = ranked if len(ranked) <= most + 1 else ranked[:most]
    series = [Series(name, PALETTE[i % len(PALETTE)], tuple(values))
              for i, (name, values) in enumerate(shown)]
    rest = ranked[len(shown):]
    if rest:
        summed = tuple(sum(values[i] for _, values in rest) for i in range(len(rest[0][1])))
        series.append(Series(OTHER, OTHER_COLOUR, summed))
    return series


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis maximum at or above `value` and a step that divides it in 2 to 5 round parts
    (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if value / step <= 5:
            return math.ceil(value / step - 1e-9) * step, step
    return value, value  # not reached: 10 * magnitude > value


def number(value: float) -> str:
    """A count or rate as people read it: thousands separated, at most one decimal."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def stacked_bars(chart_id: str, title: str, description: str, labels: Sequence[str],
                 series: Sequence[Series], ticks: dict[int, str],
                 value_text: Callable[[float], str] = number) -> Markup:
    """A bar for each label, its series stacked from the bottom. `ticks` names some bars on
    the horizontal axis (by index); `value_text` writes a value in tooltips and on the vertical
    axis."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top, step = nice_ceiling(max(totals, default=0.0))
    inner_width, inner_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_width / max(len(labels), 1)
    bar = max(slot * 0.78, 1.0)

    def y(value: float) -> float:
        return TOP + inner_height - value / top * inner_height

    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
             'width="100%">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>']
    steps = round(top / step)
    for k in range(steps + 1):
        value = k * step
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
                     f'text-anchor="end">{escape(value_text(value))}</text>')
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar) / 2
        base = 0.0
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            height = value / top * inner_height
            parts.append(
                f'<rect x="{x:.2f}" y="{y(base + value):.2f}" width="{bar:.2f}" '
                f'height="{height:.2f}" fill="{escape(s.colour)}">'
                f"<title>{escape(label)}: {escape(s.name)} {escape(value_text(value))}"
                "</title></rect>")
            base += value
        if i in ticks:
            parts.append(f'<text class="axis" x="{LEFT + i * slot + slot / 2:.1f}" '
                         f'y="{HEIGHT - 8}" text-anchor="middle">{escape(ticks[i])}</text>')
    parts.append(f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" '
                 f'y2="{y(0):.1f}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(chart_id: str, title: str, rows: Sequence[tuple[str, float, str]]) -> Markup:
    """A bar for each (label, value, colour), longest for the largest, labelled with both."""
    row_height, label_width, value_width = 30, 130, 90
    height = row_height * max(len(rows), 1) + 4
    most = max((value for _, value, _ in rows), default=0.0) or 1.0
    span = WIDTH - label_width - value_width
    parts = [f'<svg class="chart bars" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" '
             f'role="img" aria-labelledby="{escape(chart_id)}-title" width="100%">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']
    for i, (label, value, colour) in enumerate(rows):
        top = i * row_height + 4
        width = max(value / most * span, 2.0 if value else 0.0)
        parts.append(f'<text class="label" x="0" y="{top + 17}">{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{top + 4}" width="{width:.1f}" '
                     f'height="{row_height - 10}" rx="3" fill="{escape(colour)}">'
                     f"<title>{escape(label)}: {escape(number(value))}</title></rect>")
        parts.append(f'<text class="value" x="{label_width + width + 8:.1f}" y="{top + 17}">'
                     f"{escape(number(value))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def swatch(colour: str) -> Markup:
    """A small square of a colour, for legends (an SVG: no inline style needed)."""
    return Markup(f'<svg class="swatch" width="12" height="12" aria-hidden="true" '
                  f'focusable="false"><rect width="12" height="12" rx="2" '
                  f'fill="{escape(colour)}"/></svg>')
