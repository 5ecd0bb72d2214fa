"""Schema evolution: today's schemas against the released ones, and what breaks them."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumer.cli.schemas import schemas
from producer import TopicTable, TrackTopics
from producer.compatibility import (
    check_backward,
    check_backward_transitive,
    check_evolution,
    load_releases,
)
from producer.schemas import load_schema, schema_dir

RELEASED = Path(__file__).resolve().parents[2] / "schemas" / "released"
SERVICE_SCHEMAS = sorted({topic.schema.name for topic in TopicTable.build()})
TOPIC_SCHEMAS = sorted({*SERVICE_SCHEMAS, *(topic.schema.name for topic in TrackTopics.build())})

Change = Callable[[dict[str, Any]], None]


def receipt() -> dict[str, Any]:
    """DeliveryReceipt as written in its file: self-contained, enums inline."""
    text = (schema_dir() / "ivmtr.events.DeliveryReceipt.avsc").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in schema["fields"] if item["name"] == name)
    return found


def changed(change: Change) -> dict[str, Any]:
    schema = copy.deepcopy(receipt())
    change(schema)
    return schema


def test_v1_is_released_with_every_schema_of_the_service_and_v2_with_the_tracker() -> None:
    (v1,) = (release for release in load_releases(RELEASED) if release.name == "v1")
    for name in SERVICE_SCHEMAS:
        assert v1.schema(name) is not None, name
    (v2,) = (release for release in load_releases(RELEASED) if release.name == "v2")
    for name in TOPIC_SCHEMAS:
        assert v2.schema(name) is not None, name
    assert v1.schema("ivmtr.events.PieceStatus") is None


@pytest.mark.parametrize("name", TOPIC_SCHEMAS)
def test_current_schemas_are_backward_transitive_with_every_release(name: str) -> None:
    current = load_schema(name)
    released = {
        release.name: schema
        for release in load_releases(RELEASED)
        if (schema := release.schema(name)) is not None
    }
    assert "v2" in released
    assert check_backward_transitive(current.parsed, list(released.values())) == []
    assert check_evolution(current, released) == []


def test_the_released_files_are_not_loaded_as_current_schemas() -> None:
    # schemas/released/ sits inside the schemas package: nothing may pick it up by accident
    assert not list(schema_dir().glob("*.avsc.*"))
    assert {path.parent for path in schema_dir().glob("*.avsc")} == {schema_dir()}
    assert (
        load_schema("ivmtr.events.PieceScan").parsed
        == load_schema("ivmtr.events.PieceScan", RELEASED / "v1").parsed
    )


def add_field_without_default(schema: dict[str, Any]) -> None:
    schema["fields"].append({"name": "region", "type": "string"})


def remove_enum_symbol(schema: dict[str, Any]) -> None:
    field(schema, "status")["type"]["symbols"].remove("CONFLICT")


def string_to_int(schema: dict[str, Any]) -> None:
    field(schema, "msg_grp_id")["type"] = "int"


def rename_field(schema: dict[str, Any]) -> None:
    field(schema, "replica")["name"] = "replica_id"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (add_field_without_default, "DeliveryReceipt.region: field added without a default"),
        (
            remove_enum_symbol,
            "DeliveryReceipt.status: enum ivmtr.events.ReceiptStatus lost symbols CONFLICT "
            "and has no default",
        ),
        (string_to_int, "DeliveryReceipt.msg_grp_id: type changed from string to int"),
        (rename_field, "DeliveryReceipt.replica_id: field added without a default"),
    ],
)
def test_breaking_changes_are_caught(change: Change, problem: str) -> None:
    old, new = receipt(), changed(change)
    assert check_backward(new, old) == [problem]
    assert f"v1: {problem}" in check_evolution(new, {"v1": old})
    assert check_backward_transitive(new, [old, old]) == [f"#1: {problem}", f"#2: {problem}"]


def test_a_rename_is_also_a_removal_under_our_rule() -> None:
    problems = check_evolution(changed(rename_field), [receipt()])
    assert "#1: ivmtr.events.DeliveryReceipt.replica: field removed (or renamed)" in problems


def test_removing_a_field_is_backward_compatible_but_against_our_rule() -> None:
    new = changed(lambda schema: schema["fields"].remove(field(schema, "feed")))
    assert check_backward(new, receipt()) == []
    assert check_evolution(new, [receipt()]) == [
        "#1: ivmtr.events.DeliveryReceipt.feed: field removed (or renamed)"
    ]


def test_removing_an_enum_symbol_with_an_enum_default_is_still_against_our_rule() -> None:
    def change(schema: dict[str, Any]) -> None:
        remove_enum_symbol(schema)
        field(schema, "status")["type"]["default"] = "STARTED"

    assert check_backward(changed(change), receipt()) == []
    assert check_evolution(changed(change), [receipt()]) == [
        "#1: ivmtr.events.ReceiptStatus: enum symbol CONFLICT removed"
    ]


def test_moving_a_namespace_is_against_our_rule() -> None:
    new = changed(lambda schema: schema.update(namespace="ivmtr.v2"))
    assert check_backward(new, receipt()) == []  # Avro matches unqualified names
    assert "#1: ivmtr.events.DeliveryReceipt: moved to namespace ivmtr.v2" in check_evolution(
        new, [receipt()]
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda schema: schema["fields"].append(
                {"name": "region", "type": ["null", "string"], "default": None}
            ),
            id="added field with a default",
        ),
        pytest.param(
            lambda schema: schema["fields"].append(
                {"name": "attempts", "type": "int", "default": 0}
            ),
            id="added int field with a default",
        ),
        pytest.param(
            lambda schema: field(schema, "status")["type"]["symbols"].append("RETRACTED"),
            id="added enum symbol",
        ),
        pytest.param(
            lambda schema: field(schema, "problems").update(doc="Reworded."),
            id="doc changed",
        ),
        pytest.param(
            lambda schema: field(schema, "msg_ser_nbr").update(type=["null", "long", "string"]),
            id="union branch added",
        ),
    ],
)
def test_compatible_changes_pass(change: Change) -> None:
    assert check_evolution(changed(change), [receipt()]) == []


def test_int_to_long_promotion_passes() -> None:
    old = {
        "type": "record",
        "name": "Counter",
        "namespace": "ivmtr.events",
        "fields": [
            {"name": "count", "type": "int"},
            {"name": "maybe", "type": ["null", "int"], "default": None},
            {"name": "many", "type": {"type": "array", "items": "int"}},
        ],
    }
    new = copy.deepcopy(old)
    new["fields"][0]["type"] = "long"
    new["fields"][1]["type"] = ["null", "long"]
    new["fields"][2]["type"]["items"] = "double"
    assert check_backward(new, old) == []
    assert check_evolution(new, [old]) == []
    # ... but not the other way round: a long does not fit an int
    assert check_backward(old, new) == [
        "Counter.count: type changed from long to int",
        "Counter.maybe: long is not one of the new union [null, int]",
        "Counter.many[]: type changed from double to int",
    ]


def test_problems_in_a_shared_named_type_name_the_path_they_are_found_at() -> None:
    old = load_schema("ivmtr.events.PieceScan").parsed
    new = copy.deepcopy(old)
    scan = field(new, "scan")["type"]
    field(scan, "facility")["type"]["fields"].append({"name": "country", "type": "string"})
    assert check_backward(new, old) == [
        "PieceScan.scan.facility.country: field added without a default"
    ]


# no registry, whatever the environment says: these tests need no network
OFFLINE = {"IVMTR_SCHEMA_REGISTRY_URL": None, "IVMTR_TOPIC_PREFIX": None}


def test_schemas_check_passes_today() -> None:
    result = CliRunner(env=OFFLINE).invoke(schemas, ["check"])
    assert result.exit_code == 0, result.output
    assert "ivmtr.deliveries\tivmtr.events.DeliveryReceipt\tok" in result.output.splitlines()


def test_schemas_check_fails_listing_the_problems(tmp_path: Path) -> None:
    candidate = tmp_path / "schemas"
    shutil.copytree(schema_dir(), candidate, ignore=shutil.ignore_patterns("released", "*.py"))
    path = candidate / "ivmtr.events.Facility.avsc"
    facility = json.loads(path.read_text())
    facility["fields"].append({"name": "country", "type": "string"})
    facility["fields"] = [item for item in facility["fields"] if item["name"] != "locale_key"]
    path.write_text(json.dumps(facility))

    result = CliRunner(env=OFFLINE).invoke(
        schemas, ["check", "--schemas", str(candidate), "--released", str(RELEASED)]
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    # Facility is in every scan event, but not in dead letters or receipts
    assert "ivmtr.piece-scans\tivmtr.events.PieceScan\tINCOMPATIBLE" in lines
    assert "ivmtr.dead-letters\tivmtr.events.DeadLetter\tok" in lines
    assert "  v1: PieceScan.scan.facility.country: field added without a default" in lines
    assert "  v1: ivmtr.events.Facility.locale_key: field removed (or renamed)" in lines


def test_schemas_check_needs_releases(tmp_path: Path) -> None:
    result = CliRunner(env=OFFLINE).invoke(schemas, ["check", "--released", str(tmp_path)])
    assert result.exit_code == 1
    assert "no released schemas" in result.output
