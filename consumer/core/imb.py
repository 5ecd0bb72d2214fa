"""Intelligent Mail barcode (IMb, USPS-B-3200) encoder and strict decoder.

An IMb carries a 20-digit tracking code (barcode identifier, service type ID,
mailer ID, serial number) and an optional 5/9/11-digit routing code (ZIP,
ZIP+4, ZIP+4 + delivery point) in 65 four-state bars, written here as the
letters ``F`` (full), ``A`` (ascender), ``D`` (descender) and ``T`` (tracker).

Public surface::

    split_imb(digits)                   20/25/29/31 digits -> IMb
    encode_imb(tracking, routing="")    -> 65-letter bar string
    decode_imb(bars, repair=True)       -> DecodedIMb(imb, upside_down, repaired_bar)
    is_bar_string(value)                cheap shape check, no decoding

and the intermediate results of the specification's encoding steps, for tests
and debugging: ``binary_value`` (Step 1), ``frame_check`` (Step 2),
``codewords`` (Step 3) and ``characters`` (Steps 4-5).

Errors::

    ValueError
     └── IMbError              .code: str, a stable machine-readable reason
          ├── IMbPayloadError  bad digits: tracking_length, tracking_not_digits,
          │                    barcode_id, routing_length, routing_not_digits,
          │                    mailer_id
          └── IMbDecodeError   bad bars: bars_length, bars_characters,
                               invalid_character, codeword_range, orientation,
                               frame_check, payload_range, ambiguous

Payload checks run in the order of the USPS reference encoder; its return
codes 09, 10, 11, 12 and 13 are the first five payload codes, in that order.

Decoding does not guess. A read is accepted when it passes the frame check as
read, else when it passes read upside down (reversed, ascenders and descenders
swapped). Only then, and only with ``repair=True``, one damaged bar is
repaired: when exactly one single-bar change, in either orientation, passes.
No read with at most one damaged bar decodes to a wrong payload. Two damaged
bars can pass for another code with one damaged bar (about 1 in 4,000 such
reads; 1 in 100,000 with ``repair=False``, where the CRC-11 alone must fail).

The module is pure (no I/O, no logging); all tables are built once at import.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DecodedIMb",
    "IMb",
    "IMbDecodeError",
    "IMbError",
    "IMbPayloadError",
    "binary_value",
    "characters",
    "codewords",
    "decode_imb",
    "encode_imb",
    "frame_check",
    "is_bar_string",
    "split_imb",
]


# ----------------------------------------------------------------------------- errors


class IMbError(ValueError):
    """Base class of all IMb errors; ``code`` names the reason for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[IMbError], tuple[str, str]]:
        # The default would pass only the message back to __init__ on unpickling.
        return (type(self), (self.code, str(self)))


class IMbPayloadError(IMbError):
    """The digits (tracking code, routing code or fields) are not a valid payload."""


class IMbDecodeError(IMbError):
    """A bar string is malformed or does not decode to a payload."""


# ----------------------------------------------------------------------------- payload


@dataclass(frozen=True, slots=True)
class IMb:
    """The fields of one IMb payload; validated on construction."""

    barcode_id: str
    service_type_id: str
    mailer_id: str
    serial_number: str
    routing_code: str = ""

    def __post_init__(self) -> None:
        _check_payload(self.tracking_code, self.routing_code)
        if len(self.barcode_id) != 2 or len(self.service_type_id) != 3:
            raise IMbPayloadError(
                "tracking_length",
                f"barcode_id needs 2 digits and service_type_id 3, got "
                f"{self.barcode_id!r} and {self.service_type_id!r}",
            )
        if len(self.mailer_id) != _mailer_id_length(self.mailer_id):
            raise IMbPayloadError(
                "mailer_id",
                f"mailer_id {self.mailer_id!r} must have 9 digits when it starts with 9, else 6",
            )

    @property
    def tracking_code(self) -> str:
        """The 20-digit tracking code: barcode ID, STID, mailer ID, serial number."""
        return self.barcode_id + self.service_type_id + self.mailer_id + self.serial_number

    @property
    def digits(self) -> str:
        """Tracking code followed by routing code: 20, 25, 29 or 31 digits."""
        return self.tracking_code + self.routing_code

    def fields(self) -> dict[str, str | None]:
        """The fields as a flat mapping (the event's ``barcode``); no routing code is None."""
        return {
            "barcode_id": self.barcode_id,
            "service_type_id": self.service_type_id,
            "mailer_id": self.mailer_id,
            "serial_number": self.serial_number,
            "routing_code": self.routing_code or None,
            "zip5": self.zip5,
            "zip4": self.zip4,
            "delivery_point": self.delivery_point,
            "tracking_code": self.tracking_code,
        }

    @property
    def zip5(self) -> str | None:
        """The 5-digit ZIP code, or None without a routing code."""
        return self.routing_code[:5] or None

    @property
    def zip4(self) -> str | None:
        """The 4 digits after the ZIP code, or None when the routing code has none."""
        return self.routing_code[5:9] or None

    @property
    def delivery_point(self) -> str | None:
        """The 2-digit delivery point, or None when the routing code has none."""
        return self.routing_code[9:11] or None


@dataclass(frozen=True, slots=True)
class DecodedIMb:
    """The result of decoding a bar string.

    ``upside_down`` is True when the bars decoded only read the other way up.
    ``repaired_bar`` is the 1-based position, in the bar string as given, of the
    one bar that had to be repaired, or None for a clean read.
    """

    imb: IMb
    upside_down: bool = False
    repaired_bar: int | None = None


def _mailer_id_length(digits_from_mid: str) -> int:
    # USPS gives 9-digit mailer IDs, and only those, a leading 9.
    return 9 if digits_from_mid[:1] == "9" else 6


def _is_digits(value: str) -> bool:
    # isdigit() alone also accepts digits such as "²" or "٣"; int() takes some of them.
    return value.isdigit() and value.isascii()


def _non_digits(value: str) -> str:
    return "".join(sorted({c for c in value if c not in "0123456789"}))


def _check_payload(tracking: str, routing: str) -> None:
    """Raise IMbPayloadError for the first failing check, in USPS order (09..13)."""
    if len(tracking) != 20:
        raise IMbPayloadError(
            "tracking_length", f"tracking code needs 20 digits, got {len(tracking)} characters"
        )
    if not _is_digits(tracking):
        raise IMbPayloadError(
            "tracking_not_digits",
            f"tracking code contains non-digits {_non_digits(tracking)!r}",
        )
    if tracking[1] > "4":
        raise IMbPayloadError(
            "barcode_id",
            f"barcode identifier {tracking[:2]!r}: its second digit must be 0-4",
        )
    if len(routing) not in (0, 5, 9, 11):
        raise IMbPayloadError(
            "routing_length",
            f"routing code needs 0, 5, 9 or 11 digits, got {len(routing)} characters",
        )
    if routing and not _is_digits(routing):
        raise IMbPayloadError(
            "routing_not_digits", f"routing code contains non-digits {_non_digits(routing)!r}"
        )


# Filling the slots directly skips __post_init__ and the frozen __setattr__
# detour; it halves the cost of building results on the decode hot path.
_object_new = object.__new__
_set_barcode_id = IMb.__dict__["barcode_id"].__set__
_set_service_type_id = IMb.__dict__["service_type_id"].__set__
_set_mailer_id = IMb.__dict__["mailer_id"].__set__
_set_serial_number = IMb.__dict__["serial_number"].__set__
_set_routing_code = IMb.__dict__["routing_code"].__set__
_set_imb = DecodedIMb.__dict__["imb"].__set__
_set_upside_down = DecodedIMb.__dict__["upside_down"].__set__
_set_repaired_bar = DecodedIMb.__dict__["repaired_bar"].__set__


def _new_imb(barcode_id: str, digits18: str, routing: str) -> IMb:
    """An IMb from already validated digits (tracking = barcode_id + digits18)."""
    imb: IMb = _object_new(IMb)
    _set_barcode_id(imb, barcode_id)
    _set_service_type_id(imb, digits18[:3])
    if digits18[3] == "9":
        _set_mailer_id(imb, digits18[3:12])
        _set_serial_number(imb, digits18[12:])
    else:
        _set_mailer_id(imb, digits18[3:9])
        _set_serial_number(imb, digits18[9:])
    _set_routing_code(imb, routing)
    return imb


def split_imb(digits: str) -> IMb:
    """Split 20, 25, 29 or 31 IMb digits (tracking + routing code) into an IMb.

    Raises IMbPayloadError naming the first failing check, as encode_imb does.
    """
    tracking, routing = digits[:20], digits[20:]
    _check_payload(tracking, routing)
    return _new_imb(tracking[:2], tracking[2:], routing)


# ----------------------------------------------------------------------------- tables

_CHAR_MASK: Final = 0x1FFF  # characters have 13 bits


def _linear_table(parts: list[int]) -> list[int]:
    """For each index below 2^len(parts), the XOR of parts[b] over its set bits b.

    Every table below maps bits to bits linearly (for disjoint parts XOR is OR),
    so each one is built with one XOR per entry.
    """
    table = [0] * (1 << len(parts))
    for index in range(1, len(table)):
        low_bit = index & -index
        table[index] = table[index ^ low_bit] ^ parts[low_bit.bit_length() - 1]
    return table


def _build_character_table(ones: int, size: int) -> list[int]:
    """The n-of-13 character table of Step 5, in the order of the specification.

    A value and its 13-bit mirror image sit at indices 2k and 2k+1, and J's
    codeword is always even; read upside down, J comes out odd (when it is a
    valid character at all). Palindromes fill the table from the top.
    """
    table = [0] * size
    low, high = 0, size - 1
    for count in range(1 << 13):
        if count.bit_count() != ones:
            continue
        mirror = int(f"{count:013b}"[::-1], 2)
        if mirror < count:
            continue
        if mirror == count:
            table[high] = count
            high -= 1
        else:
            table[low] = count
            table[low + 1] = mirror
            low += 2
    return table


# Codeword 0..1364 -> 13-bit character before the FCS inversion of Step 5:
# 1287 "5 of 13" characters, then 78 "2 of 13" ones.
_CHARACTER: Final = tuple(_build_character_table(5, 1287) + _build_character_table(2, 78))

# Bar-to-character map of Step 6: for bars 1..65, the character (A..J) and bit
# (0 = least significant) of the descender, then those of the ascender.
_BAR_MAP_TEXT: Final = """
H2:E3 B10:A0 J12:C8 F5:G11 I9:D1 A1:F12 C5:B8 E4:J11 G3:I10 D9:H6 F11:B4 I5:C12 J10:A2
H1:G7 D6:E9 A3:I6 G4:C7 B1:J9 H10:F2 E0:D8 G2:A4 I11:B0 J8:D12 C6:H7 F1:E10 B12:G9
H3:I0 F8:J7 E6:C10 D4:A5 I4:F7 H11:B9 G0:J6 A6:E8 C1:D2 F9:I12 E11:G1 J5:H4 D3:B2
A7:C0 B3:E1 G10:D5 I7:J4 C11:F6 A8:H12 E2:I1 F10:D0 J3:A9 G5:C4 H8:B7 F0:E5 C3:A10
G12:J2 D11:B6 I8:H9 F4:A11 B5:C2 J1:E12 I3:G6 H0:D7 E7:H5 A12:B11 C9:J0 G8:F3 D10:I2
"""


def _parse_bar_map(text: str) -> tuple[tuple[int, int, int, int], ...]:
    def char_bit(item: str) -> tuple[int, int]:
        return ord(item[0]) - ord("A"), int(item[1:])

    return tuple(
        char_bit(pair.split(":")[0]) + char_bit(pair.split(":")[1]) for pair in text.split()
    )


# (descender char, bit, ascender char, bit) for bar index 0..64 (bars 1..65).
_BAR_MAP: Final = _parse_bar_map(_BAR_MAP_TEXT)

# A read is held as a 130-bit int, two bits per bar with bar 1 most significant
# and the ascender bit above the descender bit: T=0, D=1, A=2, F=3. That is
# int(letters as base-4 digits, 4); the same read upside down is the same 130
# bits in reverse order.


def _bar_shift(bar: int) -> int:
    """Bit of bar index 0..64's descender in the 130-bit read (ascender: +1)."""
    return 2 * (64 - bar)


def _base4_table(letters: str) -> bytes:
    """Byte table mapping ``letters`` (either case) to "0".."3" and all else to "x".

    int(..., 4) rejects "x", so one int() call both converts and validates: no
    sign, space or underscore, which int() would accept, survives the table.
    """
    table = bytearray(b"x" * 256)
    for digit, letter in enumerate(letters):
        table[ord(letter)] = table[ord(letter.lower())] = ord("0") + digit
    return bytes(table)


_TO_BASE4: Final = _base4_table("TDAF")
# Reading upside down swaps each bar's ascender and descender: A and D trade places.
_TO_BASE4_UPSIDE_DOWN: Final = _base4_table("TADF")
_BAR_LETTERS: Final = b"FADTfadt"


# ----------------------------------------------------------------------------- CRC-11

_CRC_POLY: Final = 0xF35  # x^11 + x^10 + x^9 + x^8 + x^5 + x^4 + x^2 + 1
_CRC_DATA_BITS: Final = 102


def _crc11_bitwise(value: int, register: int = 0x7FF) -> int:
    """Step 2 as specified, one data bit at a time (used to build the tables)."""
    for position in range(_CRC_DATA_BITS - 1, -1, -1):
        feedback = ((register >> 10) ^ (value >> position)) & 1
        register = ((register << 1) ^ (_CRC_POLY if feedback else 0)) & 0x7FF
    return register


def _build_crc_tables() -> tuple[list[int], ...]:
    """Byte k (of 13, big-endian) of the value -> its share of the CRC.

    With the register's start value split off, the CRC is linear in the data
    bits: CRC(v) = CRC(0) ^ the XOR of one table entry per byte of v.
    """
    basis = [_crc11_bitwise(1 << bit, 0) for bit in range(_CRC_DATA_BITS)] + [0, 0]
    return tuple(_linear_table(basis[8 * (12 - k) : 8 * (13 - k)]) for k in range(13))


_CRC_TABLES: Final = _build_crc_tables()
_CRC_OF_ZERO: Final = _crc11_bitwise(0)


def _crc11(value: int) -> int:
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12 = _CRC_TABLES
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12 = value.to_bytes(13, "big")
    return (
        _CRC_OF_ZERO
        ^ t0[b0]
        ^ t1[b1]
        ^ t2[b2]
        ^ t3[b3]
        ^ t4[b4]
        ^ t5[b5]
        ^ t6[b6]
        ^ t7[b7]
        ^ t8[b8]
        ^ t9[b9]
        ^ t10[b10]
        ^ t11[b11]
        ^ t12[b12]
    )


# ----------------------------------------------------------------------------- steps

# Step 1 offsets per routing length; they keep the four lengths' ranges disjoint.
_ROUTING_OFFSET: Final = {5: 1, 9: 100_001, 11: 1_000_100_001}
_TEN18: Final = 10**18
# Step 1 gives the barcode identifier one base-50 digit: 10 * 5 values.
_BARCODE_IDS: Final = tuple(f"{n // 5}{n % 5}" for n in range(50))
# One above the largest Step 1 value: routing 10^11 - 1 plus its offset, BI 94.
_VALUE_LIMIT: Final = (10**11 + _ROUTING_OFFSET[11]) * 50 * _TEN18


def _binary_value(tracking: str, routing: str) -> int:
    head = ord(tracking[0]) * 5 + ord(tracking[1]) - 48 * 6
    if routing:
        head += (int(routing) + _ROUTING_OFFSET[len(routing)]) * 50
    return head * _TEN18 + int(tracking[2:])


def binary_value(tracking: str, routing: str = "") -> int:
    """Step 1: the payload as one integer below 2^102 (validated as by encode_imb)."""
    _check_payload(tracking, routing)
    return _binary_value(tracking, routing)


def frame_check(value: int) -> int:
    """Step 2: the 11-bit frame check sequence (CRC-11) of a Step 1 value."""
    if not 0 <= value < 1 << _CRC_DATA_BITS:
        raise ValueError(f"a binary value lies in [0, 2**102), got {value}")
    return _crc11(value)


def codewords(value: int) -> tuple[int, ...]:
    """Step 3: the codewords A..J of a Step 1 value, before Step 4 alters A and J."""
    if not 0 <= value < _VALUE_LIMIT:
        raise ValueError(f"not a binary value of an IMb payload: {value}")
    value, j = divmod(value, 636)
    words = [j]
    for _ in range(8):
        value, word = divmod(value, 1365)
        words.append(word)
    words.append(value)
    return tuple(reversed(words))


def characters(value: int) -> tuple[int, ...]:
    """Steps 2-5: the ten 13-bit characters A..J of a Step 1 value, FCS applied."""
    fcs = frame_check(value)
    words = list(codewords(value))
    words[9] *= 2
    if fcs & 0x400:
        words[0] += 659
    return tuple(
        _CHARACTER[word] ^ (_CHAR_MASK if fcs >> i & 1 else 0) for i, word in enumerate(words)
    )


# ----------------------------------------------------------------------------- encode

# The encoder builds its bars as a 65-byte big-endian int, one byte (0..3, as
# in the 130-bit read) per bar, so to_bytes() plus one translate() spell them.
_BAR_BYTE_TO_LETTER: Final = bytes.maketrans(b"\x00\x01\x02\x03", b"TDAF")


def _build_encoder_tables() -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """Character position -> (codeword -> that character's bars), and FCS masks.

    Characters own disjoint bar bits, so the ten shares combine with OR, and
    Step 5's inversions are one XOR with the mask picked by FCS bits 0..9.
    """
    place = [[0] * 13 for _ in range(10)]  # [char][bit] -> its bit in the bar bytes
    for bar, (d_char, d_bit, a_char, a_bit) in enumerate(_BAR_MAP):
        place[d_char][d_bit] = 1 << 8 * (64 - bar)
        place[a_char][a_bit] = 2 << 8 * (64 - bar)
    by_codeword = []
    for bits in place:
        low, high = _linear_table(bits[:7]), _linear_table(bits[7:])
        by_codeword.append(tuple(low[char & 0x7F] | high[char >> 7] for char in _CHARACTER))
    inversion = _linear_table([sum(bits) for bits in place])
    return tuple(by_codeword), tuple(inversion)


_ENC_TABLES, _ENC_INVERSION = _build_encoder_tables()
_ENC_A, _ENC_B, _ENC_C, _ENC_D, _ENC_E, _ENC_F, _ENC_G, _ENC_H, _ENC_I, _ENC_J2 = _ENC_TABLES
# Step 4 always doubles J; this one is indexed by J before doubling.
_ENC_J: Final = _ENC_J2[0:1271:2]


def encode_imb(tracking: str, routing: str = "") -> str:
    """Encode a 20-digit tracking code and an optional routing code as 65 bars.

    The result spells the bars left to right with the letters F, A, D and T.
    Raises IMbPayloadError, checking in USPS order: tracking length, tracking
    digits, barcode identifier, routing length, routing digits.
    """
    if (
        len(tracking) != 20
        or not tracking.isdigit()
        or not tracking.isascii()
        or tracking[1] > "4"
        or (routing and (len(routing) not in (5, 9, 11) or not _is_digits(routing)))
    ):
        _check_payload(tracking, routing)  # raises, naming the first failed check
    value = _binary_value(tracking, routing)
    fcs = _crc11(value)
    value, j = divmod(value, 636)
    value, i = divmod(value, 1365)
    value, h = divmod(value, 1365)
    value, g = divmod(value, 1365)
    value, f = divmod(value, 1365)
    value, e = divmod(value, 1365)
    value, d = divmod(value, 1365)
    value, c = divmod(value, 1365)
    a, b = divmod(value, 1365)
    if fcs & 0x400:
        a += 659
    bars = (
        _ENC_A[a]
        | _ENC_B[b]
        | _ENC_C[c]
        | _ENC_D[d]
        | _ENC_E[e]
        | _ENC_F[f]
        | _ENC_G[g]
        | _ENC_H[h]
        | _ENC_I[i]
        | _ENC_J[j]
    ) ^ _ENC_INVERSION[fcs & 0x3FF]
    return bars.to_bytes(65, "big").translate(_BAR_BYTE_TO_LETTER).decode("ascii")


# ----------------------------------------------------------------------------- decode


def is_bar_string(value: str) -> bool:
    """True when value is 65 of the letters F, A, D, T (either case); no decoding."""
    return (
        len(value) == 65
        and value.isascii()
        and not value.encode("ascii").translate(None, _BAR_LETTERS)
    )


def _build_gather_tables() -> tuple[list[int], ...]:
    """Byte k (of 17, big-endian) of a 130-bit read -> its bits in packed characters.

    The packed int holds character i (A=0 .. J=9) in bits 16i..16i+12, so the
    OR of the 17 shares, as 20 little-endian bytes, unpacks to the characters.
    """
    place = [0] * (17 * 8)  # read bit -> packed bit; bits 130..135 stay empty
    for bar, (d_char, d_bit, a_char, a_bit) in enumerate(_BAR_MAP):
        place[_bar_shift(bar)] = 1 << (16 * d_char + d_bit)
        place[_bar_shift(bar) + 1] = 1 << (16 * a_char + a_bit)
    return tuple(_linear_table(place[8 * (16 - k) : 8 * (17 - k)]) for k in range(17))


_GATHER_TABLES: Final = _build_gather_tables()
_UNPACK_CHARACTERS: Final[Callable[[bytes], tuple[int, ...]]] = struct.Struct("<10H").unpack

# 13-bit character -> its codeword, plus bit 24 when the character is inverted
# (its FCS bit is 1), or bit 40 alone when it is no character at all. The
# entry of character i shifted right by 24-i leaves exactly its FCS bit at bit
# i (codewords are below 2^11), or for an invalid one a bit above bit 10.
_CODEWORD_MASK: Final = 0x7FF
_INVERTED: Final = 1 << 24
_INVALID: Final = 1 << 40


def _build_decoder_table() -> list[int]:
    table = [_INVALID] * (1 << 13)
    for codeword, char in enumerate(_CHARACTER):
        table[char] = codeword
        table[char ^ _CHAR_MASK] = codeword | _INVERTED
    return table


_DECODE: Final = _build_decoder_table()
_K2: Final = 1365 * 1365
_K3: Final = 1365 * 636

# _value_of() failures; a value is never negative.
_BAD_CHARACTER: Final = -1
_BAD_CODEWORD: Final = -2
_ODD_J: Final = -3
_BAD_FCS: Final = -4
_BAD_PAYLOAD: Final = -5


def _value_of(read: int) -> int:
    """The Step 1 value carried by a 130-bit read, or a negative failure code.

    This is the decode hot path, hence the unrolled table look-ups.
    """
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16 = _GATHER_TABLES
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = read.to_bytes(
        17, "big"
    )
    packed = (
        t0[b0]
        | t1[b1]
        | t2[b2]
        | t3[b3]
        | t4[b4]
        | t5[b5]
        | t6[b6]
        | t7[b7]
        | t8[b8]
        | t9[b9]
        | t10[b10]
        | t11[b11]
        | t12[b12]
        | t13[b13]
        | t14[b14]
        | t15[b15]
        | t16[b16]
    )
    ca, cb, cc, cd, ce, cf, cg, ch, ci, cj = _UNPACK_CHARACTERS(packed.to_bytes(20, "little"))
    dec = _DECODE
    a = dec[ca]
    b = dec[cb]
    c = dec[cc]
    d = dec[cd]
    e = dec[ce]
    f = dec[cf]
    g = dec[cg]
    h = dec[ch]
    i = dec[ci]
    j = dec[cj]
    fcs = (
        a >> 24
        | b >> 23
        | c >> 22
        | d >> 21
        | e >> 20
        | f >> 19
        | g >> 18
        | h >> 17
        | i >> 16
        | j >> 15
    )
    if fcs > 0x3FF:
        return _BAD_CHARACTER
    m = _CODEWORD_MASK
    a &= m
    j &= m
    if a > 1317 or j > 1270:
        return _BAD_CODEWORD
    if j & 1:
        return _ODD_J
    if a >= 659:
        a -= 659
        fcs |= 0x400
    # Horner's rule over pairs of codewords keeps most products in machine words.
    value = (
        (
            ((a * 1365 + (b & m)) * _K2 + ((c & m) * 1365 + (d & m))) * _K2
            + ((e & m) * 1365 + (f & m))
        )
        * _K2
        + ((g & m) * 1365 + (h & m))
    ) * _K3 + ((i & m) * 636 + (j >> 1))
    if _crc11(value) != fcs:
        return _BAD_FCS
    if value >= _VALUE_LIMIT:
        return _BAD_PAYLOAD
    return value


def _decoded(value: int, upside_down: bool, repaired_bar: int | None) -> DecodedIMb:
    """The DecodedIMb of a Step 1 value that passed the frame check."""
    head, low = divmod(value, _TEN18)
    r, barcode_id = divmod(head, 50)
    # str().zfill() is several times faster than a "{:018d}" format spec.
    if not r:
        routing = ""
    elif r <= 100_000:
        routing = str(r - 1).zfill(5)
    elif r <= 1_000_100_000:
        routing = str(r - 100_001).zfill(9)
    else:
        routing = str(r - 1_000_100_001).zfill(11)
    decoded: DecodedIMb = _object_new(DecodedIMb)
    _set_imb(decoded, _new_imb(_BARCODE_IDS[barcode_id], str(low).zfill(18), routing))
    _set_upside_down(decoded, upside_down)
    _set_repaired_bar(decoded, repaired_bar)
    return decoded


def decode_imb(bars: str, *, repair: bool = True) -> DecodedIMb:
    """Decode 65 bars written as the letters F, A, D, T (either case).

    A read that fails as given is tried upside down. Only then, with
    ``repair=True``, one damaged bar is repaired, and only when exactly one
    single-bar change (in either orientation) passes the frame check.

    Raises IMbDecodeError: bars_length or bars_characters for a malformed
    string, ambiguous when several repairs pass, otherwise the reason the read
    as given failed (invalid_character, codeword_range, orientation,
    frame_check or payload_range).
    """
    if len(bars) != 65:
        raise IMbDecodeError("bars_length", f"an IMb has 65 bars, got {len(bars)} characters")
    try:
        read = int(bars.encode("ascii").translate(_TO_BASE4), 4)
    except ValueError:  # includes UnicodeEncodeError
        raise IMbDecodeError(
            "bars_characters",
            f"bars are the letters F, A, D, T; found {_non_bar_letters(bars)!r}",
        ) from None
    value = _value_of(read)
    if value >= 0:
        return _decoded(value, False, None)
    upside_down = int(bars[::-1].encode("ascii").translate(_TO_BASE4_UPSIDE_DOWN), 4)
    value_upside_down = _value_of(upside_down)
    if value_upside_down >= 0:
        return _decoded(value_upside_down, True, None)
    if repair:
        candidates = [(bar, False, v) for bar, v in _single_bar_repairs(read)]
        candidates += [(66 - bar, True, v) for bar, v in _single_bar_repairs(upside_down)]
        if len(candidates) == 1:
            bar, flipped, v = candidates[0]
            return _decoded(v, flipped, bar)
        if candidates:
            raise IMbDecodeError(
                "ambiguous",
                f"{len(candidates)} single-bar repairs pass the frame check (bars "
                f"{', '.join(str(bar) for bar, _, _ in sorted(candidates))}); not guessing",
            )
    raise _read_error(read, value)


def _non_bar_letters(value: str) -> str:
    return "".join(sorted({c for c in value if c not in "FADTfadt"}))


def _characters_of(read: int) -> tuple[int, ...]:
    """The characters A..J of a 130-bit read (the slow paths' loop form of _value_of)."""
    packed = 0
    for table, byte in zip(_GATHER_TABLES, read.to_bytes(17, "big"), strict=True):
        packed |= table[byte]
    return _UNPACK_CHARACTERS(packed.to_bytes(20, "little"))


def _build_repair_tables() -> tuple[
    tuple[tuple[tuple[int, int], ...], ...], dict[tuple[int, int], tuple[tuple[int, int], ...]]
]:
    """(bar 1..65, XOR mask on the read) changing one bit of character i, or
    both bits of a bar shared by characters i < k."""
    one: list[list[tuple[int, int]]] = [[] for _ in range(10)]
    two: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for bar, (d_char, _, a_char, _) in enumerate(_BAR_MAP):
        shift = _bar_shift(bar)
        one[d_char].append((bar + 1, 1 << shift))
        one[a_char].append((bar + 1, 2 << shift))
        pair = (min(d_char, a_char), max(d_char, a_char))
        two.setdefault(pair, []).append((bar + 1, 3 << shift))
    return tuple(tuple(flips) for flips in one), {k: tuple(v) for k, v in two.items()}


_ONE_CHARACTER_FLIPS, _TWO_CHARACTER_FLIPS = _build_repair_tables()


def _single_bar_repairs(read: int) -> list[tuple[int, int]]:
    """Every (bar 1..65, value) such that changing that one bar gives a valid read.

    Changing one bit of a valid character always makes it invalid (its
    popcount leaves {2, 5, 8, 11}), and a bar's two bits belong to different
    characters. So a one-bar repair must change exactly the invalid characters:
    one bit of the only invalid one, or both bits of a bar that the two invalid
    ones share. Of the 195 letter changes, no other one can pass.
    """
    bad = [k for k, char in enumerate(_characters_of(read)) if _DECODE[char] & _INVALID]
    if len(bad) == 1:
        flips = _ONE_CHARACTER_FLIPS[bad[0]]
    elif len(bad) == 2:
        flips = _TWO_CHARACTER_FLIPS.get((bad[0], bad[1]), ())
    else:
        return []
    repairs = []
    for bar, mask in flips:
        value = _value_of(read ^ mask)
        if value >= 0:
            repairs.append((bar, value))
    return repairs


def _read_error(read: int, failure: int) -> IMbDecodeError:
    """Explain why a read, as given, failed to decode."""
    chars = _characters_of(read)
    if failure == _BAD_CHARACTER:
        bad = ", ".join("ABCDEFGHIJ"[k] for k, c in enumerate(chars) if _DECODE[c] & _INVALID)
        return IMbDecodeError(
            "invalid_character",
            f"characters {bad} are not valid 13-bit characters (damaged or misread bars)",
        )
    if failure == _BAD_CODEWORD:
        a, j = (_DECODE[chars[k]] & _CODEWORD_MASK for k in (0, 9))
        return IMbDecodeError(
            "codeword_range", f"codeword A={a} (max 1317) or J={j} (max 1270) is out of range"
        )
    if failure == _ODD_J:
        return IMbDecodeError(
            "orientation", "codeword J is odd: bars damaged, neither way up decodes"
        )
    if failure == _BAD_FCS:
        return IMbDecodeError(
            "frame_check", "the frame check sequence does not match the decoded value"
        )
    return IMbDecodeError(
        "payload_range", "the decoded value is no valid tracking and routing code"
    )
