"""Deliver simulated IV-MTR messages: push them over HTTP as IV-MTR would, or write them as files.

The envelopes come from `mailing_messages`: made lazily as they are sent or written, so memory
holds only the messages in flight whatever the mailing's size, and the summary says how much of
the run went into generating them. Pushing follows what a well-behaved IV-MTR push client does
(ivmtr.md §2): one POST per message to the feed URL, JSON body, optionally gzip'd, optionally
with HTTP Basic auth. Answers decide what happens next:

* 2xx (200 published, 202 spooled) -- delivered; ``"duplicate": true`` in the body is counted.
* 429, 503 (and 408, 500, 502, 504) -- retried after Retry-After (seconds or an HTTP date),
  else after an exponential backoff with jitter, up to ``RetryPolicy.attempts`` tries.
* connection errors and timeouts -- retried the same way; a retry of a message the service did
  commit comes back as a duplicate, which is exactly what the service's receipts are for.
* any other 4xx -- the message is refused for good: every worker stops, nothing more is sent.

The clock, the sleep and the HTTP transport are parameters, so tests run without a network or
real waiting. Terminal output (progress bar, summary) is the CLI's business: `push_messages`
reports each finished message through an optional callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from consumer.simulator.generate import (
    MailingSpec,
    count_records,
    generate_records,
    message_stream,
    new_message_group_id,
)

__all__ = [
    "RETRIABLE_STATUSES",
    "DeliverySummary",
    "MailingMessages",
    "MessageResult",
    "Messages",
    "PushOptions",
    "RetryPolicy",
    "encode_message",
    "fresh_message_group_id",
    "mailing_messages",
    "message_filename",
    "parse_retry_after",
    "push_messages",
    "retry_delay",
    "user_agent",
    "write_messages",
]

Message = Mapping[str, Any]
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
OnResult = Callable[["MessageResult"], None]


class Messages(Protocol):
    """What to deliver: envelopes drawn one at a time, and how many there are up front."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Message]: ...


# 408/500/502/504 are transient the same way 503 is; the service itself only sends 503 and 429.
RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one message: bounded attempts, exponential backoff, capped Retry-After."""

    attempts: int = 8  # tries per message, the first one included
    backoff_s: float = 0.5  # wait before the first retry when the answer names none
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0  # a Retry-After beyond this is cut to it
    jitter: float = 0.25  # backoff is scaled by a factor in [1 - jitter, 1]

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("waits must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")


@dataclass(frozen=True)
class PushOptions:
    """How to push: body encoding, credentials, pacing, parallelism, patience."""

    gzip: bool = False
    auth: tuple[str, str] | None = None  # HTTP Basic user, password
    rate: float = 0.0  # messages started per second; 0 = as fast as the service answers
    concurrency: int = 1  # messages in flight at once
    timeout_s: float = 120.0  # per request
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must be >= 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout must be > 0")


@dataclass(frozen=True)
class MessageResult:
    """What became of one message."""

    msg_grp_id: str
    msg_ser_nbr: int
    records: int
    bytes: int  # body as sent (compressed with gzip)
    delivered: bool
    attempts: int
    status: int | None = None  # the last HTTP status; None after a connection error
    duplicate: bool = False
    error: str | None = None


@dataclass
class DeliverySummary:
    """Totals of one run; ``ok`` only when every message was delivered."""

    messages: int  # messages the run had to deliver
    msg_grp_ids: list[str] = field(default_factory=list)  # of the messages tried, in order
    delivered: int = 0
    records: int = 0  # records in delivered messages
    bytes: int = 0  # bodies of delivered messages, as sent
    seconds: float = 0.0  # the whole run, generating included
    generating_seconds: float = 0.0  # counting and generating the messages
    retries: int = 0  # attempts beyond each message's first
    duplicates: int = 0  # delivered messages the service reported as duplicates
    failures: int = 0  # messages given up on (refused, or out of attempts)
    errors: list[str] = field(default_factory=list)

    @property
    def not_sent(self) -> int:
        """Messages never tried because the run stopped early."""
        return self.messages - self.delivered - self.failures

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.delivered == self.messages

    def add(self, result: MessageResult) -> None:
        """Count one finished message."""
        if result.msg_grp_id not in self.msg_grp_ids:
            self.msg_grp_ids.append(result.msg_grp_id)
        self.retries += result.attempts - 1
        if result.delivered:
            self.delivered += 1
            self.records += result.records
            self.bytes += result.bytes
            self.duplicates += result.duplicate
        else:
            self.failures += 1
            if result.error:
                self.errors.append(result.error)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "msg_grp_ids": self.msg_grp_ids,
            "messages": self.messages,
            "delivered": self.delivered,
            "records": self.records,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "generating_seconds": round(self.generating_seconds, 3),
            "records_per_s": round(self.records_per_s, 1),
            "retries": self.retries,
            "duplicates": self.duplicates,
            "failures": self.failures,
            "not_sent": self.not_sent,
            "errors": self.errors,
        }


# ---------------------------------------------------------------------------------------------
# Pure helpers


@dataclass(frozen=True)
class MailingMessages:
    """The envelopes of one message group carrying every record of a mailing, made lazily.

    Iterating generates the records as the envelopes are drawn, so memory holds one message
    (and one tray's records) at a time; ``len`` and `total_records` come from
    `count_records`, which only replays the mailing's fates. Iterable again and again, with
    the same envelopes each time.
    """

    spec: MailingSpec
    message_size: int
    msg_grp_id: str

    def __post_init__(self) -> None:
        if self.message_size < 1:
            raise ValueError("message_size must be >= 1")

    @cached_property
    def total_records(self) -> int:
        """totRecCnt: every record of the mailing."""
        return count_records(self.spec)

    def __len__(self) -> int:
        """totMsgCnt: at least one message, an empty one for an empty mailing."""
        return max(1, -(-self.total_records // self.message_size))

    def __iter__(self) -> Iterator[dict[str, object]]:
        return message_stream(
            generate_records(self.spec),
            total_records=self.total_records,
            message_size=self.message_size,
            msg_grp_id=self.msg_grp_id,
        )


def mailing_messages(
    spec: MailingSpec, *, message_size: int, msg_grp_id: str | None = None
) -> MailingMessages:
    """The message group carrying every record of the mailing `spec` (see `MailingMessages`).

    Without `msg_grp_id` the id is derived from the seed and the mailing's start (the same spec
    gives the same files); callers that want IV-MTR's "new id per push" pass
    `fresh_message_group_id()`.
    """
    if msg_grp_id is None:
        msg_grp_id = new_message_group_id(random.Random(spec.seed), spec.start)
    return MailingMessages(spec, message_size, msg_grp_id)


def fresh_message_group_id() -> str:
    """A new msgGrpId from the wall clock, shaped like IV-MTR's."""
    return new_message_group_id(random.Random(), datetime.now(UTC))


def encode_message(message: Message, *, gzipped: bool = False) -> bytes:
    """The request body of `message`; gzip'd with mtime 0, so equal messages give equal bytes."""
    body = orjson.dumps(message)
    return gzip.compress(body, mtime=0) if gzipped else body


def message_filename(message: Message, *, gzipped: bool = False) -> str:
    """``<msgGrpId>-<msgSerNbr>.json``, or ``.json.gz``."""
    return f"{message['msgGrpId']}-{message['msgSerNbr']}.json{'.gz' if gzipped else ''}"


def user_agent() -> str:
    """Names the simulator, so service logs never mistake it for USPS."""
    try:
        version = metadata.version("ivmtr-stream")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"ivmtr-stream-simulator/{version} (IV-MTR push simulator) httpx/{httpx.__version__}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(
    attempt: int, retry_after: float | None, policy: RetryPolicy, rng: random.Random
) -> float:
    """How long to wait after failed try number `attempt` (1-based).

    The service's Retry-After wins (it knows when it will have room); only without one does the
    client back off exponentially, jittered so parallel workers do not retry in lock step.
    """
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after_s)
    backoff = min(policy.backoff_s * 2.0 ** (attempt - 1), policy.max_backoff_s)
    return backoff * (1.0 - policy.jitter * rng.random())


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The service's JSON answer, or {} when the body is not a JSON object."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(response: httpx.Response) -> str:
    answer = _answer(response)
    detail = answer.get("detail") or answer.get("error") or response.text[:200]
    return f"HTTP {response.status_code}: {detail}".rstrip(": ")


# ---------------------------------------------------------------------------------------------
# Files


def write_messages(
    messages: Messages,
    directory: Path,
    *,
    gzipped: bool = False,
    on_result: OnResult | None = None,
    clock: Clock = time.monotonic,
) -> DeliverySummary:
    """Write each message to `directory` as `message_filename(...)`; the summary counts files.

    Messages are drawn one at a time, each written before the next is made.
    """
    started = clock()
    summary = DeliverySummary(messages=len(messages))
    summary.generating_seconds = clock() - started
    directory.mkdir(parents=True, exist_ok=True)
    drawn = iter(messages)
    while (message := _draw(drawn, summary, clock)) is not None:
        body = encode_message(message, gzipped=gzipped)
        (directory / message_filename(message, gzipped=gzipped)).write_bytes(body)
        result = MessageResult(
            msg_grp_id=str(message["msgGrpId"]),
            msg_ser_nbr=int(message["msgSerNbr"]),
            records=int(message["recCnt"]),
            bytes=len(body),
            delivered=True,
            attempts=1,
        )
        summary.add(result)
        if on_result is not None:
            on_result(result)
    summary.seconds = clock() - started
    return summary


def _draw(messages: Iterator[Message], summary: DeliverySummary, clock: Clock) -> Message | None:
    """The next message, or None at the end; the time it took counts as generating."""
    started = clock()
    message = next(messages, None)
    summary.generating_seconds += clock() - started
    return message


# ---------------------------------------------------------------------------------------------
# HTTP


class _Pacer:
    """Spaces message starts `1/rate` apart across all workers (rate 0: no pacing)."""

    def __init__(self, rate: float, clock: Clock, sleep: Sleep) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        # Slots are handed out before sleeping, so concurrent workers never share one.
        slot = now if self._next is None else max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


async def push_messages(
    messages: Messages,
    url: str,
    options: PushOptions | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: OnResult | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> DeliverySummary:
    """POST every message to `url`; stops early when the service refuses a message for good.

    Messages are drawn as workers need them, so at most `PushOptions.concurrency` exist at
    once. Pass `client` to reuse one (its settings win, only headers are added per request), or
    `transport` to have one built around it, e.g. ``httpx.MockTransport`` in tests.
    """
    options = options or PushOptions()
    rng = rng or random.Random()
    started = clock()
    summary = DeliverySummary(messages=len(messages))
    summary.generating_seconds = clock() - started
    headers = {"Content-Type": "application/json", "User-Agent": user_agent()}
    if options.gzip:
        headers["Content-Encoding"] = "gzip"
    auth = httpx.BasicAuth(*options.auth) if options.auth else None
    drawn = iter(messages)
    drawing = asyncio.Lock()
    pacer = _Pacer(options.rate, clock, sleep)
    stop = asyncio.Event()

    async def next_message() -> Message | None:
        # One draw at a time (a generator cannot run in two threads at once), in a worker
        # thread, so that generating a message never delays the answers to those in flight.
        async with drawing:
            if stop.is_set():
                return None
            return await asyncio.to_thread(_draw, drawn, summary, clock)

    async def send(http: httpx.AsyncClient, message: Message) -> MessageResult:
        body = encode_message(message, gzipped=options.gzip)
        where = f"message {message['msgGrpId']}/{message['msgSerNbr']}"

        def result(
            attempts: int,
            status: int | None,
            *,
            delivered: bool,
            duplicate: bool = False,
            error: str | None = None,
        ) -> MessageResult:
            return MessageResult(
                msg_grp_id=str(message["msgGrpId"]),
                msg_ser_nbr=int(message["msgSerNbr"]),
                records=int(message["recCnt"]),
                bytes=len(body),
                delivered=delivered,
                attempts=attempts,
                status=status,
                duplicate=duplicate,
                error=error,
            )

        status: int | None = None
        error = ""
        for attempt in range(1, options.retry.attempts + 1):
            retry_after: float | None = None
            try:
                response = await http.post(
                    url, content=body, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
            except httpx.TransportError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                status = response.status_code
                if response.is_success:
                    duplicate = _answer(response).get("duplicate") is True
                    return result(attempt, status, delivered=True, duplicate=duplicate)
                error = _describe(response)
                if status not in RETRIABLE_STATUSES:
                    return result(
                        attempt, status, delivered=False, error=f"{where} refused: {error}"
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if stop.is_set():
                # Another message failed for good; this one would only add to the noise.
                return result(attempt, status, delivered=False, error=f"{where} abandoned: {error}")
            if attempt < options.retry.attempts:
                await sleep(retry_delay(attempt, retry_after, options.retry, rng))
        return result(
            options.retry.attempts,
            status,
            delivered=False,
            error=f"{where} not delivered after {options.retry.attempts} attempts: {error}",
        )

    async def worker(http: httpx.AsyncClient) -> None:
        while (message := await next_message()) is not None:
            await pacer.wait()
            if stop.is_set():
                return
            result = await send(http, message)
            summary.add(result)
            if on_result is not None:
                on_result(result)
            if not result.delivered:
                # A refusal means every later message would be refused too (bad URL, auth,
                # payload): stop rather than hammer the service. Out of attempts likewise.
                stop.set()

    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, timeout=options.timeout_s)
            )
        workers = min(options.concurrency, max(1, summary.messages))
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker(client))
    summary.seconds = clock() - started
    return summary
