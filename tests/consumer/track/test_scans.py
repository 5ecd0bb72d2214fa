"""Scan events and statuses read back as plain data, in either framing."""

from __future__ import annotations

import pytest

from consumer.track.scans import ScanReader, UnreadableValue, ValueReader
from consumer.track.status import event_hash
from producer import TrackTopics
from producer.wire import ConfluentAvro
from tests.consumer.track.scans import TOPICS, piece_record, scan_values
from tests.consumer.track.test_status import IMB, SCANS, folded

PIECES = [TOPICS.piece_scans.schema, TOPICS.bundle_scans.schema]


def test_a_piece_scan_read_as_the_status_needs_it() -> None:
    (value,) = scan_values(
        [piece_record(IMB, "2016-01-22 22:29:53-05:00", predictedDeliveryDate="2016-01-23")],
        campaign="spring",
    )
    facts = ScanReader(PIECES)(value)
    assert facts.tracking_code == IMB[:20] and facts.imb == IMB
    assert facts.point["scanned_at"] == 1_453_519_793_000_000  # an int, not a datetime
    assert facts.point["local_time"] == "2016-01-22T22:29:53"
    assert facts.point["mail_phase"] == "PHASE_3C_DESTINATION_SEQUENCED_CARRIER"
    assert facts.dates == (None, 16_823, None)  # 2016-01-23
    assert facts.campaign == "spring"
    assert facts.id_hash == event_hash(facts.point["event_id"])
    assert not facts.logical_delivery


def test_values_that_are_not_scans_are_refused() -> None:
    reader = ScanReader(PIECES)
    with pytest.raises(UnreadableValue):
        reader(b"not avro at all")
    status = TrackTopics.build("t.").piece_status
    with pytest.raises(UnreadableValue, match="not a value of a known schema"):
        reader(status.message("k", folded(SCANS) or {}).value)
    (value,) = scan_values([piece_record(IMB, "2016-01-22 22:29:53-05:00")])
    with pytest.raises(UnreadableValue, match="undecodable"):
        reader(value[:40])


def test_a_status_round_trips_in_either_framing() -> None:
    status = folded(SCANS)
    assert status is not None
    topic = TrackTopics.build("t.").piece_status
    assert ValueReader([topic.schema]).read(topic.message("k", status).value)[1] == status
    confluent = ConfluentAvro(topic.schema, 42)(status)
    assert ValueReader([topic.schema], {42: topic.schema}).read(confluent)[1] == status
    with pytest.raises(UnreadableValue):
        ValueReader([topic.schema]).read(confluent)
