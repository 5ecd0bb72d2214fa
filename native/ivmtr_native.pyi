"""Types of the compiled fast path of ivmtr-stream (see native/src/lib.rs)."""

from collections.abc import Callable

def flat_records(buf: bytes, pos: int, max_record_bytes: int) -> tuple[list[bytes], int, bool]:
    """The flat records from ``buf[pos]`` on: (records, stop position, stopped after a record)."""

def key_hash(data: bytes) -> int:
    """Kafka's murmur2 of a key, masked to 31 bits (the default partitioner's hash)."""

class MessageContext:
    def encode(self, raw: bytes, index: int) -> tuple[int, str, bytes, bool, str | None] | None:
        """(kind, key, Avro body, logical delivery, campaign), or None for the Python path."""
    def encode_many(
        self, raws: list[bytes], indexes: list[int]
    ) -> list[tuple[int, str, bytes, bool, str | None] | None]:
        """``encode`` of each record, computed without holding the GIL."""

class ScanEncoder:
    def __init__(
        self,
        *,
        record_fields: list[list[tuple[str, bool]]],
        handling_event_types: dict[str, tuple[int, str]],
        mail_phases: dict[str, int],
        normalise_mail_phase: Callable[[str], str | None],
        service_types: dict[str, bytes],
        record_states: tuple[int, int],
        logical_delivery_opcode: str,
        max_string_length: int,
    ) -> None: ...
    def message(
        self,
        *,
        source: int,
        feed: str,
        msg_grp_id: str | None,
        msg_ser_nbr: int | None,
        received_at: int,
        kind: int | None,
        campaign: str | None,
        rules: list[tuple[str, list[str], list[tuple[int, int]], list[str], list[str], list[str]]],
    ) -> MessageContext: ...
