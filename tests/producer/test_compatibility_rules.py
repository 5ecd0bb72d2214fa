"""Avro schema resolution, one rule at a time, held against the specification and fastavro.

``check_backward(new, old)`` says whether data written with ``old`` reads with ``new``. Its
independent reference is the Avro specification ("Schema Resolution") and fastavro, which
implements it: whenever the checker says a pair is compatible, fastavro must read data
written with ``old`` using ``new`` as the reader schema; for each Avro rule broken, there
is a datum fastavro refuses. The few checks stricter than Avro (a changed logical type, a
union default that does not fit the first branch) are marked as ours: fastavro reads those.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.compatibility import Release, check_backward, check_evolution, load_releases
from producer.schemas import schema_dir

NS = "ivmtr.events"
Schema = Any


def holder(kind: Schema, *more: dict[str, Any], name: str = "T") -> dict[str, Any]:
    """A record ``ivmtr.events.T`` with the field ``f`` of type ``kind`` (and ``more``)."""
    return {"type": "record", "name": name, "namespace": NS, "fields": [field("f", kind), *more]}


def field(name: str, kind: Schema, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **more}


def record(name: str, *fields: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **more}


def enum(name: str, *symbols: str, **more: Any) -> dict[str, Any]:
    return {"type": "enum", "name": name, "symbols": list(symbols), **more}


def fixed(name: str, size: int, **more: Any) -> dict[str, Any]:
    return {"type": "fixed", "name": name, "size": size, **more}


def array(items: Schema) -> dict[str, Any]:
    return {"type": "array", "items": items}


def map_of(values: Schema) -> dict[str, Any]:
    return {"type": "map", "values": values}


def logical(kind: str, name: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "logicalType": name, **more}


def read_back(old: Schema, new: Schema, datum: Any) -> Any:
    """Write ``datum`` with ``old``, read it with ``new`` as the reader schema (fastavro)."""
    writer, reader = fastavro.schema.parse_schema(old), fastavro.schema.parse_schema(new)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, datum)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, writer, reader)


# (old, new, problems, datum): compatible pairs with a datum fastavro reads, incompatible
# pairs with a datum fastavro cannot read.
AVRO_RULES = [
    *(
        pytest.param(holder(old), holder(new), [], {"f": 7}, id=f"{old} promotes to {new}")
        for old, new in [
            ("int", "long"),
            ("int", "float"),
            ("int", "double"),
            ("long", "float"),
            ("long", "double"),
        ]
    ),
    pytest.param(holder("float"), holder("double"), [], {"f": 0.5}, id="float promotes to double"),
    pytest.param(holder("string"), holder("bytes"), [], {"f": "é"}, id="string reads as bytes"),
    pytest.param(holder("bytes"), holder("string"), [], {"f": b"ab"}, id="bytes reads as string"),
    pytest.param(
        holder(logical("int", "date")),
        holder(logical("int", "date")),
        [],
        {"f": 3},
        id="same logical type",
    ),
    pytest.param(
        holder("long"),
        holder("int"),
        ["T.f: type changed from long to int"],
        {"f": 1},
        id="long does not narrow to int",
    ),
    pytest.param(
        holder("double"),
        holder("float"),
        ["T.f: type changed from double to float"],
        {"f": 0.5},
        id="double does not narrow to float",
    ),
    pytest.param(
        holder("string"),
        holder("int"),
        ["T.f: type changed from string to int"],
        {"f": "1"},
        id="string is not an int",
    ),
    pytest.param(
        holder(logical("int", "date")),
        holder("string"),
        ["T.f: type changed from int(date) to string"],
        {"f": 3},
        id="a changed type is named with its logical type",
    ),
    pytest.param(
        holder(array("int")),
        holder(map_of("int")),
        ["T.f: type changed from array<int> to map<int>"],
        {"f": [1]},
        id="array is not a map",
    ),
    pytest.param(
        holder(map_of("string")),
        holder(array("string")),
        ["T.f: type changed from map<string> to array<string>"],
        {"f": {"a": "b"}},
        id="map is not an array",
    ),
    pytest.param(
        holder(array("int")), holder(array("double")), [], {"f": [1, 2]}, id="array items promote"
    ),
    pytest.param(
        holder(array("long")),
        holder(array("int")),
        ["T.f[]: type changed from long to int"],
        {"f": [1]},
        id="array items do not narrow",
    ),
    pytest.param(
        holder(map_of("long")),
        holder(map_of("double")),
        [],
        {"f": {"a": 1}},
        id="map values promote",
    ),
    pytest.param(
        holder(map_of("long")),
        holder(map_of("int")),
        ["T.f{}: type changed from long to int"],
        {"f": {"a": 1}},
        id="map values do not narrow",
    ),
    pytest.param(
        holder(map_of(array("long"))),
        holder(map_of(array("int"))),
        ["T.f{}[]: type changed from long to int"],
        {"f": {"a": [1]}},
        id="the path goes down maps and arrays",
    ),
    pytest.param(
        holder(fixed("Digest", 2)), holder(fixed("Digest", 2)), [], {"f": b"ab"}, id="same fixed"
    ),
    pytest.param(
        holder(fixed("Digest", 2)),
        holder(fixed("Digest", 3)),
        ["T.f: fixed size changed from 2 to 3"],
        {"f": b"ab"},
        id="fixed size changed",
    ),
    pytest.param(
        holder(fixed("Digest", 2)),
        holder(fixed("Hash", 2)),
        [f"T.f: fixed {NS}.Digest is now called {NS}.Hash"],
        {"f": b"ab"},
        id="fixed renamed",
    ),
    pytest.param(
        holder(fixed("Digest", 2)),
        holder(fixed("Hash", 3)),
        [f"T.f: fixed {NS}.Digest is now called {NS}.Hash"],
        {"f": b"ab"},
        id="fixed renamed: the size is not compared",
    ),
    pytest.param(
        holder(fixed("Digest", 2)),
        holder(fixed("Hash", 2, aliases=["Digest"])),
        [],
        {"f": b"ab"},
        id="fixed renamed with an alias",
    ),
    pytest.param(
        holder(enum("Color", "RED", "GREEN")),
        holder(enum("Color", "RED", "GREEN", "BLUE")),
        [],
        {"f": "GREEN"},
        id="enum symbol added",
    ),
    pytest.param(
        holder(enum("Color", "RED", "GREEN", "BLUE")),
        holder(enum("Color", "RED")),
        [f"T.f: enum {NS}.Color lost symbols GREEN, BLUE and has no default"],
        {"f": "BLUE"},
        id="enum symbols removed",
    ),
    pytest.param(
        holder(enum("Color", "RED", "GREEN")),
        holder(enum("Color", "RED", default="RED")),
        [],
        {"f": "GREEN"},
        id="enum symbol removed with an enum default",
    ),
    pytest.param(
        holder(enum("Color", "RED", "GREEN")),
        holder(enum("Colour", "RED", "GREEN")),
        [f"T.f: enum {NS}.Color is now called {NS}.Colour"],
        {"f": "RED"},
        id="enum renamed",
    ),
    pytest.param(
        holder(enum("Color", "RED", "GREEN")),
        holder(enum("Colour", "RED", aliases=["Color"])),
        [f"T.f: enum {NS}.Colour lost symbols GREEN and has no default"],
        {"f": "GREEN"},
        id="enum renamed with an alias, symbol removed",
    ),
    pytest.param(
        holder(record("Point", field("x", "int"))),
        holder(record("Point", field("x", "long"), field("y", "int", default=0))),
        [],
        {"f": {"x": 1}},
        id="record field promoted and one added with a default",
    ),
    pytest.param(
        holder(record("Point", field("x", "int"))),
        holder(record("Point", field("x", "int"), field("y", "int"))),
        ["T.f.y: field added without a default"],
        {"f": {"x": 1}},
        id="record field added without a default",
    ),
    pytest.param(
        holder(record("Point", field("x", "int"))),
        holder(record("Spot", field("x", "int"), field("y", "int"))),
        [f"T.f: record {NS}.Point is now called {NS}.Spot"],
        {"f": {"x": 1}},
        id="record renamed: its fields are not compared",
    ),
    pytest.param(
        holder(record("Point", field("x", "int"))),
        holder(record("Spot", field("x", "long"), aliases=[f"{NS}.Point"])),
        [],
        {"f": {"x": 1}},
        id="record renamed with an alias",
    ),
    pytest.param(
        holder(record("Point", field("x", "int"))),
        holder(record("Point", field("abscissa", "long", aliases=["x"]))),
        [],
        {"f": {"x": 1}},
        id="field renamed with an alias",
    ),
    pytest.param(
        holder(record("Point", field("x", "long"))),
        holder(record("Point", field("abscissa", "int", aliases=["x"]))),
        ["T.f.abscissa: type changed from long to int"],
        {"f": {"x": 1}},
        id="a field found by its alias is compared",
    ),
    pytest.param(
        holder("string"), holder(["null", "string"]), [], {"f": "a"}, id="type becomes a union"
    ),
    pytest.param(
        holder("long"),
        holder(["null", "int", "double"]),
        [],
        {"f": 1},
        id="union read through a promotion",
    ),
    pytest.param(
        holder("boolean"),
        holder(["null", "int"]),
        ["T.f: boolean is not one of the new union [null, int]"],
        {"f": True},
        id="no union branch reads it",
    ),
    pytest.param(
        holder(["null", "string"]),
        holder(["string", "null", "int"]),
        [],
        {"f": None},
        id="union reordered and widened",
    ),
    pytest.param(
        holder(["null", "string", "long"]),
        holder(["null", "string"]),
        ["T.f: long is not one of the new union [null, string]"],
        {"f": 5},
        id="union branch removed",
    ),
    pytest.param(
        holder(["null", "string"]),
        holder("string"),
        ["T.f: the old union [null, string] has null, which string cannot read"],
        {"f": None},
        id="union narrowed to one of its branches",
    ),
    pytest.param(
        holder(["int", "long"]), holder("double"), [], {"f": 5}, id="union promoted to one type"
    ),
    pytest.param(
        holder([record("Cat", field("a", "int")), record("Dog", field("b", "int"))]),
        holder([record("Cat", field("a", "int")), record("Dog", field("b", "long"))]),
        [],
        {"f": {"b": 1}},
        id="union of records matched by name",
    ),
    pytest.param(
        holder([record("Cat", field("a", "int")), record("Dog", field("b", "int"))]),
        holder([record("Cat", field("a", "int"))]),
        ["T.f: Dog is not one of the new union [Cat]"],
        {"f": {"b": 1}},
        id="union loses a record",
    ),
    pytest.param(
        holder(["null", record("Point", field("x", "int"))]),
        holder(["null", record("Point", field("x", "int"), field("y", "int"))]),
        ["T.f.y: field added without a default"],
        {"f": {"x": 1}},
        id="the path goes into a union branch",
    ),
    pytest.param(
        {"type": "error", "name": "Failure", "fields": [field("code", "int")]},
        {"type": "error", "name": "Failure", "fields": [field("code", "long")]},
        [],
        {"code": 1},
        id="error type promoted field",
    ),
    pytest.param(
        {"type": "error", "name": "Failure", "fields": [field("code", "int")]},
        {"type": "error", "name": "Failure", "fields": [field("code", "int"), field("x", "int")]},
        ["Failure.x: field added without a default"],
        {"code": 1},
        id="error type field added without a default",
    ),
    pytest.param(
        holder("int", field("note", ["string", "null"], default="none")),
        holder("int"),
        [],
        {"f": 1, "note": None},
        id="field removed",
    ),
    pytest.param(
        holder("int"),
        holder("int", field("note", ["string", "null"], default="none")),
        [],
        {"f": 1},
        id="union field added with a default of its first branch",
    ),
    pytest.param(
        holder("int"),
        holder("int", field("note", ["null", "string"], default=None)),
        [],
        {"f": 1},
        id="nullable field added with default null",
    ),
    pytest.param("int", "long", [], 1, id="top-level primitive promoted"),
    pytest.param(
        "long",
        "int",
        ["schema: type changed from long to int"],
        1,
        id="top-level primitive narrowed",
    ),
    pytest.param(
        ["null", "long"],
        ["null", "int"],
        ["schema: long is not one of the new union [null, int]"],
        1,
        id="top-level union",
    ),
]


@pytest.mark.parametrize(("old", "new", "problems", "datum"), AVRO_RULES)
def test_each_avro_rule(old: Schema, new: Schema, problems: list[str], datum: Any) -> None:
    assert check_backward(new, old) == problems
    if problems:
        with pytest.raises(SchemaResolutionError):
            read_back(old, new, datum)
    else:
        read_back(old, new, datum)


# (old, new, problems, datum): pairs Avro resolves, but whose values change meaning, or whose
# added default misreads a union; fastavro reads each of them without complaint.
STRICTER_RULES = [
    pytest.param(
        holder(logical("int", "date")),
        holder("int"),
        ["T.f: logical type changed from date to None"],
        {"f": 3},
        id="logical type dropped",
    ),
    pytest.param(
        holder(logical("long", "timestamp-millis")),
        holder(logical("long", "timestamp-micros")),
        ["T.f: logical type changed from timestamp-millis to timestamp-micros"],
        {"f": 3},
        id="logical type changed",
    ),
    pytest.param(
        holder(logical("int", "date")),
        holder(logical("long", "timestamp-millis")),
        ["T.f: logical type changed from date to timestamp-millis"],
        {"f": 3},
        id="logical type changed along a promotion",
    ),
    pytest.param(
        holder(logical("int", "date")),
        holder(["null", "long"]),
        ["T.f: logical type changed from date to None"],
        {"f": 3},
        id="logical type dropped in a union branch",
    ),
    pytest.param(
        holder(logical("bytes", "decimal", precision=5, scale=2)),
        holder(logical("bytes", "decimal", precision=5, scale=3)),
        ["T.f: decimal (precision, scale) changed from (5, 2) to (5, 3)"],
        {"f": b"\x01"},
        id="decimal scale changed",
    ),
    pytest.param(
        holder(logical("bytes", "decimal", precision=5)),
        holder(logical("bytes", "decimal", precision=6, scale=0)),
        ["T.f: decimal (precision, scale) changed from (5, 0) to (6, 0)"],
        {"f": b"\x01"},
        id="decimal precision changed",
    ),
    pytest.param(
        holder(fixed("Amount", 4, logicalType="decimal", precision=9, scale=2)),
        holder(fixed("Amount", 4, logicalType="decimal", precision=9, scale=4)),
        ["T.f: decimal (precision, scale) changed from (9, 2) to (9, 4)"],
        {"f": b"\x00\x00\x00\x01"},
        id="fixed decimal scale changed",
    ),
    pytest.param(
        holder("int"),
        holder("int", field("note", ["null", "string"], default="none")),
        ["T.note: the default of a union must fit its first branch (null)"],
        {"f": 1},
        id="union default is not null",
    ),
    pytest.param(
        holder("int"),
        holder("int", field("note", ["string", "null"], default=None)),
        ["T.note: default null does not fit the first branch string"],
        {"f": 1},
        id="union default null does not fit",
    ),
]


@pytest.mark.parametrize(("old", "new", "problems", "datum"), STRICTER_RULES)
def test_each_rule_stricter_than_avro(
    old: Schema, new: Schema, problems: list[str], datum: Any
) -> None:
    assert check_backward(new, old) == problems
    read_back(old, new, datum)  # Avro itself has no objection


def test_a_decimal_matches_the_same_decimal_and_its_scale_is_zero_unless_given() -> None:
    amount = logical("bytes", "decimal", precision=5, scale=2)
    assert check_backward(holder(amount), holder(copy.deepcopy(amount))) == []
    whole, whole_too = (
        logical("bytes", "decimal", precision=5, **more) for more in ({}, {"scale": 0})
    )
    assert check_backward(holder(whole), holder(whole_too)) == []
    assert check_backward(holder(whole_too), holder(whole)) == []


def test_names_in_the_null_namespace_are_printed_as_they_are() -> None:
    old = record("Point", field("x", "int"))
    assert check_backward(record("Spot", field("x", "int")), old) == [
        "Spot: record Point is now called Spot"
    ]
    assert check_backward(record("Point", field("x", "int"), field("y", "int")), old) == [
        "Point.y: field added without a default"
    ]
    colors = holder(enum("Color", "RED", "GREEN", namespace=""))
    assert check_backward(holder(enum("Color", "RED", namespace="")), colors) == [
        "T.f: enum Color lost symbols GREEN and has no default"
    ]


def test_a_recursive_type_is_compared_once() -> None:
    def node(value: str, *more: dict[str, Any]) -> dict[str, Any]:
        fields = [field("value", value), field("next", ["null", "Node"]), *more]
        return {"type": "record", "name": "Node", "namespace": NS, "fields": fields}

    assert check_backward(node("long"), node("int")) == []
    assert check_backward(node("int", field("weight", "int")), node("int")) == [
        "Node.weight: field added without a default"
    ]
    datum = {"value": 1, "next": {"value": 2, "next": None}}
    assert read_back(node("int"), node("long"), datum) == datum


def test_a_named_type_is_compared_wherever_each_schema_defines_it() -> None:
    def point(kind: str) -> dict[str, Any]:
        return record("Point", field("x", kind))

    # the old schema defines Point in f and refers to it in g, the new one the other way round
    old = holder(point("int"), field("g", f"{NS}.Point"))
    fields = [field("g", point("string")), field("f", f"{NS}.Point")]
    new = {"type": "record", "name": "T", "namespace": NS, "fields": fields}
    assert check_backward(new, old) == ["T.g.x: type changed from int to string"]
    fields[0]["type"] = point("long")
    assert check_backward(new, old) == []
    datum = {"f": {"x": 1}, "g": {"x": 2}}
    assert read_back(old, new, datum) == datum


# -- our rule: check_evolution -------------------------------------------------------------


def released() -> dict[str, Any]:
    """A record whose named types sit in a union, an array, a map and a nested record."""
    return holder(
        enum("Kind", "SCAN", "DROP"),
        field("pet", ["null", record("Cat", field("a", "int"), field("b", "int"))]),
        field("colors", array(enum("Color", "RED", "GREEN", default="RED"))),
        field("digests", map_of(fixed("Digest", 2))),
        field("spot", record("Spot", field("x", "int"), field("y", "int"))),
    )


def test_our_rule_finds_named_types_wherever_they_are() -> None:
    old = released()
    new = copy.deepcopy(old)
    kind, pet, colors, digests, spot = (item["type"] for item in new["fields"])
    kind.update(name="Sort", aliases=["Kind"])  # renamed, with an alias: Avro reads it
    pet[1]["fields"].pop()  # a field removed in a union branch
    colors["items"]["symbols"].pop()  # an enum symbol removed, with an enum default
    digests["values"]["namespace"] = "ivmtr.records"  # moved, in a map
    spot.update(namespace="ivmtr.records")  # moved, and a field removed
    spot["fields"].pop()
    assert check_backward(new, old) == []
    assert check_evolution(new, [old]) == [
        f"#1: {NS}.Digest: moved to namespace ivmtr.records",
        f"#1: {NS}.Spot: moved to namespace ivmtr.records",
        f"#1: {NS}.Cat.b: field removed (or renamed)",
        f"#1: {NS}.Color: enum symbol GREEN removed",
        f"#1: {NS}.Spot.y: field removed (or renamed)",
    ]
    assert check_evolution(old, {"v1": copy.deepcopy(old)}) == []


def test_our_rule_reports_a_removed_symbol_once_when_avro_already_does() -> None:
    old = holder(enum("Kind", "SCAN", "DROP"))
    new = holder(enum("Kind", "SCAN"))
    assert check_evolution(new, [old]) == [
        f"#1: T.f: enum {NS}.Kind lost symbols DROP and has no default"
    ]


def test_our_rule_on_error_types() -> None:
    old = {"type": "error", "name": "Failure", "fields": [field("code", "int"), field("x", "int")]}
    new = {"type": "error", "name": "Failure", "fields": [field("code", "int")]}
    assert check_evolution(new, [old]) == ["#1: Failure.x: field removed (or renamed)"]


def test_moving_a_type_to_or_from_the_null_namespace_is_against_our_rule() -> None:
    # a nested type with "namespace": "" is in the null namespace, not in its record's
    old = holder(record("Spot", field("x", "int"), namespace=""))
    new = holder(record("Spot", field("x", "int")))
    assert check_backward(new, old) == []  # Avro matches unqualified names
    assert check_evolution(new, [old]) == [f"#1: Spot: moved to namespace {NS}"]
    assert check_evolution(old, [new]) == [f"#1: {NS}.Spot: moved to the null namespace"]
    assert check_evolution(old, [copy.deepcopy(old)]) == []


# -- released schemas ----------------------------------------------------------------------


def test_releases_are_ordered_by_number_and_only_directories_with_schemas_count(
    tmp_path: Path,
) -> None:
    schema = json.dumps(record("Point", field("x", "int"), namespace=NS))
    for name in ("v10", "v2", "v1", "candidate", "v3"):
        (tmp_path / name).mkdir()
        if name != "v3":  # an empty release directory is no release
            (tmp_path / name / f"{NS}.Point.avsc").write_text(schema)
    (tmp_path / "v4.avsc").write_text(schema)  # a file is no release either
    releases = load_releases(tmp_path)
    assert [release.name for release in releases] == ["v1", "v2", "v10", "candidate"]
    assert releases[0] == Release("v1", tmp_path / "v1")
    assert load_releases(tmp_path / "missing") == []


def test_a_release_loads_its_own_copy_of_a_schema(tmp_path: Path) -> None:
    name = f"{NS}.Facility"
    current = json.loads((schema_dir() / f"{name}.avsc").read_text())
    frozen = record("Facility", field("code", "string"), namespace=NS)
    assert current["fields"] != frozen["fields"]
    (tmp_path / f"{name}.avsc").write_text(json.dumps(frozen))
    loaded = Release("v1", tmp_path).schema(name)
    assert loaded is not None
    assert loaded.name == name
    assert [item["name"] for item in loaded.parsed["fields"]] == ["code"]
    assert Release("v1", tmp_path).schema(f"{NS}.Nothing") is None


# -- any pair: the checker against fastavro --------------------------------------------------

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "string", "bytes"]
SYMBOLS = ["A", "B", "C", "D"]


class Namer:
    """Fresh names for named types within one drawn schema."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


@st.composite
def types(draw: st.DrawFn, namer: Namer, depth: int = 2) -> Schema:
    """A writer type: primitives, enums, fixed, arrays, maps, unions, records."""
    leaves = ["primitive", "enum", "fixed"]
    kind = draw(st.sampled_from(leaves + (["array", "map", "union", "record"] if depth else [])))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
        return enum(namer("E"), *symbols)
    if kind == "fixed":
        return fixed(namer("F"), draw(st.integers(1, 3)))
    if kind == "array":
        return array(draw(types(namer, depth - 1)))
    if kind == "map":
        return map_of(draw(types(namer, depth - 1)))
    if kind == "union":
        return draw(st.lists(st.sampled_from(PRIMITIVES), min_size=1, max_size=3, unique=True))
    count = draw(st.integers(1, 3))
    return record(
        namer("R"), *(field(f"x{i}", draw(types(namer, depth - 1))) for i in range(count))
    )


PROMOTED = {
    "int": "long",
    "long": "double",
    "float": "double",
    "string": "bytes",
    "bytes": "string",
}
DEFAULTS: dict[str, Any] = {
    "null": None,
    "boolean": False,
    "int": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "string": "",
    "bytes": "",
}


@st.composite
def evolved(draw: st.DrawFn, kind: Schema, namer: Namer) -> Schema:
    """A reader type for data of ``kind``: often compatible, sometimes not."""
    if draw(st.integers(0, 9)) == 0:  # now and then anything at all
        return draw(types(namer, 1))
    if isinstance(kind, str):
        change = draw(st.sampled_from(["keep", "other", "union", "promote"]))
        if change == "other":
            return draw(st.sampled_from(PRIMITIVES))
        if change == "union":
            other = draw(st.sampled_from([p for p in PRIMITIVES if p != kind]))
            return draw(st.permutations([kind, other]))
        if change == "promote":
            return PROMOTED.get(kind, kind)
        return kind
    if isinstance(kind, list):
        change = draw(st.sampled_from(["keep", "add", "drop", "shuffle"]))
        if change == "add":
            other = draw(st.sampled_from(PRIMITIVES))
            return kind if other in kind else [*kind, other]
        if change == "drop" and len(kind) > 1:
            return kind[1:]
        return list(draw(st.permutations(kind)))
    new = dict(kind)
    if kind["type"] == "enum":
        symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
        new["symbols"] = symbols
        if draw(st.booleans()):
            new["default"] = symbols[0]
    elif kind["type"] == "fixed":
        new["size"] = draw(st.sampled_from([kind["size"], kind["size"] + 1]))
    elif kind["type"] == "array":
        new["items"] = draw(evolved(kind["items"], namer))
    elif kind["type"] == "map":
        new["values"] = draw(evolved(kind["values"], namer))
    else:
        fields = []
        for item in kind["fields"]:
            fate = draw(st.sampled_from(["keep", "keep", "drop", "alias"]))
            if fate == "drop":
                continue
            name = f"{item['name']}_" if fate == "alias" else item["name"]
            aliases = [item["name"]] if fate == "alias" else []
            fields.append(field(name, draw(evolved(item["type"], namer)), aliases=aliases))
        if draw(st.booleans()):
            added = draw(st.sampled_from(PRIMITIVES))
            more = {"default": DEFAULTS[added]} if draw(st.booleans()) else {}
            fields.append(field("added", added, **more))
        new["fields"] = fields
    if kind["type"] in ("enum", "fixed", "record") and draw(st.integers(0, 4)) == 0:
        new["name"] = f"{kind['name']}n"
        if draw(st.booleans()):
            new["aliases"] = [kind["name"]]
    return new


def data(kind: Schema) -> st.SearchStrategy[Any]:
    """Values of ``kind`` fastavro writes."""
    if isinstance(kind, list):
        return st.one_of([data(branch) for branch in kind])
    if isinstance(kind, str):
        return {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(width=32, allow_nan=False),
            "double": st.floats(width=32, allow_nan=False),  # may be written as a float
            "string": st.text(max_size=3),
            # bytes that are text: Avro reads bytes as a string, so they had better be UTF-8
            "bytes": st.text(max_size=3).map(str.encode),
        }[kind]
    if kind["type"] == "enum":
        return st.sampled_from(kind["symbols"])
    if kind["type"] == "fixed":
        return st.binary(min_size=kind["size"], max_size=kind["size"])
    if kind["type"] == "array":
        return st.lists(data(kind["items"]), max_size=2)
    if kind["type"] == "map":
        return st.dictionaries(st.text(max_size=2), data(kind["values"]), max_size=2)
    return st.fixed_dictionaries({item["name"]: data(item["type"]) for item in kind["fields"]})


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Schema, Schema]:
    namer = Namer()
    old = holder(draw(types(namer)))
    return old, draw(evolved(old, namer))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(pairs(), st.data())
def test_what_the_checker_passes_fastavro_reads(pair: tuple[Schema, Schema], drawn: Any) -> None:
    old, new = pair
    problems = check_backward(new, old)
    datum = drawn.draw(data(old), label="datum")
    try:
        read_back(old, new, datum)
    except SchemaResolutionError as error:
        assert problems, f"compatible, but fastavro cannot read {datum!r}: {error}"
