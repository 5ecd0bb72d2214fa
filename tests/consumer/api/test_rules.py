"""consumer.api.rules: the IV-MTR API FAQ's rules, checked before any request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.api.models import RuleViolation
from consumer.api.rules import (
    DataWindowWarning,
    LookupQuery,
    check_lookup_query,
    check_piece_query,
    data_window_warnings,
    matches_routing,
)
from consumer.core.stid import NO_SINGLE_PIECE_DATA_STIDS

TRACKING = "00040699515990019102"  # BI 00, STID 040, MID 699515, serial 990019102
ROUTING = "22082810103"
BRM = sorted(NO_SINGLE_PIECE_DATA_STIDS)
# IV-MTR API FAQ, question 5, as written.
FAQ_BRM = [
    "030", "031", "032", "050", "051", "052", "070", "071", "072",
    "701", "703", "708", "777", "778", "779",
]  # fmt: skip


def rule_of(imb: str) -> str:
    with pytest.raises(RuleViolation) as caught:
        check_piece_query(imb)
    return caught.value.rule


# ----------------------------------------------------------------------------- single piece


@pytest.mark.parametrize("routing", ["", ROUTING[:5], ROUTING[:9], ROUTING])
def test_a_full_imb_passes_and_is_split(routing: str) -> None:
    fields = check_piece_query(f" {TRACKING}{routing}\n")
    assert (fields.service_type_id, fields.mailer_id, fields.serial_number) == (
        "040",
        "699515",
        "990019102",
    )
    assert fields.digits == TRACKING + routing


@pytest.mark.parametrize(
    "imb", ["699515990019102", TRACKING[:19], TRACKING + "2208", TRACKING + ROUTING[:10], ""]
)
def test_a_partial_imb_is_refused_pointing_to_the_lookup(imb: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_piece_query(imb)
    assert caught.value.rule == "imb_partial"
    assert "full IMb" in str(caught.value)
    if imb:
        assert "lookup MID SERIAL" in str(caught.value)
        assert f"{len(imb)} digits" in str(caught.value)


def test_more_than_31_digits_is_not_an_imb() -> None:
    assert rule_of(TRACKING + ROUTING + "1") == "imb_invalid"


@pytest.mark.parametrize("imb", [TRACKING[:10] + "x" * 10, "0004-0699515-990019102", "²" * 20])
def test_non_digits_are_refused(imb: str) -> None:
    assert rule_of(imb) == "imb_not_digits"


def test_bars_get_a_hint_to_decode_them() -> None:
    with pytest.raises(RuleViolation, match="imb decode"):
        check_piece_query("AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA")


def test_a_barcode_id_the_specification_forbids_is_refused() -> None:
    with pytest.raises(RuleViolation, match="barcode identifier") as caught:
        check_piece_query("05" + TRACKING[2:])
    assert caught.value.rule == "imb_invalid"


def test_the_brm_list_is_the_faqs() -> None:
    assert BRM == FAQ_BRM


@pytest.mark.parametrize("stid", FAQ_BRM)
def test_business_reply_mail_stids_are_refused_with_the_faqs_reason(stid: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_piece_query("00" + stid + TRACKING[5:] + ROUTING)
    assert caught.value.rule == "stid_no_single_piece_data"
    message = str(caught.value)
    assert f"STID {stid}" in message
    assert "does not provide data for Business Reply Mail" in message
    assert "030, 031, 032, 050, 051, 052, 070, 071, 072, 701, 703, 708, 777, 778, 779" in message


@pytest.mark.parametrize("stid", ["040", "270", "300", "310", "700", "780"])
def test_other_stids_pass(stid: str) -> None:
    assert check_piece_query("00" + stid + TRACKING[5:]).service_type_id == stid


# ----------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("mid", "serial"), [("699515", "990019102"), ("902345678", "000123"), ("000001", "0" * 9)]
)
def test_a_lookup_needs_a_mid_and_serial_making_15_digits(mid: str, serial: str) -> None:
    assert check_lookup_query(f" {mid} ", serial) == LookupQuery(mid, serial)


@pytest.mark.parametrize(
    ("mid", "serial", "rule"),
    [
        ("69951", "990019102", "mid_invalid"),  # 5 digits
        ("912345", "990019102", "mid_invalid"),  # 6 digits starting with 9
        ("123456789", "123456", "mid_invalid"),  # 9 digits not starting with 9
        ("9123456789", "12345", "mid_invalid"),  # 10 digits
        ("69951a", "990019102", "mid_invalid"),
        ("", "990019102", "mid_invalid"),
        ("699515", "990019", "serial_invalid"),  # 6 digits with a 6-digit MID
        ("902345678", "990019102", "serial_invalid"),  # 9 digits with a 9-digit MID
        ("699515", "99001910x", "serial_invalid"),
        ("699515", "", "serial_invalid"),
    ],
)
def test_bad_mids_and_serials_are_refused(mid: str, serial: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_lookup_query(mid, serial)
    assert caught.value.rule == rule


def test_serial_message_names_the_length_needed() -> None:
    with pytest.raises(RuleViolation, match="must be 6 digits with the 9-digit mailer ID"):
        check_lookup_query("902345678", "1234567")


@pytest.mark.parametrize("stid", ["04", "0400", "04a", ""])
def test_a_bad_stid_is_refused(stid: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_lookup_query("699515", "990019102", stid=stid)
    assert caught.value.rule == "stid_invalid"


@pytest.mark.parametrize("routing", ["", "2208", "220828", "2208281010", "220828101031", "2208a"])
def test_a_bad_routing_code_is_refused(routing: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_lookup_query("699515", "990019102", routing=routing)
    assert caught.value.rule == "routing_invalid"


def test_a_brm_stid_is_not_refused_for_the_lookup() -> None:
    # FAQ Q5 restricts the single-piece query only.
    query = check_lookup_query("699515", "990019102", stid="708", routing="22082")
    assert (query.stid, query.routing) == ("708", "22082")


@pytest.mark.parametrize(
    ("routing", "expected"),
    [("22082", True), ("220828101", True), (ROUTING, True), ("22083", False), ("2208281010", True)],
)
def test_routing_filter_matches_by_prefix(routing: str, expected: bool) -> None:
    assert matches_routing(TRACKING + ROUTING, routing) is expected
    assert matches_routing(TRACKING, routing) is False


# ----------------------------------------------------------------------------- 30 days

TODAY = date(2026, 12, 31)


def test_scans_within_30_days_give_no_warning() -> None:
    days = [TODAY, TODAY - timedelta(days=30), TODAY + timedelta(days=1)]
    assert data_window_warnings(days, today=TODAY) == []


def test_scans_older_than_30_days_point_to_the_one_time_query() -> None:
    old = TODAY - timedelta(days=31)
    (warning,) = data_window_warnings([old, old, TODAY], today=TODAY)
    assert (warning.scan_date, warning.age_days, warning.count) == (old, 31, 2)
    assert str(warning) == (
        "2 scans of 2026-11-30 31 days old: the API keeps data for 30 days after the scan date; "
        "run a One-Time Query in the IV-MTR web application, which reaches back 120 days"
    )


def test_scans_older_than_120_days_are_out_of_reach() -> None:
    warnings = data_window_warnings(
        [TODAY - timedelta(days=121), TODAY - timedelta(days=120)], today=TODAY
    )
    assert [w.age_days for w in warnings] == [121, 120]
    assert "One-Time Query in the IV-MTR web application" in warnings[1].message
    assert warnings[0].message == (
        "1 scan of 2026-09-01 121 days old: past the API's 30 days and the 120 days of the "
        "IV-MTR web application's One-Time Query"
    )


def test_datetimes_count_by_their_own_date() -> None:
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    warnings = data_window_warnings([late, late.astimezone(UTC) + timedelta(hours=1)], today=TODAY)
    assert [(w.scan_date, w.count) for w in warnings] == [(date(2026, 11, 30), 1)]
    assert isinstance(warnings[0], DataWindowWarning)


# ----------------------------------------------------------------------------- properties

_IMB_ALPHABET = st.sampled_from("0123456789") | st.characters()


def _valid_imb(text: str) -> bool:
    text = text.strip()
    return (
        text.isascii()
        and text.isdigit()
        and len(text) in (20, 25, 29, 31)
        and text[1] <= "4"
        and text[2:5] not in NO_SINGLE_PIECE_DATA_STIDS
    )


@given(st.text(_IMB_ALPHABET, max_size=40))
def test_any_text_is_accepted_or_refused_with_a_rule_violation(text: str) -> None:
    try:
        fields = check_piece_query(text)
    except RuleViolation as exc:
        assert not _valid_imb(text)
        assert exc.rule in {
            "imb_partial",
            "imb_invalid",
            "imb_not_digits",
            "stid_no_single_piece_data",
        }
    else:
        assert _valid_imb(text)
        assert fields.digits == text.strip()


@given(
    st.text("0123456789", max_size=40).filter(lambda t: len(t) not in (20, 25, 29, 31)),
)
def test_digit_strings_of_other_lengths_are_always_refused(digits: str) -> None:
    expected = "imb_invalid" if len(digits) > 31 else "imb_partial"
    assert rule_of(digits) == expected


@given(
    st.sampled_from("01234"),
    st.sampled_from(BRM),
    st.text("0123456789", min_size=15, max_size=15),
    st.sampled_from([0, 5, 9, 11]),
)
def test_every_brm_imb_is_refused(bi: str, stid: str, rest: str, routing_length: int) -> None:
    assert rule_of("0" + bi + stid + rest + "1" * routing_length) == "stid_no_single_piece_data"


def _valid_mid(mid: str) -> bool:
    return mid.isascii() and mid.isdigit() and len(mid) == (9 if mid[0] == "9" else 6)


@given(st.text(st.sampled_from("0123456789") | st.characters(), max_size=12), st.booleans())
def test_mids_are_refused_unless_6_digits_or_9_starting_with_9(mid: str, nine: bool) -> None:
    serial = "1" * (6 if nine else 9)
    mid = mid.strip()
    try:
        query = check_lookup_query(mid, serial)
    except RuleViolation as exc:
        assert exc.rule in {"mid_invalid", "serial_invalid"}
        assert exc.rule == "serial_invalid" or not _valid_mid(mid)
    else:
        assert _valid_mid(mid) and len(mid) + len(serial) == 15
        assert query.mid == mid
