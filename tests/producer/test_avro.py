"""Tests for producer.avro: the compiled encoder writes exactly fastavro's bytes.

Three layers: every top-level schema on the events our own pipeline makes; a made-up
schema with every supported type on hypothesis-generated values (bytes compared with
fastavro, then read back with fastavro); and the errors, which must name the field.
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import enum
import io
import math
import types
from collections.abc import Callable
from functools import cache
from typing import Any

import fastavro
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.core.pipeline import DeadLetter, MessagePipeline, Outcome, ScanEvent
from consumer.service import record_shapes
from consumer.simulator import MailingSpec, generate_records
from producer import avro
from producer.avro import AvroEncodeError, compile_encoder
from producer.errors import SerializationError
from producer.schemas import load_schema

SCHEMAS = {
    "piece": "ivmtr.events.PieceScan",
    "bundle": "ivmtr.events.BundleScan",
    "handling_unit": "ivmtr.events.HandlingUnitScan",
    "container": "ivmtr.events.ContainerScan",
    "dead_letter": "ivmtr.events.DeadLetter",
}

Encode = Callable[[Any], bytes]
FastEntry = Callable[[Callable[[str], None], Any], None]


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value)
    return buffer.getvalue()


def fast_entry(schema: Any) -> FastEntry:
    """The generated fast encoder alone, with no fallback behind it."""
    parsed_schema, named, _ = avro._prepare(schema)
    return avro._Generator(named, avro._Reference(named)).build(parsed_schema)


def run_fast(entry: FastEntry, value: Any) -> bytes:
    parts: list[str] = []
    entry(parts.append, value)
    return "".join(parts).encode("latin-1")


@cache
def parsed(name: str) -> Any:
    return load_schema(name).parsed


@cache
def encoders(name: str) -> tuple[Encode, Encode]:
    """(compiled encoder, reference encoder alone) for a schema of schemas/."""
    return compile_encoder(parsed(name)), avro._closure_encoder(parsed(name))


# -- realistic events from the project's own pipeline ---------------------------------------


def schema_of(outcome: Outcome) -> str:
    return SCHEMAS["dead_letter"] if isinstance(outcome, DeadLetter) else SCHEMAS[outcome.kind]


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    records = list(generate_records(MailingSpec(pieces=300, bundles=True, seed=7)))
    odd = [
        # unknown fields land in `extra`; non-ASCII text in record fields and in the map
        dict(records[0], machineName="Zürich ☃ 𝄞", vendorNote="Ünïcødé 𝄞", vendorCount=3),
        {},
        {"imb": "123", "scanDatetime": "nope"},
        dict(records[1], scanDatetime="garbage", facAddr="x" * 300),  # raw is over 1 kB
        {"imtb": "x" * 30, "note": "é"},
    ]
    body = orjson.dumps({"msgGrpId": "G", "msgSerNbr": 1, "events": records + odd})
    pipeline = MessagePipeline(feed="f", received_at_ms=0, shapes=record_shapes())
    return pipeline.feed(body) + pipeline.finish()


def first_piece(outcomes: list[Outcome]) -> dict[str, Any]:
    event = next(o.value for o in outcomes if isinstance(o, ScanEvent) and o.kind == "piece")
    return copy.deepcopy(event)


def test_the_events_cover_every_top_level_schema(outcomes: list[Outcome]) -> None:
    assert {schema_of(outcome) for outcome in outcomes} == set(SCHEMAS.values())
    assert any(o.value.get("extra") for o in outcomes if isinstance(o, ScanEvent))


def test_realistic_events_are_byte_identical_to_fastavro(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        name = schema_of(outcome)
        expected = fastavro_bytes(parsed(name), outcome.value)
        compiled, reference = encoders(name)
        assert compiled(outcome.value) == expected, name
        assert reference(outcome.value) == expected, name


def test_realistic_events_take_the_fast_path(outcomes: list[Outcome]) -> None:
    # The speed is in the generated code: falling back on ordinary events would hide a
    # slowdown behind correct bytes.
    fast = {name: fast_entry(parsed(name)) for name in SCHEMAS.values()}
    for outcome in outcomes:
        name = schema_of(outcome)
        assert run_fast(fast[name], outcome.value) == fastavro_bytes(parsed(name), outcome.value)


def test_missing_fields_take_their_defaults_like_fastavro(outcomes: list[Outcome]) -> None:
    event = first_piece(outcomes)
    for key in ("campaign", "extra", "job", "service_type"):
        del event[key]
    for key in ("imbMid", "pieceId", "ldeDeliveryMode"):
        del event["record"][key]
    del event["scan"]["facility"]["zip"]
    expected = fastavro_bytes(parsed(SCHEMAS["piece"]), event)
    compiled, reference = encoders(SCHEMAS["piece"])
    assert compiled(event) == expected
    assert reference(event) == expected
    assert run_fast(fast_entry(parsed(SCHEMAS["piece"])), event) == expected


def test_unusual_but_valid_values_fall_back_and_still_match(outcomes: list[Outcome]) -> None:
    class Text(str):
        pass

    class Small(enum.IntEnum):
        SEVEN = 7

    letter = copy.deepcopy(next(o.value for o in outcomes if isinstance(o, DeadLetter)))
    letter["raw"] = Text(letter["raw"])
    letter["provenance"]["record_index"] = Small.SEVEN
    letter["provenance"] = types.MappingProxyType(letter["provenance"])
    letter["reasons"] = tuple(letter["reasons"])
    expected = fastavro_bytes(parsed(SCHEMAS["dead_letter"]), letter)
    assert encoders(SCHEMAS["dead_letter"])[0](letter) == expected


# -- every supported type, on generated values ----------------------------------------------


def point() -> dict[str, Any]:
    fields = [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]
    return {"type": "record", "name": "Point", "fields": fields}


def label() -> dict[str, Any]:
    return {"type": "record", "name": "Label", "fields": [{"name": "text", "type": "string"}]}


def colour() -> dict[str, Any]:
    return {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}


def node() -> dict[str, Any]:
    fields = [{"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"]}]
    return {"type": "record", "name": "Node", "fields": fields}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def map_of(values: Any) -> dict[str, Any]:
    return {"type": "map", "values": values}


def logical(kind: str, name: str) -> dict[str, Any]:
    return {"type": kind, "logicalType": name}


EVERYTHING_JSON: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "namespace": "test",
    "fields": [
        {"name": "null", "type": "null"},
        {"name": "boolean", "type": "boolean"},
        {"name": "int", "type": "int"},
        {"name": "long", "type": "long"},
        {"name": "float", "type": "float"},
        {"name": "double", "type": "double"},
        {"name": "bytes", "type": "bytes"},
        {"name": "string", "type": "string"},
        {"name": "colour", "type": colour()},
        {"name": "fixed", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "ints", "type": array("int")},
        {"name": "texts", "type": map_of("string")},
        {"name": "maybe_text", "type": ["null", "string"], "default": None},
        {"name": "text_or_null", "type": ["string", "null"], "default": "d"},
        {"name": "maybe_point", "type": ["null", point()], "default": None},
        {"name": "maybe_colour", "type": ["null", "Colour"], "default": None},
        {"name": "maybe_long", "type": ["null", "long"], "default": None},
        {"name": "maybe_double", "type": ["null", "double"]},
        {"name": "maybe_bool", "type": ["null", "boolean"], "default": None},
        {"name": "maybe_bytes", "type": ["null", "bytes"], "default": None},
        {"name": "maybe_four", "type": ["null", "Four"], "default": None},
        {"name": "maybe_ints", "type": ["null", array("int")], "default": None},
        {"name": "wide", "type": ["null", "int", "long", "string", "Point", label(), "boolean"]},
        {"name": "numbers", "type": ["double", "long"]},
        {"name": "floats", "type": ["float", "double"]},
        {"name": "shapes", "type": ["null", map_of("long"), "Point"]},
        {"name": "nested", "type": array(map_of(["null", "string", array(["null", "int"])]))},
        {"name": "points", "type": array("Point"), "default": []},
        {"name": "list", "type": ["null", node()], "default": None},
        {"name": "millis", "type": logical("long", "timestamp-millis")},
        {"name": "micros", "type": logical("long", "timestamp-micros")},
        {"name": "maybe_micros", "type": ["null", logical("long", "timestamp-micros")]},
        {"name": "day", "type": logical("int", "date")},
        {"name": "uuid", "type": logical("string", "uuid")},
        {"name": "extra_default", "type": map_of("int"), "default": {"a": 1}},
    ],
}
EVERYTHING = fastavro.parse_schema(copy.deepcopy(EVERYTHING_JSON))
FIELDS_WITH_DEFAULTS = [f["name"] for f in EVERYTHING_JSON["fields"] if "default" in f]

BASE: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "int": 1,
    "long": 2,
    "float": 1.5,
    "double": 2.5,
    "bytes": b"b",
    "string": "s",
    "colour": "RED",
    "fixed": b"abcd",
    "ints": [1],
    "texts": {"k": "v"},
    "maybe_text": None,
    "text_or_null": "t",
    "maybe_point": None,
    "maybe_colour": None,
    "maybe_long": None,
    "maybe_double": None,
    "maybe_bool": None,
    "maybe_bytes": None,
    "maybe_four": None,
    "maybe_ints": None,
    "wide": None,
    "numbers": 1,
    "floats": 1.5,
    "shapes": None,
    "nested": [],
    "points": [],
    "list": None,
    "millis": 0,
    "micros": 0,
    "maybe_micros": None,
    "day": 0,
    "uuid": "u",
    "extra_default": {},
}

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def edgy_ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers, often at the edges: the type's limits and every varint length change."""
    edges = [low, low + 1, -1, 0, 1, 63, 64, -64, -65, high - 1, high]
    edges += [sign * 2**k + d for k in range(6, 64, 7) for d in (-1, 0) for sign in (1, -1)]
    return st.sampled_from([e for e in edges if low <= e <= high]) | st.integers(low, high)


texts = st.text(st.characters(codec="utf-8"), max_size=300)  # astral chars, no lone surrogates
short_texts = st.text(max_size=12)
points = st.fixed_dictionaries({"x": edgy_ints(*INT32), "y": edgy_ints(*INT32)})
labels = st.fixed_dictionaries({"text": short_texts})
linked_lists = st.recursive(
    st.fixed_dictionaries({"value": edgy_ints(*INT64), "next": st.none()}),
    lambda inner: st.fixed_dictionaries({"value": edgy_ints(*INT64), "next": inner}),
    max_leaves=6,
)
zones = [dt.UTC, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(minutes=345))]
aware = st.datetimes(
    dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.sampled_from(zones)
)


def everything(
    *, logical_objects: bool = True, nan: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Values of EVERYTHING; timestamps and dates as ints, or also as datetimes and dates."""
    timestamps: st.SearchStrategy[Any] = edgy_ints(*INT64)
    days: st.SearchStrategy[Any] = edgy_ints(*INT32)
    if logical_objects:
        timestamps, days = timestamps | aware, days | st.dates()
    floats = st.floats(allow_nan=nan)
    ints32 = edgy_ints(*INT32)
    return st.fixed_dictionaries(
        {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": ints32,
            "long": edgy_ints(*INT64),
            "float": st.floats(width=32, allow_nan=nan),
            "double": floats,
            "bytes": st.binary(max_size=300),
            "string": texts,
            "colour": st.sampled_from(["RED", "GREEN", "BLUE"]),
            "fixed": st.binary(min_size=4, max_size=4),
            "ints": st.lists(ints32, max_size=5),
            "texts": st.dictionaries(texts, texts, max_size=4),
            "maybe_text": st.none() | texts,
            "text_or_null": st.none() | short_texts,
            "maybe_point": st.none() | points,
            "maybe_colour": st.none() | st.sampled_from(["RED", "BLUE"]),
            "maybe_long": st.none() | edgy_ints(*INT64),
            "maybe_double": st.none() | floats,
            "maybe_bool": st.none() | st.booleans(),
            "maybe_bytes": st.none() | st.binary(max_size=10),
            "maybe_four": st.none() | st.binary(min_size=4, max_size=4),
            "maybe_ints": st.none() | st.lists(ints32, max_size=3),
            "wide": st.none() | edgy_ints(*INT64) | short_texts | points | labels | st.booleans(),
            "numbers": edgy_ints(*INT64) | floats,
            "floats": st.floats(width=32, allow_nan=nan),
            "shapes": st.none()
            | st.dictionaries(short_texts, edgy_ints(*INT64), max_size=3)
            | points,
            "nested": st.lists(
                st.dictionaries(
                    short_texts,
                    st.none() | short_texts | st.lists(st.none() | ints32, max_size=3),
                    max_size=3,
                ),
                max_size=3,
            ),
            "points": st.lists(points, max_size=3),
            "list": st.none() | linked_lists,
            "millis": timestamps,
            "micros": timestamps,
            "maybe_micros": st.none() | timestamps,
            "day": days,
            "uuid": short_texts,
            "extra_default": st.dictionaries(short_texts, ints32, max_size=2),
        }
    )


ENCODE = compile_encoder(EVERYTHING)
REFERENCE = avro._closure_encoder(EVERYTHING)
FAST = fast_entry(EVERYTHING)
QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(everything(), st.sets(st.sampled_from(FIELDS_WITH_DEFAULTS)))
def test_every_type_is_byte_identical_to_fastavro(
    value: dict[str, Any], left_out: set[str]
) -> None:
    for name in left_out:
        del value[name]
    expected = fastavro_bytes(EVERYTHING, value)
    assert ENCODE(value) == expected
    assert REFERENCE(value) == expected


@QUICK
@given(everything())
def test_generated_values_take_the_fast_path(value: dict[str, Any]) -> None:
    assert run_fast(FAST, value) == fastavro_bytes(EVERYTHING, value)


def without_logical_types(schema: Any) -> Any:
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    return schema


PLAIN = fastavro.parse_schema(without_logical_types(EVERYTHING_JSON))


@QUICK
@given(everything(logical_objects=False, nan=False))
def test_round_trip_through_fastavro_reader(value: dict[str, Any]) -> None:
    # ["double", "long"] writes ints as doubles (so does fastavro): give it doubles.
    value["numbers"] = float(value["numbers"])
    # Read with the logical types stripped: timestamps and dates come back as the ints given.
    assert fastavro.schemaless_reader(io.BytesIO(ENCODE(value)), PLAIN, None) == value


def tag() -> dict[str, Any]:
    fields = [{"name": "text", "type": "string"}, {"name": "n", "type": "int", "default": 0}]
    return {"type": "record", "name": "Tag", "fields": fields}


@pytest.mark.parametrize(
    ("branches", "value"),
    [
        (["null", "int", "long"], 2**40),
        (["null", "double", "long"], 5),
        (["null", "long", "double"], 5),
        (["float", "double"], 1.5),
        (["float", "long"], 5),
        (["null", "boolean", "int"], True),
        (["int", "boolean"], False),
        (["string", colour()], "RED"),
        ([colour(), "string"], "RED"),
        ([colour(), "string"], "PINK"),
        ([point(), map_of("int")], {"x": 1, "y": 2}),
        ([map_of("int"), point()], {"x": 1, "y": 2}),
        ([label(), tag()], {"text": "a", "n": 1}),
        ([label(), tag()], {"text": "a"}),
        (["null", array("string"), "string"], ["a"]),
        (
            ["null", logical("long", "timestamp-millis")],
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, dt.UTC),
        ),
    ],
)
def test_union_branch_choice_matches_fastavro(branches: list[Any], value: Any) -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "U", "fields": [{"name": "u", "type": branches}]}
    )
    expected = fastavro_bytes(schema, {"u": value})
    assert compile_encoder(schema)({"u": value}) == expected
    assert avro._closure_encoder(schema)({"u": value}) == expected


def test_a_recursive_type_nested_deeply() -> None:
    schema = fastavro.parse_schema(node())
    value: dict[str, Any] | None = None
    for i in range(200):
        value = {"value": i * 1_000_003, "next": value}
    assert value is not None
    assert compile_encoder(schema)(value) == fastavro_bytes(schema, value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ("long", 2**62 + 5),
        ("int", -(2**31)),
        ("string", "𝄞"),
        (["null", "long"], -1),
        (array("long"), [0, -1, 2**63 - 1]),
    ],
)
def test_top_level_schemas_that_are_not_records(schema: Any, value: Any) -> None:
    parsed_schema = fastavro.parse_schema(schema)
    encode: Any = compile_encoder(parsed_schema)
    assert encode(value) == fastavro_bytes(parsed_schema, value)


def test_a_schema_straight_from_json_is_parsed_first() -> None:
    fields = [{"name": "p", "type": point()}, {"name": "q", "type": "Point"}]
    raw = {"type": "record", "name": "R", "namespace": "n", "fields": fields}
    value = {"p": {"x": 1, "y": 2}, "q": {"x": 3, "y": 4}}
    assert compile_encoder(copy.deepcopy(raw))(value) == fastavro_bytes(
        fastavro.parse_schema(raw), value
    )


# -- errors ----------------------------------------------------------------------------------


def error_of(encode: Encode, reference: Encode, value: Any) -> AvroEncodeError:
    with pytest.raises(AvroEncodeError) as error:
        encode(value)
    with pytest.raises(AvroEncodeError) as reference_error:
        reference(value)
    assert str(error.value) == str(reference_error.value)
    assert isinstance(error.value, SerializationError)
    assert not error.value.retriable
    return error.value


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        ("event_id", 12, "event_id", "expected string, got int 12"),
        ("record.imbMid", 902345678, "record.imbMid", "expected string, got int 902345678"),
        ("record.imbMid", b"9023", "record.imbMid", "expected string, got bytes b'9023'"),
        ("scan.local_time", None, "scan.local_time", "expected string, got NoneType None"),
        (
            "scan.utc_offset_minutes",
            "-300",
            "scan.utc_offset_minutes",
            "expected int, got str '-300'",
        ),
        ("scan.utc_offset_minutes", True, "scan.utc_offset_minutes", "expected int, got bool True"),
        (
            "scan.utc_offset_minutes",
            2**31,
            "scan.utc_offset_minutes",
            "2147483648 is out of range for int",
        ),
        (
            "provenance.record_index",
            -(2**31) - 1,
            "provenance.record_index",
            "out of range for int",
        ),
        ("provenance.msg_ser_nbr", 2**63, "provenance.msg_ser_nbr", "out of range for long"),
        (
            "scan.scanned_at",
            dt.datetime(2026, 1, 1),
            "scan.scanned_at",
            "naive datetime 2026-01-01T00:00:00",
        ),
        ("scan.logical_delivery", 1, "scan.logical_delivery", "expected boolean, got int 1"),
        (
            "record_state",
            "COOKED",
            "record_state",
            "unknown symbol 'COOKED' of enum ivmtr.events.RecordState",
        ),
        (
            "scan.mail_phase",
            "PHASE_9",
            "scan.mail_phase",
            "unknown symbol 'PHASE_9' of enum ivmtr.events.MailPhase",
        ),
        (
            "scan.facility",
            ["x"],
            "scan.facility",
            "expected a mapping for record ivmtr.events.Facility",
        ),
        ("extra", {"note": 5}, "extra['note']", "expected string, got int 5"),
        ("extra", {5: "five"}, "extra[5]", "map key int 5 is not a string"),
        ("extra", ["a"], "extra", "expected a mapping for map, got list"),
        ("job", "MRKDZUSX", "job", "expected a mapping for record ivmtr.events.EdocJob, got str"),
        ("record.machineName", "\ud800", "record.machineName", "string is not encodable as UTF-8"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_field(
    outcomes: list[Outcome], path: str, value: Any, where: str, problem: str
) -> None:
    event = first_piece(outcomes)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    target[last] = value
    error = error_of(*encoders(SCHEMAS["piece"]), event)
    assert error.path == where
    assert problem in error.problem
    assert str(error).startswith(f"ivmtr.events.PieceScan: {where}: ")


@pytest.mark.parametrize(
    "path", ["event_id", "scan.local_time", "barcode.tracking_code", "provenance.received_at"]
)
def test_a_missing_required_field_names_itself(outcomes: list[Outcome], path: str) -> None:
    event = first_piece(outcomes)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    del target[last]
    error = error_of(*encoders(SCHEMAS["piece"]), event)
    assert error.path == path
    assert error.problem == "missing, and the field has no default"


def test_an_error_inside_an_array_names_the_index(outcomes: list[Outcome]) -> None:
    letters = [
        o.value for o in outcomes if isinstance(o, DeadLetter) and len(o.value["reasons"]) > 1
    ]
    letter = copy.deepcopy(letters[0])
    letter["reasons"][1]["problem"] = None
    error = error_of(*encoders(SCHEMAS["dead_letter"]), letter)
    assert error.path == "reasons[1].problem"


def test_the_top_level_value_must_be_a_mapping() -> None:
    error = error_of(*encoders(SCHEMAS["piece"]), ["not", "a", "mapping"])
    assert error.path == ""
    assert str(error) == (
        "ivmtr.events.PieceScan: expected a mapping for record ivmtr.events.PieceScan, "
        "got list ['not', 'a', 'mapping']"
    )


@pytest.mark.parametrize(
    ("field", "value", "where", "problem"),
    [
        ("float", 1e300, "float", "float 1e+300 is out of range for float"),
        ("double", "NaN", "double", "expected double, got str 'NaN'"),
        ("fixed", b"12345", "fixed", "expected 4 bytes for fixed test.Four"),
        ("day", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "day", "give a date"),
        (
            "wide",
            1.5,
            "wide",
            "float 1.5 matches no branch of union [null, int, long, string, test.Point",
        ),
        ("wide", ("string", "a"), "wide", "fastavro reads it as (type name, value)"),
        ("wide", {"x": 1, "y": "2"}, "wide", "matches no branch"),
        ("shapes", {"x": 1, "y": "2"}, "shapes", "matches no branch"),
        ("maybe_long", 2**64, "maybe_long", "out of range for long"),
        ("maybe_point", {"x": 1, "y": "2"}, "maybe_point.y", "expected int, got str '2'"),
        (
            "points",
            [{"x": 1, "y": 2}, {"x": 1}],
            "points[1].y",
            "missing, and the field has no default",
        ),
        ("nested", [{}, {"k": [None, "1"]}], "nested[1]['k'][1]", "expected int, got str '1'"),
    ],
)
def test_errors_on_the_made_up_schema(field: str, value: Any, where: str, problem: str) -> None:
    base = copy.deepcopy(BASE)
    base[field] = value
    error = error_of(ENCODE, REFERENCE, base)
    assert error.path == where
    assert problem in error.problem


def test_a_union_with_one_candidate_of_the_right_type_reports_its_error() -> None:
    base = copy.deepcopy(BASE)
    base["wide"] = 2**64  # only int and long take ints; both refuse, so no single culprit
    assert "matches no branch" in error_of(ENCODE, REFERENCE, base).problem
    base["wide"] = {"text": 5}  # two records could take a mapping
    assert "matches no branch" in error_of(ENCODE, REFERENCE, base).problem
    base["wide"], base["numbers"] = None, "5"
    assert "matches no branch of union [double, long]" in error_of(ENCODE, REFERENCE, base).problem


def test_float_values_are_written_bit_for_bit() -> None:
    value = copy.deepcopy(BASE)
    for number in (math.nan, -0.0, math.inf, -math.inf, 5e-324):
        value.update(double=number, maybe_double=number, numbers=number, float=number)
        assert ENCODE(value) == fastavro_bytes(EVERYTHING, value)


def test_mapping_values_other_than_dicts_are_accepted() -> None:
    value = copy.deepcopy(BASE)
    value["maybe_point"] = types.MappingProxyType({"x": 1, "y": 2})
    assert ENCODE(types.MappingProxyType(value)) == fastavro_bytes(EVERYTHING, value)


def test_a_defaultdict_factory_does_not_stand_in_for_the_schema_default() -> None:
    value = collections.defaultdict(lambda: "factory", copy.deepcopy(BASE))
    del value["text_or_null"], value["maybe_text"]
    assert ENCODE(value) == fastavro_bytes(EVERYTHING, value)
    assert "text_or_null" not in value


def test_a_default_that_does_not_fit_is_reported_when_used() -> None:
    # fastavro refuses such a schema when parsing it; one marked as parsed gets through.
    fields = [{"name": "n", "type": "int", "default": "zero"}]
    schema = {"type": "record", "name": "D", "fields": fields, "__fastavro_parsed": True}
    encode = compile_encoder(schema)
    assert encode({"n": 3}) == b"\x06"
    error = error_of(encode, avro._closure_encoder(schema), {})
    assert error.path == "n"
    assert "its default does not fit: expected int, got str 'zero'" in error.problem
