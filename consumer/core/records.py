"""Record kinds and the field shapes the Avro record schemas give them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["RecordKind", "RecordShape", "detect_kind"]


class RecordKind(StrEnum):
    """The four kinds of IV-MTR scan record."""

    PIECE = "piece"
    BUNDLE = "bundle"
    HANDLING_UNIT = "handling_unit"
    CONTAINER = "container"


def detect_kind(record: Mapping[str, Any]) -> RecordKind | None:
    """Tell the kind of a record from its fields, or None when nothing identifies it.

    A bundle record also carries the IMb of its top piece, so bundles are told apart by
    their bundle-only fields (ivmtr.md 1.4); feeds set up for one kind skip this.
    """
    if record.get("imcb"):
        return RecordKind.CONTAINER
    if record.get("imtb"):
        return RecordKind.HANDLING_UNIT
    if record.get("deviceId") or record.get("edocPackageId"):
        return RecordKind.BUNDLE
    if record.get("imb") or record.get("imbTrackingCode"):
        return RecordKind.PIECE
    return None


@dataclass(frozen=True)
class RecordShape:
    """Field names and value types of one record schema (``ivmtr.records.*``)."""

    kind: RecordKind
    schema_name: str
    string_fields: frozenset[str]
    int_fields: frozenset[str]
    field_order: tuple[str, ...]

    @classmethod
    def from_avro(cls, kind: RecordKind, parsed_schema: Mapping[str, Any]) -> RecordShape:
        """Build the shape from a parsed Avro record schema of nullable strings and ints."""
        strings: set[str] = set()
        ints: set[str] = set()
        order: list[str] = []
        for field in parsed_schema["fields"]:
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            concrete = [t for t in types if t != "null"]
            if concrete == ["string"]:
                strings.add(field["name"])
            elif concrete in (["int"], ["long"]):
                ints.add(field["name"])
            else:
                raise ValueError(
                    f"{parsed_schema['name']}.{field['name']}: unsupported type {types}"
                )
            order.append(field["name"])
        return cls(
            kind, str(parsed_schema["name"]), frozenset(strings), frozenset(ints), tuple(order)
        )

    def empty(self) -> dict[str, Any]:
        """A record of this shape with every field null."""
        return dict.fromkeys(self.field_order)
