"""Client of the IV-MTR Mail Tracking API (pull): pieces by IMb, partial-IMb lookups.

    async with MailTrackingClient(ApiConfig(username=user, password=password)) as client:
        piece = await client.piece("0004069951599001910222082810103")
        records = piece.push_records()   # push-feed shaped, for validation and enrichment

Commands build ``ApiSettings`` (an ApiConfig read from ``IVMTR_API_*`` variables, see
``consumer.api.settings``) with ``load_api_settings`` and pass it in.
The local emulator (``consumer.simulator.api_emulator``, Starlette + uvicorn) is not imported here.
"""

from consumer.api.client import TOOLKIT_CLIENT_ID, ApiConfig, Environment, MailTrackingClient
from consumer.api.models import (
    API_TO_PUSH_FIELDS,
    ApiError,
    ApiResponseError,
    ApiUnavailable,
    AuthenticationFailed,
    Piece,
    PieceNotFound,
    RuleViolation,
    push_field_name,
)
from consumer.api.rules import (
    DataWindowWarning,
    LookupQuery,
    check_lookup_query,
    check_piece_query,
    data_window_warnings,
)
from consumer.api.settings import ApiSettings, ApiSettingsError, load_api_settings

__all__ = [
    "API_TO_PUSH_FIELDS",
    "TOOLKIT_CLIENT_ID",
    "ApiConfig",
    "ApiError",
    "ApiResponseError",
    "ApiSettings",
    "ApiSettingsError",
    "ApiUnavailable",
    "AuthenticationFailed",
    "DataWindowWarning",
    "Environment",
    "LookupQuery",
    "MailTrackingClient",
    "Piece",
    "PieceNotFound",
    "RuleViolation",
    "check_lookup_query",
    "check_piece_query",
    "data_window_warnings",
    "load_api_settings",
    "push_field_name",
]
