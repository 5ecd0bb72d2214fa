"""Charts as inline SVG: shares by day as lines, counts as horizontal bars.

Pure and self-contained: the SVG needs no script, font file or anything else from
elsewhere, so a page that embeds it renders offline. Text from data is escaped (see
``markup``). Each mark also carries its numbers as ``data-*`` attributes and a ``<title>``
(the browser's tooltip), so the figures can be read back from the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from consumer.core.markup import Html, join, tag

__all__ = ["Bar", "LineSeries", "bar_chart", "share_line_chart", "tint"]

_INK = "#111827"
_MUTED = "#6b7280"
_GRID = "#e5e7eb"
_AXIS = "#9ca3af"
_TITLE_HEIGHT = 44
_LEGEND_WIDTH = 250
_LEGEND_ROW = 20
_MARKERS_UP_TO = 40  # more points than this: the line alone (markers would overlap)


@dataclass(frozen=True)
class LineSeries:
    """One line: a value from 0 to 1 for each day of the chart, and a note for each."""

    label: str
    colour: str
    values: tuple[float, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Bar:
    """One bar: its key (for ``data-key``), label, value and the note beside it."""

    key: str
    label: str
    value: int
    note: str


def tint(colour: str, strength: float) -> str:
    """``colour`` (``#rrggbb``) mixed with white: ``strength`` 1 is the colour, 0 white."""
    channels = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(255 - (255 - c) * strength):02x}" for c in channels)


def _number(value: float) -> str:
    # Coordinates to a tenth of a pixel: short, and exact enough for any screen.
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: object, **attributes: object) -> Html:
    return tag("text", {"x": _number(x), "y": _number(y), **attributes}, content)


def _svg(title: str, width: float, height: float, *content: Html) -> Html:
    return tag(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": _number(width),
            "height": _number(height),
            "viewBox": f"0 0 {_number(width)} {_number(height)}",
            "role": "img",
            "aria-label": title,
            "class": "chart",
        },
        tag("title", None, title),
        _text(0, 20, title, fill=_INK, **{"font-size": 15, "font-weight": 600}),
        *content,
    )


def share_line_chart(
    *,
    title: str,
    day_keys: Sequence[str],
    day_labels: Sequence[str],
    series: Sequence[LineSeries],
    x_title: str,
    y_title: str,
    width: int,
    height: int,
    area: bool = False,
) -> Html:
    """Shares (0 to 1) by day, one line per series; a legend when there are several.

    ``day_keys`` (e.g. ISO dates, for ``data-day``) and ``day_labels`` (the axis text)
    name the x positions; every series has one value and one note per day. ``area``
    shades under a single series.
    """
    days = len(day_keys)
    if len(day_labels) != days or any(
        len(line.values) != days or len(line.notes) != days for line in series
    ):
        raise ValueError("every series needs one value and one note per day")
    legend = len(series) > 1
    left, right, bottom = 60, 20 + (_LEGEND_WIDTH if legend else 0), 56
    top = _TITLE_HEIGHT
    if legend:
        height = max(height, top + _LEGEND_ROW * len(series) + bottom)
    plot_width, plot_height = width - left - right, height - top - bottom
    pad = 14

    def x_at(index: int) -> float:
        if days == 1:
            return left + plot_width / 2
        return left + pad + index * (plot_width - 2 * pad) / (days - 1)

    def y_at(share: float) -> float:
        return top + (1 - min(max(share, 0.0), 1.0)) * plot_height

    marks: list[Html] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_at(tick)
        marks.append(
            tag(
                "line",
                {
                    "x1": left,
                    "x2": left + plot_width,
                    "y1": _number(y),
                    "y2": _number(y),
                    "stroke": _AXIS if tick == 0 else _GRID,
                    "stroke-width": 1,
                },
                void=True,
            )
        )
        marks.append(
            _text(
                left - 8,
                y + 4,
                f"{tick:.0%}",
                fill=_MUTED,
                **{"font-size": 11, "text-anchor": "end"},
            )
        )
    step = max(1, math.ceil(days / max(1, plot_width // 64)))
    for index in range(0, days, step):
        x = x_at(index)
        base = top + plot_height
        marks.append(
            tag(
                "line",
                {"x1": _number(x), "x2": _number(x), "y1": base, "y2": base + 4, "stroke": _AXIS},
                void=True,
            )
        )
        marks.append(
            _text(
                x,
                base + 18,
                day_labels[index],
                fill=_MUTED,
                **{"font-size": 11, "text-anchor": "middle"},
            )
        )
    marks.append(
        _text(
            left + plot_width / 2,
            height - 10,
            x_title,
            fill=_MUTED,
            **{"font-size": 12, "text-anchor": "middle"},
        )
    )
    y_middle = top + plot_height / 2
    marks.append(
        _text(
            16,
            y_middle,
            y_title,
            fill=_MUTED,
            transform=f"rotate(-90 16 {_number(y_middle)})",
            **{"font-size": 12, "text-anchor": "middle"},
        )
    )

    for line in series:
        points = [(x_at(i), y_at(value)) for i, value in enumerate(line.values)]
        if not points:
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{_number(x)} {_number(y)}" for i, (x, y) in enumerate(points)
        )
        if area and len(series) == 1 and days > 1:
            floor = _number(y_at(0))
            marks.append(
                tag(
                    "path",
                    {
                        "d": f"M{_number(points[0][0])} {floor} {path.replace('M', 'L', 1)} "
                        f"L{_number(points[-1][0])} {floor} Z",
                        "fill": tint(line.colour, 0.22),
                        "class": "area",
                    },
                    void=True,
                )
            )
        marks.append(
            tag(
                "path",
                {
                    "d": path,
                    "fill": "none",
                    "stroke": line.colour,
                    "stroke-width": 2.5,
                    "stroke-linejoin": "round",
                    "stroke-linecap": "round",
                    "class": "line",
                },
                void=True,
            )
        )
        if days <= _MARKERS_UP_TO:
            for (x, y), key, value, note in zip(
                points, day_keys, line.values, line.notes, strict=True
            ):
                marks.append(
                    tag(
                        "circle",
                        {
                            "cx": _number(x),
                            "cy": _number(y),
                            "r": 4,
                            "fill": line.colour,
                            "stroke": "#ffffff",
                            "stroke-width": 1.5,
                            "data-series": line.label,
                            "data-day": key,
                            "data-value": f"{value:.6f}",
                        },
                        tag("title", None, note),
                    )
                )

    if legend:
        x = width - _LEGEND_WIDTH
        for row, line in enumerate(series):
            y = top + row * _LEGEND_ROW
            shown = line.label if len(line.label) <= 34 else line.label[:33] + "\u2026"
            marks.append(
                tag(
                    "g",
                    {"class": "legend-item"},
                    tag("title", None, line.label),
                    tag(
                        "rect",
                        {"x": x, "y": y, "width": 12, "height": 12, "rx": 2, "fill": line.colour},
                        void=True,
                    ),
                    _text(x + 18, y + 10, shown, fill=_INK, **{"font-size": 12}),
                )
            )
    return _svg(title, width, height, *marks)


def bar_chart(
    *,
    title: str,
    bars: Sequence[Bar],
    colour: str,
    width: int,
    empty: str,
) -> Html:
    """Horizontal bars, one per row, longest for the largest value; ``empty`` when none."""
    label_width, note_width, row, thickness = 175, 100, 26, 16
    top = _TITLE_HEIGHT
    if not bars:
        return _svg(
            title, width, top + 40, _text(0, top + 16, empty, fill=_MUTED, **{"font-size": 13})
        )
    height = top + row * len(bars) + 8
    track = width - label_width - note_width
    largest = max(bar.value for bar in bars) or 1
    marks: list[Html] = [
        tag(
            "line",
            {
                "x1": label_width,
                "x2": label_width,
                "y1": top - 4,
                "y2": height - 4,
                "stroke": _AXIS,
            },
            void=True,
        )
    ]
    for index, bar in enumerate(bars):
        y = top + index * row
        length = max(1.0, track * bar.value / largest) if bar.value else 0.0
        middle = y + thickness / 2 + 4
        marks.append(
            _text(
                label_width - 10,
                middle,
                bar.label,
                fill=_INK,
                **{"font-size": 12, "text-anchor": "end"},
            )
        )
        marks.append(
            tag(
                "rect",
                {
                    "x": label_width,
                    "y": y,
                    "width": _number(length),
                    "height": thickness,
                    "rx": 2,
                    "fill": colour,
                    "data-key": bar.key,
                    "data-value": bar.value,
                },
                tag("title", None, f"{bar.label}: {bar.note}"),
            )
        )
        marks.append(
            _text(label_width + length + 6, middle, bar.note, fill=_MUTED, **{"font-size": 12})
        )
    return _svg(title, width, height, join(marks))
