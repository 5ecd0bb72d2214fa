"""The campaign report page: structure, escaping, offline, and figures that match the report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from consumer.core.charts import tint
from consumer.core.markup import Html, join, tag, text
from consumer.core.report import MAIL_PHASES, CampaignReport, ReportRow
from consumer.core.report_page import (
    PHASE_BAR_COLOUR,
    PHASE_LABELS,
    SERIES_COLOURS,
    ReportSource,
    render_report_page,
)
from tests.consumer.core.test_report_last_phase import scan

GENERATED = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
SOURCE = ReportSource("ivmtr.piece-status", "each piece's latest status")
HOSTILE = "<script>alert('x')</script> & \"spring\""
HOSTILE_JOB = '"><img src=x onerror=alert(1)>'


def mailing() -> list[ReportRow]:
    """Three campaign and job rows: deliveries over days with a gap, none, and hostile names."""
    report = CampaignReport()
    phases = ("PHASE_1_ORIGIN", "PHASE_3C_DESTINATION_SEQUENCED_CARRIER", "PHASE_4C_DELIVERY")
    for n in range(40):
        piece = f"s{n:03d}"
        report.add(scan(piece, f"{piece}-a", 0, phases[0]))
        report.add(scan(piece, f"{piece}-b", 20, phases[n % 2 + 1]))
        if n % 2:  # half delivered: on day 1, 2 or 4 after induction (day 3 has none)
            hours = 24 * (1, 2, 4)[n % 3]
            report.add(scan(piece, f"{piece}-c", hours, phases[2], delivered=True))
    for n in range(7):
        report.add(scan(f"u{n}", f"u{n}-a", 3, None, campaign=None, job=None))
    for n in range(5):
        report.add(scan(f"h{n}", f"h{n}-a", 2, phases[n % 2], campaign=HOSTILE, job=HOSTILE_JOB))
        report.add(
            scan(
                f"h{n}",
                f"h{n}-b",
                30,
                phases[2],
                campaign=HOSTILE,
                job=HOSTILE_JOB,
                delivered=n < 2,
            )
        )
    return report.rows()


def local(element: ET.Element) -> str:
    """The element's name without its XML namespace (SVG elements carry one)."""
    return element.tag.rsplit("}", 1)[-1]


def find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [element for element in root.iter() if local(element) == name]


def parse(page: str) -> ET.Element:
    assert page.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


@pytest.fixture(scope="module")
def rows() -> list[ReportRow]:
    return mailing()


@pytest.fixture(scope="module")
def page(rows: list[ReportRow]) -> str:
    return render_report_page(rows, source=SOURCE, generated_at=GENERATED)


def test_markup_escapes_everything_but_markup() -> None:
    assert text('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert tag("p", {"title": "\"'<", "hidden": None}, "<b>", Html("<i>ok</i>")) == (
        '<p title="&quot;&#x27;&lt;">&lt;b&gt;<i>ok</i></p>'
    )
    assert join(["<", Html("<br/>")]) == "&lt;<br/>"
    with pytest.raises(TypeError):
        join("<b>")
    with pytest.raises(ValueError):
        tag("meta", None, "content", void=True)


def test_structure_is_a_whole_page(page: str) -> None:
    root = parse(page)  # well-formed, or this raises
    assert local(root) == "html" and root.get("lang") == "en"
    assert [local(child) for child in root] == ["head", "body"]
    head = root[0]
    assert [meta.get("charset") for meta in find_all(head, "meta") if meta.get("charset")] == [
        "utf-8"
    ]
    assert text_of(find_all(head, "title")[0]) == "Campaign delivery report"
    ids = [element.get("id") for element in root.iter() if element.get("id")]
    assert len(ids) == len(set(ids))
    for anchor in find_all(root, "a"):
        assert anchor.get("href", "").lstrip("#") in ids
    for svg in find_all(root, "svg"):
        assert svg.get("viewBox") and find_all(svg, "title")


def test_hostile_names_stay_text(page: str, rows: list[ReportRow]) -> None:
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    root = parse(page)
    assert not find_all(root, "script") and not find_all(root, "img")
    (section,) = [s for s in find_all(root, "section") if s.get("data-campaign") == HOSTILE]
    assert section.get("data-job") == HOSTILE_JOB
    assert text_of(find_all(section, "h2")[0]) == f"{HOSTILE} \u00b7 job {HOSTILE_JOB}"
    # In the legend and the points' notes as well, as text.
    legends = [text_of(item) for item in find_all(root, "g") if item.get("class") == "legend-item"]
    assert any(HOSTILE in legend for legend in legends)
    assert any(c.get("data-series", "").startswith(HOSTILE) for c in find_all(root, "circle"))


def test_nothing_is_fetched(page: str) -> None:
    root = parse(page)
    for element in root.iter():
        for name, value in element.attrib.items():
            if local(ET.Element(name)) in {"src", "href", "action", "data", "poster"}:
                assert value.startswith("#"), (name, value)
    assert not re.search(r"@import|url\(|https?://(?!www\.w3\.org/2000/svg\")", page)
    for name in ("script", "link", "img", "iframe", "object", "embed", "image", "use"):
        assert not find_all(root, name), name


def test_every_campaign_and_job_has_its_section_and_table_row(
    page: str, rows: list[ReportRow]
) -> None:
    root = parse(page)
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    assert [(s.get("data-campaign"), s.get("data-job")) for s in sections] == [
        (row.campaign, row.job_id) for row in rows
    ]
    assert len(rows) == 3
    (table,) = [t for t in find_all(root, "table") if t.get("class") == "report"]
    body = find_all(table, "tbody")[0]
    assert [tuple(text_of(td) for td in tr) for tr in body] == [row.table_cells() for row in rows]


def test_header_totals(page: str, rows: list[ReportRow]) -> None:
    root = parse(page)
    totals = {
        tile.get("data-total"): text_of(tile[0])
        for tile in find_all(root, "div")
        if tile.get("data-total")
    }
    pieces = sum(row.pieces for row in rows)
    delivered = sum(row.delivered for row in rows)
    assert totals == {
        "campaigns": "2",
        "campaigns \u00d7 jobs": "3",
        "pieces": f"{pieces:,}",
        "delivered": f"{delivered:,}",
        "delivered share": f"{delivered / pieces:.1%}",
    }
    meta = text_of(find_all(root, "p")[0])
    assert "2026-03-09 08:30:00 UTC" in meta and "ivmtr.piece-status" in meta


def _linear(points: list[tuple[float, float]]) -> None:
    """The points (value, coordinate) lie on one line, larger values further along it."""
    (v0, c0), (v1, c1) = min(points), max(points)
    if v1 == v0:
        assert len({c for _, c in points}) == 1
        return
    slope = (c1 - c0) / (v1 - v0)
    for value, coordinate in points:
        assert coordinate == pytest.approx(c0 + slope * (value - v0), abs=0.15)


def share_on(row: ReportRow, day: str) -> float:
    """The row's share delivered by the end of ``day`` (an ISO date)."""
    share = 0.0
    for delivered_day, _, so_far in row.delivered_by_day:
        if delivered_day <= day:
            share = so_far
    return share


def group_name(row: ReportRow) -> str:
    job = f"job {row.job_id}" if row.job_id else "no eDoc job"
    return f"{row.campaign or 'no campaign'} \u00b7 {job}"


def test_delivery_curves_match_the_report(page: str, rows: list[ReportRow]) -> None:
    root = parse(page)
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    (overview,) = [s for s in find_all(root, "section") if "overview" in s.get("class", "")]
    for row, section in zip(rows, sections, strict=True):
        circles = find_all(find_all(section, "svg")[0], "circle")
        mine = [c for c in find_all(overview, "circle") if c.get("data-series") == group_name(row)]
        assert circles and mine
        for circle in circles + mine:
            day, value = circle.get("data-day", ""), float(circle.get("data-value", "nan"))
            assert value == pytest.approx(share_on(row, day), abs=1e-6), (row.campaign, day)
        days = [c.get("data-day", "") for c in circles]
        assert days == sorted(days)
        assert {day for day, _, _ in row.delivered_by_day} <= set(days)
        assert float(circles[-1].get("data-value", 0)) == pytest.approx(row.delivered_share)
        # Higher share, higher on the chart (smaller y), on one straight scale.
        _linear([(-float(c.get("data-value", 0)), float(c.get("cy", 0))) for c in circles])
    (spring,) = [index for index, row in enumerate(rows) if row.campaign == "spring"]
    assert [day for day, _, _ in rows[spring].delivered_by_day] == [
        "2026-03-03",
        "2026-03-04",
        "2026-03-06",
    ]
    # One point a day, also on the day nobody was delivered (March 5th).
    curve = find_all(sections[spring], "svg")[0]
    assert [c.get("data-day") for c in find_all(curve, "circle")] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
    ]


def test_phase_bars_match_the_report(page: str, rows: list[ReportRow]) -> None:
    root = parse(page)
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    for row, section in zip(rows, sections, strict=True):
        bars = find_all(find_all(section, "svg")[1], "rect")
        assert [(bar.get("data-key"), int(bar.get("data-value", -1))) for bar in bars] == [
            (phase or "UNKNOWN", count) for phase, count in row.last_phases
        ]
        assert all(bar.get("fill") == PHASE_BAR_COLOUR for bar in bars)
        _linear([(float(bar.get("data-value", 0)), float(bar.get("width", 0))) for bar in bars])
        assert max(float(bar.get("width", 0)) for bar in bars) > 100
        labels = [text_of(t) for t in find_all(find_all(section, "svg")[1], "text")]
        for phase, count in row.last_phases:
            assert PHASE_LABELS[phase] in labels
            assert f"{count:,} ({count / row.pieces:.1%})" in labels


def test_by_day_table_matches_the_report(page: str, rows: list[ReportRow]) -> None:
    root = parse(page)
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    for row, section in zip(rows, sections, strict=True):
        tables = [t for t in find_all(section, "table") if t.get("class") == "by-day"]
        if not row.delivered_by_day:
            assert not tables and "No piece delivered yet." in text_of(section)
            continue
        lines = [[text_of(td) for td in tr] for tr in find_all(tables[0], "tbody")[0]]
        so_far = 0
        for line, (day, count, share) in zip(lines, row.delivered_by_day, strict=True):
            so_far += count
            assert line == [day, f"{count:,}", f"{so_far:,}", f"{share:.1%}"]


def test_series_colours(page: str, rows: list[ReportRow]) -> None:
    root = parse(page)
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    for index, section in enumerate(sections):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        curve = find_all(section, "svg")[0]
        assert {c.get("fill") for c in find_all(curve, "circle")} == {colour}
        areas = [p for p in find_all(curve, "path") if p.get("class") == "area"]
        # Shaded under the curve, unless the curve is a single day (a point has no area).
        days = len(find_all(curve, "circle"))
        assert [p.get("fill") for p in areas] == ([tint(colour, 0.22)] if days > 1 else [])
    assert PHASE_BAR_COLOUR not in SERIES_COLOURS


def test_every_mail_phase_has_a_label() -> None:
    assert set(MAIL_PHASES) | {None} == set(PHASE_LABELS)


def test_an_empty_report_is_a_page_without_charts() -> None:
    page = render_report_page([], source=SOURCE, generated_at=GENERATED)
    root = parse(page)
    assert not find_all(root, "svg")
    assert "No pieces" in text_of(root)


def test_a_mailing_over_new_year_has_every_day_and_both_years() -> None:
    report = CampaignReport()
    report.add(scan("p1", "a", 24 * 300, "PHASE_1_ORIGIN"))  # 2026-12-27
    report.add(scan("p1", "b", 24 * 307, "PHASE_4C_DELIVERY", delivered=True))  # 2027-01-03
    root = parse(render_report_page(report.rows(), source=SOURCE, generated_at=GENERATED))
    (group,) = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    curve = find_all(group, "svg")[0]
    days = [c.get("data-day") for c in find_all(curve, "circle")]
    assert days[0] == "2026-12-27" and days[-1] == "2027-01-03" and len(days) == 8
    assert "Facility-local date of delivery, 2026\u20132027" in [
        text_of(t) for t in find_all(curve, "text")
    ]
