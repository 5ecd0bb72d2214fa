"""producer.avro on schemas hypothesis makes up, and its refusals, type by type.

tests/producer/test_avro.py checks the project's own schemas and one made-up schema
built at import. Here every encoder is compiled inside the test that uses it (mutation
testing credits a test only with the code that runs while it runs), from schemas
generated per example: every Avro type, logical types, namespaces, references
to named types, recursive records, unions of every shape, defaults; values at the
varint edges. The bytes must be fastavro's, from the compiled encoder, from the checking
encoder alone and from the generated fast encoder alone. The refusals must name the
field, the value and what was expected, like the checking encoder's docstring says.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import io
from collections.abc import Callable
from typing import Any, cast

import fastavro
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from producer import avro
from producer.avro import AvroEncodeError, compile_encoder

FastEntry = Callable[[Callable[[str], None], Any], None]


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(copy.deepcopy(schema)), value)
    return buffer.getvalue()


def fast_entry(schema: Any) -> FastEntry:
    """The generated fast encoder alone, with no fallback behind it."""
    parsed_schema, named, _ = avro._prepare(copy.deepcopy(schema))
    return avro._Generator(named, avro._Reference(named)).build(parsed_schema)


def run_fast(entry: FastEntry, value: Any) -> bytes:
    parts: list[str] = []
    entry(parts.append, value)
    return "".join(parts).encode("latin-1")


# -- generated schemas and values ----------------------------------------------------------

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
LOGICAL: list[dict[str, Any]] = [
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "int", "logicalType": "date"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
]
FROM_TEXT = {"date", "time-millis", "time-micros"}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(minutes=345))]


def edgy_ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers, often at the edges: the type's limits and every varint length change."""
    edges = [low, low + 1, -1, 0, 1, 63, 64, -64, -65, 511, 512, high - 1, high]
    edges += [sign * 2**k + d for k in range(6, 64, 7) for d in (-1, 0) for sign in (1, -1)]
    return st.sampled_from([e for e in edges if low <= e <= high]) | st.integers(low, high)


def texts() -> st.SearchStrategy[str]:
    # Short text with astral chars; ASCII runs whose length header needs 2 and 3 bytes.
    return st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
        [0, 63, 64, 255, 256, 600]
    ).map(lambda n: "a" * n)


def binaries() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=8) | st.sampled_from([64, 300]).map(lambda n: b"\xff" * n)


def lookup(named: dict[str, Any], name: str) -> Any:
    """A named type by full or short name (generated short names are unique)."""
    if name in named:
        return named[name]
    return next(d for full, d in named.items() if full.rpartition(".")[2] == name)


def kind_of(schema: Any, named: dict[str, Any]) -> str:
    """The type of a generated schema node: a primitive, complex type or "union"."""
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES else kind_of(lookup(named, schema), named)
    return str(schema["type"])


def holds_bytes(schema: Any, named: dict[str, Any], seen: frozenset[int] = frozenset()) -> bool:
    """Whether a value of the type can hold bytes (a default of it cannot be written here)."""
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return schema == "bytes"
        schema = lookup(named, schema)
    if id(schema) in seen:
        return False
    seen |= {id(schema)}
    if isinstance(schema, list):
        return any(holds_bytes(branch, named, seen) for branch in schema)
    kind = schema["type"]
    if kind == "record":
        return any(holds_bytes(f["type"], named, seen) for f in schema["fields"])
    if kind in ("array", "map"):
        return holds_bytes(schema["items" if kind == "array" else "values"], named, seen)
    return kind in ("bytes", "fixed")


class SchemaDraw:
    """Draws one schema; remembers named types (by full name) for later references."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.named: dict[str, Any] = {}
        self.open: set[str] = set()  # records whose fields are being drawn
        self.count = 0

    def define(self, node: dict[str, Any], prefix: str, namespace: str | None) -> None:
        self.count += 1
        node["name"] = f"{prefix}{self.count}"
        self.named[f"{namespace}.{node['name']}" if namespace else node["name"]] = node

    def reference(self, namespace: str | None, *, recursive: bool) -> Any:
        # A name without a namespace cannot be written inside a namespace: it would mean
        # one in the enclosing namespace.
        names = sorted(
            n
            for n in self.named
            if (recursive or n not in self.open) and ("." in n or namespace is None)
        )
        if not names:
            return self.draw(st.sampled_from(PRIMITIVES[1:]))
        full = self.draw(st.sampled_from(names))
        space, _, short = full.rpartition(".")
        if (space or None) == namespace and self.draw(st.booleans()):
            return short  # a short name, resolved in the enclosing namespace
        return full

    def type(self, depth: int, namespace: str | None, *, branch: bool = False) -> Any:
        choices = ["primitive", "primitive", "logical", "enum", "fixed", "reference"]
        if depth > 0:
            choices += ["record", "array", "map"] + ([] if branch else ["union", "nullable"])
        choice = self.draw(st.sampled_from(choices))
        if choice == "primitive":
            name = self.draw(st.sampled_from(PRIMITIVES))
            return {"type": name} if self.draw(st.booleans()) else name
        if choice == "logical":
            return dict(self.draw(st.sampled_from(LOGICAL)))
        if choice == "enum":
            size = self.draw(st.sampled_from([1, 2, 3, 70]))
            node: dict[str, Any] = {"type": "enum", "symbols": [f"S{i}" for i in range(size)]}
            self.define(node, "E", namespace)
            return node
        if choice == "fixed":
            node = {"type": "fixed", "size": self.draw(st.sampled_from([0, 1, 4, 70]))}
            self.define(node, "F", namespace)
            return node
        if choice == "reference":
            return self.reference(namespace, recursive=False)
        if choice == "record":
            return self.record(depth - 1, namespace)
        if choice in ("array", "map"):
            if self.draw(st.booleans()):
                inner = self.type(depth - 1, namespace)
            else:  # sometimes a type that contains itself, through the array or map
                inner = self.reference(namespace, recursive=True)
            return {"type": choice, "items" if choice == "array" else "values": inner}
        if choice == "nullable":
            if self.draw(st.booleans()):
                inner = self.reference(namespace, recursive=True)
            else:
                inner = self.type(depth - 1, namespace, branch=True)
            if kind_of(inner, self.named) == "null":
                inner = "string"
            return ["null", inner] if self.draw(st.booleans()) else [inner, "null"]
        return self.union(depth - 1, namespace)

    def union(self, depth: int, namespace: str | None) -> list[Any]:
        branches: list[Any] = []
        seen: set[str] = set()
        for _ in range(self.draw(st.integers(1, 4))):
            before = set(self.named)
            branch = self.type(depth, namespace, branch=True)
            if isinstance(branch, str):
                key = branch.rpartition(".")[2]
            elif "name" in branch:
                key = branch["name"]
            else:
                key = branch["type"]
            earlier = {kind_of(b, self.named) for b in branches}
            # Left out: a branch fastavro would parse a str value of another branch as;
            # bytes after an array (fastavro writes them as an array of ints, producer.avro
            # does not); a second branch of one unnamed type or one name.
            left_out = (
                (isinstance(branch, dict) and branch.get("logicalType") in FROM_TEXT)
                or (kind_of(branch, self.named) in ("bytes", "fixed") and "array" in earlier)
                or key in seen
            )
            if not left_out:
                seen.add(key)
                branches.append(branch)
            else:  # the names it defined are not in the schema: nothing may refer to them
                for name in set(self.named) - before:
                    del self.named[name]
        return branches or ["long"]

    def record(self, depth: int, namespace: str | None) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "record", "fields": []}
        if self.draw(st.integers(0, 3)) == 0:
            namespace = node["namespace"] = self.draw(st.sampled_from(["a", "b.c"]))
        self.define(node, "R", namespace)
        full = f"{namespace}.{node['name']}" if namespace else node["name"]
        self.open.add(full)
        for i in range(self.draw(st.integers(0, 4))):
            node["fields"].append({"name": f"f{i}", "type": self.type(depth, namespace)})
        self.open.discard(full)
        return node


@st.composite
def schemas(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """(schema, its named types by full name): a record mostly, any type sometimes."""
    state = SchemaDraw(draw)
    schema = state.record(3, None) if draw(st.integers(0, 3)) else state.type(3, None)
    return schema, state.named


class ValueDraw:
    """Draws values of a generated schema, of exact Python types (the fast path's)."""

    def __init__(self, data: st.DataObject, named: dict[str, Any]) -> None:
        self.draw = data.draw
        self.named = named

    def value(self, schema: Any, budget: int, *, objects: bool = True) -> Any:
        """A value; past the budget, empty arrays and maps and null branches end recursion."""
        draw = self.draw
        if isinstance(schema, str) and schema not in PRIMITIVES:
            schema = lookup(self.named, schema)
        if isinstance(schema, list):
            branches = [b for b in schema if budget > 0 or kind_of(b, self.named) == "null"]
            branch = draw(st.sampled_from(branches or schema))
            # Dates and datetimes only where no other branch could take them.
            others = [b for b in schema if kind_of(b, self.named) != "null"]
            return self.value(branch, budget - 1, objects=objects and len(others) == 1)
        node = schema if isinstance(schema, dict) else {"type": schema}
        kind, logical = node["type"], node.get("logicalType")
        if kind == "record":
            return {
                f["name"]: self.value(f["type"], budget - 1, objects=objects)
                for f in node["fields"]
            }
        if kind == "enum":
            return draw(st.sampled_from(node["symbols"]))
        if kind == "fixed":
            return draw(st.binary(min_size=node["size"], max_size=node["size"]))
        if kind == "array":
            size = 0 if budget <= 0 else draw(st.integers(0, 3) | st.just(70))
            return [self.value(node["items"], budget - 1, objects=objects) for _ in range(size)]
        if kind == "map":
            keys = [] if budget <= 0 else draw(st.lists(texts(), max_size=3, unique=True))
            return {k: self.value(node["values"], budget - 1, objects=objects) for k in keys}
        if logical in ("timestamp-millis", "timestamp-micros") and objects:
            aware = st.datetimes(
                dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.sampled_from(ZONES)
            )
            return draw(edgy_ints(*INT64) | aware)
        if logical == "date" and objects:
            return draw(edgy_ints(*INT32) | st.dates())
        primitive: dict[str, st.SearchStrategy[Any]] = {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": edgy_ints(*INT32),
            "long": edgy_ints(*INT64),
            "float": st.floats(width=32),
            "double": st.floats(),
            "bytes": binaries(),
            "string": texts(),
        }
        return draw(primitive[kind])

    def defaults(self, schema: Any) -> None:
        """Give some fields of every record a default: a value of its (first branch's) type."""
        done: set[int] = set()

        def visit(node: Any) -> None:
            if isinstance(node, list):
                for branch in node:
                    visit(branch)
            elif isinstance(node, dict) and id(node) not in done:
                done.add(id(node))
                if node["type"] == "record":
                    for field in node["fields"]:
                        visit(field["type"])
                        if self.draw(st.booleans()) and not holds_bytes(field["type"], self.named):
                            first = field["type"]
                            first = first[0] if isinstance(first, list) else first
                            field["default"] = self.value(first, 1, objects=False)
                elif node["type"] in ("array", "map"):
                    visit(node["items" if node["type"] == "array" else "values"])

        visit(schema)


# -- one schema of every shape, its accepted values and its refusals -----------------------


def shapes_schema() -> dict[str, Any]:
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]}
    node = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "value", "type": "long"},
            {"name": "next", "type": ["null", "Node"]},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
        ],
    }
    fields: list[tuple[str, Any]] = [
        ("n", "null"),
        ("flag", "boolean"),
        ("i", "int"),
        ("l", "long"),
        ("f", "float"),
        ("d", "double"),
        ("b", "bytes"),
        ("s", "string"),
        ("e", {"type": "enum", "name": "Suit", "symbols": ["HEARTS", "SPADES"]}),
        ("fx", {"type": "fixed", "name": "Two", "size": 2}),
        ("a", {"type": "array", "items": "int"}),
        ("m", {"type": "map", "values": "int"}),
        ("ms", {"type": "long", "logicalType": "timestamp-millis"}),
        ("us", {"type": "long", "logicalType": "timestamp-micros"}),
        ("day", {"type": "int", "logicalType": "date"}),
        ("tm", {"type": "int", "logicalType": "time-millis"}),
        ("inner", inner),
        ("opt", ["null", "string"]),
        ("opt_list", ["null", {"type": "array", "items": "int"}]),
        ("opt_double", ["null", "double"]),
        ("opt_float", ["float", "null"]),
        ("opt_bytes", ["null", "bytes"]),
        ("opt_two", ["null", "Two"]),
        ("opt_flag", ["null", "boolean"]),
        ("opt_suit", ["null", "Suit"]),
        ("opt_map", ["null", {"type": "map", "values": "int"}]),
        ("opt_ms", ["null", {"type": "long", "logicalType": "timestamp-millis"}]),
        ("either", ["null", "int", "string", "t.Inner"]),
        ("nums", ["null", "double", "string"]),
        ("reals", ["null", "float", "double"]),
        ("apart", ["null", "float", "boolean", "double"]),
        ("list_or_text", ["null", {"type": "array", "items": "int"}, "string"]),
        ("blobs", ["null", "Two", "bytes"]),
        ("suits", ["null", {"type": "map", "values": "Suit"}, "boolean"]),
        ("no_null", ["int", "string"]),
        ("only", ["string"]),
        ("Xy", "int"),
        ("tree", ["null", node]),
        ("stamp_or_text", ["null", "string", {"type": "long", "logicalType": "timestamp-millis"}]),
    ]
    return {
        "type": "record",
        "name": "Shapes",
        "namespace": "t",
        "fields": [{"name": name, "type": kind} for name, kind in fields],
    }


SHAPES: dict[str, Any] = {
    "n": None,
    "flag": False,
    "i": 1,
    "l": 2,
    "f": 0.5,
    "d": 0.25,
    "b": b"b",
    "s": "s",
    "e": "SPADES",
    "fx": b"ab",
    "a": [1],
    "m": {"k": 1},
    "ms": 3,
    "us": 4,
    "day": 5,
    "tm": 9,
    "inner": {"x": 6},
    "opt": None,
    "opt_list": None,
    "opt_double": None,
    "opt_float": None,
    "opt_bytes": None,
    "opt_two": None,
    "opt_flag": None,
    "opt_suit": None,
    "opt_map": None,
    "opt_ms": None,
    "either": None,
    "nums": None,
    "reals": None,
    "apart": None,
    "list_or_text": None,
    "blobs": None,
    "suits": None,
    "no_null": 7,
    "only": "o",
    "Xy": 8,
    "tree": None,
    "stamp_or_text": None,
}


class Small(enum.IntEnum):
    SEVEN = 7


def tree(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"value": -1, "next": None, "children": []}
    for i in range(depth):
        value = {"value": i * 2**40, "next": value, "children": [copy.deepcopy(value)]}
    return value


UTC_2020 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

ACCEPTED: list[tuple[str, Any]] = [
    ("i", -(2**31)),
    ("i", 2**31 - 1),
    ("i", Small.SEVEN),
    ("l", -(2**63)),
    ("l", 2**63 - 1),
    ("f", 3),
    ("d", -(2**53)),
    ("b", bytearray(b"\x00\xff")),
    ("b", b"\x01" * 70),
    ("fx", bytearray(b"xy")),
    ("a", (1, 2)),
    ("a", []),
    ("m", {}),
    ("ms", Small.SEVEN),
    ("ms", dt.datetime(1969, 12, 31, 23, 59, 59, 999999, dt.UTC)),
    ("us", Small.SEVEN),
    ("us", dt.datetime(2020, 1, 1, 1, 2, 3, 456789, dt.timezone(dt.timedelta(hours=-5)))),
    ("day", Small.SEVEN),
    ("day", dt.date(1969, 12, 31)),
    ("opt", "text"),
    ("opt_list", [1, 2]),
    ("opt_double", 1.5),
    ("opt_float", -0.5),
    ("opt_bytes", b"\x00" * 70),
    ("opt_two", b"xy"),
    ("opt_flag", True),
    ("opt_flag", False),
    ("opt_suit", "HEARTS"),
    ("opt_map", {"k": 2**31 - 1}),
    ("opt_ms", UTC_2020),
    ("opt_ms", -1),
    ("either", 5),
    ("either", "x"),
    ("either", {"x": 1}),
    ("nums", 1.5),
    ("nums", 2),
    ("nums", "x"),
    ("reals", 0.1),
    ("apart", 0.1),
    ("apart", True),
    ("list_or_text", [3]),
    ("list_or_text", "x"),
    ("blobs", b"xy"),
    ("blobs", b"xyz"),
    ("no_null", "x"),
    ("tree", tree(3)),
    ("stamp_or_text", UTC_2020),
    ("stamp_or_text", "x"),
]


@pytest.mark.parametrize(("field", "value"), ACCEPTED)
def test_every_shape_of_value_is_written_like_fastavro(field: str, value: Any) -> None:
    schema = shapes_schema()
    given_value = dict(SHAPES, **{field: value})
    expected = fastavro_bytes(schema, given_value)
    assert compile_encoder(schema)(given_value) == expected
    assert avro._closure_encoder(schema)(given_value) == expected


# (field, value, path of the error, facts its problem must state, whether fastavro refuses)
REFUSED: list[tuple[str, Any, str, list[str], bool]] = [
    ("n", 0, "n", ["expected null, got int 0"], False),
    ("flag", 1, "flag", ["expected boolean, got int 1"], False),
    ("i", "5", "i", ["expected int, got str '5'"], True),
    ("i", 2**31, "i", ["2147483648 is out of range for int (-2147483648..2147483647)"], False),
    ("i", -(2**31) - 1, "i", ["-2147483649 is out of range for int"], False),
    ("l", "5", "l", ["expected long, got str '5'"], True),
    ("l", UTC_2020, "l", ["expected long, got datetime"], True),
    ("tm", "x", "tm", ["expected int (time-millis), got str 'x'"], False),
    ("l", 2**63, "l", ["9223372036854775808 is out of range for long"], True),
    ("l", -(2**63) - 1, "l", ["-9223372036854775809 is out of range for long"], True),
    ("f", "1.5", "f", ["expected float, got str '1.5'"], False),
    ("f", True, "f", ["expected float, got bool True"], False),
    ("f", 1e300, "f", ["float 1e+300 is out of range for float"], False),
    ("d", None, "d", ["expected double, got NoneType None"], True),
    ("b", "x", "b", ["expected bytes, got str 'x'"], True),
    ("s", b"x", "s", ["expected string, got bytes b'x'"], True),
    ("s", "\ud800", "s", ["string is not encodable as UTF-8 (surrogates not allowed)"], True),
    ("e", "CLUBS", "e", ["unknown symbol 'CLUBS' of enum t.Suit ['HEARTS', 'SPADES']"], True),
    ("e", 1, "e", ["expected a symbol of enum t.Suit, got int 1"], True),
    ("fx", b"abc", "fx", ["expected 2 bytes for fixed t.Two, got bytes b'abc'"], True),
    ("fx", "ab", "fx", ["expected 2 bytes for fixed t.Two, got str 'ab'"], True),
    ("a", 5, "a", ["expected a list for array, got int 5"], True),
    ("a", "ab", "a", ["expected a list for array, got str 'ab'"], True),
    ("a", [1, "2"], "a[1]", ["expected int, got str '2'"], True),
    ("m", [1], "m", ["expected a mapping for map, got list [1]"], True),
    ("m", {1: 1}, "m[1]", ["map key int 1 is not a string"], True),
    ("m", {"k": "v"}, "m['k']", ["expected int, got str 'v'"], True),
    ("ms", "2020", "ms", ["expected long (timestamp-millis), got str '2020'"], True),
    (
        "ms",
        dt.datetime(2020, 1, 1),
        "ms",
        ["naive datetime 2020-01-01T00:00:00 for long (timestamp-millis): give a timezone"],
        False,
    ),
    ("us", "x", "us", ["expected long (timestamp-micros), got str 'x'"], True),
    ("day", "2020-01-01", "day", ["expected int (date), got str '2020-01-01'"], False),
    (
        "day",
        UTC_2020,
        "day",
        ["datetime 2020-01-01T00:00:00+00:00 for int (date): give a date"],
        False,
    ),
    ("inner", [1], "inner", ["expected a mapping for record t.Inner, got list [1]"], True),
    ("inner", {}, "inner.x", ["missing, and the field has no default"], False),
    ("opt", 5, "opt", ["expected string, got int 5"], True),
    (
        "either",
        1.5,
        "either",
        ["float 1.5 matches no branch of union [null, int, string, t.Inner]"],
        True,
    ),
    ("either", {"x": "1"}, "either.x", ["expected int, got str '1'"], True),
    (
        "either",
        ("int", 1),
        "either",
        [
            "tuple for union [null, int, string, t.Inner]: "
            "fastavro reads it as (type name, value); give a list"
        ],
        False,
    ),
    ("nums", True, "nums", ["bool True matches no branch of union [null, double, string]"], True),
    (
        "list_or_text",
        5,
        "list_or_text",
        ["int 5 matches no branch of union [null, array<int>, string]"],
        True,
    ),
    (
        "stamp_or_text",
        1.5,
        "stamp_or_text",
        ["float 1.5 matches no branch of union [null, string, long (timestamp-millis)]"],
        True,
    ),
    ("blobs", 5, "blobs", ["int 5 matches no branch of union [null, t.Two, bytes]"], True),
    ("suits", 5, "suits", ["int 5 matches no branch of union [null, map<t.Suit>, boolean]"], True),
    ("suits", {"k": "CLUBS"}, "suits['k']", ["unknown symbol 'CLUBS' of enum t.Suit"], True),
    ("no_null", None, "no_null", ["null is not a branch of union [int, string]"], True),
    ("only", 5, "only", ["int 5 matches no branch of union [string]"], True),
    ("Xy", "1", "Xy", ["expected int, got str '1'"], True),
    ("tree", {"value": 1, "next": {"value": "2"}}, "tree.next.value", ["expected long"], True),
    (
        "tree",
        {"value": 1, "next": None, "children": [{"value": 2, "next": None, "children": None}]},
        "tree.children[0].children",
        ["expected a list for array, got NoneType None"],
        True,
    ),
]


@pytest.mark.parametrize(("field", "value", "path", "facts", "fastavro_refuses"), REFUSED)
def test_a_refusal_names_the_field_the_value_and_the_type(
    field: str, value: Any, path: str, facts: list[str], fastavro_refuses: bool
) -> None:
    schema = shapes_schema()
    given_value = dict(SHAPES, **{field: value})
    errors = []
    for encode in (compile_encoder(schema), avro._closure_encoder(schema)):
        with pytest.raises(AvroEncodeError) as caught:
            encode(given_value)
        errors.append(caught.value)
    for error in errors:
        assert (error.schema, error.path) == ("t.Shapes", path)
        for fact in facts:
            assert fact in error.problem
        assert str(error) == f"t.Shapes: {path}: {error.problem}"
    if fastavro_refuses:
        with pytest.raises(Exception):  # noqa: B017 - fastavro's error types vary
            fastavro_bytes(schema, given_value)


def test_a_missing_field_without_default_is_named() -> None:
    schema = shapes_schema()
    value = dict(SHAPES)
    del value["Xy"]
    for encode in (compile_encoder(schema), avro._closure_encoder(schema)):
        with pytest.raises(AvroEncodeError) as caught:
            encode(value)
        assert (caught.value.path, caught.value.problem) == (
            "Xy",
            "missing, and the field has no default",
        )


def test_the_top_level_value_that_does_not_fit_has_no_path() -> None:
    encode = compile_encoder(shapes_schema())
    with pytest.raises(AvroEncodeError) as caught:
        encode(None)
    assert caught.value.path == ""
    assert (
        str(caught.value) == "t.Shapes: expected a mapping for record t.Shapes, got NoneType None"
    )
    assert encode.__doc__ == "Encode a value of t.Shapes as Avro binary."


@pytest.mark.parametrize(
    ("schema", "label"),
    [
        ({"type": "map", "values": "long"}, "map<long>"),
        ({"type": "array", "items": ["null", "float"]}, "array<[null, float]>"),
        (["null", {"type": "int", "logicalType": "date"}], "[null, int (date)]"),
        ({"type": "enum", "name": "Side", "namespace": "n", "symbols": ["L"]}, "n.Side"),
        ("string", "string"),
    ],
)
def test_a_schema_that_is_not_a_record_is_named_by_its_type(schema: Any, label: str) -> None:
    encode = compile_encoder(schema)
    with pytest.raises(AvroEncodeError) as caught:
        encode(2.5)
    assert caught.value.schema == label
    assert str(caught.value).startswith(f"{label}: ")
    assert encode.__doc__ == f"Encode a value of {label} as Avro binary."


def test_a_value_nested_too_deeply_is_refused_as_such() -> None:
    fields = [{"name": "next", "type": ["null", "Deep"]}]
    value: Any = None
    for _ in range(5000):
        value = {"next": value}
    with pytest.raises(AvroEncodeError) as caught:
        compile_encoder({"type": "record", "name": "Deep", "fields": fields})(value)
    assert (caught.value.schema, caught.value.path) == ("Deep", "")
    assert caught.value.problem == "value is nested too deeply"
    assert str(caught.value) == "Deep: value is nested too deeply"


# -- the fast path ----------------------------------------------------------------------------

# Values of the exact types the generated code checks for (no int subclasses, bytearrays,
# tuples, or ints for floats): the compiled encoder must not need the fallback for them.
PLAIN = [
    (field, value)
    for field, value in ACCEPTED
    if type(value) in (int, float, str, bytes, list, dict, dt.datetime, dt.date)
    and not (field in ("f", "d") and type(value) is int)
]


def test_plain_values_never_reach_the_checking_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # The speed is in the generated code: a fallback on ordinary values would hide a
    # slowdown behind correct bytes.
    fallbacks: list[Any] = []
    checking = avro._reference_encoder

    def counting(*args: Any) -> Callable[[Any], bytes]:
        encode = checking(*args)

        def count(value: Any) -> bytes:
            fallbacks.append(value)
            return encode(value)

        return count

    monkeypatch.setattr(avro, "_reference_encoder", counting)
    schema = shapes_schema()
    encode = compile_encoder(schema)
    assert len(PLAIN) > 25
    for field, value in PLAIN:
        given_value = dict(SHAPES, **{field: value})
        assert encode(given_value) == fastavro_bytes(schema, given_value), field
    assert fallbacks == []
    unusual = dict(SHAPES, a=(1, 2))
    assert encode(unusual) == fastavro_bytes(schema, unusual)
    assert fallbacks == [unusual]


def test_nullable_unions_are_written_inline_without_the_checking_writer() -> None:
    # ["null", T] is most fields of our events: the generated code writes it by itself
    # (a generator given no checking writer at all must manage).
    inner = {"type": "record", "name": "In", "fields": [{"name": "x", "type": ["null", "int"]}]}
    fields = [
        ("text", ["null", "string"]),
        ("number", ["long", "null"]),
        ("ints", ["null", {"type": "array", "items": ["null", "int"]}]),
        ("inner", ["null", inner]),
        ("again", ["In", "null"]),
    ]
    schema = {
        "type": "record",
        "name": "Out",
        "fields": [{"name": n, "type": t} for n, t in fields],
    }
    parsed_schema, named, _ = avro._prepare(copy.deepcopy(schema))
    entry = avro._Generator(named, cast(Any, None)).build(parsed_schema)
    for value in [
        {"text": None, "number": None, "ints": None, "inner": None, "again": None},
        {"text": "é", "number": -1, "ints": [None, 5], "inner": {"x": 3}, "again": {"x": None}},
    ]:
        assert run_fast(entry, value) == fastavro_bytes(schema, value)


def test_the_source_shown_is_the_code_that_runs() -> None:
    schema = shapes_schema()
    parsed_schema, named, _ = avro._prepare(copy.deepcopy(schema))
    generator = avro._Generator(named, avro._Reference(named))
    entry = cast(Any, generator.build(parsed_schema))
    namespace = dict(entry.__globals__)
    exec(compile(generator.source(), "<shown>", "exec"), namespace)
    value = dict(SHAPES, tree=tree(2), either="x")
    assert run_fast(namespace[entry.__name__], value) == fastavro_bytes(schema, value)


# -- schemas that cannot be encoded ------------------------------------------------------------


def parsed(node: Any) -> dict[str, Any]:
    """A record with one field of this type, marked parsed so that fastavro lets it through."""
    fields = [{"name": "ok", "type": "int"}, {"name": "bad", "type": node}]
    return {"type": "record", "name": "Top", "fields": fields, "__fastavro_parsed": True}


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"type": "record", "name": "R"}, "schema: record R has no proper fields"),
        (
            {"type": "record", "name": "R", "fields": [{"type": "int"}]},
            "schema: record R has no proper fields",
        ),
        (
            {"type": "record", "name": "R", "fields": ["int"]},
            "schema: record R has no proper fields",
        ),
        ({"type": "enum", "name": "E"}, "schema: enum E has no proper symbols"),
        ({"type": "enum", "name": "E", "symbols": [1]}, "schema: enum E has no proper symbols"),
        ({"type": "fixed", "name": "F"}, "schema: fixed F has no proper size"),
        ({"type": "fixed", "name": "F", "size": -1}, "schema: fixed F has no proper size"),
        (["null", ["int", "string"]], "schema: bad union [null, [int, string]]"),
        ([], "schema: bad union []"),
        (
            ["null", {"type": "enum", "name": "E", "symbols": ["A"]}, "E", ["int"]],
            "schema: bad union [null, E, E, [int]]",
        ),
        ("Nowhere", "schema: unknown type 'Nowhere'"),
        ({"type": 5}, "schema: not an Avro type: {'type': 5}"),
        ({"type": "array"}, "schema: not an Avro type: None"),
    ],
)
def test_a_schema_that_cannot_be_encoded_is_refused_when_compiled(node: Any, problem: str) -> None:
    for compile_ in (compile_encoder, avro._closure_encoder):
        with pytest.raises(AvroEncodeError) as caught:
            compile_(parsed(node))
        assert (caught.value.schema, caught.value.path) == ("Top", "bad")
        assert caught.value.problem == problem


def test_named_types_are_found_in_a_union_fastavro_parsed() -> None:
    # fastavro lists a union's named types in each branch, not at the top: they must be
    # found where they are defined, however deep, records' and errors' fields alike.
    def record(kind: str, name: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
        return {"type": kind, "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}

    first = record(
        "record",
        "R",
        [
            ("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]}),
            ("m", {"type": "map", "values": {"type": "fixed", "name": "F", "size": 1}}),
            ("l", {"type": "array", "items": record("record", "I", [])}),
            ("u", ["null", record("record", "J", [])]),
        ],
    )
    first["namespace"] = "a"
    oops = record("error", "Oops", [("k", {"type": "enum", "name": "Kind", "symbols": ["K"]})])
    oops["namespace"] = "a"
    uses = [(name, f"a.{name}") for name in ("E", "F", "I", "J", "Kind")]
    later = {"type": "array", "items": record("record", "Uses", uses)}
    schema = fastavro.parse_schema(["null", first, oops, later])
    encode = compile_encoder(schema)
    for value in (
        {"e": "B", "m": {"k": b"x"}, "l": [{}], "u": {}},
        {"k": "K"},
        [{"E": "A", "F": b"y", "I": {}, "J": {}, "Kind": "K"}],
    ):
        assert encode(value) == fastavro_bytes(schema, value)


def test_a_schema_naming_an_unknown_type_is_refused_by_its_label() -> None:
    with pytest.raises(AvroEncodeError) as caught:
        compile_encoder(["null", "Nowhere"])
    assert str(caught.value) == "[null, 'Nowhere']: schema: unknown type 'Nowhere'"


def test_a_fixed_of_size_zero_is_empty() -> None:
    schema = {"type": "fixed", "name": "Nothing", "size": 0}
    assert compile_encoder(schema)(b"") == fastavro_bytes(schema, b"") == b""
    assert avro._closure_encoder(schema)(b"") == b""


def test_a_union_straight_from_json_has_its_names_resolved() -> None:
    # A top-level union is a list, not a mapping: it needs fastavro's parsing all the same
    # (this schema used to be refused: "unknown type 'a.Item'").
    item = {
        "type": "record",
        "name": "Item",
        "namespace": "a",
        "fields": [{"name": "n", "type": "int"}],
    }
    schema = ["null", item, {"type": "array", "items": "a.Item"}]
    for value in (None, {"n": 1}, [{"n": 2}, {"n": 3}]):
        expected = fastavro_bytes(schema, value)
        assert compile_encoder(copy.deepcopy(schema))(value) == expected
        assert compile_encoder(fastavro.parse_schema(copy.deepcopy(schema)))(value) == expected


# -- generated schemas, last: the slowest test -------------------------------------------------


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schemas(), st.data())
def test_generated_schemas_encode_like_fastavro(
    drawn: tuple[Any, dict[str, Any]], data: st.DataObject
) -> None:
    schema, named = drawn
    values = ValueDraw(data, named)
    values.defaults(schema)
    value = values.value(schema, 3)
    if isinstance(schema, dict) and schema["type"] == "record":
        # Leave out some fields that have defaults: both write the default.
        for field in schema["fields"]:
            if "default" in field and data.draw(st.booleans()):
                del value[field["name"]]
    note(f"schema: {schema!r}")
    note(f"value: {value!r}")
    expected = fastavro_bytes(schema, value)
    # A schema straight from JSON, or one fastavro parsed already: the same encoder.
    given_schema = copy.deepcopy(schema)
    if data.draw(st.booleans()):
        given_schema = fastavro.parse_schema(given_schema)
    assert compile_encoder(given_schema)(value) == expected
    assert avro._closure_encoder(copy.deepcopy(schema))(value) == expected
    # Values of exact Python types never need the fallback.
    assert run_fast(fast_entry(schema), value) == expected
