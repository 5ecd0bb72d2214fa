"""The ``imb`` command group: single values, stdin batches, exit codes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from consumer.cli.imb import imb

TRACKING = "01234567094987654321"
ROUTING = "01234567891"
BARS = "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA"
BARS_NO_ROUTING = "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT"
FIELDS = {
    "barcode_id": "01",
    "service_type_id": "234",
    "mailer_id": "567094",
    "serial_number": "987654321",
    "routing_code": ROUTING,
    "zip5": "01234",
    "zip4": "5678",
    "delivery_point": "91",
    "tracking_code": TRACKING,
}


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(imb, list(args), input=stdin)


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_encode() -> None:
    result = run("encode", TRACKING, ROUTING)
    assert (result.exit_code, result.stdout) == (0, BARS + "\n")
    assert run("encode", TRACKING).stdout == BARS_NO_ROUTING + "\n"


def test_encode_bad_value_fails_on_stderr() -> None:
    result = run("encode", "05234567094987654321")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("ERROR: barcode identifier '05'")


def test_decode_bars() -> None:
    result = run("decode", BARS)
    assert result.exit_code == 0
    assert json_lines(result) == [{**FIELDS, "upside_down": False, "repaired_bar": None}]


def test_decode_damaged_bars_upside_down() -> None:
    flipped = BARS[::-1].translate(str.maketrans("AD", "DA"))
    damaged = flipped[:35] + "F" + flipped[36:]  # bar 36 was a T
    result = run("decode", damaged.lower())
    assert result.exit_code == 0
    assert json_lines(result) == [{**FIELDS, "upside_down": True, "repaired_bar": 36}]


@pytest.mark.parametrize("routing", ["", "01234", "012345678", ROUTING])
def test_decode_digits(routing: str) -> None:
    result = run("decode", TRACKING + routing)
    assert result.exit_code == 0
    (fields,) = json_lines(result)
    assert fields["tracking_code"] == TRACKING
    assert fields["routing_code"] == (routing or None)
    assert "upside_down" not in fields
    assert "repaired_bar" not in fields


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0523456709498765432101234", "barcode_id"),
        ("012345670949876543210123", "routing_length"),
        (BARS[:-1], "bars_length"),
        ("T" * 65, "invalid_character"),
    ],
)
def test_decode_bad_value_prints_a_json_error(value: str, code: str) -> None:
    result = run("decode", value)
    assert result.exit_code == 1
    (line,) = json_lines(result)
    assert line["code"] == code
    assert line["error"]


def test_encode_batch_writes_one_line_per_input_line() -> None:
    stdin = f"{TRACKING}\t{ROUTING}\n05234567094987654321\t\n{TRACKING}\n\n{TRACKING}\t\n"
    result = run("encode", stdin=stdin)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        BARS,
        "ERROR: barcode identifier '05': its second digit must be 0-4",
        BARS_NO_ROUTING,
        "ERROR: tracking code needs 20 digits, got 0 characters",
        BARS_NO_ROUTING,
    ]


def test_encode_batch_of_good_lines_succeeds() -> None:
    result = run("encode", stdin=f"{TRACKING}\t{ROUTING}\r\n{TRACKING}\n")
    assert (result.exit_code, result.stdout) == (0, f"{BARS}\n{BARS_NO_ROUTING}\n")


def test_decode_batch_writes_one_line_per_input_line() -> None:
    stdin = f"{BARS}\nnot an imb\n{TRACKING}{ROUTING}\n{BARS_NO_ROUTING}"
    result = run("decode", stdin=stdin)
    assert result.exit_code == 1
    lines = json_lines(result)
    assert len(lines) == 4
    assert lines[0] == {**FIELDS, "upside_down": False, "repaired_bar": None}
    assert lines[1]["code"] == "bars_length"
    assert lines[2] == FIELDS
    assert lines[3]["routing_code"] is None


def test_decode_batch_of_good_lines_succeeds() -> None:
    result = run("decode", stdin=f"{BARS}\n{TRACKING}{ROUTING}\n")
    assert result.exit_code == 0
    assert len(json_lines(result)) == 2


def test_registered_under_the_main_cli() -> None:
    cli = pytest.importorskip("consumer.cli")
    result = CliRunner().invoke(cli.main, ["imb", "encode", TRACKING, ROUTING])
    assert (result.exit_code, result.stdout) == (0, BARS + "\n")
