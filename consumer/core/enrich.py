"""Enrichment: a validated record becomes the event subscribers read.

Pure functions over plain data: the IMb split, what the STID means, the normalised scan
(UTC instant, local time and offset, handling event type, mail phase, logical delivery),
raw vs enriched, the eDoc job, the campaign, and a stable event id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from consumer.core.campaigns import CampaignRule, assign_campaign
from consumer.core.codes import HANDLING_EVENT_TYPES, LOGICAL_DELIVERY_OPCODE, normalise_mail_phase
from consumer.core.records import RecordKind
from consumer.core.stid import ServiceType, lookup_stid
from consumer.core.validate import ValidRecord

__all__ = ["Provenance", "campaign_of", "enrich", "event_id", "service_type_value"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from; the same for every record of one pushed message."""

    feed: str
    msg_grp_id: str | None
    msg_ser_nbr: int | None
    received_at_ms: int
    source: str = "PUSH"
    campaign: str | None = None

    def for_record(self, index: int | None) -> dict[str, Any]:
        """The event's ``provenance`` value for the record at ``index``."""
        return {
            "source": self.source,
            "feed": self.feed,
            "msg_grp_id": self.msg_grp_id,
            "msg_ser_nbr": self.msg_ser_nbr,
            "record_index": index,
            "received_at": self.received_at_ms,
        }


def event_id(record: ValidRecord) -> str:
    """IV-MTR's pieceId when present, else a UUID hashed from the scan's identifying fields.

    The hash uses the normalised instant and the 20-digit tracking code, so the same scan
    gets the same id whether its time was written with ``T`` or a space, or its IMb with
    or without routing code.
    """
    fields = record.fields
    piece_id = fields.get("pieceId")
    if piece_id:
        return str(piece_id)
    identity = "|".join(
        (
            record.kind.value,
            record.object_id,
            str(record.scan_time.utc_micros),
            fields.get("scanEventCode") or "",
            fields.get("handlingEventType") or "",
            fields.get("scanLocaleKey") or fields.get("scanFacilityZip") or "",
            fields.get("machineName") or "",
        )
    )
    return str(uuid.UUID(bytes=hashlib.sha256(identity.encode()).digest()[:16], version=5))


def campaign_of(record: ValidRecord, rules: Sequence[CampaignRule]) -> str | None:
    """The campaign the rules give a record (None when no rule matches)."""
    if not rules:
        return None
    fields = record.fields
    mailer_id: str | None
    serial: str | None
    stid: str | None
    if record.imb is not None:
        mailer_id, serial, stid = (
            record.imb.mailer_id,
            record.imb.serial_number,
            record.imb.service_type_id,
        )
    elif record.kind is RecordKind.HANDLING_UNIT:
        mailer_id, serial, stid = fields.get("imtbMid"), fields.get("imtbSerialNumber"), None
    else:
        mailer_id, serial, stid = fields.get("imcbMid"), fields.get("imcbSerialNumber"), None
    return assign_campaign(
        rules,
        mailer_id=mailer_id,
        serial_number=serial,
        stid=stid,
        job_id=fields.get("edocJobId") or None,
        mailing_group_id=fields.get("edocMailingGroupId") or None,
    )


def enrich(
    record: ValidRecord,
    provenance: Provenance,
    index: int | None,
    rules: Sequence[CampaignRule] = (),
) -> dict[str, Any]:
    """The Avro value of the event for a validated record; campaign rules before the feed's."""
    fields = record.fields
    event: dict[str, Any] = {
        "event_id": event_id(record),
        "provenance": provenance.for_record(index),
        "scan": _scan(record),
        "record_state": "ENRICHED" if _is_enriched(fields) else "RAW",
        "job": _job(fields),
        "campaign": campaign_of(record, rules) or provenance.campaign,
        "record": fields,
        "extra": record.extra,
    }
    if record.imb is not None:
        event["imb"] = record.imb.digits
        event["barcode"] = record.imb.fields()
        event["service_type"] = service_type_value(lookup_stid(record.imb.service_type_id))
    elif record.kind is RecordKind.HANDLING_UNIT:
        event["imtb"] = record.object_id
        event["mailer_id"] = fields.get("imtbMid") or None
    else:
        event["imcb"] = record.object_id
        event["mailer_id"] = fields.get("imcbMid") or None
    return event


def _is_enriched(fields: dict[str, Any]) -> bool:
    # IV-MTR's own rule: a record is raw when both eDoc ids are empty.
    return bool(fields.get("edocJobId") or fields.get("edocMailingGroupId"))


def _job(fields: dict[str, Any]) -> dict[str, Any] | None:
    if not _is_enriched(fields):
        return None
    return {
        "job_id": fields.get("edocJobId") or None,
        "mailing_group_id": fields.get("edocMailingGroupId") or None,
        "submitter_crid": fields.get("edocSubmitterCrid") or None,
    }


def service_type_value(service: ServiceType | None) -> dict[str, Any] | None:
    """The event's ``service_type`` value for what an STID means (None: unknown STID)."""
    if service is None:
        return None
    return {
        "stid": service.stid,
        "mail_class": service.mail_class,
        "service_level": service.service_level,
        "address_correction": service.address_correction,
        "acs_type": service.acs_type,
        "iv_mtr_tracing": service.iv_mtr_tracing,
        "reply_mail": service.reply_mail,
        "business_reply": service.business_reply,
        "description": service.description,
    }


def _scan(record: ValidRecord) -> dict[str, Any]:
    fields = record.fields
    code = fields.get("scanEventCode") or None
    handling = fields.get("handlingEventType") or None
    phase_raw = fields.get("mailPhase")
    return {
        "scanned_at": record.scan_time.utc_micros,
        "local_time": record.scan_time.local_time,
        "utc_offset_minutes": record.scan_time.utc_offset_minutes,
        "raw_datetime": fields["scanDatetime"],
        "event_code": code,
        "handling_event_type": handling,
        "handling_event_meaning": HANDLING_EVENT_TYPES.get(handling) if handling else None,
        "mail_phase": normalise_mail_phase(phase_raw) if phase_raw else None,
        "mail_phase_raw": phase_raw,
        "logical_delivery": code == LOGICAL_DELIVERY_OPCODE,
        "facility": {
            "name": fields.get("scanFacilityName") or None,
            "city": fields.get("scanFacilityCity") or None,
            "state": fields.get("scanFacilityState") or None,
            "zip": fields.get("scanFacilityZip") or None,
            "locale_key": fields.get("scanLocaleKey") or None,
        },
        "machine_name": fields.get("machineName") or None,
        "machine_id": fields.get("machineId") or None,
        "scanner_type": fields.get("scannerType") or None,
    }
