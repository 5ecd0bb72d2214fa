"""consumer.core.imb: cases found by ``make mutation MODULE=imb`` that no test held.

- ``IMb.fields()`` (the event's ``barcode`` record) has exactly the Barcode schema's
  fields, in its order, with None for the routing parts an IMb does not carry;
- every error message names what was wrong: the lengths, the non-digits, the
  barcode identifier, the letters that are no bars, the damaged characters (A..J)
  of a read and the out-of-range codeword, each exactly;
- the range limits of a read are exact: codeword A 1317, J 1270, and the first
  Step 1 value past the last payload; the largest routing code of each length
  round-trips;
- the Step 1..3 helpers: ``binary_value`` without a routing code, ``codewords(0)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.core import imb as imb_module
from consumer.core.imb import (
    DecodedIMb,
    IMb,
    IMbDecodeError,
    IMbPayloadError,
    binary_value,
    codewords,
    decode_imb,
    encode_imb,
    frame_check,
    split_imb,
)
from tests.consumer.core.test_imb import (
    APPENDIX_C,
    TRACKING_C,
    appendix_c_words,
    bars_of_characters,
    characters_of_codewords,
    with_bar,
)

BARCODE_SCHEMA = Path(__file__).parents[3] / "schemas" / "ivmtr.events.Barcode.avsc"

# ----------------------------------------------------------------------- IMb.fields()


@pytest.mark.parametrize(
    ("digits", "routing_parts"),
    [
        ("01234567094987654321", (None, None, None, None)),
        ("0123456709498765432112345", ("12345", "12345", None, None)),
        ("01234567094987654321123456789", ("123456789", "12345", "6789", None)),
        ("0123456709498765432112345678901", ("12345678901", "12345", "6789", "01")),
    ],
)
def test_fields_are_the_barcode_record(
    digits: str, routing_parts: tuple[str | None, str | None, str | None, str | None]
) -> None:
    schema = json.loads(BARCODE_SCHEMA.read_text())
    fields = split_imb(digits).fields()
    assert list(fields) == [field["name"] for field in schema["fields"]]
    routing_code, zip5, zip4, delivery_point = routing_parts
    assert fields == {
        "barcode_id": "01",
        "service_type_id": "234",
        "mailer_id": "567094",
        "serial_number": "987654321",
        "routing_code": routing_code,
        "zip5": zip5,
        "zip4": zip4,
        "delivery_point": delivery_point,
        "tracking_code": "01234567094987654321",
    }


def test_fields_of_a_nine_digit_mailer_id() -> None:
    fields = IMb("94", "270", "900000001", "000001", "12345").fields()
    assert (fields["mailer_id"], fields["serial_number"]) == ("900000001", "000001")
    assert fields["tracking_code"] == "94270900000001000001"


# ----------------------------------------------------------------------- payload errors


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        # 20 digits in all, but split 2 + 2 (+ a 7-digit mailer ID)
        (("00", "27", "0123456", "000000001"), ["'00'", "'27'"]),
        # ... or 1 + 3
        (("0", "027", "0123456", "000000001"), ["'0'", "'027'"]),
    ],
)
def test_imb_refuses_a_wrong_split_of_the_tracking_code(
    fields: tuple[str, ...], named: list[str]
) -> None:
    with pytest.raises(IMbPayloadError) as caught:
        IMb(*fields)
    assert caught.value.code == "tracking_length"
    message = str(caught.value)
    assert "barcode_id" in message and "service_type_id" in message
    for value in named:
        assert value in message


def test_imb_mailer_id_error_names_the_mailer_id_and_its_lengths() -> None:
    with pytest.raises(IMbPayloadError) as caught:
        IMb("00", "270", "912345", "000000001")
    assert caught.value.code == "mailer_id"
    message = str(caught.value)
    assert "'912345'" in message
    assert "9 digits" in message and "6" in message


@pytest.mark.parametrize(
    ("tracking", "routing", "code", "named"),
    [
        ("0123456709498765432", "", "tracking_length", ["20 digits", "got 19 characters"]),
        ("012345670949876543210", "", "tracking_length", ["20 digits", "got 21 characters"]),
        # each non-digit once, sorted, whatever digits sit around them
        ("0123X567X9498765432-", "", "tracking_not_digits", ["non-digits '-X'"]),
        ("0123456709498765432\u00b2", "", "tracking_not_digits", ["non-digits '\u00b2'"]),
        ("05234567094987654321", "", "barcode_id", ["barcode identifier '05':", "0-4"]),
        ("01234567094987654321", "1234", "routing_length", ["0, 5, 9 or 11", "got 4 char"]),
        ("01234567094987654321", "1X3a5", "routing_not_digits", ["non-digits 'Xa'"]),
    ],
)
def test_payload_errors_name_what_is_wrong(
    tracking: str, routing: str, code: str, named: list[str]
) -> None:
    for call in (encode_imb, binary_value):
        with pytest.raises(IMbPayloadError) as caught:
            call(tracking, routing)
        assert caught.value.code == code
        for fact in named:
            assert fact in str(caught.value)


# ----------------------------------------------------------------------- Steps 1-3


def test_binary_value_without_a_routing_code() -> None:
    # imb.md 2.1, the first Appendix C example (no routing code)
    assert binary_value(TRACKING_C) == int(APPENDIX_C[0][1], 16)
    assert binary_value(TRACKING_C) == binary_value(TRACKING_C, "")


def test_codewords_of_the_smallest_value() -> None:
    # All-zero tracking code, no routing code: Step 1 gives 0, every codeword is 0.
    assert binary_value("0" * 20) == 0
    assert codewords(0) == (0,) * 10
    assert decode_imb(encode_imb("0" * 20)).imb == IMb("00", "000", "000000", "000000000")


def test_range_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"2\*\*102\), got -1$"):
        frame_check(-1)
    with pytest.raises(ValueError, match=r"2\*\*102\), got 5070602400912917605986812821504$"):
        frame_check(2**102)
    limit = imb_module._VALUE_LIMIT
    with pytest.raises(ValueError, match=f"IMb payload: {limit}$"):
        codewords(limit)
    with pytest.raises(ValueError, match=r"IMb payload: -1$"):
        codewords(-1)


@pytest.mark.parametrize("routing", ["99999", "999999999", "99999999999", "00000", "000000000"])
def test_the_largest_and_smallest_routing_codes_round_trip(routing: str) -> None:
    tracking = "94999999999999999999"
    assert decode_imb(encode_imb(tracking, routing)) == DecodedIMb(split_imb(tracking + routing))


# ----------------------------------------------------------------------- decode errors


def test_bars_length_error_names_the_length() -> None:
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(APPENDIX_C[0][4][:64])
    assert caught.value.code == "bars_length"
    assert "65 bars" in str(caught.value) and "got 64 characters" in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({5: "X", 40: "1", 41: "X"}, "'1X'"),
        ({65: "\u00c4"}, "'\u00c4'"),
        ({1: " "}, "' '"),
    ],
)
def test_bars_characters_error_names_exactly_the_letters_that_are_no_bars(
    changes: dict[int, str], found: str
) -> None:
    # Upper- and lower-case bar letters both are bars; only the others are named.
    bars = APPENDIX_C[3][4][:30] + APPENDIX_C[3][4][30:].lower()
    for position, letter in changes.items():
        bars = with_bar(bars, position, letter)
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(bars)
    assert caught.value.code == "bars_characters"
    assert str(caught.value) == f"bars are the letters F, A, D, T; found {found}"


# A bar's descender bit belongs to one character (imb.md 1.9): bar 1 H2, bar 2 B10,
# bar 3 J12, bar 30 D4; its ascender to another: bar 1 E3. Changing only the
# descender (T<->D, A<->F) damages that one character, changing both bits
# (T<->F, A<->D) damages two.
DESCENDER_CHANGED = str.maketrans("TDAF", "DTFA")
BOTH_CHANGED = str.maketrans("TDAF", "FADT")


@pytest.mark.parametrize(
    ("damaged_bars", "whole_bar", "named"),
    [
        ((30,), False, "D"),
        ((1, 2), False, "B, H"),
        ((3, 1, 2), False, "B, H, J"),
        ((1,), True, "E, H"),  # both bits of bar 1: H2 and E3
    ],
)
def test_invalid_character_error_names_the_damaged_characters(
    damaged_bars: tuple[int, ...], whole_bar: bool, named: str
) -> None:
    bars = APPENDIX_C[3][4]
    for position in damaged_bars:
        change = BOTH_CHANGED if whole_bar else DESCENDER_CHANGED
        bars = with_bar(bars, position, bars[position - 1].translate(change))
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(bars, repair=False)
    assert caught.value.code == "invalid_character"
    assert str(caught.value).startswith(f"characters {named} are not valid 13-bit characters")


@pytest.mark.parametrize(
    ("change", "a", "j"),
    [
        ({0: 1318}, 1318, 602),  # A one above its largest, 658 + 659 + 1
        ({9: 1271}, 673, 1271),  # J one above its largest, 2 * 635 + 1
    ],
)
def test_codeword_range_is_exact_and_named(change: dict[int, int], a: int, j: int) -> None:
    words, fcs = appendix_c_words()
    words[0] += 659  # FCS bit 10 is set
    for position, word in change.items():
        words[position] = word
    bars = bars_of_characters(characters_of_codewords(words, fcs))
    for repair in (False, True):
        with pytest.raises(IMbDecodeError) as caught:
            decode_imb(bars, repair=repair)
        assert caught.value.code == "codeword_range"
        message = str(caught.value)
        assert f"codeword A={a} (max 1317)" in message
        assert f"J={j} (max 1270)" in message


def test_orientation_and_frame_check_errors() -> None:
    words, fcs = appendix_c_words()
    words[0] += 659
    odd_j = [*words[:9], 603]
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(bars_of_characters(characters_of_codewords(odd_j, fcs)))
    assert caught.value.code == "orientation"
    assert str(caught.value) == "codeword J is odd: bars damaged, neither way up decodes"

    other_b = [words[0], 788, *words[2:]]
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(bars_of_characters(characters_of_codewords(other_b, fcs)))
    assert caught.value.code == "frame_check"
    assert str(caught.value) == "the frame check sequence does not match the decoded value"


@pytest.mark.parametrize("past_limit", [0, 1, 12345])
def test_values_from_the_limit_on_are_no_payload(past_limit: int) -> None:
    # _VALUE_LIMIT is one above the largest Step 1 value (routing 99999999999,
    # barcode ID 94): a read carrying it, with a matching frame check, is refused.
    value = imb_module._VALUE_LIMIT + past_limit
    largest = binary_value("94999999999999999999", "99999999999")
    assert largest == imb_module._VALUE_LIMIT - 1
    rest, j = divmod(value, 636)
    low = []
    for _ in range(8):
        rest, word = divmod(rest, 1365)
        low.append(word)
    words = [rest, *reversed(low), 2 * j]
    fcs = frame_check(value)
    if fcs & 0x400:
        words[0] += 659
    with pytest.raises(IMbDecodeError) as caught:
        decode_imb(bars_of_characters(characters_of_codewords(words, fcs)))
    assert caught.value.code == "payload_range"
    assert str(caught.value) == "the decoded value is no valid tracking and routing code"
