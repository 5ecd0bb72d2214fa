"""Typed results of the IV-MTR Mail Tracking API, the field-name mapping, and the error tree.

The pull API answers in snake_case (``scan_date_time``, ``mail_class``); the push feed and our
Avro record schemas use the data dictionary's camelCase (``scanDatetime``,
``mailClassDescription``). ``Piece`` maps every known field to its push name, so
``piece.push_records()`` can go through the same validation and enrichment as pushed records.
Fields this table does not know are kept, under the name the API gave them.

Errors::

    ApiError                   anything the Mail Tracking client reports
    ├── RuleViolation          refused before any request (consumer.api.rules); .rule
    ├── AuthenticationFailed   credentials refused, or a token still refused after renewal
    ├── PieceNotFound          no data for that IMb (404 / "not found"); .imb
    ├── ApiUnavailable         5xx, 429 or network errors outlasted the retries;
    │                          .attempts, .status, .retry_after
    └── ApiResponseError       any other refusal (other 4xx) or an answer not of the
                               documented shape; .status

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "API_TO_PUSH_FIELDS",
    "ApiError",
    "ApiResponseError",
    "ApiUnavailable",
    "AuthenticationFailed",
    "Piece",
    "PieceNotFound",
    "RuleViolation",
    "push_field_name",
]


# ----------------------------------------------------------------------------- errors


class ApiError(Exception):
    """Base class of every error the Mail Tracking client raises."""


class RuleViolation(ApiError):
    """A query the API rules refuse; raised before any request is sent.

    ``rule`` names the rule for machines (``imb_partial``, ``stid_no_single_piece_data``, ...).
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class AuthenticationFailed(ApiError):
    """The BCG credentials were refused, or the API still refused a freshly issued token."""


class PieceNotFound(ApiError):
    """The API has no data for this IMb (unknown, or scanned more than 30 days ago)."""

    def __init__(self, imb: str, message: str) -> None:
        super().__init__(message)
        self.imb = imb


class ApiUnavailable(ApiError):
    """The API kept failing (5xx, 429, network errors or timeouts) through every retry.

    ``attempts`` is how many requests were sent, ``status`` the last HTTP status (None after a
    network error) and ``retry_after`` the server's last Retry-After in seconds, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status
        self.retry_after = retry_after


class ApiResponseError(ApiError):
    """A refusal that retrying cannot fix (4xx other than 401/404/429), or a malformed answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------- field names

# API (snake_case) name -> push / PieceRecord.avsc (camelCase) name. The names marked MED are
# the ones ivmtr.md section 3 saw in working clients; the rest are the data dictionary names
# (ivmtr.md 1.1) in snake_case (LOW: the full response schema was not found). Four do not
# follow the plain camelCase -> snake_case rule: scan_date_time, scan_facility_locale_key,
# mail_class and mail_shape.
_API_TO_PUSH: Final[dict[str, str]] = {
    "imb": "imb",  # MED
    "imb_tracking_code": "imbTrackingCode",
    "imb_mid": "imbMid",
    "imb_serial_number": "imbSerialNumber",
    "imb_stid": "imbStid",
    "imb_routing_code": "imbRoutingCode",
    "routing_code_imb_matching_portion": "routingCodeImbMatchingPortion",
    "piece_id": "pieceId",
    "id_tag": "idTag",
    "handling_event_type": "handlingEventType",  # MED
    "handling_event_type_description": "handlingEventTypeDescription",
    "scan_date_time": "scanDatetime",  # MED
    "scan_event_code": "scanEventCode",  # MED
    "mail_phase": "mailPhase",  # MED
    "machine_name": "machineName",  # MED
    "machine_id": "machineId",
    "scanner_type": "scannerType",  # MED
    "scan_facility_name": "scanFacilityName",  # MED
    "scan_facility_city": "scanFacilityCity",  # MED
    "scan_facility_state": "scanFacilityState",  # MED
    "scan_facility_zip": "scanFacilityZip",  # MED
    "scan_facility_locale_key": "scanLocaleKey",  # MED
    "edoc_job_id": "edocJobId",
    "edoc_mailing_group_id": "edocMailingGroupId",
    "edoc_submitter_crid": "edocSubmitterCrid",
    "mail_class": "mailClassDescription",  # MED
    "mail_shape": "mailShapeDescription",  # MED
    "parent_container_edoc_container_id": "parentContainerEdocContainerId",
    "parent_tray_edoc_container_id": "parentTrayEdocContainerId",
    "parent_container_edoc_imtb": "parentContainerEdocImtb",
    "parent_container_edoc_imcb": "parentContainerEdocImcb",
    "parent_tray_edoc_imtb": "parentTrayEdocImtb",
    "operational_status": "operationalStatus",
    "anticipated_delivery_date": "anticipatedDeliveryDate",
    "expected_delivery_date": "expectedDeliveryDate",  # MED
    "predicted_delivery_date": "predictedDeliveryDate",
    "start_the_clock_date": "startTheClockDate",  # MED
    "start_the_clock_facility_address": "startTheClockFacilityAddress",
    "start_the_clock_facility_city": "startTheClockFacilityCity",  # MED
    "start_the_clock_facility_locale_key": "startTheClockFacilityLocaleKey",
    "start_the_clock_facility_name": "startTheClockFacilityName",  # MED
    "start_the_clock_facility_state": "startTheClockFacilityState",  # MED
    "start_the_clock_facility_zip": "startTheClockFacilityZip",  # MED
    "lde_delivery_mode": "ldeDeliveryMode",
    "lde_inventory_method": "ldeInventoryMethod",
    "lde_trigger_method": "ldeTriggerMethod",
    "recipient_crid_of_mid_on_piece": "recipientCridOfMidOnPiece",
    "recipient_crid_of_mid_on_piece_delegator": "recipientCridOfMidOnPieceDelegator",
    "recipient_mail_owner_crid": "recipientMailOwnerCrid",
    "recipient_mail_owner_delegator_crid": "recipientMailOwnerDelegatorCrid",
    "recipient_routing_code_authorized_crid": "recipientRoutingCodeAuthorizedCrid",
}

API_TO_PUSH_FIELDS: Final[Mapping[str, str]] = MappingProxyType(_API_TO_PUSH)
"""Every API field name the client knows, with its push-feed (camelCase) name."""


def push_field_name(api_name: str) -> str:
    """The push-feed name of an API field; unknown names are kept as they are."""
    return _API_TO_PUSH.get(api_name, api_name)


def _to_push(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {push_field_name(name): value for name, value in fields.items()}


# ----------------------------------------------------------------------------- results


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece as the single-piece IMb query returns it.

    ``attributes`` holds the piece-level fields and ``scans`` one dict per handling event,
    both under their push-feed (camelCase) names; fields the mapping does not know keep the
    API's name. ``raw`` is the response's ``data`` object exactly as received.
    """

    imb: str
    attributes: Mapping[str, Any]
    scans: list[dict[str, Any]]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, imb: str | None = None) -> Piece:
        """Build a Piece from the ``data`` object of a piece response.

        ``imb`` (the IMb that was asked for) is used when the answer does not name one.
        Raises ValueError when ``data`` is not of the documented shape.
        """
        scans = data.get("scans")
        if scans is None:
            scans = []
        if not isinstance(scans, list) or not all(isinstance(s, Mapping) for s in scans):
            raise ValueError("`scans` must be a list of objects")
        attributes = _to_push({k: v for k, v in data.items() if k != "scans"})
        found = _text(attributes.get("imb")) or imb
        if found is None:
            raise ValueError("the piece names no IMb")
        attributes.setdefault("imb", found)
        return cls(
            imb=found,
            attributes=MappingProxyType(attributes),
            scans=[_to_push(scan) for scan in scans],
            raw=MappingProxyType(dict(data)),
        )

    def push_records(self) -> list[dict[str, Any]]:
        """One push-shaped record per scan: the piece's attributes merged with the scan's fields.

        Scan fields win over piece fields of the same name. The records are new dicts.
        """
        return [{**self.attributes, **scan} for scan in self.scans]

    def _attribute(self, name: str) -> str | None:
        return _text(self.attributes.get(name))

    @property
    def expected_delivery_date(self) -> str | None:
        """Service-standard delivery date, ``YYYY-MM-DD`` (enriched pieces only)."""
        return self._attribute("expectedDeliveryDate")

    @property
    def anticipated_delivery_date(self) -> str | None:
        """IV's out-for-delivery date, ``YYYY-MM-DD``."""
        return self._attribute("anticipatedDeliveryDate")

    @property
    def predicted_delivery_date(self) -> str | None:
        """IV's predicted delivery date, ``YYYY-MM-DD``."""
        return self._attribute("predictedDeliveryDate")

    @property
    def mail_class(self) -> str | None:
        """Mail class (``First Class``, ``Standard``, ...); API ``mail_class``."""
        return self._attribute("mailClassDescription")

    @property
    def mail_shape(self) -> str | None:
        """Mail shape (``Letter``, ``Flat``, ...); API ``mail_shape``."""
        return self._attribute("mailShapeDescription")

    @property
    def start_the_clock_date(self) -> str | None:
        """Date USPS took possession of the mail, ``YYYY-MM-DD``."""
        return self._attribute("startTheClockDate")

    @property
    def start_the_clock_facility_name(self) -> str | None:
        """Facility where USPS took possession of the mail."""
        return self._attribute("startTheClockFacilityName")

    @property
    def start_the_clock_facility_city(self) -> str | None:
        """City of the start-the-clock facility."""
        return self._attribute("startTheClockFacilityCity")

    @property
    def start_the_clock_facility_state(self) -> str | None:
        """State of the start-the-clock facility."""
        return self._attribute("startTheClockFacilityState")

    @property
    def start_the_clock_facility_zip(self) -> str | None:
        """ZIP code of the start-the-clock facility."""
        return self._attribute("startTheClockFacilityZip")
