"""The Avro contract with downstream: loads ``schemas/*.avsc`` once.

Schemas reference each other by full name (``ivmtr.events.Scan``), so each top-level
schema is loaded with fastavro's ``load_schema``, which resolves a reference to the file
``<full name>.avsc`` beside it. A subscriber can do the same with the files alone.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import fastavro.schema

__all__ = ["Schema", "load_schema", "schema_dir"]


def schema_dir() -> Path:
    """The directory of the ``.avsc`` files (inside the installed ``schemas`` package)."""
    return Path(str(importlib.resources.files("schemas")))


@dataclass(frozen=True)
class Schema:
    """One top-level Avro schema: its full name, parsed form and fingerprint."""

    name: str
    parsed: Any

    @cached_property
    def canonical_form(self) -> str:
        """The Parsing Canonical Form, the input of the schema fingerprint."""
        return str(fastavro.schema.to_parsing_canonical_form(self.parsed))

    @cached_property
    def fingerprint(self) -> bytes:
        """CRC-64-AVRO fingerprint, little-endian, as Avro single-object encoding writes it."""
        # fastavro already gives the bytes in the little-endian order Java writes.
        return bytes.fromhex(fastavro.schema.fingerprint(self.canonical_form, "CRC-64-AVRO"))

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        """Names of the top-level fields, in schema order."""
        return tuple(field["name"] for field in self.parsed["fields"])


def load_schema(full_name: str, directory: Path | None = None) -> Schema:
    """Load the schema ``<full_name>.avsc`` with every schema it references."""
    path = (directory or schema_dir()) / f"{full_name}.avsc"
    # The write hint marks the schema as parsed; without it fastavro re-parses on every write.
    parsed = fastavro.schema.load_schema(str(path))
    return Schema(name=full_name, parsed=parsed)
