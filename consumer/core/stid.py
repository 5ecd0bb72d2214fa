"""USPS Service Type IDs (STIDs): the 3-digit IMb field, decoded.

The STID (IMb digits 3-5, IV-MTR ``imbStid``) says which mail class a piece
is, which address-correction option and ACS type it asked for, whether it is
Full-Service, and whether the mailer wants IV-MTR tracing.

Source: the USPS STID table effective 2024-01-21, as transcribed in
``imb.md`` section 4 (a third-party transcription; only 270 and 703 are
independently corroborated). The literal rows below follow that table row
for row, so they can be checked against it by eye. Endorsement flags from the
reference are kept as row comments: ``**`` printed endorsement required,
``$`` fees for forwarded/returned pieces, ``G&S`` ACS Green & Secure option
(the reference's recycling sign), ``***`` CSR option 2 not valid for parcels.

Where other references summarise STIDs as ranges, the detailed table wins:

- ``ivmtr.md`` 4.5 says "Traditional ACS STIDs are 500-545", but 502, 504,
  514 and 516 (First-Class CSR option 1) and 513 and 529 (Marketing) in that
  range are OneCode/Full-Service ACS, and Marketing's Traditional rows run
  539-572.
- Its "Political Mail: 727-786" range also holds Ballot 777-780 and
  Periodicals 784; "Ballot Mail: 713-746 outbound" also holds Political 727
  and 728 and Share Mail 733 and 734.
- The API FAQ (question 5) calls all 15 STIDs it gets no single-piece data
  for "Business Reply Mail"; per ``imb.md`` 4.7 only 708, 052, 072, 032 and
  778 are strictly BRM, the rest are Courtesy or First-Class/Permit Reply
  Mail and ballot returns. ``business_reply`` follows 4.7, and
  ``NO_SINGLE_PIECE_DATA_STIDS`` keeps the FAQ's list as written.

Pure module: the table is built once at import and is read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = ["NO_SINGLE_PIECE_DATA_STIDS", "STID_TABLE", "ServiceType", "lookup_stid"]


@dataclass(frozen=True, slots=True)
class ServiceType:
    """What one STID means.

    ``service_level`` is ``"Basic"`` (Basic or Nonautomation) or
    ``"Full-Service"``; it, ``address_correction`` and ``acs_type`` are None
    where the table has no such column (reply mail, Priority, Share Mail,
    inbound ballots). ``iv_mtr_tracing`` is None where the table does not say.
    ``business_reply`` is True only for strictly Business Reply Mail.
    """

    stid: str
    mail_class: str
    service_level: str | None
    address_correction: str | None
    acs_type: str | None
    iv_mtr_tracing: bool | None
    reply_mail: str | None
    business_reply: bool
    description: str


# --- Vocabulary -------------------------------------------------------------

_FCM: Final = "First-Class Mail"
_MKT: Final = "USPS Marketing Mail"
_BASIC: Final = "Basic"
_FULL: Final = "Full-Service"
_ONECODE: Final = "OneCode ACS"
_FS_ACS: Final = "Full-Service ACS"
_TRADITIONAL: Final = "Traditional ACS"
_BRM: Final = "Business Reply Mail"

# Grid "class" column: key -> (mail_class, how the description names it).
# Political and Ballot Mail ride on First-Class or Marketing Mail; the
# underlying class only shows in the description, mail_class stays the
# program name so callers can filter on it.
_CLASSES: Final[Mapping[str, tuple[str, str]]] = {
    "FCM": (_FCM, _FCM),
    "MKT": (_MKT, _MKT),
    "PER": ("Periodicals", "Periodicals"),
    "BPM": ("Bound Printed Matter", "Bound Printed Matter"),
    "POL-FCM": ("Political Mail", f"Political Mail ({_FCM})"),
    "POL-MKT": ("Political Mail", f"Political Mail ({_MKT})"),
    "BAL-FCM": ("Ballot Mail", f"Ballot Mail (outbound, {_FCM})"),
    "BAL-MKT": ("Ballot Mail", f"Ballot Mail (outbound, {_MKT})"),
}

# Grid "option" column: key -> address_correction.
_OPTIONS: Final[Mapping[str, str]] = {
    "none": "No address corrections",
    "manual": "Manual corrections",
    "alt": "Alternative address",
    # Periodicals have a single ASR option, without an option number.
    "ASR": "Address Service Requested",
    "ASR1": "Address Service Requested option 1",
    "ASR2": "Address Service Requested option 2",
    "CSR1": "Change Service Requested option 1",
    "CSR2": "Change Service Requested option 2",
    "RSR2": "Return Service Requested option 2",
    "TRSR2": "Temporary Return Service Requested option 2",
}

# Description wording where it differs from address_correction; endorsement
# names keep their capitals, as on the mailpiece.
_PHRASES: Final[Mapping[str, str]] = {
    "none": "no address corrections",
    "manual": "manual corrections",
    "alt": "alternative address (Occupant etc.), no address corrections",
}

# Grid "ACS" column. "OC/FS" is the reference's "OneCode (B) / Full-Service
# ACS (FS)": the ACS type follows the service level of the column.
_ACS: Final[Mapping[str | None, tuple[str | None, str | None]]] = {
    None: (None, None),
    "OC/FS": (_ONECODE, _FS_ACS),
    "Trad": (_TRADITIONAL, _TRADITIONAL),
}

# --- The table (imb.md section 4) ---------------------------------------------
#
# Grid rows: class, option, ACS, then the four STIDs for
#   Basic without IV-MTR, Basic with IV-MTR, FS without IV-MTR, FS with IV-MTR;
# None where the reference has "-" (no such STID).

_GridRow = tuple[str, str, str | None, str | None, str | None, str | None, str | None]

_GRID: Final[tuple[_GridRow, ...]] = (
    # 4.1 First-Class Mail
    ("FCM", "none", None, "300", "310", "260", "270"),
    ("FCM", "manual", None, "700", "040", None, None),  # **
    ("FCM", "ASR1", "OC/FS", "230", "220", "320", "314"),
    ("FCM", "ASR2", "OC/FS", "080", "140", "081", "141"),
    ("FCM", "CSR1", "OC/FS", "504", "502", "516", "514"),  # G&S
    ("FCM", "CSR2", "OC/FS", "082", "240", "083", "241"),  # G&S
    ("FCM", "RSR2", "OC/FS", "341", "340", "343", "342"),
    ("FCM", "TRSR2", "OC/FS", "345", "344", "232", "222"),
    ("FCM", "ASR1", "Trad", "501", "500", "505", "503"),  # **
    ("FCM", "ASR2", "Trad", "507", "506", "509", "508"),  # **
    ("FCM", "CSR1", "Trad", "517", "515", "521", "519"),  # ** G&S
    ("FCM", "CSR2", "Trad", "510", "530", "512", "511"),  # ** G&S
    ("FCM", "RSR2", "Trad", "535", "534", "537", "536"),  # **
    ("FCM", "TRSR2", "Trad", "543", "538", "545", "544"),  # **
    # 4.2 USPS Marketing Mail; every ACS row is **.
    ("MKT", "none", None, "301", "311", "261", "271"),
    ("MKT", "manual", None, "702", "042", None, None),  # **
    ("MKT", "ASR1", "OC/FS", "090", "142", "091", "143"),  # $
    ("MKT", "ASR2", "OC/FS", "334", "585", "550", "548"),  # $
    ("MKT", "CSR1", "OC/FS", "092", "242", "093", "243"),  # G&S
    ("MKT", "CSR2", "OC/FS", "513", "586", "567", "231"),  # $ G&S ***
    ("MKT", "RSR2", "OC/FS", "272", "262", "529", "587"),  # $
    ("MKT", "ASR1", "Trad", "540", "539", "542", "541"),  # $
    ("MKT", "ASR2", "Trad", "547", "546", "551", "549"),  # $
    ("MKT", "CSR1", "Trad", "560", "559", "562", "561"),  # G&S
    ("MKT", "CSR2", "Trad", "565", "564", "568", "566"),  # $ G&S ***
    ("MKT", "RSR2", "Trad", "570", "569", "572", "571"),  # $
    # 4.3 Periodicals. 146 is an STID here, not to be confused with opcode
    # 146; both references put 146-149 only in this row.
    ("PER", "manual", None, "704", "044", None, None),
    ("PER", "alt", None, "149", "148", "147", "146"),
    ("PER", "ASR", "OC/FS", "784", "244", "038", "045"),
    ("PER", "ASR", "Trad", "600", "599", "602", "601"),
    # 4.4 Bound Printed Matter
    ("BPM", "none", None, "401", "451", "265", "351"),
    ("BPM", "manual", None, "706", "452", None, None),
    ("BPM", "ASR1", "OC/FS", "424", "453", "423", "353"),
    ("BPM", "ASR2", "OC/FS", "605", "454", "607", "354"),
    ("BPM", "CSR1", "OC/FS", "431", "455", "430", "355"),
    ("BPM", "CSR2", "OC/FS", "615", "456", "617", "356"),
    ("BPM", "RSR2", "OC/FS", "619", "457", "621", "357"),
    ("BPM", "ASR1", "Trad", "603", "458", "604", "358"),
    ("BPM", "ASR2", "Trad", "606", "459", "608", "359"),
    ("BPM", "CSR1", "Trad", "613", "460", "614", "360"),
    ("BPM", "CSR2", "Trad", "616", "461", "618", "361"),
    ("BPM", "RSR2", "Trad", "620", "462", "622", "362"),
    # 4.5 Political Mail (on or after 2020-07-27). The reference has no ACS
    # column: it marks ASR1 "(OneCode / FS ACS)" and leaves the rows below
    # blank, so that marking is read as carrying down to ASR2, CSR1, RSR2.
    ("POL-FCM", "none", None, "751", "727", "761", "747"),
    ("POL-FCM", "manual", None, "752", "756", None, None),  # **
    ("POL-FCM", "ASR1", "OC/FS", "753", "757", "763", "767"),
    ("POL-FCM", "ASR2", "OC/FS", "754", "758", "764", "768"),
    ("POL-FCM", "CSR1", "OC/FS", "755", "759", "765", "769"),  # G&S
    ("POL-FCM", "RSR2", "OC/FS", None, None, "762", "766"),
    ("POL-MKT", "none", None, "771", "728", "773", "748"),
    ("POL-MKT", "manual", None, "772", "776", None, None),
    ("POL-MKT", "CSR1", "OC/FS", "775", "770", "774", "781"),
    ("POL-MKT", "CSR1", "Trad", "785", "786", None, None),
    # 4.6 Ballot Mail, outbound (election office to voter); all with IV-MTR.
    # The reference names the ACS type only on the RSR2 entries ("OneCode",
    # "FS ACS", plus one Traditional); the ASR entries are read as
    # OneCode (Basic) / Full-Service ACS (FS), the only non-Traditional kinds.
    ("BAL-FCM", "none", None, None, "715", None, "720"),
    ("BAL-FCM", "manual", None, None, "716", None, None),
    ("BAL-FCM", "ASR1", "OC/FS", None, "717", None, "722"),  # forward ballot
    ("BAL-FCM", "ASR2", "OC/FS", None, "718", None, "723"),
    ("BAL-FCM", "RSR2", "OC/FS", None, "713", None, "725"),  # return ballot
    ("BAL-MKT", "none", None, None, "735", None, "741"),
    ("BAL-MKT", "manual", None, None, "736", None, None),
    ("BAL-MKT", "ASR1", "OC/FS", None, "737", None, "743"),
    ("BAL-MKT", "ASR2", "OC/FS", None, "738", None, "744"),
    ("BAL-MKT", "RSR2", "OC/FS", None, "714", None, "746"),
    ("BAL-MKT", "RSR2", "Trad", None, "726", None, None),
)

# 4.7 reply mail: reply kind, how the piece is identified, then the STIDs
# without and with IV-MTR.
_REPLY: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("Courtesy Reply Mail", "by ZIP", "703", "050"),
    (_BRM, "by ZIP", "708", "052"),
    ("First-Class/Permit Reply Mail", "by ZIP", "701", "051"),
    ("Courtesy Reply Mail", "by MID", "070", "030"),
    (_BRM, "by MID", "072", "032"),
    ("First-Class Reply Mail", "by MID", "071", "031"),
)

# Single STIDs (4.6 inbound ballots, 4.7 Priority and Share Mail):
# STID, mail class, reply kind, IV-MTR tracing, description (less tracing).
_INBOUND: Final = "Ballot Mail (inbound, voter to election office)"
_SINGLE: Final[tuple[tuple[str, str, str | None, bool | None, str], ...]] = (
    # Inbound ballots are without IV-MTR "in the transcription" (imb.md 4.6).
    # 780 (UOCAVA) names no reply-mail kind; it is still a ballot return.
    ("777", "Ballot Mail", "First-Class Reply Mail", False, f"{_INBOUND}, First-Class Mail reply"),
    ("778", "Ballot Mail", _BRM, False, f"{_INBOUND}, {_BRM}"),
    ("779", "Ballot Mail", "Permit Reply Mail", False, f"{_INBOUND}, Permit Reply Mail"),
    ("780", "Ballot Mail", "Ballot return", False, f"{_INBOUND}, UOCAVA"),
    # The table gives no IV-MTR column for Priority Mail.
    ("710", "Priority Mail", None, None, "Priority Mail"),
    ("712", "Priority Mail", None, None, "Priority Mail Flat Rate"),
    # Share Mail "requires IV-MTR", so these are tracing STIDs.
    ("733", "Share Mail", None, True, "Share Mail with a unique IMb (USPS approval needed)"),
    ("734", "Share Mail", None, True, "Share Mail with a static IMb (USPS approval needed)"),
)


# --- Building ---------------------------------------------------------------


def _tracing(with_mtr: bool) -> str:
    return "with IV-MTR" if with_mtr else "without IV-MTR"


def _grid_entries(rows: Iterable[_GridRow]) -> Iterator[ServiceType]:
    columns = ((_BASIC, False), (_BASIC, True), (_FULL, False), (_FULL, True))
    for class_key, option_key, acs_key, *stids in rows:
        mail_class, class_label = _CLASSES[class_key]
        correction = _OPTIONS[option_key]
        phrase = _PHRASES.get(option_key, correction)
        basic_acs, full_acs = _ACS[acs_key]
        for (level, with_mtr), stid in zip(columns, stids, strict=True):
            if stid is None:
                continue
            acs = basic_acs if level == _BASIC else full_acs
            option = f"{phrase} ({acs})" if acs else phrase
            yield ServiceType(
                stid=stid,
                mail_class=mail_class,
                service_level=level,
                address_correction=correction,
                acs_type=acs,
                iv_mtr_tracing=with_mtr,
                reply_mail=None,
                business_reply=False,
                description=f"{class_label}, {level}, {option}, {_tracing(with_mtr)}",
            )


def _reply_entries(rows: Iterable[tuple[str, str, str, str]]) -> Iterator[ServiceType]:
    for kind, keyed_by, without_mtr, with_mtr in rows:
        for stid, tracing in ((without_mtr, False), (with_mtr, True)):
            yield ServiceType(
                stid=stid,
                mail_class="Reply Mail",
                service_level=None,
                address_correction=None,
                acs_type=None,
                iv_mtr_tracing=tracing,
                reply_mail=kind,
                business_reply=kind == _BRM,
                description=f"Reply Mail, {kind} ({keyed_by}), {_tracing(tracing)}",
            )


def _single_entries(
    rows: Iterable[tuple[str, str, str | None, bool | None, str]],
) -> Iterator[ServiceType]:
    for stid, mail_class, reply, tracing, text in rows:
        description = text if tracing is None else f"{text}, {_tracing(tracing)}"
        yield ServiceType(
            stid=stid,
            mail_class=mail_class,
            service_level=None,
            address_correction=None,
            acs_type=None,
            iv_mtr_tracing=tracing,
            reply_mail=reply,
            business_reply=reply == _BRM,
            description=description,
        )


def _build_table(entries: Iterable[ServiceType]) -> Mapping[str, ServiceType]:
    """Index entries by STID; a malformed or repeated STID fails the import."""
    table: dict[str, ServiceType] = {}
    for entry in entries:
        # A typo in the literal rows must not silently shadow another entry.
        if len(entry.stid) != 3 or not (entry.stid.isascii() and entry.stid.isdigit()):
            raise ValueError(f"malformed STID {entry.stid!r}")
        if entry.stid in table:
            raise ValueError(
                f"STID {entry.stid} assigned twice: "
                f"{table[entry.stid].description!r} and {entry.description!r}"
            )
        table[entry.stid] = entry
    return MappingProxyType(table)


STID_TABLE: Final[Mapping[str, ServiceType]] = _build_table(
    [*_grid_entries(_GRID), *_reply_entries(_REPLY), *_single_entries(_SINGLE)]
)
"""Every STID in the 2024-01-21 table, keyed by its 3-digit string; read-only."""

NO_SINGLE_PIECE_DATA_STIDS: Final[frozenset[str]] = frozenset({
    "030", "031", "032", "050", "051", "052", "070", "071", "072",
    "701", "703", "708", "777", "778", "779",
})  # fmt: skip
"""STIDs the IV-MTR single-piece IMb query returns no data for (API FAQ, question 5).

The FAQ calls them all Business Reply Mail; most are other reply mail, see
``ServiceType.business_reply``.
"""


def lookup_stid(stid: str) -> ServiceType | None:
    """Return what ``stid`` means, or None if it is unknown or malformed.

    Never raises: the value comes straight from USPS feed data.
    """
    # Feed JSON may carry a number or null here despite the schema; an
    # unhashable value would make the mapping raise.
    if not isinstance(stid, str):
        return None
    return STID_TABLE.get(stid)
