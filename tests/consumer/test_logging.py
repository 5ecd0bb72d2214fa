"""The log pipeline's own parts: secrets masked, aiokafka's retried errors as warnings."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    NotLeaderForPartitionError,
    ProducerFenced,
    RebalanceInProgressError,
)

from consumer.logging import RetriedKafkaErrors


def record(name: str, level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


@pytest.mark.parametrize(
    "arg",
    [NotLeaderForPartitionError("tp"), GroupCoordinatorNotAvailableError, 1],
    ids=["instance", "class", "beside-a-node-id"],
)
def test_a_retried_kafka_error_is_a_warning(arg: object) -> None:
    line = record(
        "aiokafka.consumer.fetcher",
        logging.ERROR,
        "failed %s: %s",
        arg,
        NotLeaderForPartitionError(),
    )
    assert RetriedKafkaErrors().filter(line) is True
    assert (line.levelno, line.levelname) == (logging.WARNING, "WARNING")


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("aiokafka.producer.sender", (ProducerFenced(),)),  # not retried: stays an error
        ("aiokafka.consumer.group_coordinator", (RebalanceInProgressError(),)),
        ("aiokafka.cluster", ("topic-name",)),  # no error object at all
        ("consumer.service", (NotLeaderForPartitionError(),)),  # our own lines are ours
    ],
)
def test_other_errors_stay_errors(name: str, args: tuple[object, ...]) -> None:
    line = record(name, logging.ERROR, "failed: %s", *args)
    assert RetriedKafkaErrors().filter(line) is True
    assert line.levelno == logging.ERROR


def test_only_errors_are_touched() -> None:
    line = record("aiokafka", logging.INFO, "retrying: %s", NotLeaderForPartitionError())
    RetriedKafkaErrors().filter(line)
    assert line.levelno == logging.INFO
