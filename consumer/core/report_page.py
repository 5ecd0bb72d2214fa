"""The campaign report as one self-contained HTML page: charts, the table, a header.

Pure: ``render_report_page`` turns the report's rows into the text of a page that needs
nothing at view time (CSS inline, charts inline SVG, no script, no font or image from
elsewhere), so it can be mailed or archived and still open offline. Per campaign and
eDoc job it shows the cumulative share of pieces delivered by day, the pieces by the mail
phase of their last scan, and the delivered-by-day figures; above them, every group's
delivery curve in one chart and the table the text report prints. Every string from the
data is escaped (``markup``). The page is well-formed XML as well as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from consumer.core.charts import Bar, LineSeries, bar_chart, share_line_chart
from consumer.core.markup import Html, join, tag
from consumer.core.report import TABLE_COLUMNS, ReportRow

__all__ = [
    "PHASE_BAR_COLOUR",
    "PHASE_LABELS",
    "SERIES_COLOURS",
    "ReportSource",
    "render_report_page",
]

#: One colour per campaign and job, in report order (repeating after the last); picked to
#: stay apart from each other and from the phase bars for colour-blind readers too.
SERIES_COLOURS: tuple[str, ...] = (
    "#2f6fb0",
    "#e8772e",
    "#3a9a5b",
    "#d1495b",
    "#8c5a3c",
    "#c9a227",
    "#1b998b",
    "#5c6b7a",
)
PHASE_BAR_COLOUR = "#6c5fa7"

#: Readable names of the ``MailPhase`` symbols; an unknown symbol is shown as it is.
PHASE_LABELS: dict[str | None, str] = {
    "PHASE_0_ORIGIN_CANCELLATION": "0 Origin cancellation",
    "PHASE_1_ORIGIN": "1 Origin",
    "PHASE_1A_ORIGIN_PRIMARY": "1a Origin primary",
    "PHASE_1B_ORIGIN_SECONDARY": "1b Origin secondary",
    "PHASE_2_DESTINATION": "2 Destination",
    "PHASE_2A_DESTINATION_MMP": "2a Destination MMP",
    "PHASE_2B_DESTINATION_SCF": "2b Destination SCF",
    "PHASE_2C_DESTINATION_PRIMARY": "2c Destination primary",
    "PHASE_3A_DESTINATION_SECONDARY": "3a Destination secondary",
    "PHASE_3B_DESTINATION_BOX": "3b Destination box",
    "PHASE_3C_DESTINATION_SEQUENCED_CARRIER": "3c Sequenced carrier",
    "PHASE_4C_DELIVERY": "4c Delivery",
    "PARS": "PARS",
    "FPARS": "FPARS",
    "MISCELLANEOUS": "Miscellaneous",
    "FOREIGN": "Foreign",
    None: "Phase unknown",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NUMERIC = frozenset({"pieces", "delivered", "share"})
_WIDE, _HALF = 1108, 540  # chart widths: the page's content width, and half of it
_X_TITLE = "Facility-local date of delivery"
_Y_TITLE = "Share of pieces delivered"


@dataclass(frozen=True)
class ReportSource:
    """Where the report was read from: the topic, and what its records are."""

    topic: str
    description: str


def render_report_page(
    rows: Sequence[ReportRow], *, source: ReportSource, generated_at: datetime
) -> str:
    """The page for these rows, read from ``source`` at ``generated_at``."""
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(rows))]
    body: list[Html] = [_header(rows, source, generated_at)]
    if rows:
        body.append(_overview(rows, colours))
        body.append(_table_card(rows))
        body.extend(
            _group_card(index, row, colour)
            for index, (row, colour) in enumerate(zip(rows, colours, strict=True), 1)
        )
    else:
        body.append(
            tag(
                "section",
                {"class": "card"},
                tag("p", None, "No pieces: the topic holds no piece records yet."),
            )
        )
    page = tag(
        "html",
        {"lang": "en"},
        tag(
            "head",
            None,
            tag("meta", {"charset": "utf-8"}, void=True),
            tag(
                "meta",
                {"name": "viewport", "content": "width=device-width, initial-scale=1"},
                void=True,
            ),
            tag("title", None, "Campaign delivery report"),
            tag("style", None, Html(_CSS)),
        ),
        tag("body", None, tag("main", None, join(body))),
    )
    return f"<!DOCTYPE html>\n{page}\n"


def _header(rows: Sequence[ReportRow], source: ReportSource, generated_at: datetime) -> Html:
    pieces = sum(row.pieces for row in rows)
    delivered = sum(row.delivered for row in rows)
    campaigns = {row.campaign for row in rows if row.campaign is not None}
    tiles = [
        ("campaigns", f"{len(campaigns):,}"),
        ("campaigns \u00d7 jobs", f"{len(rows):,}"),
        ("pieces", f"{pieces:,}"),
        ("delivered", f"{delivered:,}"),
        ("delivered share", f"{delivered / pieces:.1%}" if pieces else "-"),
    ]
    generated = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return tag(
        "header",
        {"class": "page"},
        tag("h1", None, "Campaign delivery report"),
        tag(
            "p",
            {"class": "meta"},
            "Generated ",
            tag("time", {"datetime": generated_at.astimezone(UTC).isoformat()}, generated),
            " from ",
            tag("code", None, source.topic),
            f": {source.description}",
        ),
        tag(
            "div",
            {"class": "tiles"},
            *(
                tag(
                    "div",
                    {"class": "tile", "data-total": name},
                    tag("div", {"class": "value"}, value),
                    tag("div", {"class": "label"}, name),
                )
                for name, value in tiles
            ),
        ),
    )


def _group_name(row: ReportRow) -> str:
    campaign = row.campaign if row.campaign is not None else "no campaign"
    job = f"job {row.job_id}" if row.job_id is not None else "no eDoc job"
    return f"{campaign} \u00b7 {job}"


def _day_span(rows: Sequence[ReportRow]) -> list[date]:
    """Every day from the earliest first scan or delivery to the latest, in order."""
    days: list[date] = []
    for row in rows:
        days.extend(date.fromisoformat(day) for day, _, _ in row.delivered_by_day)
        days.extend(when.astimezone(UTC).date() for when in (row.first_scan, row.last_scan) if when)
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _curve(row: ReportRow, colour: str, days: Sequence[date], label: str) -> LineSeries:
    """The row's cumulative delivered share on each day (carried over days without any)."""
    delivered = {
        date.fromisoformat(day): (count, share) for day, count, share in row.delivered_by_day
    }
    values: list[float] = []
    notes: list[str] = []
    so_far, share = 0, 0.0
    for day in days:
        that_day, share = delivered.get(day, (0, share))
        so_far += that_day
        values.append(share)
        notes.append(
            f"{label}, {day.isoformat()}: {that_day:,} delivered that day, "
            f"{so_far:,} of {row.pieces:,} so far ({share:.1%})"
        )
    return LineSeries(label, colour, tuple(values), tuple(notes))


def _day_axis(days: Sequence[date]) -> tuple[list[str], list[str], str]:
    """The days' keys (ISO dates) and labels ("Nov 3"), and the axis title with the years."""
    title = _X_TITLE
    if days:
        first, last = days[0].year, days[-1].year
        title += f", {first}" if first == last else f", {first}\u2013{last}"
    return (
        [day.isoformat() for day in days],
        [f"{_MONTHS[day.month - 1]} {day.day}" for day in days],
        title,
    )


def _overview(rows: Sequence[ReportRow], colours: Sequence[str]) -> Html:
    days = _day_span(rows)
    keys, labels, x_title = _day_axis(days)
    chart = share_line_chart(
        title="Delivered share by day, every campaign and job",
        day_keys=keys,
        day_labels=labels,
        series=[
            _curve(row, colour, days, _group_name(row))
            for row, colour in zip(rows, colours, strict=True)
        ],
        x_title=x_title,
        y_title=_Y_TITLE,
        width=_WIDE,
        height=320,
    )
    return tag("section", {"class": "card overview"}, chart)


def _table_card(rows: Sequence[ReportRow]) -> Html:
    head = tag(
        "tr",
        None,
        *(
            tag("th", {"class": "num" if name in _NUMERIC else None}, name)
            for name in TABLE_COLUMNS
        ),
    )
    body = []
    for index, row in enumerate(rows, 1):
        cells = []
        for name, cell in zip(TABLE_COLUMNS, row.table_cells(), strict=True):
            content: object = cell
            if name == "campaign":
                content = tag("a", {"href": f"#group-{index}"}, cell)
            cells.append(tag("td", {"class": "num" if name in _NUMERIC else None}, content))
        body.append(tag("tr", None, *cells))
    return tag(
        "section",
        {"class": "card"},
        tag("h2", None, "Campaigns and eDoc jobs"),
        tag(
            "table",
            {"class": "report"},
            tag("thead", None, head),
            tag("tbody", None, *body),
        ),
    )


def _phase_bars(row: ReportRow) -> list[Bar]:
    return [
        Bar(
            key=phase or "UNKNOWN",
            label=PHASE_LABELS.get(phase, phase or ""),
            value=count,
            note=f"{count:,} ({count / row.pieces:.1%})" if row.pieces else f"{count:,}",
        )
        for phase, count in row.last_phases
    ]


def _group_card(index: int, row: ReportRow, colour: str) -> Html:
    name = _group_name(row)
    days = _day_span([row])
    keys, labels, x_title = _day_axis(days)
    curve = share_line_chart(
        title="Delivered share by day",
        day_keys=keys,
        day_labels=labels,
        series=[_curve(row, colour, days, name)],
        x_title=x_title,
        y_title=_Y_TITLE,
        width=_HALF,
        height=300,
        area=True,
    )
    phases = bar_chart(
        title="Pieces by mail phase of their last scan",
        bars=_phase_bars(row),
        colour=PHASE_BAR_COLOUR,
        width=_HALF,
        empty="No scans.",
    )
    facts = [
        f"{row.pieces:,} pieces",
        f"{row.delivered:,} delivered ({row.delivered_share:.1%})",
    ]
    if row.first_scan and row.last_scan:
        facts.append(
            f"scanned {row.first_scan.astimezone(UTC):%Y-%m-%d %H:%M} to "
            f"{row.last_scan.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
    return tag(
        "section",
        {
            "class": "card group",
            "id": f"group-{index}",
            "data-campaign": row.campaign,
            "data-job": row.job_id,
        },
        tag("h2", None, name),
        tag("p", {"class": "meta"}, " \u00b7 ".join(facts)),
        tag("div", {"class": "charts"}, curve, phases),
        _by_day_table(row),
    )


def _by_day_table(row: ReportRow) -> Html:
    if not row.delivered_by_day:
        return tag("p", {"class": "meta"}, "No piece delivered yet.")
    head = tag(
        "tr",
        None,
        tag("th", None, "date (facility-local)"),
        tag("th", {"class": "num"}, "delivered that day"),
        tag("th", {"class": "num"}, "delivered so far"),
        tag("th", {"class": "num"}, "share so far"),
    )
    body = []
    so_far = 0
    for day, count, share in row.delivered_by_day:
        so_far += count
        body.append(
            tag(
                "tr",
                {"data-day": day},
                tag("td", None, day),
                tag("td", {"class": "num"}, f"{count:,}"),
                tag("td", {"class": "num"}, f"{so_far:,}"),
                tag("td", {"class": "num"}, f"{share:.1%}"),
            )
        )
    return tag(
        "table",
        {"class": "by-day"},
        tag("thead", None, head),
        tag("tbody", None, *body),
    )


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body {
  margin: 0; background: #f3f4f6; color: #1f2937;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
        "DejaVu Sans", Arial, sans-serif;
}
main { max-width: 1200px; margin: 0 auto; padding: 28px 24px 40px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 0 0 2px; }
.meta { color: #6b7280; margin: 0 0 12px; }
code {
  font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
  background: #e5e7eb; padding: 1px 6px; border-radius: 4px;
}
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 18px 0 20px; }
.tile { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 12px 16px; }
.tile .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .label { color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card {
  background: #fff; border: 1px solid #e5e7eb; border-radius: 10px;
  padding: 18px 20px; margin-bottom: 20px; box-shadow: 0 1px 2px rgba(0, 0, 0, .04);
}
.charts { display: grid; grid-template-columns: 540px 540px; gap: 28px; margin: 8px 0 12px; }
svg.chart { display: block; max-width: 100%; height: auto; font-family: inherit; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td {
  padding: 6px 10px; text-align: left; border-bottom: 1px solid #eef0f3; white-space: nowrap;
}
th {
  font-size: 12px; font-weight: 600; color: #6b7280; text-transform: uppercase;
  letter-spacing: .04em; border-bottom: 1px solid #d1d5db;
}
.num { text-align: right; }
tbody tr:nth-child(even) { background: #f9fafb; }
table.by-day { width: auto; min-width: 520px; }
a { color: inherit; text-decoration: underline; text-decoration-color: #9ca3af; }
"""
