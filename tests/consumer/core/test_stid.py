"""Tests for consumer.core.stid, the STID table (imb.md section 4)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from consumer.core import stid as stid_module
from consumer.core.stid import (
    NO_SINGLE_PIECE_DATA_STIDS,
    STID_TABLE,
    ServiceType,
    lookup_stid,
)

FCM = "First-Class Mail"
MKT = "USPS Marketing Mail"
ONECODE = "OneCode ACS"
FS_ACS = "Full-Service ACS"
TRAD = "Traditional ACS"
NONE = "No address corrections"
MANUAL = "Manual corrections"
ASR1 = "Address Service Requested option 1"
ASR2 = "Address Service Requested option 2"
CSR1 = "Change Service Requested option 1"
CSR2 = "Change Service Requested option 2"
RSR2 = "Return Service Requested option 2"
TRSR2 = "Temporary Return Service Requested option 2"

FAQ_STIDS = {
    "030", "031", "032", "050", "051", "052", "070", "071", "072",
    "701", "703", "708", "777", "778", "779",
}  # fmt: skip


# stid, mail_class, service_level, address_correction, acs_type, iv_mtr_tracing, reply_mail
EXAMPLES = [
    # Corroborated: 270 (USPS encoder via CTF), 703 (DMM Advisory 2010-02-18).
    ("270", FCM, "Full-Service", NONE, None, True, None),
    ("703", "Reply Mail", None, None, None, False, "Courtesy Reply Mail"),
    # ivmtr.md 4.5 summary agrees with imb.md 4.1-4.4 on these.
    ("310", FCM, "Basic", NONE, None, True, None),
    ("300", FCM, "Basic", NONE, None, False, None),
    ("260", FCM, "Full-Service", NONE, None, False, None),
    ("040", FCM, "Basic", MANUAL, None, True, None),
    ("700", FCM, "Basic", MANUAL, None, False, None),
    ("271", MKT, "Full-Service", NONE, None, True, None),
    ("301", MKT, "Basic", NONE, None, False, None),
    ("042", MKT, "Basic", MANUAL, None, True, None),
    ("044", "Periodicals", "Basic", MANUAL, None, True, None),
    ("045", "Periodicals", "Full-Service", "Address Service Requested", FS_ACS, True, None),
    ("038", "Periodicals", "Full-Service", "Address Service Requested", FS_ACS, False, None),
    ("146", "Periodicals", "Full-Service", "Alternative address", None, True, None),
    ("149", "Periodicals", "Basic", "Alternative address", None, False, None),
    ("784", "Periodicals", "Basic", "Address Service Requested", ONECODE, False, None),
    ("601", "Periodicals", "Full-Service", "Address Service Requested", TRAD, True, None),
    ("351", "Bound Printed Matter", "Full-Service", NONE, None, True, None),
    ("401", "Bound Printed Matter", "Basic", NONE, None, False, None),
    ("265", "Bound Printed Matter", "Full-Service", NONE, None, False, None),
    # First-Class ACS: OneCode for Basic, Full-Service ACS for Full-Service.
    ("220", FCM, "Basic", ASR1, ONECODE, True, None),
    ("230", FCM, "Basic", ASR1, ONECODE, False, None),
    ("314", FCM, "Full-Service", ASR1, FS_ACS, True, None),
    ("320", FCM, "Full-Service", ASR1, FS_ACS, False, None),
    ("140", FCM, "Basic", ASR2, ONECODE, True, None),
    ("502", FCM, "Basic", CSR1, ONECODE, True, None),
    ("241", FCM, "Full-Service", CSR2, FS_ACS, True, None),
    ("340", FCM, "Basic", RSR2, ONECODE, True, None),
    ("222", FCM, "Full-Service", TRSR2, FS_ACS, True, None),
    # First-Class traditional ACS (500-545).
    ("500", FCM, "Basic", ASR1, TRAD, True, None),
    ("501", FCM, "Basic", ASR1, TRAD, False, None),
    ("503", FCM, "Full-Service", ASR1, TRAD, True, None),
    ("530", FCM, "Basic", CSR2, TRAD, True, None),
    ("510", FCM, "Basic", CSR2, TRAD, False, None),
    ("538", FCM, "Basic", TRSR2, TRAD, True, None),
    ("545", FCM, "Full-Service", TRSR2, TRAD, False, None),
    # Marketing ACS, including the odd-looking pairs the summary also lists.
    ("142", MKT, "Basic", ASR1, ONECODE, True, None),
    ("143", MKT, "Full-Service", ASR1, FS_ACS, True, None),
    ("262", MKT, "Basic", RSR2, ONECODE, True, None),
    ("231", MKT, "Full-Service", CSR2, FS_ACS, True, None),
    ("539", MKT, "Basic", ASR1, TRAD, True, None),
    ("572", MKT, "Full-Service", RSR2, TRAD, False, None),
    # BPM ACS.
    ("453", "Bound Printed Matter", "Basic", ASR1, ONECODE, True, None),
    ("362", "Bound Printed Matter", "Full-Service", RSR2, TRAD, True, None),
    # Political Mail.
    ("727", "Political Mail", "Basic", NONE, None, True, None),
    ("766", "Political Mail", "Full-Service", RSR2, FS_ACS, True, None),
    ("781", "Political Mail", "Full-Service", CSR1, FS_ACS, True, None),
    ("786", "Political Mail", "Basic", CSR1, TRAD, True, None),
    # Ballot Mail: outbound with IV-MTR, inbound without.
    ("715", "Ballot Mail", "Basic", NONE, None, True, None),
    ("713", "Ballot Mail", "Basic", RSR2, ONECODE, True, None),
    ("725", "Ballot Mail", "Full-Service", RSR2, FS_ACS, True, None),
    ("726", "Ballot Mail", "Basic", RSR2, TRAD, True, None),
    ("746", "Ballot Mail", "Full-Service", RSR2, FS_ACS, True, None),
    ("777", "Ballot Mail", None, None, None, False, "First-Class Reply Mail"),
    ("778", "Ballot Mail", None, None, None, False, "Business Reply Mail"),
    ("779", "Ballot Mail", None, None, None, False, "Permit Reply Mail"),
    ("780", "Ballot Mail", None, None, None, False, "Ballot return"),
    # Reply mail, Priority, Share Mail.
    ("050", "Reply Mail", None, None, None, True, "Courtesy Reply Mail"),
    ("708", "Reply Mail", None, None, None, False, "Business Reply Mail"),
    ("052", "Reply Mail", None, None, None, True, "Business Reply Mail"),
    ("701", "Reply Mail", None, None, None, False, "First-Class/Permit Reply Mail"),
    ("051", "Reply Mail", None, None, None, True, "First-Class/Permit Reply Mail"),
    ("070", "Reply Mail", None, None, None, False, "Courtesy Reply Mail"),
    ("072", "Reply Mail", None, None, None, False, "Business Reply Mail"),
    ("031", "Reply Mail", None, None, None, True, "First-Class Reply Mail"),
    ("710", "Priority Mail", None, None, None, None, None),
    ("712", "Priority Mail", None, None, None, None, None),
    ("733", "Share Mail", None, None, None, True, None),
    ("734", "Share Mail", None, None, None, True, None),
]


@pytest.mark.parametrize(
    ("stid", "mail_class", "level", "correction", "acs", "tracing", "reply"), EXAMPLES
)
def test_examples(
    stid: str,
    mail_class: str,
    level: str | None,
    correction: str | None,
    acs: str | None,
    tracing: bool | None,
    reply: str | None,
) -> None:
    entry = lookup_stid(stid)
    assert entry is not None
    assert (
        entry.stid,
        entry.mail_class,
        entry.service_level,
        entry.address_correction,
        entry.acs_type,
        entry.iv_mtr_tracing,
        entry.reply_mail,
    ) == (stid, mail_class, level, correction, acs, tracing, reply)


@pytest.mark.parametrize(
    ("stid", "description"),
    [
        ("270", "First-Class Mail, Full-Service, no address corrections, with IV-MTR"),
        (
            "220",
            "First-Class Mail, Basic, Address Service Requested option 1 (OneCode ACS), "
            "with IV-MTR",
        ),
        (
            "146",
            "Periodicals, Full-Service, alternative address (Occupant etc.), "
            "no address corrections, with IV-MTR",
        ),
        (
            "747",
            "Political Mail (First-Class Mail), Full-Service, no address corrections, with IV-MTR",
        ),
        ("703", "Reply Mail, Courtesy Reply Mail (by ZIP), without IV-MTR"),
        ("032", "Reply Mail, Business Reply Mail (by MID), with IV-MTR"),
        (
            "780",
            "Ballot Mail (inbound, voter to election office), UOCAVA, without IV-MTR",
        ),
        ("712", "Priority Mail Flat Rate"),
    ],
)
def test_description(stid: str, description: str) -> None:
    entry = lookup_stid(stid)
    assert entry is not None
    assert entry.description == description


def test_business_reply_is_strictly_brm() -> None:
    brm = {s for s, e in STID_TABLE.items() if e.business_reply}
    assert brm == {"032", "052", "072", "708", "778"}


def test_reply_mail_set_is_the_faq_set_plus_uocava() -> None:
    # The FAQ's "Business Reply Mail" list is really all reply mail (imb.md
    # 4.7). The UOCAVA ballot return 780 is not in the FAQ's list.
    reply = {s for s, e in STID_TABLE.items() if e.reply_mail is not None}
    assert reply == FAQ_STIDS | {"780"}


def test_no_single_piece_data_stids() -> None:
    assert isinstance(NO_SINGLE_PIECE_DATA_STIDS, frozenset)
    assert NO_SINGLE_PIECE_DATA_STIDS == FAQ_STIDS
    assert len(NO_SINGLE_PIECE_DATA_STIDS) == 15
    assert NO_SINGLE_PIECE_DATA_STIDS.issubset(STID_TABLE.keys())


@pytest.mark.parametrize(
    "value", ["999", "", "12", "abc", "2700", " 270", "270 ", "27O", "100", "000", "-70"]
)
def test_unknown_or_malformed_is_none(value: str) -> None:
    assert lookup_stid(value) is None


@pytest.mark.parametrize("value", [270, 40, None, b"270", ["270"], {"270": 1}])
def test_non_string_is_none(value: object) -> None:
    assert lookup_stid(value) is None  # type: ignore[arg-type]


def test_keys_are_their_three_digit_stids() -> None:
    for key, entry in STID_TABLE.items():
        assert isinstance(entry, ServiceType)
        assert key == entry.stid
        assert len(key) == 3
        assert key.isdigit()
        assert key.isascii()


def test_vocabulary() -> None:
    entries = STID_TABLE.values()
    assert {e.mail_class for e in entries} == {
        FCM,
        MKT,
        "Periodicals",
        "Bound Printed Matter",
        "Priority Mail",
        "Reply Mail",
        "Ballot Mail",
        "Political Mail",
        "Share Mail",
    }
    assert {e.service_level for e in entries} == {"Basic", "Full-Service", None}
    assert {e.acs_type for e in entries} == {ONECODE, FS_ACS, TRAD, None}
    assert {e.address_correction for e in entries} == {
        NONE,
        MANUAL,
        "Alternative address",
        "Address Service Requested",
        ASR1,
        ASR2,
        CSR1,
        CSR2,
        RSR2,
        TRSR2,
        None,
    }
    for e in entries:
        # The reference's ACS split: OneCode only at Basic, FS ACS only at FS.
        if e.acs_type == ONECODE:
            assert e.service_level == "Basic"
        if e.acs_type == FS_ACS:
            assert e.service_level == "Full-Service"
        # Columns come together: no class/option split means no level either.
        assert (e.service_level is None) == (e.address_correction is None)


def test_descriptions_are_unique() -> None:
    # Two STIDs with one description would mean the table lost a distinction.
    counts = Counter(e.description for e in STID_TABLE.values())
    assert [d for d, n in counts.items() if n > 1] == []


def test_every_without_stid_has_a_with_partner() -> None:
    by_description = {e.description: e for e in STID_TABLE.values()}
    inbound_ballots = {"777", "778", "779", "780"}  # no "with" column in 4.6
    for entry in STID_TABLE.values():
        if entry.iv_mtr_tracing is not False or entry.stid in inbound_ballots:
            continue
        partner = by_description.get(entry.description.replace("without IV-MTR", "with IV-MTR"))
        assert partner is not None, entry.stid
        assert partner.iv_mtr_tracing is True
        expected = dataclasses.replace(
            entry,
            stid=partner.stid,
            iv_mtr_tracing=True,
            description=partner.description,
        )
        assert partner == expected


def test_tracing_flags_by_group() -> None:
    for entry in STID_TABLE.values():
        assert entry.description.endswith("with IV-MTR") == (entry.iv_mtr_tracing is True)
        if entry.mail_class == "Ballot Mail":
            # Outbound (has a service level) with IV-MTR, inbound without.
            assert entry.iv_mtr_tracing is (entry.service_level is not None)
    untraced = {s for s, e in STID_TABLE.items() if e.iv_mtr_tracing is None}
    assert untraced == {"710", "712"}


def test_first_class_traditional_acs_is_500_to_545() -> None:
    traditional = {s for s, e in STID_TABLE.items() if e.mail_class == FCM and e.acs_type == TRAD}
    assert len(traditional) == 24
    assert all(500 <= int(s) <= 545 for s in traditional)


def test_counts() -> None:
    # Counted by hand from imb.md section 4, cell by cell.
    per_class = Counter(e.mail_class for e in STID_TABLE.values())
    assert per_class == {
        FCM: 54,
        MKT: 46,
        "Periodicals": 14,
        "Bound Printed Matter": 46,
        "Political Mail": 32,
        "Ballot Mail": 23,
        "Reply Mail": 12,
        "Priority Mail": 2,
        "Share Mail": 2,
    }
    assert len(STID_TABLE) == 231


def test_no_stid_assigned_twice_by_construction() -> None:
    # Every STID cell in the literal rows became its own entry: nothing was
    # overwritten (the builder also raises on a repeat at import).
    cells = [s for row in stid_module._GRID for s in row[3:] if s is not None]
    cells += [s for row in stid_module._REPLY for s in row[2:]]
    cells += [row[0] for row in stid_module._SINGLE]
    assert len(cells) == len(set(cells)) == len(STID_TABLE)
    assert set(cells) == STID_TABLE.keys()


def test_builder_rejects_duplicates_and_malformed() -> None:
    entry = STID_TABLE["270"]
    other = dataclasses.replace(STID_TABLE["310"], stid="270")
    with pytest.raises(ValueError, match="270 assigned twice"):
        stid_module._build_table([entry, other])
    with pytest.raises(ValueError, match="malformed"):
        stid_module._build_table([dataclasses.replace(entry, stid="27")])


def test_table_and_entries_are_read_only() -> None:
    with pytest.raises(TypeError):
        STID_TABLE["999"] = STID_TABLE["270"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        STID_TABLE["270"].stid = "271"  # type: ignore[misc]
