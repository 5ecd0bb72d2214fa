"""The track and piece-status commands refuse clearly what they cannot do."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from consumer.cli import main


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_track_without_kafka_names_the_broker() -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(main, ["track"], env={"IVMTR_KAFKA_BOOTSTRAP_SERVERS": address})
    assert result.exit_code == 1
    assert f"cannot start tracking with Kafka at {address}" in result.output


def test_piece_status_wants_an_imb() -> None:
    for bad in ("1234", "0004069951599001910x", "000406995159900191022"):
        result = CliRunner().invoke(main, ["piece-status", bad])
        assert result.exit_code == 2, bad
        assert "give the IMb's 20, 25, 29 or 31 digits" in result.output
