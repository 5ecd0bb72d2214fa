"""Schema evolution: may a new value schema replace the released ones?

Our rule for ``schemas/*.avsc`` (every topic's value schema and all it references):

* a field may be **added only with a default**, so a consumer on the new schema reads
  everything written before it;
* a field is **never removed or renamed** (a rename is a removal plus an addition), an
  enum symbol is never removed, a type only ever widens the way Avro promotes it
  (int -> long -> float -> double, string <-> bytes) or gains union branches;
* named types keep their names and their namespaces ``ivmtr.events`` and
  ``ivmtr.records``, which are part of the contract (Avro resolves named types by name);
* anything else is a breaking change: it gets a new topic version (a new topic name,
  ``...-v2``), never a new schema on the old topic.

Every release keeps its schema files in ``schemas/released/<release>/`` (``v1``, ``v2``,
...), and a new schema must satisfy the rule against *each* of them (transitively), as the
registry's ``BACKWARD_TRANSITIVE`` level does against every registered version.

Two checks, both pure functions of parsed schemas (fastavro's ``parse_schema`` or
``load_schema`` output, or plain schema JSON):

``check_backward(new, old)``
    Avro schema resolution with ``new`` as the reader and ``old`` as the writer: the
    problems that would make reading old data with the new schema fail. This is what the
    registry enforces under ``BACKWARD`` (a removed field is fine here). It is a little
    stricter than Avro: a changed ``logicalType`` is reported, since it silently changes
    what the value means.

``check_evolution(new, olds)``
    Our rule: ``check_backward`` against every old schema, plus removed fields, removed
    enum symbols (even with an enum default) and renamed or moved named types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro.schema

from producer.schemas import Schema, load_schema

__all__ = [
    "Release",
    "check_backward",
    "check_backward_transitive",
    "check_evolution",
    "load_releases",
]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# writer type -> reader types it can be read as (Avro specification, "Schema Resolution")
_PROMOTIONS = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


# -- schema walking --------------------------------------------------------------------------


@dataclass
class _Names:
    """Named types of one schema by full name, to resolve references written as names."""

    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, schema: Any) -> _Names:
        names = cls()
        names._collect(schema)
        return names

    def _collect(self, node: Any) -> None:
        # A parsed schema spells every name in full: one without a dot is in the null
        # namespace (``"namespace": ""``), not in the namespace of the type around it.
        if isinstance(node, list):
            for branch in node:
                self._collect(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in _NAMED:
                self.by_name.setdefault(_full_name(node), node)
                for item in node.get("fields", ()):
                    self._collect(item["type"])
            elif kind == "array":
                self._collect(node["items"])
            elif kind == "map":
                self._collect(node["values"])

    def resolve(self, node: Any) -> Any:
        """The schema a type stands for: a named reference looked up, a primitive as a dict."""
        if isinstance(node, str):
            # a parsed schema names a type only after defining it, by its full name
            return {"type": node} if node in _PRIMITIVES else self.by_name[node]
        return node


def _full_name(node: Mapping[str, Any]) -> str:
    # fastavro's parsed form spells the full name out in "name" (and drops "namespace")
    return str(node["name"])


def _short(full_name: str) -> str:
    return full_name.rpartition(".")[2]


def _short_names(node: Mapping[str, Any]) -> set[str]:
    """The unqualified name of a named type and of its aliases."""
    return {_short(_full_name(node)), *(_short(alias) for alias in node.get("aliases", ()))}


def _kind(node: Any) -> str:
    """'union', a primitive name, or the complex type name of a resolved node."""
    if isinstance(node, list):
        return "union"
    return str(node["type"])


def _describe(node: Any) -> str:
    if isinstance(node, list):
        return "[" + ", ".join(_describe(branch) for branch in node) + "]"
    if isinstance(node, str):
        return node
    kind = node.get("type")
    if kind in _NAMED:
        return str(node["name"]).rpartition(".")[2]
    if kind == "array":
        return f"array<{_describe(node['items'])}>"
    if kind == "map":
        return f"map<{_describe(node['values'])}>"
    if isinstance(kind, dict | list):
        return _describe(kind)
    logical = node.get("logicalType")
    return f"{kind}({logical})" if logical else str(kind)


def _parsed(schema: Any) -> Any:
    if isinstance(schema, Schema):
        return schema.parsed
    if isinstance(schema, dict) and schema.get("__fastavro_parsed"):
        return schema
    return fastavro.schema.parse_schema(schema, _write_hint=False)


# -- Avro schema resolution ------------------------------------------------------------------


class _Resolver:
    """Walks a reader (new) and a writer (old) schema side by side and collects problems."""

    def __init__(self, reader: _Names, writer: _Names) -> None:
        self.reader = reader
        self.writer = writer
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def problem(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def match(self, reader: Any, writer: Any, path: str) -> None:
        """Record the problems of reading data written as ``writer`` as ``reader``."""
        reader, writer = self.reader.resolve(reader), self.writer.resolve(writer)
        rkind, wkind = _kind(reader), _kind(writer)
        if wkind == "union":
            # every branch the old schema may have written must stay readable
            for branch in writer:
                resolved = self.writer.resolve(branch)
                if rkind == "union" or self._branch([reader], resolved) is not None:
                    self.match(reader, resolved, path)
                else:
                    self.problem(
                        path,
                        f"the old union {_describe(writer)} has {_describe(resolved)}, "
                        f"which {_describe(reader)} cannot read",
                    )
            return
        if rkind == "union":
            chosen = self._branch(reader, writer)
            if chosen is None:
                self.problem(
                    path, f"{_describe(writer)} is not one of the new union {_describe(reader)}"
                )
            else:
                self.match(chosen, writer, path)
            return
        if rkind != wkind:
            if rkind in _PROMOTIONS.get(wkind, ()):
                self._logical(reader, writer, path)
                return
            self.problem(path, f"type changed from {_describe(writer)} to {_describe(reader)}")
            return
        if rkind in _PRIMITIVES:
            self._logical(reader, writer, path)
        elif rkind in ("record", "error"):
            self._record(reader, writer, path)
        elif rkind == "enum":
            self._enum(reader, writer, path)
        elif rkind == "fixed":
            if not self._same_name(reader, writer, path):
                return
            if reader["size"] != writer["size"]:
                self.problem(path, f"fixed size changed from {writer['size']} to {reader['size']}")
            else:
                self._logical(reader, writer, path)
        elif rkind == "array":
            self.match(reader["items"], writer["items"], f"{path}[]")
        elif rkind == "map":
            self.match(reader["values"], writer["values"], f"{path}{{}}")

    def _branch(self, union: list[Any], writer: Any) -> Any:
        """The branch of a reader union that reads ``writer`` data, as Avro picks it.

        The first branch of the same type (and name, for named types), else the first
        the writer's type promotes to; None when there is none.
        """
        wkind = _kind(writer)
        branches = [self.reader.resolve(branch) for branch in union]
        for branch in branches:
            if _kind(branch) == wkind and (
                wkind not in _NAMED or _short_names(branch) & {_short(_full_name(writer))}
            ):
                return branch
        for branch in branches:
            if _kind(branch) in _PROMOTIONS.get(wkind, ()):
                return branch
        return None

    def _logical(self, reader: Any, writer: Any, path: str) -> None:
        old, new = writer.get("logicalType"), reader.get("logicalType")
        if old != new:
            self.problem(path, f"logical type changed from {old} to {new}")
        elif new == "decimal":
            # Avro: two decimals match only if their scales and precisions match
            was = (writer.get("precision"), writer.get("scale", 0))
            now = (reader.get("precision"), reader.get("scale", 0))
            if was != now:
                self.problem(path, f"decimal (precision, scale) changed from {was} to {now}")

    def _same_name(self, reader: Any, writer: Any, path: str) -> bool:
        # Avro matches named types on the unqualified name, or one of the reader's aliases
        if _short(_full_name(writer)) in _short_names(reader):
            return True
        self.problem(
            path, f"{reader['type']} {_full_name(writer)} is now called {_full_name(reader)}"
        )
        return False

    def _record(self, reader: Any, writer: Any, path: str) -> None:
        if not self._same_name(reader, writer, path):
            return
        key = (_full_name(reader), _full_name(writer))
        if key in self._seen:  # a recursive type: already being compared further up
            return
        self._seen.add(key)
        writer_fields = {item["name"]: item for item in writer["fields"]}
        for item in reader["fields"]:
            names = [item["name"], *item.get("aliases", ())]
            old = next((writer_fields[name] for name in names if name in writer_fields), None)
            where = f"{path}.{item['name']}"
            if old is not None:
                self.match(item["type"], old["type"], where)
            elif "default" not in item:
                self.problem(where, "field added without a default")
            else:
                self._default(item["type"], item["default"], where)

    def _default(self, schema: Any, default: Any, path: str) -> None:
        resolved = self.reader.resolve(schema)
        if isinstance(resolved, list):
            first = self.reader.resolve(resolved[0])
            if _kind(first) == "null" and default is not None:
                self.problem(path, "the default of a union must fit its first branch (null)")
            elif _kind(first) != "null" and default is None:
                self.problem(path, f"default null does not fit the first branch {first['type']}")

    def _enum(self, reader: Any, writer: Any, path: str) -> None:
        if not self._same_name(reader, writer, path):
            return
        missing = [symbol for symbol in writer["symbols"] if symbol not in reader["symbols"]]
        if missing and reader.get("default") is None:
            self.problem(
                path,
                f"enum {_full_name(reader)} lost symbols {', '.join(missing)} and has no default",
            )


def check_backward(new: Any, old: Any) -> list[str]:
    """Problems reading data written with ``old`` using ``new`` as the reader schema.

    An empty list means ``new`` is BACKWARD compatible with ``old``. Each problem names
    the field path (``PieceScan.scan.facility``) and what is wrong.
    """
    reader, writer = _parsed(new), _parsed(old)
    resolver = _Resolver(_Names.of(reader), _Names.of(writer))
    root = _describe(reader) if isinstance(reader, dict) else "schema"
    resolver.match(reader, writer, root)
    return resolver.problems


def _labelled(olds: Sequence[Any] | Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(olds, Mapping):
        yield from olds.items()
    else:
        for index, old in enumerate(olds, 1):
            yield f"#{index}", old


def check_backward_transitive(new: Any, olds: Sequence[Any] | Mapping[str, Any]) -> list[str]:
    """``check_backward`` against every old schema; problems are prefixed with its label.

    ``olds`` is a sequence (labelled ``#1``, ``#2``, ...) or a mapping label -> schema.
    """
    return [
        f"{label}: {problem}"
        for label, old in _labelled(olds)
        for problem in check_backward(new, old)
    ]


# -- our rule on top of Avro's ---------------------------------------------------------------


def _policy(new: Any, old: Any) -> list[str]:
    """Removed fields and enum symbols, renamed or moved named types (old -> new)."""
    new_names, old_names = _Names.of(new), _Names.of(old)
    problems: list[str] = []
    moved: dict[str, str] = {}
    for full in old_names.by_name:
        if full in new_names.by_name:
            continue
        elsewhere = [name for name in new_names.by_name if _short(name) == _short(full)]
        if elsewhere:
            moved[full] = elsewhere[0]
            namespace = elsewhere[0].rpartition(".")[0]
            where = f"namespace {namespace}" if namespace else "the null namespace"
            problems.append(f"{full}: moved to {where}")
        # otherwise renamed or no longer used: check_backward reports it where it was used
    for full, node in old_names.by_name.items():
        current = new_names.by_name.get(moved.get(full, full))
        if current is None or current["type"] != node["type"]:
            continue
        if node["type"] in ("record", "error"):
            kept = {item["name"] for item in current["fields"]}  # an alias is still a rename
            problems.extend(
                f"{full}.{item['name']}: field removed (or renamed)"
                for item in node["fields"]
                if item["name"] not in kept
            )
        elif node["type"] == "enum" and current.get("default") is not None:
            # without a default check_backward already reports the lost symbols
            problems.extend(
                f"{full}: enum symbol {symbol} removed"
                for symbol in node["symbols"]
                if symbol not in current["symbols"]
            )
    return problems


def check_evolution(new: Any, olds: Sequence[Any] | Mapping[str, Any]) -> list[str]:
    """Our rule (see the module docstring) against every released version of a schema."""
    reader = _parsed(new)
    problems: list[str] = []
    for label, old in _labelled(olds):
        writer = _parsed(old)
        found = check_backward(reader, writer) + _policy(reader, writer)
        problems.extend(f"{label}: {problem}" for problem in dict.fromkeys(found))
    return problems


# -- released schemas ------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """The schema files of one release: ``schemas/released/<name>/``."""

    name: str
    directory: Path

    def schema(self, full_name: str) -> Schema | None:
        """The released schema ``full_name``, or None when the release did not have it."""
        if not (self.directory / f"{full_name}.avsc").is_file():
            return None
        return load_schema(full_name, self.directory)


def _release_order(path: Path) -> tuple[int, str]:
    match = re.fullmatch(r"v(\d+)", path.name)
    return (int(match.group(1)) if match else 1 << 30, path.name)


def load_releases(root: Path) -> list[Release]:
    """Every release under ``root`` (``v1``, ``v2``, ...), oldest first."""
    if not root.is_dir():
        return []
    return [
        Release(path.name, path)
        for path in sorted(root.iterdir(), key=_release_order)
        if path.is_dir() and any(path.glob("*.avsc"))
    ]
