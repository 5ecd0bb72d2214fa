"""The one place that loads the compiled fast path (``ivmtr_native``, built from ``native/``).

The service wiring calls ``load_native`` with the ``fast_path`` setting and hands what it
uses of the module to its parts: the record scanner to the message parser, the encoder
to ``ScanFastPath.build``, the key hash and the record batch builder to the producer's
``KafkaConfig``. Nothing else imports ``ivmtr_native``, so ``off`` means no native code
runs at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from consumer.core.parse import FlatRecords
from consumer.settings import SettingsError

__all__ = ["NativeMode", "NativeModule", "NativeUnavailable", "load_native", "record_scanner"]

NativeMode = Literal["auto", "require", "off"]


class NativeModule(Protocol):
    """What the service uses of ``ivmtr_native`` (its types: ``native/ivmtr_native.pyi``)."""

    def flat_records(
        self, buf: bytes, pos: int, max_record_bytes: int
    ) -> tuple[list[bytes], int, bool]:
        """The flat records from ``buf[pos]`` on: (records, stop position, stopped after one)."""

    def key_hash(self, data: bytes) -> int:
        """Kafka's murmur2 of a key, masked to 31 bits (the default partitioner's hash)."""

    @property
    def ScanEncoder(self) -> Callable[..., Any]:
        """The encoder of a service's event schemas (``consumer.core.fastpath``)."""

    @property
    def RecordBatches(self) -> Callable[..., Any]:
        """Kafka record batches built without the GIL (``producer.kafka.RecordBatches``)."""


class NativeUnavailable(SettingsError):
    """``require`` was asked for and the native module cannot be imported."""


def load_native(mode: NativeMode) -> NativeModule | None:
    """The native module as ``mode`` asks for it.

    ``off``: None, without importing it. ``auto``: the module when it is installed, else
    None. ``require``: the module, or NativeUnavailable saying why there is none.
    """
    if mode == "off":
        return None
    if mode not in ("auto", "require"):
        raise ValueError(f"fast path mode {mode!r} is not auto, require or off")
    try:
        import ivmtr_native
    except ImportError as exc:
        if mode == "require":
            raise NativeUnavailable(
                f"IVMTR_FAST_PATH=require: the native module is not installed ({exc}); "
                "build it with `make install` (pip install ./native)"
            ) from exc
        return None
    return ivmtr_native


def record_scanner(mode: NativeMode) -> FlatRecords | None:
    """The native record scanner for ``MessageParser`` as ``mode`` asks for it, or None."""
    native = load_native(mode)
    return None if native is None else native.flat_records
