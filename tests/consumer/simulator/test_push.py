"""The IV-MTR push simulator: retries, encodings, auth, pacing, files, and the CLI around it."""

from __future__ import annotations

import asyncio
import base64
import gzip
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from consumer.cli import simulate as simulate_cli
from consumer.cli.simulate import simulate
from consumer.simulator import MailingSpec, generate_records
from consumer.simulator.push import (
    DeliverySummary,
    MessageResult,
    PushOptions,
    RetryPolicy,
    encode_message,
    mailing_messages,
    message_filename,
    parse_retry_after,
    push_messages,
    retry_delay,
    user_agent,
    write_messages,
)

URL = "http://ingest.test/v1/feeds/demo"
Handler = Callable[[httpx.Request], httpx.Response]


def messages(count: int = 3, size: int = 4, grp: str = "17367877181793X9RM5Z") -> list[Any]:
    records = [{"imb": f"{i:031d}", "scanEventCode": "918"} for i in range(count * size)]
    return [
        {
            "msgGrpId": grp,
            "msgSerNbr": n,
            "totMsgCnt": count,
            "recCnt": size,
            "totRecCnt": count * size,
            "events": records[(n - 1) * size : n * size],
        }
        for n in range(1, count + 1)
    ]


def ok(request: httpx.Request, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": "PUBLISHED", "duplicate": False, **extra})


class Recorder:
    """A MockTransport handler that answers from a script, then 200, and keeps the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return ok(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


async def push(
    recorder: Recorder, fake_time: FakeTime, items: list[Any] | None = None, **options: Any
) -> DeliverySummary:
    return await push_messages(
        messages() if items is None else items,
        URL,
        PushOptions(**options),
        transport=recorder.transport,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=random.Random(1),
    )


# --- pure helpers -------------------------------------------------------------------------


def test_encode_message_plain_and_gzip_round_trip() -> None:
    message = messages(1)[0]
    assert orjson.loads(encode_message(message)) == message
    packed = encode_message(message, gzipped=True)
    assert packed[:2] == b"\x1f\x8b"
    assert orjson.loads(gzip.decompress(packed)) == message
    assert encode_message(message, gzipped=True) == packed  # mtime 0: reproducible bytes


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("7", 7.0), (" 0 ", 0.0), ("soon", None), ("-3", None), ("1.5", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0


def test_retry_delay_prefers_retry_after_and_caps_it() -> None:
    policy = RetryPolicy(max_retry_after_s=60)
    rng = random.Random(0)
    assert retry_delay(1, 5.0, policy, rng) == 5.0
    assert retry_delay(1, 3600.0, policy, rng) == 60.0


def test_retry_delay_backs_off_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=8.0, jitter=0.25)
    rng = random.Random(0)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = retry_delay(attempt, None, policy, rng)
        assert 0.75 * full <= delay <= full


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        PushOptions(concurrency=0)
    with pytest.raises(ValueError, match="rate"):
        PushOptions(rate=-1)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_mailing_messages_form_one_consistent_group() -> None:
    group = mailing_messages(MailingSpec(pieces=40, seed=3), message_size=50, msg_grp_id="G1")
    items: list[Any] = list(group)
    total = sum(m["recCnt"] for m in items)
    assert len(group) == len(items) > 1 and group.total_records == total
    assert [m["msgSerNbr"] for m in items] == list(range(1, len(items) + 1))
    assert {(m["msgGrpId"], m["totMsgCnt"], m["totRecCnt"]) for m in items} == {
        ("G1", len(items), total)
    }
    assert all(len(m["events"]) == m["recCnt"] <= 50 for m in items)
    again = mailing_messages(MailingSpec(pieces=40, seed=3), message_size=50, msg_grp_id="G1")
    assert list(again) == list(group) == items  # deterministic, and iterable again


def test_mailing_messages_carry_the_mailings_records_in_order() -> None:
    spec = MailingSpec(pieces=60, seed=5, bundles=True)
    events = [
        e for m in mailing_messages(spec, message_size=70, msg_grp_id="G") for e in m["events"]
    ]
    assert events == list(generate_records(spec))
    default = mailing_messages(spec, message_size=70)
    assert default.msg_grp_id == mailing_messages(spec, message_size=70).msg_grp_id


class Drawn:
    """Messages made only when drawn, counting the draws; each draw takes `cost` on `clock`."""

    def __init__(self, items: list[Any], clock: FakeTime | None = None, cost: float = 0.0) -> None:
        self.items, self.clock, self.cost = items, clock, cost
        self.drawn = 0

    def __len__(self) -> int:
        if self.clock is not None:
            self.clock.now += 1.0  # counting, as MailingMessages does, is generating too
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            if self.clock is not None:
                self.clock.now += self.cost
            self.drawn += 1
            yield item


def test_message_filename() -> None:
    message = messages(1)[0]
    assert message_filename(message) == "17367877181793X9RM5Z-1.json"
    assert message_filename(message, gzipped=True) == "17367877181793X9RM5Z-1.json.gz"


# --- pushing ------------------------------------------------------------------------------


async def test_delivers_every_message_with_iv_mtr_headers(fake_time: FakeTime) -> None:
    recorder = Recorder()
    items = messages()
    summary = await push(recorder, fake_time, items)
    assert summary.ok and summary.delivered == 3 and summary.failures == 0
    assert summary.records == 12 and summary.retries == 0
    assert summary.bytes == sum(len(encode_message(m)) for m in items)
    assert summary.msg_grp_ids == ["17367877181793X9RM5Z"]
    for request, message in zip(recorder.requests, items, strict=True):
        assert request.method == "POST" and str(request.url) == URL
        assert request.headers["content-type"] == "application/json"
        assert "content-encoding" not in request.headers
        assert "authorization" not in request.headers
        assert request.headers["user-agent"] == user_agent()
        assert "simulator" in request.headers["user-agent"]
        assert orjson.loads(request.content) == message


async def test_202_counts_as_delivered(fake_time: FakeTime) -> None:
    recorder = Recorder(*[httpx.Response(202, json={"status": "SPOOLED"})] * 3)
    summary = await push(recorder, fake_time)
    assert summary.ok and summary.delivered == 3


async def test_503_with_retry_after_is_retried_after_that_long(fake_time: FakeTime) -> None:
    busy = httpx.Response(503, headers={"Retry-After": "5"}, json={"error": "unavailable"})
    recorder = Recorder(busy, busy)
    summary = await push(recorder, fake_time, messages(1))
    assert summary.ok and summary.retries == 2
    assert fake_time.sleeps == [5.0, 5.0]
    assert len(recorder.requests) == 3
    assert recorder.requests[0].content == recorder.requests[2].content


async def test_429_is_retried_too(fake_time: FakeTime) -> None:
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "2"}))
    summary = await push(recorder, fake_time, messages(2))
    assert summary.ok and summary.delivered == 2 and summary.retries == 1
    assert fake_time.sleeps == [2.0]


async def test_503_without_retry_after_backs_off(fake_time: FakeTime) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(503))
    retry = RetryPolicy(backoff_s=1.0, jitter=0.0)
    summary = await push(recorder, fake_time, messages(1), retry=retry)
    assert summary.ok and fake_time.sleeps == [1.0, 2.0]


async def test_connection_errors_are_retried(fake_time: FakeTime) -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"))
    summary = await push(recorder, fake_time, messages(1))
    assert summary.ok and summary.retries == 2 and len(recorder.requests) == 3


async def test_gives_up_after_the_last_attempt_and_stops(fake_time: FakeTime) -> None:
    recorder = Recorder(*[httpx.Response(503, headers={"Retry-After": "1"})] * 10)
    summary = await push(recorder, fake_time, retry=RetryPolicy(attempts=3))
    assert not summary.ok
    assert summary.failures == 1 and summary.delivered == 0 and summary.not_sent == 2
    assert summary.retries == 2 and len(recorder.requests) == 3
    assert fake_time.sleeps == [1.0, 1.0]  # no pointless wait after the last try
    assert "not delivered after 3 attempts: HTTP 503" in summary.errors[0]


async def test_400_stops_the_run_with_the_services_reason(fake_time: FakeTime) -> None:
    refused = httpx.Response(400, json={"error": "bad_envelope", "detail": "recCnt is 5"})
    recorder = Recorder(ok(httpx.Request("POST", URL)), refused)
    summary = await push(recorder, fake_time)
    assert not summary.ok
    assert (summary.delivered, summary.failures, summary.not_sent) == (1, 1, 1)
    assert len(recorder.requests) == 2 and fake_time.sleeps == []
    assert summary.errors == [
        "message 17367877181793X9RM5Z/2 refused: HTTP 400: recCnt is 5",
    ]


async def test_duplicates_reported_by_the_service_are_counted(fake_time: FakeTime) -> None:
    duplicate = httpx.Response(200, json={"status": "DUPLICATE", "duplicate": True})
    recorder = Recorder(duplicate, ok(httpx.Request("POST", URL)), duplicate)
    summary = await push(recorder, fake_time)
    assert summary.ok and summary.duplicates == 2


async def test_gzip_bodies_decode_back_to_the_message(fake_time: FakeTime) -> None:
    recorder = Recorder()
    items = messages()
    summary = await push(recorder, fake_time, items, gzip=True)
    assert summary.ok
    for request, message in zip(recorder.requests, items, strict=True):
        assert request.headers["content-encoding"] == "gzip"
        assert orjson.loads(gzip.decompress(request.content)) == message
    assert summary.bytes == sum(len(r.content) for r in recorder.requests)


async def test_basic_auth_header(fake_time: FakeTime) -> None:
    recorder = Recorder()
    await push(recorder, fake_time, messages(1), auth=("usps-letters", "s3cret:x"))
    expected = base64.b64encode(b"usps-letters:s3cret:x").decode()
    assert recorder.requests[0].headers["authorization"] == f"Basic {expected}"


async def test_rate_spaces_message_starts(fake_time: FakeTime) -> None:
    recorder = Recorder()
    summary = await push(recorder, fake_time, messages(5), rate=4.0)
    assert summary.ok
    assert fake_time.sleeps == pytest.approx([0.25] * 4)
    assert summary.seconds == pytest.approx(1.0)


async def test_rate_is_roughly_respected_in_real_time() -> None:
    recorder = Recorder()
    started = time.monotonic()
    summary = await push_messages(
        messages(6), URL, PushOptions(rate=100.0), transport=recorder.transport
    )
    elapsed = time.monotonic() - started
    assert summary.ok
    assert 0.045 <= elapsed < 2.0  # five gaps of 10 ms


async def test_concurrency_bounds_messages_in_flight() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return ok(request)

    summary = await push_messages(
        messages(12), URL, PushOptions(concurrency=4), transport=httpx.MockTransport(handler)
    )
    assert summary.ok and summary.delivered == 12
    assert peak == 4


async def test_a_given_client_is_used() -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(transport=recorder.transport) as client:
        summary = await push_messages(messages(2), URL, client=client)
        assert not client.is_closed  # the caller's client stays the caller's
    assert summary.ok and len(recorder.requests) == 2


async def test_messages_are_drawn_only_as_workers_need_them() -> None:
    source = Drawn(messages(12))
    finished: list[MessageResult] = []
    in_flight: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        in_flight.append(source.drawn - len(finished))
        return ok(request)

    summary = await push_messages(
        source,
        URL,
        PushOptions(concurrency=3),
        transport=httpx.MockTransport(handler),
        on_result=finished.append,
    )
    assert (
        summary.ok and summary.delivered == 12 and summary.msg_grp_ids == ["17367877181793X9RM5Z"]
    )
    assert 1 <= max(in_flight) <= 3, in_flight  # never more made than the workers hold


async def test_push_summary_counts_generating_time(fake_time: FakeTime) -> None:
    source = Drawn(messages(3), fake_time, cost=0.5)
    summary = await push_messages(
        source,
        URL,
        transport=Recorder().transport,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    assert summary.generating_seconds == pytest.approx(2.5)  # counting 1.0, three draws 0.5
    assert summary.seconds == pytest.approx(2.5)  # the fake clock only moves when generating
    assert summary.as_json()["generating_seconds"] == 2.5


async def test_on_result_sees_each_message(fake_time: FakeTime) -> None:
    seen: list[MessageResult] = []
    await push_messages(
        messages(3),
        URL,
        transport=Recorder().transport,
        on_result=seen.append,
        sleep=fake_time.sleep,
    )
    assert sorted(r.msg_ser_nbr for r in seen) == [1, 2, 3]
    assert all(r.delivered and r.status == 200 and r.attempts == 1 for r in seen)


# --- files --------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
def test_write_messages_round_trip(tmp_path: Path, gzipped: bool) -> None:
    items = messages()
    summary = write_messages(items, tmp_path / "out", gzipped=gzipped)
    assert summary.ok and summary.delivered == 3 and summary.records == 12
    suffix = ".json.gz" if gzipped else ".json"
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"17367877181793X9RM5Z-{n}{suffix}" for n in (1, 2, 3)]
    for message in items:
        data = (tmp_path / "out" / message_filename(message, gzipped=gzipped)).read_bytes()
        assert orjson.loads(gzip.decompress(data) if gzipped else data) == message
    assert summary.bytes == sum(p.stat().st_size for p in (tmp_path / "out").iterdir())


def test_write_messages_makes_each_message_after_the_last_is_written(tmp_path: Path) -> None:
    fake = FakeTime()
    source = Drawn(messages(4), fake, cost=0.25)
    drawn_at_each_write: list[int] = []
    summary = write_messages(
        source,
        tmp_path,
        on_result=lambda _: drawn_at_each_write.append(source.drawn),
        clock=fake.clock,
    )
    assert drawn_at_each_write == [1, 2, 3, 4]
    assert summary.generating_seconds == pytest.approx(2.0) == summary.seconds


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def mock_push(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Route the command's pushes through a MockTransport."""
    recorder = Recorder()

    def patched(*args: Any, **kwargs: Any) -> Any:
        return push_messages(*args, transport=recorder.transport, **kwargs)

    monkeypatch.setattr(simulate_cli, "push_messages", patched)
    yield recorder


def test_command_pushes_and_prints_a_json_summary(mock_push: Recorder) -> None:
    result = CliRunner().invoke(
        simulate,
        ["--url", URL, "--pieces", "30", "--message-size", "40", "--gzip", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    bodies = [orjson.loads(gzip.decompress(r.content)) for r in mock_push.requests]
    assert summary["ok"] is True and summary["failures"] == 0
    assert summary["messages"] == summary["delivered"] == len(bodies) > 1
    assert summary["records"] == bodies[0]["totRecCnt"] == sum(len(b["events"]) for b in bodies)
    assert summary["msg_grp_ids"] == [bodies[0]["msgGrpId"]]
    assert {"bytes", "seconds", "records_per_s", "retries", "duplicates"} <= summary.keys()
    assert 0 < summary["generating_seconds"] <= summary["seconds"]


def test_command_fails_when_a_message_is_refused(mock_push: Recorder) -> None:
    mock_push.answers.append(httpx.Response(401, json={"detail": "bad credentials"}))
    result = CliRunner().invoke(
        simulate, ["--url", URL, "--pieces", "5", "--user", "u", "--password", "p"]
    )
    assert result.exit_code == 1
    assert "refused: HTTP 401: bad credentials" in result.stderr
    assert "delivered 0/1 messages" in result.stdout
    assert mock_push.requests[0].headers["authorization"].startswith("Basic ")


def test_command_prompts_for_a_missing_password(mock_push: Recorder) -> None:
    result = CliRunner().invoke(
        simulate, ["--url", URL, "--pieces", "5", "--user", "u"], input="pw\n"
    )
    assert result.exit_code == 0, result.output
    expected = base64.b64encode(b"u:pw").decode()
    assert mock_push.requests[0].headers["authorization"] == f"Basic {expected}"


def test_command_writes_files_with_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        simulate,
        ["--out", str(tmp_path), "--pieces", "30", "--message-size", "40", "--msg-grp-id", "G7"],
    )
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("G7-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    bodies = [orjson.loads(p.read_bytes()) for p in files]
    assert [b["msgSerNbr"] for b in bodies] == list(range(1, len(bodies) + 1))
    assert f"wrote {len(files)}/{len(files)} messages" in result.stdout
    assert "generating the messages took" in result.stdout


def test_same_seed_same_records_new_group_id(tmp_path: Path) -> None:
    runs = []
    for run in ("a", "b"):
        result = CliRunner().invoke(
            simulate, ["--out", str(tmp_path / run), "--pieces", "10", "--seed", "4"]
        )
        assert result.exit_code == 0, result.output
        (path,) = (tmp_path / run).iterdir()
        runs.append(orjson.loads(path.read_bytes()))
    assert runs[0]["events"] == runs[1]["events"]
    assert runs[0]["msgGrpId"] != runs[1]["msgGrpId"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pieces", "1"], "exactly one of --url and --out"),
        (["--url", URL, "--out", "x"], "exactly one of --url and --out"),
        (["--url", URL, "--password", "p"], "--password needs --user"),
        (["--url", URL, "--mids", "12345"], "bad mailer ID"),
        (["--url", URL, "--message-size", "0"], "--message-size"),
    ],
)
def test_command_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 2
    assert message in result.output
