"""The shipper: one record per POST, ``concurrency`` in flight, retried, rate-limited, paused on a bad token.

Outcomes (shared/DESIGN.md "Failures"):
- 2xx with a JSON object whose ``ret`` is the integer 0: acknowledged.
- connection errors, timeouts, 408, 429, 5xx except 501: retried forever, jittered exponential backoff
  (0.5 s doubling) or the server's Retry-After, never longer than ``max_backoff``. Unexpected 1xx/3xx
  statuses are retried too: redirects are not followed, and a misrouted URL must not empty the log
  into the dead-letter file.
- 401/403: every sender pauses; one request (the probe) keeps retrying with backoff; any answer that is
  not 401/403 lifts the pause. Nothing is dead-lettered for a bad token. A warning says so once a minute.
- other 4xx (409, 400, ...), 501, and 2xx whose answer is not JSON or has no integer ``ret`` or a
  ``ret != 0``: dead-lettered after that one attempt. A 2xx without a readable ``ret`` is not an ack:
  the platform did not confirm it took the record, and retrying the same body would get the same answer.

The payload is built once, at ``submit``, so nonce and ts are the same on every attempt. Records still
in flight at shutdown are cancelled and stay unsettled: the watermark keeps them for the next run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from httpx_aiohttp import AiohttpTransport

from tailer import __version__
from tailer.errors import ShipError
from tailer.record import Record, build_payload
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.latency import LatencyHistogram
from tailer.ship.ratelimit import TokenBucket, backoff_delay, retry_delay
from tailer.ship.verdict import Verdict, judge

if TYPE_CHECKING:
    from tailer.ship.settings import EndpointSettings

log = logging.getLogger(__name__)

WARN_EVERY = 60.0  # seconds between repeats of the same warning


@dataclass(slots=True, frozen=True)
class Outcome:
    kind: str  # "acked" | "dead_lettered"
    status: int | None
    answer: Any
    attempts: int
    ticket: Any = None  # what the caller gave submit(): which file and offset the record settles


@dataclass(slots=True)
class ShipStats:
    submitted: int = 0
    acked: int = 0
    dead_lettered: int = 0
    retries: int = 0
    auth_failures: int = 0
    transport_errors: int = 0
    internal_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    retries_by_reason: dict[str, int] = field(default_factory=dict)  # Verdict.reason: "HTTP 503", "ConnectError"
    dead_by_reason: dict[str, int] = field(default_factory=dict)  # "HTTP 400", "rejected", ...: bounded


class Shipper:
    """Async context manager. ``clock`` (wall time for ts) is injectable for tests."""

    def __init__(
        self,
        endpoint: EndpointSettings,
        *,
        dead_letter: DeadLetterWriter,
        on_settled: Callable[[Record, Outcome], None],
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if not endpoint.url.startswith(("http://", "https://")):
            raise ShipError(
                f"endpoint url must be http(s)://... (resolve 'embedded' first), got {endpoint.url!r}"
            )
        if endpoint.concurrency < 1:
            raise ShipError(f"concurrency must be at least 1, got {endpoint.concurrency}")
        self.endpoint = endpoint
        self.stats = ShipStats()
        self.latency = LatencyHistogram()  # submit -> settle, seconds (metrics)
        self._dead_letter = dead_letter
        self._on_settled = on_settled
        self._transport = transport
        self._clock = clock
        # Holds the token: never logged, never in a repr. A User-Agent, as httpx.AsyncClient used to add:
        # some gateways refuse requests without one.
        self._headers = httpx.Headers({**endpoint.headers(), "User-Agent": f"oper-tailer/{__version__}"})
        # Parsed once: building each request from a URL string would re-parse it every time (httpx's
        # build_request also merged headers and cookies: a third of the client's time per record).
        self._url = httpx.URL(endpoint.url)
        # Requests go straight to the httpx transport, not through an httpx.AsyncClient: the client's send
        # (auth flow, redirect loop, cookie jar, event hooks) was ~70 us of CPU per record, 30% of the
        # shipper's, for features an OperReport POST never uses (benchmarks/ship.py). The timeout the
        # client would have set is set here, per request, as the client does.
        self._extensions = {"timeout": httpx.Timeout(endpoint.timeout).as_dict()}
        self._client: httpx.AsyncBaseTransport | None = None  # the open transport
        self._slots = asyncio.Semaphore(endpoint.concurrency)
        self._limiter = TokenBucket(endpoint.rate_limit) if endpoint.rate_limit > 0 else None
        self._resume = asyncio.Event()
        self._resume.set()
        self._probe: int | None = None  # id of the delivery allowed to send while paused
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._warned: dict[str, float] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"Shipper(url={self.endpoint.url!r}, in_flight={self.in_flight}, paused={self.paused})"

    async def __aenter__(self) -> Shipper:
        n = self.endpoint.concurrency
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        transport = self._transport or AiohttpTransport(limits=limits, verify=self.endpoint.verify())
        self._client = transport
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def open(self) -> bool:
        return not self._closed and self._client is not None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    async def submit(
        self, record: Record, ticket: Any = None, *, payload: dict[str, Any] | None = None
    ) -> None:
        """Start delivering ``record``; waits while paused, for a free slot, then for the rate limit.
        ``ticket`` comes back in the record's Outcome: the caller's handle on where it settles.
        ``payload``: a body built earlier, sent as is (``tailer dlq resend`` keeps its nonce and ts)."""
        if self._closed or self._client is None:
            raise ShipError("shipper is not open")
        await self._resume.wait()
        await self._slots.acquire()
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            if self._closed:
                raise ShipError("shipper closed while waiting")
        except BaseException:
            self._slots.release()
            raise
        ep = self.endpoint
        if payload is None:
            payload = build_payload(
                record, ts_unit=ep.ts_unit, ts_source=ep.ts_source, nonce=ep.nonce, now=self._clock()
            )
        self.stats.submitted += 1
        self._next_id += 1
        task = asyncio.create_task(self._deliver(self._next_id, record, payload, ticket))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is in flight; False if ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            # _deliver catches everything; reaching here is a bug, and the record stays unsettled.
            log.error("delivery task failed; record left unsettled", exc_info=task.exception())

    def _warn(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -math.inf) >= WARN_EVERY:
            self._warned[key] = now
            log.warning(message, *args)

    async def _deliver(self, ident: int, record: Record, payload: dict[str, Any], ticket: Any = None) -> None:
        started = time.monotonic()
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        attempts = failures = 0
        while True:
            while self.paused and self._probe != ident:
                await self._resume.wait()
            attempts += 1
            status: int | None = None
            retry_after: str | None = None
            try:
                assert self._client is not None
                request = httpx.Request(
                    "POST", self._url, content=body, headers=self._headers, extensions=self._extensions
                )
                response = await self._client.handle_async_request(request)
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
                verdict = judge(status, content)
            except httpx.TransportError as exc:  # connect, read, write, pool errors and timeouts
                self.stats.transport_errors += 1
                verdict = Verdict("retry", type(exc).__name__)
            except Exception:  # noqa: BLE001 - never let a delivery die silently; retry instead
                self.stats.internal_errors += 1
                log.exception("unexpected error sending a record (rule %s); retrying", record.rule)
                verdict = Verdict("retry", "internal error")

            if verdict.kind in ("ack", "dead"):
                self._lift_pause()
                await self._settle(record, payload, verdict, status, attempts, ticket)
                self.latency.observe(time.monotonic() - started)
                return
            failures += 1
            self.stats.retries += 1
            by = self.stats.retries_by_reason
            by[verdict.reason] = by.get(verdict.reason, 0) + 1
            if verdict.kind == "auth":
                self.stats.auth_failures += 1
                if self._probe is None:
                    self._probe = ident
                    self._resume.clear()
                self._warn("auth", "endpoint refuses the token (HTTP %s); sending paused, retrying", status)
                if self._probe != ident:
                    continue  # wait for the probe to get through, then resend at once
                delay = backoff_delay(failures, cap=self.endpoint.max_backoff)
            else:
                self._warn("retry", "endpoint unavailable (%s); retrying with backoff", verdict.reason)
                delay = retry_delay(failures, cap=self.endpoint.max_backoff, retry_after=retry_after)
            log.debug("retrying record (rule %s) in %.3fs after %s", record.rule, delay, verdict.reason)
            await asyncio.sleep(delay)

    def _lift_pause(self) -> None:
        if self.paused:
            log.warning("endpoint accepts the token again; sending resumed")
        self._probe = None
        self._resume.set()

    async def _settle(
        self,
        record: Record,
        payload: dict[str, Any],
        verdict: Verdict,
        status: int | None,
        attempts: int,
        ticket: Any = None,
    ) -> None:
        if verdict.kind == "ack":
            self.stats.acked += 1
            outcome = Outcome("acked", status, verdict.answer, attempts, ticket)
        else:
            await self._write_dead_letter(record, payload, verdict, status, attempts)
            self.stats.dead_lettered += 1
            by, why = self.stats.dead_by_reason, verdict.reason.partition(":")[0]  # not ret's msg: bounded
            by[why] = by.get(why, 0) + 1
            outcome = Outcome("dead_lettered", status, verdict.answer, attempts, ticket)
        try:
            self._on_settled(record, outcome)
        except Exception:  # noqa: BLE001 - the caller's bug must not kill the delivery loop silently
            log.exception("on_settled failed for a record of rule %s", record.rule)

    async def _write_dead_letter(
        self, record: Record, payload: dict[str, Any], verdict: Verdict, status: int | None, attempts: int
    ) -> None:
        """Retry the write (not the POST) until the line is durable: only then may the record settle."""
        failures = 0
        while True:
            try:
                # Synchronous on purpose: dead letters are rare and an fsync is cheaper than a thread hop.
                self._dead_letter.write(
                    payload=payload,
                    answer=verdict.answer,
                    status=status,
                    attempts=attempts,
                    origin=record.origin,
                    rule=record.rule,
                    reason=verdict.reason,
                )
                return
            except OSError as exc:
                failures += 1
                self._warn(
                    "dlq", "cannot write the dead-letter file %s (%s); retrying", self._dead_letter.path, exc
                )
                await asyncio.sleep(backoff_delay(failures, cap=self.endpoint.max_backoff))
