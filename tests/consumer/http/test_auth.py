"""consumer.http.auth: the password-check pool's bounds, the throttle before any scrypt,
and the same through the app (429 with Retry-After and the JSON error body, metrics)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import consumer.feeds.passwords as passwords
from consumer.errors import UnknownFeed
from consumer.feeds import (
    FailureThrottle,
    FeedTable,
    ThrottlePolicy,
    TooManyFailures,
    Unauthorized,
    clear_verification_cache,
    load_feeds,
)
from consumer.http.app import create_app
from consumer.http.auth import FeedAuthenticator, PasswordCheckPool, PasswordChecksBusy
from consumer.settings import Settings
from tests.consumer.feeds.samples import (
    FLATS,
    FLATS_PASSWORD,
    LETTERS,
    LETTERS_PASSWORD,
    TABLE_TOML,
    basic,
    write,
)

USPS = "56.1.2.3"
OTHER_USPS = "56.9.9.9"
PROXY = "10.0.0.5"
WRONG = basic("usps-letters", "not-the-password")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_verification_cache()
    yield
    clear_verification_cache()


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every scrypt check made, by the password it checked."""
    calls: list[bytes] = []
    real = passwords._scrypt_matches

    def counted(password: bytes, encoded: str) -> bool:
        calls.append(password)
        return real(password, encoded)

    monkeypatch.setattr(passwords, "_scrypt_matches", counted)
    return calls


# --------------------------------------------------------------------------- the pool


async def test_checks_run_on_the_pools_own_threads() -> None:
    pool = PasswordCheckPool(threads=2, max_waiting=0)
    pool.start()
    try:
        name = await pool.run(lambda: threading.current_thread().name)
    finally:
        pool.stop()
    assert name.startswith("ivmtr-auth")


async def test_past_threads_plus_waiting_a_check_is_refused_at_once() -> None:
    pool = PasswordCheckPool(threads=1, max_waiting=1, retry_after_s=3)
    release = threading.Event()
    pool.start()
    try:
        first = asyncio.create_task(pool.run(release.wait, 10))
        second = asyncio.create_task(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        assert (pool.running, pool.waiting) == (1, 1)
        with pytest.raises(PasswordChecksBusy) as refused:
            await pool.run(lambda: None)
        assert refused.value.retry_after == 3 and refused.value.code == "auth_busy"
        release.set()
        assert await first and await second
        assert (pool.running, pool.waiting) == (0, 0)
        assert await pool.run(lambda: 42) == 42  # room again
    finally:
        release.set()
        pool.stop()


async def test_a_check_whose_caller_left_stops_counting_only_when_its_thread_is_done() -> None:
    pool = PasswordCheckPool(threads=1, max_waiting=1)
    release = threading.Event()
    pool.start()
    try:
        running = asyncio.create_task(pool.run(release.wait, 10))
        waiting = asyncio.create_task(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        waiting.cancel()  # still queued: dropped, and its place is free at once
        running.cancel()  # on its thread: keeps its place until the thread is done
        await asyncio.sleep(0.05)
        assert (pool.running, pool.waiting) == (1, 0)
        release.set()
        for _ in range(100):
            if pool.running == 0:
                break
            await asyncio.sleep(0.01)
        assert (pool.running, pool.waiting) == (0, 0)
    finally:
        release.set()
        pool.stop()


def test_pool_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        PasswordCheckPool(threads=0, max_waiting=1)
    with pytest.raises(ValueError):
        PasswordCheckPool(threads=1, max_waiting=-1)


# --------------------------------------------------------------------------- the authenticator


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> FeedTable:
    return load_feeds(write(tmp_path_factory.mktemp("feeds"), TABLE_TOML))


def authenticator(table: FeedTable, limit: int = 3) -> FeedAuthenticator:
    return FeedAuthenticator(
        table,
        throttle=FailureThrottle(ThrottlePolicy(failure_limit=limit)),
        pool=PasswordCheckPool(threads=1, max_waiting=4),
        refusal_delay_s=0,
    )


async def test_a_locked_out_client_is_refused_before_any_scrypt_even_with_the_password(
    table: FeedTable, scrypt_calls: list[bytes]
) -> None:
    auth = authenticator(table)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.check("letters", WRONG, USPS, None)
    assert len(scrypt_calls) == 3
    for credentials in (WRONG, LETTERS):  # a right guess must not show
        with pytest.raises(TooManyFailures) as refused:
            await auth.check("letters", credentials, USPS, None)
        assert 59 <= refused.value.retry_after <= 60
    assert len(scrypt_calls) == 3
    assert auth.failures_by_feed == {"letters": 3} and auth.throttled == 2
    await auth.check("letters", LETTERS, OTHER_USPS, None)  # another address: unaffected
    assert scrypt_calls[-1] == LETTERS_PASSWORD.encode()


async def test_a_feed_failing_from_an_address_locks_out_only_that_feed(
    table: FeedTable, scrypt_calls: list[bytes]
) -> None:
    """IV-MTR pushes every feed of a mailer from the same addresses: one feed whose password
    is wrong in its address book must not stop the others."""
    auth = authenticator(table, limit=3)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.check("letters", WRONG, USPS, None)
    with pytest.raises(TooManyFailures):
        await auth.check("letters", LETTERS, USPS, None)
    await auth.check("flats", FLATS, USPS, None)  # the same address, another feed
    assert scrypt_calls[-1] == FLATS_PASSWORD.encode()
    assert auth.failures_by_feed == {"letters": 3}


async def test_a_burst_from_one_client_costs_the_limit_in_scrypts_not_the_pools_size(
    table: FeedTable, scrypt_calls: list[bytes]
) -> None:
    auth = authenticator(table, limit=3)  # the pool takes 1 + 4
    wrong = await asyncio.gather(
        *(auth.check("letters", WRONG, USPS, None) for _ in range(20)), return_exceptions=True
    )
    assert [type(e).__name__ for e in wrong].count("Unauthorized") == 3
    assert [type(e).__name__ for e in wrong].count("TooManyFailures") == 17
    assert len(scrypt_calls) == 3
    right = await asyncio.gather(
        *(auth.check("letters", LETTERS, OTHER_USPS, None) for _ in range(10))
    )
    assert right == [None] * 10
    assert len(scrypt_calls) == 4  # one check, then the cache
    assert auth._checking == {}  # nothing left behind


async def test_refusals_are_held_side_by_side_not_one_after_the_other(
    table: FeedTable,
) -> None:
    auth = FeedAuthenticator(
        table,
        throttle=FailureThrottle(ThrottlePolicy(failure_limit=3)),
        pool=PasswordCheckPool(threads=1, max_waiting=4),
        refusal_delay_s=0.3,
    )
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(auth.check("letters", WRONG, USPS, None) for _ in range(20)), return_exceptions=True
    )
    elapsed = time.perf_counter() - started
    assert [type(e).__name__ for e in answers].count("TooManyFailures") == 17
    # Each refusal is held 0.15-0.45 s, all at once; one after the other, 17 take 5 s.
    assert 0.15 <= elapsed < 1.5


async def test_cheap_refusals_neither_hash_nor_count(
    table: FeedTable, scrypt_calls: list[bytes]
) -> None:
    auth = authenticator(table, limit=1)
    for feed, credentials, peer in [
        ("letters", None, USPS),  # no credentials
        ("letters", "Basic !!!", USPS),  # malformed
        ("nosuch", WRONG, USPS),  # unknown feed
    ]:
        with pytest.raises((Unauthorized, UnknownFeed)):
            await auth.check(feed, credentials, peer, None)
    assert scrypt_calls == [] and auth.failures_by_feed == {}
    await auth.check("letters", LETTERS, USPS, None)  # not locked out


async def test_clients_behind_a_trusted_proxy_are_counted_apart(
    table: FeedTable, scrypt_calls: list[bytes]
) -> None:
    auth = authenticator(table, limit=2)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.check("letters", WRONG, PROXY, USPS)
    with pytest.raises(TooManyFailures):
        await auth.check("letters", LETTERS, PROXY, USPS)
    # The proxy itself, and another client behind it, are not locked out.
    await auth.check("letters", LETTERS, PROXY, OTHER_USPS)
    await auth.check("flats", basic("usps-flats", "flats-secret-Pa55w0rd"), PROXY, None)


# --------------------------------------------------------------------------- through the app


def metric_values(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@pytest.fixture
def app_client(tmp_path: Path) -> Callable[..., TestClient]:
    # The peer is the trusted proxy; X-Forwarded-For says which client each push is from.
    settings = Settings(
        feeds_file=write(tmp_path, TABLE_TOML),
        auth_failure_limit=3,
        auth_refusal_delay_s=0,
    )
    app = create_app(settings)

    def client(**kwargs: Any) -> TestClient:
        return TestClient(app, client=(PROXY, 40000), **kwargs)

    return client


def test_the_app_answers_429_with_retry_after_and_no_scrypt_then(
    app_client: Callable[..., TestClient], scrypt_calls: list[bytes]
) -> None:
    client = app_client()
    statuses = []
    for _ in range(5):
        answer = client.post(
            "/v1/feeds/letters",
            content=b"{}",
            headers={"authorization": WRONG, "x-forwarded-for": USPS, "x-request-id": "r-1"},
        )
        statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 429, 429]
    assert len(scrypt_calls) == 3  # the throttled two were never checked
    assert 59 <= int(answer.headers["retry-after"]) <= 60
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == "too_many_failures" and body["request_id"] == "r-1"
    assert body["detail"] and body["retry_after_s"] == int(answer.headers["retry-after"])

    # Another address behind the same proxy is unaffected: its valid credentials pass
    # authentication (the 415 comes after it, for the body's type; no Kafka needed).
    valid = client.post(
        "/v1/feeds/letters",
        content=b"x",
        headers={"authorization": LETTERS, "x-forwarded-for": OTHER_USPS, "content-type": "a/b"},
    )
    assert valid.status_code == 415, valid.text
    assert len(scrypt_calls) == 4

    values = metric_values(client)
    assert values["ivmtr_auth_failures_total{feed=letters}"] == 3
    assert values["ivmtr_auth_throttled_total"] == 2
    assert values["ivmtr_auth_lockouts_total"] == 1
    assert values["ivmtr_auth_tracked_clients"] == 1
    assert values["ivmtr_auth_checks_running"] == 0 and values["ivmtr_auth_checks_waiting"] == 0
    assert values["ivmtr_refused_messages_total{error=too_many_failures,feed=letters}"] == 2
