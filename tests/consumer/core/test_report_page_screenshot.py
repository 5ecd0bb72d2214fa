"""The campaign report page rendered by headless Chromium: the charts are on the screenshot.

A realistic simulated mailing goes through the service's own pipeline with campaign rules,
its piece events make the report, the page is written to a file and Chromium (Debian
package ``chromium``, installed by ``scripts/system-packages``) screenshots it, offline.
The checks read the PNG: each campaign and job's curve shading and line, and the phase
bars, in their colours, in their columns, at least most of the area the SVG gives them.
The same checks fail on the same page with its SVG taken out.

``IVMTR_CAMPAIGN_REPORT_PICTURE=docs/campaign-report.png`` also saves the top of the
screenshot (header, overview, table, first campaign and job): the README's picture.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from PIL import Image, ImageChops

from consumer.core.campaigns import CampaignRule
from consumer.core.charts import tint
from consumer.core.pipeline import MessagePipeline, ScanEvent
from consumer.core.report import CampaignReport, ReportRow
from consumer.core.report_page import (
    PHASE_BAR_COLOUR,
    SERIES_COLOURS,
    ReportSource,
    render_report_page,
)
from consumer.service import record_shapes
from consumer.simulator import MailingSpec, generate_records
from tests.consumer.core.test_report_page import find_all, parse

CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1280
COLUMN_SPLIT = WIDTH // 2  # the group cards' curve is left of it, the phase bars right
BACKGROUND = (0xF3, 0xF4, 0xF6)


def screenshot(page: Path, png: Path, profile: Path, height: int) -> Image.Image:
    """Chromium's picture of ``page`` in a WIDTH x ``height`` window, networking off."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install the Debian package chromium "
            "(scripts/system-packages, run by make test, does)"
        )
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{height}",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return Image.open(png).convert("RGB")


def colour_mask(image: Image.Image, colour: str) -> Image.Image:
    """White where the pixel is exactly ``colour`` (the inside of a fill; edges are blended)."""
    wanted = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
    bands = [
        band.point(lambda value, want=want: 255 if value == want else 0)
        for band, want in zip(image.split(), wanted, strict=True)
    ]
    return ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])


def lit(mask: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """How many pixels of the mask (or of a box of it) are set."""
    return (mask.crop(box) if box else mask).histogram()[255]


def middle_row(mask: Image.Image) -> float:
    """The mean row of the mask's set pixels (a stray blended pixel elsewhere barely moves it)."""
    rows = mask.resize((1, mask.height), Image.Resampling.BOX).tobytes()
    return sum(y * value for y, value in enumerate(rows)) / sum(rows)


def polygon_area(path: str) -> float:
    """The area of an SVG path of straight lines (M, L, Z), by the shoelace formula."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
    points = list(zip(numbers[::2], numbers[1::2], strict=True))
    return (
        abs(
            sum(
                x0 * y1 - x1 * y0
                for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
            )
        )
        / 2
    )


def assert_charts_rendered(image: Image.Image, page: str) -> None:
    """Every chart of ``page`` shows on the screenshot, where and as large as it should."""
    root = parse(page)
    groups = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    assert groups, "the page has no campaign and job section"
    width, height = image.size
    left, right = (0, 0, COLUMN_SPLIT, height), (COLUMN_SPLIT, 0, width, height)
    middles = []
    for index, group in enumerate(groups):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        curve = find_all(group, "svg")[0]
        # The line and its markers, here and in the overview.
        assert lit(colour_mask(image, colour)) >= 150, f"no curve in {colour} for group {index}"
        areas = [p for p in find_all(curve, "path") if p.get("class") == "area"]
        expected = polygon_area(areas[0].get("d", "")) if areas else 0.0
        if expected < 100:  # nothing delivered (a flat line), or a single day
            continue
        shade = colour_mask(image, tint(colour, 0.22))
        assert lit(shade, left) >= 0.6 * expected, (
            f"group {index}: {lit(shade, left)} shaded pixels, the curve's area is {expected:.0f}"
        )
        assert lit(shade, right) < 0.02 * expected, f"group {index}: shading in the bars' column"
        middles.append(middle_row(shade.crop(left)))
    assert middles and middles == sorted(middles), "the groups' curves are not in page order"
    bars = [
        rect
        for group in groups
        for rect in find_all(find_all(group, "svg")[1], "rect")
        if rect.get("fill") == PHASE_BAR_COLOUR
    ]
    expected = sum(float(r.get("width", 0)) * float(r.get("height", 0)) for r in bars)
    bar_mask = colour_mask(image, PHASE_BAR_COLOUR)
    assert lit(bar_mask, right) >= 0.7 * expected, (
        f"{lit(bar_mask, right)} phase bar pixels, the bars cover {expected:.0f}"
    )
    assert lit(bar_mask, left) == 0, "phase bars in the curves' column"


def realistic_rows() -> list[ReportRow]:
    """A simulated mailing of three mailers through the service's pipeline, as a report.

    Campaigns go by eDoc job (two mailers) and by mailer ID (the third); pieces that match
    no rule take the feed's label, as the service assigns them.
    """
    spec = MailingSpec(pieces=3000, mailer_ids=("902345678", "123456", "654321"), seed=17)
    records = list(generate_records(spec))
    job_of: dict[str, str] = {}
    for record in records:
        if "imb" in record and record.get("edocJobId"):
            imb = str(record["imb"])
            job_of.setdefault(imb[5:14] if imb[5] == "9" else imb[5:11], str(record["edocJobId"]))
    rules = [
        CampaignRule("spring-sale", job_ids=frozenset({job_of["902345678"]})),
        CampaignRule("autumn-catalog", job_ids=frozenset({job_of["123456"]})),
        CampaignRule("renewals", mailer_ids=frozenset({"654321"})),
    ]
    pipeline = MessagePipeline(
        feed="letters",
        received_at_ms=0,
        shapes=record_shapes(),
        campaign="unassigned",
        campaigns=rules,
    )
    report = CampaignReport()
    body = orjson.dumps({"msgGrpId": "G1", "msgSerNbr": 1, "events": records})
    for outcome in pipeline.feed(body) + pipeline.finish():
        if isinstance(outcome, ScanEvent) and outcome.kind.value == "piece":
            report.add(outcome.value)
    return report.rows()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Image.Image]]:
    rows = realistic_rows()
    assert len(rows) >= 4 and sum(row.delivered for row in rows) > 0
    page = render_report_page(
        rows,
        source=ReportSource("ivmtr.piece-scans", "every piece scan replayed"),
        generated_at=datetime(2026, 11, 6, 9, 0, tzinfo=UTC),
    )
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "report.html").write_text(page, encoding="utf-8")
    image = screenshot(
        tmp / "report.html", tmp / "report.png", tmp / "profile", 900 + 720 * len(rows)
    )
    yield page, image


def test_the_charts_are_on_the_screenshot(rendered: tuple[str, Image.Image]) -> None:
    page, image = rendered
    assert_charts_rendered(image, page)
    picture = os.environ.get("IVMTR_CAMPAIGN_REPORT_PICTURE")
    if picture:
        top_of(image, boxes=4).save(picture, optimize=True)


def test_without_the_svg_the_check_fails(rendered: tuple[str, Image.Image], tmp_path: Path) -> None:
    page, image = rendered
    stripped = re.sub(r"<svg\b.*?</svg>", "", page, flags=re.DOTALL)
    assert "<svg" not in stripped and len(stripped) < len(page) / 2
    (tmp_path / "stripped.html").write_text(stripped, encoding="utf-8")
    bare = screenshot(
        tmp_path / "stripped.html", tmp_path / "stripped.png", tmp_path / "p", image.height
    )
    assert ImageChops.difference(bare, image).getbbox() is not None
    with pytest.raises(AssertionError):
        assert_charts_rendered(bare, page)


def top_of(image: Image.Image, boxes: int) -> Image.Image:
    """The screenshot down to the end of its ``boxes``-th white box (the tiles count as one)."""
    x = (WIDTH - 1200) // 2 + 24 + 6  # just inside the cards' left edge
    run, seen, y = 0, 0, 0
    for y in range(image.height):
        if image.getpixel((x, y)) != BACKGROUND:
            run += 1
            continue
        if run >= 40:  # a box, not a line of the title's text
            seen += 1
            if seen == boxes:
                break
        run = 0
    return image.crop((0, 0, WIDTH, min(image.height, y + 16)))
