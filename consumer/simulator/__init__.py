"""A deterministic stand-in for USPS IV-MTR: generates a mailing's scan records and push envelopes.

Pure: no network, no files, no wall clock. The simulator CLI, the tests and the benchmarks all
draw their data from here.
"""

from consumer.simulator.facilities import (
    FACILITIES,
    Facility,
    facility_by_locale_key,
    facility_for_zip,
)
from consumer.simulator.generate import (
    DEFAULT_START,
    HANDLING_EVENT_DESCRIPTIONS,
    LPO_OPCODES,
    MailingSpec,
    bundle_records,
    container_records,
    count_records,
    format_scan_datetime,
    generate_records,
    handling_unit_records,
    message_group,
    message_stream,
    new_message_group_id,
    parse_scan_datetime,
    piece_records,
    record_kind,
)

__all__ = [
    "DEFAULT_START",
    "FACILITIES",
    "HANDLING_EVENT_DESCRIPTIONS",
    "LPO_OPCODES",
    "Facility",
    "MailingSpec",
    "bundle_records",
    "container_records",
    "count_records",
    "facility_by_locale_key",
    "facility_for_zip",
    "format_scan_datetime",
    "generate_records",
    "handling_unit_records",
    "message_group",
    "message_stream",
    "new_message_group_id",
    "parse_scan_datetime",
    "piece_records",
    "record_kind",
]
