"""The pieces of forwarding a push: the kept body, the head read, the signed hop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from consumer.feeds import Forbidden, parse_feeds
from consumer.http.forward import BodyTee, HopSigner, body_head

HASH = "scrypt$16384$8$1$G1b51cfAfJxRcJuIIwMVkg==$xuXN3inXcOA/fqVWSsEob/0n0j1jsbODAnEXICvlEy0="


async def _chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_the_tee_replays_what_was_read_then_the_rest() -> None:
    tee = BodyTee(_chunks(b"ab", b"cd", b"ef"))
    reading = tee.chunks()
    assert await anext(reading) == b"ab"
    assert await anext(reading) == b"cd"
    assert tee.keeping
    assert await _read(tee.replay()) == b"abcdef"


async def test_a_released_tee_keeps_nothing_and_cannot_replay() -> None:
    tee = BodyTee(_chunks(b"ab", b"cd"))
    tee.release()
    assert await _read(tee.chunks()) == b"abcd"
    assert not tee.keeping
    with pytest.raises(AssertionError):
        await _read(tee.replay())


async def test_the_head_gives_the_coordinates_and_the_whole_body() -> None:
    body = [b'{"msgGrpId": "G", ', b'"msgSerNbr": 4, "events": [', b"{}, {}]}"]
    coordinates, whole = await body_head(_chunks(*body))
    assert coordinates == ("G", 4)
    assert await _read(whole) == b"".join(body)


async def test_the_head_gives_up_after_its_limit_and_loses_nothing() -> None:
    body = [b'{"events": [' + b"{}, " * 100, b"{}], ", b'"msgGrpId": "G", "msgSerNbr": 1}']
    coordinates, whole = await body_head(_chunks(*body), limit=64)
    assert coordinates is None
    assert await _read(whole) == b"".join(body)


def _feeds(password_hash: str = HASH) -> object:
    return parse_feeds({"feeds": {"demo": {"user": "u", "password_hash": password_hash}}})


def test_a_signed_hop_is_believed_by_a_process_with_the_same_feeds_file() -> None:
    ours, theirs = HopSigner(_feeds()), HopSigner(_feeds())  # type: ignore[arg-type]
    header = ours.sign("demo", "req-1", "replica-7")
    assert theirs.check(header, "demo", "req-1") == "replica-7"


@pytest.mark.parametrize(
    ("feed", "request_id"), [("other", "req-1"), ("demo", "req-2")], ids=["feed", "request"]
)
def test_a_hop_signed_for_another_message_is_refused(feed: str, request_id: str) -> None:
    signer = HopSigner(_feeds())  # type: ignore[arg-type]
    header = signer.sign("demo", "req-1", "replica-7")
    with pytest.raises(Forbidden):
        signer.check(header, feed, request_id)


def test_a_hop_from_a_process_with_other_feeds_or_forged_is_refused() -> None:
    other = HopSigner(_feeds(HASH.replace("G1b5", "H1b5")))  # type: ignore[arg-type]
    signer = HopSigner(_feeds())  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="signature"):
        signer.check(other.sign("demo", "r", "o"), "demo", "r")
    _origin, at, signature = signer.sign("demo", "r", "o").split(";")
    with pytest.raises(Forbidden, match="signature"):
        signer.check(f"evil;{at};{signature}", "demo", "r")
    for malformed in ("", "o;x;00", "no-separators"):
        with pytest.raises(Forbidden, match="malformed"):
            signer.check(malformed, "demo", "r")


def test_an_old_hop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = HopSigner(_feeds())  # type: ignore[arg-type]
    header = signer.sign("demo", "r", "o")
    later = time.time_ns() + 301 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: later)
    with pytest.raises(Forbidden, match="too old"):
        signer.check(header, "demo", "r")
