"""The shipper against a real HTTP server on 127.0.0.1 that answers a scripted sequence of statuses."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from helpers import wait_until_async

from tailer.receiver.embedded import EmbeddedReceiver
from tailer.record import Origin, Record
from tailer.ship.deadletter import DeadLetterWriter, read_dead_letters
from tailer.ship.ratelimit import TokenBucket, backoff_delay, parse_retry_after, retry_delay
from tailer.ship.settings import EndpointSettings, Secret
from tailer.ship.shipper import Outcome, Shipper
from tailer.ship.verdict import judge

TOKEN = "s3cr3t-T0KEN-value"


OK = (200, {"ret": 0, "msg": "ok"})


class ScriptedServer:
    """Answers POSTs from ``script`` (status, body[, headers]) in order, the last entry forever after;
    ``hold`` (an Event) makes every request wait until it is set. Counts concurrency."""

    def __init__(self, script: list[tuple], *, delay: float = 0.0):
        self.script = list(script)
        self.delay = delay
        self.hold: asyncio.Event | None = None
        self.requests: list[dict[str, Any]] = []
        self.current = self.max_concurrent = 0
        self.url = ""
        self.answer = None  # optional callable(request_index, body) -> entry, overrides script

    async def handle(self, request: web.Request) -> web.Response:
        self.current += 1
        self.max_concurrent = max(self.max_concurrent, self.current)
        try:
            raw = await request.read()
            index = len(self.requests)
            self.requests.append({"headers": dict(request.headers), "raw": raw, "json": json.loads(raw)})
            if self.hold is not None:
                await self.hold.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            entry = self.answer(index, raw) if self.answer else self.script[min(index, len(self.script) - 1)]
            status, body, *rest = entry
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(status=status, text=text, headers=rest[0] if rest else None)
        finally:
            self.current -= 1

    async def start(self, port: int = 0) -> ScriptedServer:
        app = web.Application()
        app.router.add_post("/api/v1/OperReport", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{bound}/api/v1/OperReport"
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    def nonces(self) -> list[str]:
        return [r["json"]["nonce"] for r in self.requests]


def record(n: int = 1, **kw: Any) -> Record:
    origin = Origin(file_id="fp-abc", path="/var/log/app.log", offset=100 * n)
    fields = {"gid": 5, "target_id": "c1", "uid": 42, "ext1": str(n)}
    return Record(
        rule="vote", oper_id="1504000120618", fields=fields, event_ts=1_700_000_000.5, origin=origin, **kw
    )


def endpoint(url: str, **kw: Any) -> EndpointSettings:
    kw.setdefault("max_backoff", 0.02)
    kw.setdefault("timeout", 5.0)
    return EndpointSettings(url=url, token=Secret(TOKEN), **kw)


class Harness:
    def __init__(self, tmp_path: Path):
        self.dlq = tmp_path / "state" / "dead-letter.jsonl"
        self.settled: list[tuple[Record, Outcome]] = []
        self.dlq_lines_at_settle: list[int] = []

    def on_settled(self, rec: Record, outcome: Outcome) -> None:
        self.settled.append((rec, outcome))
        self.dlq_lines_at_settle.append(len(list(read_dead_letters(self.dlq))))

    def shipper(self, ep: EndpointSettings, **kw: Any) -> Shipper:
        return Shipper(ep, dead_letter=DeadLetterWriter(self.dlq), on_settled=self.on_settled, **kw)


def run(coro, limit: float = 20.0):
    async def bounded():
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


async def ship_all(h: Harness, ep: EndpointSettings, records: list[Record], **kw: Any) -> Shipper:
    async with h.shipper(ep, **kw) as shipper:
        for rec in records:
            await shipper.submit(rec)
        assert await shipper.drain(10.0)
    return shipper


# --- ack path -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "expected"), [("", TOKEN), ("Bearer", f"Bearer {TOKEN}")])
def test_ack_sends_exact_headers_and_body(tmp_path, scheme, expected):
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([OK]).start()
        try:
            shipper = await ship_all(h, endpoint(server.url, auth_scheme=scheme), [record(1)])
        finally:
            await server.stop()
        return server, shipper

    server, shipper = run(main())
    [req] = server.requests
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Authorization"] == expected
    assert req["headers"]["User-Agent"].startswith("oper-tailer/")
    assert req["json"]["ts"] == 1_700_000_000
    assert req["json"]["data"] == {
        "oper_id": "1504000120618",
        "gid": 5,
        "target_id": "c1",
        "uid": 42,
        "ext1": "1",
    }
    assert set(req["json"]) == {"ts", "nonce", "data"}
    [(rec, outcome)] = h.settled
    assert rec == record(1)
    assert outcome == Outcome("acked", 200, {"ret": 0, "msg": "ok"}, 1)
    assert shipper.stats.acked == 1 and shipper.stats.submitted == 1 and shipper.stats.by_status == {200: 1}
    assert not h.dlq.exists()


def test_random_nonce_differs_between_records_and_deterministic_nonce_is_sha_of_origin(tmp_path):
    h = Harness(tmp_path)

    async def main(mode):
        server = await ScriptedServer([OK]).start()
        try:
            await ship_all(h, endpoint(server.url, nonce=mode), [record(1), record(2), record(3)])
        finally:
            await server.stop()
        return sorted(server.nonces())

    random_nonces = run(main("random"))
    assert len(set(random_nonces)) == 3
    expected = sorted(hashlib.sha256(f"fp-abc:{100 * n}".encode()).hexdigest()[:32] for n in (1, 2, 3))
    assert run(main("deterministic")) == expected


# --- retries ------------------------------------------------------------------------------------------


def test_503_429_408_are_retried_with_the_same_nonce_and_ts(tmp_path):
    h = Harness(tmp_path)
    ticks = itertools.count(1_700_000_000, 7)  # every clock read differs: a rebuilt payload would show

    async def main():
        script = [(503, "busy"), (429, {"ret": 1}), (408, ""), (500, "oops"), OK]
        server = await ScriptedServer(script).start()
        try:
            ep = endpoint(server.url, ts_source="now", ts_unit="ms")
            shipper = await ship_all(h, ep, [record(1)], clock=lambda: float(next(ticks)))
        finally:
            await server.stop()
        return server, shipper

    server, shipper = run(main())
    assert len(server.requests) == 5
    assert len({r["raw"] for r in server.requests}) == 1
    assert server.requests[0]["json"]["ts"] == 1_700_000_000_000
    [(_, outcome)] = h.settled
    assert outcome.kind == "acked" and outcome.attempts == 5
    assert shipper.stats.retries == 4
    assert shipper.stats.by_status == {503: 1, 429: 1, 408: 1, 500: 1, 200: 1}
    assert not h.dlq.exists()


def test_endpoint_timeout_bounds_each_attempt_and_a_timed_out_one_is_retried(tmp_path):
    # The shipper sends through the transport, not httpx.AsyncClient: the timeout must still apply.
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([OK], delay=2.0).start()
        try:
            async with h.shipper(endpoint(server.url, timeout=0.2)) as shipper:
                await shipper.submit(record(1))
                await asyncio.sleep(1.0)
                return shipper, len(server.requests)
        finally:
            await server.stop()

    shipper, attempts = run(main())
    assert attempts >= 2 and shipper.stats.transport_errors >= 2
    assert h.settled == [] and shipper.stats.acked == 0


def test_connection_refused_is_retried_until_the_server_comes_up(tmp_path):
    h = Harness(tmp_path)
    with socket.socket() as s:  # a port nobody listens on (until we start the server there)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        url = f"http://127.0.0.1:{port}/api/v1/OperReport"
        async with h.shipper(endpoint(url)) as shipper:
            await shipper.submit(record(1))
            for _ in range(500):  # bounded: wait until at least two connection attempts failed
                if shipper.stats.transport_errors >= 2:
                    break
                await asyncio.sleep(0.01)
            assert shipper.stats.transport_errors >= 2 and not h.settled
            server = await ScriptedServer([OK]).start(port)
            try:
                assert await shipper.drain(10.0)
            finally:
                await server.stop()
        return server

    server = run(main())
    assert len(server.requests) == 1
    assert [o.kind for _, o in h.settled] == ["acked"]


def test_retry_after_beyond_max_backoff_is_capped_in_practice(tmp_path):
    h = Harness(tmp_path)

    async def main():
        # An hour's Retry-After with max_backoff 0.02 s: an uncapped shipper would outlive the test.
        server = await ScriptedServer([(503, "later", {"Retry-After": "3600"}), OK]).start()
        try:
            await ship_all(h, endpoint(server.url), [record(1)])
        finally:
            await server.stop()
        return server

    assert len(run(main()).requests) == 2
    assert h.settled[0][1].attempts == 2


def test_retry_delay_honours_retry_after_seconds_and_http_date_capped_at_max_backoff():
    assert retry_delay(1, cap=60.0, retry_after="2") == 2.0
    assert retry_delay(1, cap=60.0, retry_after="3600") == 60.0
    assert retry_delay(1, cap=60.0, retry_after="Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert retry_delay(1, cap=10.0, retry_after="Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412600.0) == 0.0  # in the past
    # unreadable Retry-After falls back to jittered backoff
    assert retry_delay(3, cap=60.0, retry_after="soon", rand=1.0) == 2.0
    assert parse_retry_after("nan") is None and parse_retry_after(None) is None


def test_backoff_doubles_from_half_a_second_with_full_jitter_and_cap():
    assert [backoff_delay(n, cap=60.0, rand=1.0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 32, 60]
    assert backoff_delay(1000, cap=60.0, rand=1.0) == 60.0
    assert backoff_delay(4, cap=60.0, rand=0.0) == 0.0
    assert backoff_delay(4, cap=60.0, rand=0.25) == 1.0


# --- dead letters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((400, {"ret": 400, "msg": "bad gid"}), "HTTP 400"),
        ((409, {"ret": 9, "msg": "dup nonce"}), "HTTP 409"),
        ((501, "not implemented"), "HTTP 501"),
        ((200, {"ret": 3, "msg": "unknown oper_id"}), "rejected: ret=3 msg='unknown oper_id'"),
        ((200, "<html>welcome</html>"), "answer is not JSON"),
        ((200, {"msg": "ok"}), "answer has no integer ret"),
        ((200, {"ret": "0"}), "answer has no integer ret"),
    ],
)
def test_rejection_is_dead_lettered_after_exactly_one_attempt(tmp_path, answer, reason):
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([answer, OK]).start()
        try:
            shipper = await ship_all(h, endpoint(server.url), [record(7)])
        finally:
            await server.stop()
        return server, shipper

    server, shipper = run(main())
    assert len(server.requests) == 1
    [entry] = list(read_dead_letters(h.dlq))
    status, body = answer
    assert entry["reason"] == reason
    assert entry["status"] == status
    assert entry["answer"] == body
    assert entry["attempts"] == 1
    assert entry["rule"] == "vote"
    assert entry["origin"] == {"file_id": "fp-abc", "path": "/var/log/app.log", "offset": 700}
    assert entry["payload"] == server.requests[0]["json"]
    [(_, outcome)] = h.settled
    assert outcome.kind == "dead_lettered" and outcome.status == status and outcome.attempts == 1
    assert h.dlq_lines_at_settle == [1]  # on_settled ran after the line was on disk
    assert shipper.stats.dead_lettered == 1 and shipper.stats.acked == 0


def test_judge_classifies_statuses():
    kinds = {s: judge(s, b'{"ret":0}').kind for s in (200, 201, 301, 400, 401, 403, 408, 429, 500, 501, 503)}
    assert kinds == {
        200: "ack",
        201: "ack",
        301: "retry",
        400: "dead",
        401: "auth",
        403: "auth",
        408: "retry",
        429: "retry",
        500: "retry",
        501: "dead",
        503: "retry",
    }
    assert judge(200, b"true").kind == "dead"
    assert judge(200, b'{"ret": false}').kind == "dead"


# --- auth pause ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", [401, 403])
def test_refused_token_pauses_all_sending_until_accepted_and_never_logs_the_token(tmp_path, caplog, refusal):
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path)
    refusals = 6

    async def main():
        server = ScriptedServer([])
        server.answer = lambda i, _: (refusal, {"ret": refusal}) if i < refusals else OK
        await server.start()
        server.hold = asyncio.Event()
        try:
            async with h.shipper(endpoint(server.url, concurrency=4)) as shipper:
                # Two records in flight when the refusals arrive; two slots stay free.
                await _submit_all(shipper, [record(1), record(2)])
                assert await wait_until_async(lambda: len(server.requests) == 2, timeout=10, step=0.005)
                server.hold.set()
                assert await wait_until_async(lambda: shipper.paused, timeout=10, step=0.005)
                feeder = asyncio.create_task(_submit_all(shipper, [record(n) for n in range(3, 9)]))
                assert await wait_until_async(lambda: feeder.done() and shipper.in_flight == 0, timeout=10, step=0.005)
                await feeder
                assert not shipper.paused
                stats = shipper.stats
        finally:
            await server.stop()
        return server, stats

    server, stats = run(main())
    refused = server.nonces()[:refusals]
    first_two = set(refused[:2])
    # After the pause began only the probe (one of the two in flight) was sent, over and over.
    assert len(set(refused[2:])) == 1 and refused[2] in first_two
    assert set(server.nonces()[refusals : refusals + 1]) <= first_two  # the probe got through first
    assert len(set(server.nonces())) == 8
    assert sorted(o.kind for _, o in h.settled) == ["acked"] * 8
    assert not h.dlq.exists()
    assert stats.auth_failures == refusals
    warnings = [r for r in caplog.records if "refuses the token" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert f"HTTP {refusal}" in warnings[0].getMessage()
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text


async def _submit_all(shipper: Shipper, records: list[Record]) -> None:
    for rec in records:
        await shipper.submit(rec)


def test_token_never_appears_in_dead_letters_or_reprs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([(400, "bad"), (503, "x"), OK]).start()
        try:
            async with h.shipper(endpoint(server.url, auth_scheme="Bearer")) as shipper:
                text = repr(shipper)
                for n in (1, 2, 3):
                    await shipper.submit(record(n))
                assert await shipper.drain(10.0)
        finally:
            await server.stop()
        return text

    text = run(main())
    assert TOKEN not in text
    assert h.dlq.exists() and TOKEN not in h.dlq.read_text()
    assert TOKEN not in caplog.text


# --- window, rate, drain, shutdown --------------------------------------------------------------------


def test_concurrency_bound_is_respected_and_submit_blocks_while_the_window_is_full(tmp_path):
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([OK]).start()
        server.hold = asyncio.Event()
        try:
            async with h.shipper(endpoint(server.url, concurrency=4)) as shipper:
                for n in range(4):
                    await shipper.submit(record(n + 1))
                blocked = asyncio.create_task(shipper.submit(record(5)))
                for _ in range(500):  # bounded: until all four requests reached the server
                    if len(server.requests) == 4:
                        break
                    await asyncio.sleep(0.005)
                assert not blocked.done() and shipper.in_flight == 4
                assert not await shipper.drain(0.01)
                server.hold.set()
                await blocked
                server.hold = None
                server.delay = 0.01
                for n in range(6, 41):
                    await shipper.submit(record(n))
                assert await shipper.drain(10.0)
        finally:
            await server.stop()
        return server

    server = run(main())
    assert server.max_concurrent == 4
    assert len(h.settled) == 40


def test_token_bucket_keeps_every_window_within_rate_plus_one_second_of_burst():
    now = [0.0]
    bucket = TokenBucket(10.0, clock=lambda: now[0])
    grants = []
    for i in range(100):
        if i == 50:
            now[0] += 100.0  # a long idle spell must not buy more than a second's worth
        now[0] += bucket.reserve()  # the caller sleeps exactly the returned delay
        grants.append(now[0])
    for start in grants:
        in_window = sum(1 for g in grants if start <= g < start + 1.0)
        assert in_window <= 10 + 10
    # after the idle spell: 10 go at once, the rest are paced at 10/s
    after = grants[50:]
    assert after[9] == after[0]
    assert after[-1] - after[0] == pytest.approx(40 / 10.0)


def test_token_bucket_below_one_per_second_allows_one_then_waits():
    now = [0.0]
    bucket = TokenBucket(0.5, clock=lambda: now[0])
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        TokenBucket(0.0)


def test_rate_limited_shipper_delivers_everything(tmp_path):
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([OK]).start()
        try:
            await ship_all(h, endpoint(server.url, rate_limit=200.0), [record(n) for n in range(1, 21)])
        finally:
            await server.stop()

    run(main())
    assert len(h.settled) == 20


def test_shutdown_cancels_in_flight_records_and_leaves_them_unsettled(tmp_path):
    h = Harness(tmp_path)

    async def main():
        server = await ScriptedServer([(503, "down")]).start()
        try:
            async with h.shipper(endpoint(server.url)) as shipper:
                await shipper.submit(record(1))
                await shipper.submit(record(2))
                assert not await shipper.drain(0.05)
            assert shipper.in_flight == 0
        finally:
            await server.stop()
        return shipper

    shipper = run(main())
    assert h.settled == [] and not h.dlq.exists()
    assert shipper.stats.retries >= 2


def test_mock_transport_and_on_settled_error_is_logged_not_lost(tmp_path, caplog):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"ret": 0, "msg": "ok"})

    def broken(rec, outcome):
        raise RuntimeError("caller bug")

    async def main():
        ep = endpoint("http://127.0.0.1:9/api/v1/OperReport")
        transport = httpx.MockTransport(handler)
        dlq = DeadLetterWriter(tmp_path / "dlq.jsonl")
        async with Shipper(ep, dead_letter=dlq, on_settled=broken, transport=transport) as shipper:
            await shipper.submit(record(1))
            assert await shipper.drain(5.0)
        return shipper

    shipper = run(main())
    assert len(calls) == 1 and shipper.stats.acked == 1
    assert any("on_settled failed" in r.getMessage() for r in caplog.records)


# --- against the project's reference receiver ---------------------------------------------------------


def test_everything_arrives_once_at_the_receiver_despite_injected_503s(tmp_path, make_receiver):
    receiver: EmbeddedReceiver = make_receiver(
        token=TOKEN, fail_rate=0.3, fail_status=503, retry_after=30, seed=7
    )
    h = Harness(tmp_path)
    records = [record(n) for n in range(1, 61)]

    async def main():
        return await ship_all(h, endpoint(receiver.url, concurrency=8), records)

    shipper = run(main())
    stored = receiver.records()
    assert sorted(r["data"]["ext1"] for r in stored) == sorted(str(n) for n in range(1, 61))
    assert len({r["nonce"] for r in stored}) == 60
    assert receiver.stats.get(503, 0) >= 1 and shipper.stats.retries == receiver.stats[503]
    assert sorted(o.kind for _, o in h.settled) == ["acked"] * 60


def test_wrong_token_pauses_until_the_receiver_accepts_it(tmp_path, make_receiver):
    receiver: EmbeddedReceiver = make_receiver(token="another-token")
    h = Harness(tmp_path)

    async def main():
        async with h.shipper(endpoint(receiver.url, concurrency=4)) as shipper:
            await shipper.submit(record(1))
            assert await wait_until_async(lambda: shipper.paused, timeout=10, step=0.005)
            feeder = asyncio.create_task(_submit_all(shipper, [record(n) for n in range(2, 6)]))
            assert await wait_until_async(lambda: receiver.stats.get(401, 0) >= 3, timeout=10, step=0.005)  # the probe keeps probing
            assert shipper.paused and h.settled == []
            await asyncio.to_thread(receiver.set_token, TOKEN)
            await feeder
            assert await shipper.drain(10.0)
            return shipper

    shipper = run(main())
    assert not shipper.paused
    assert receiver.count() == 5
    assert not h.dlq.exists()


def test_a_resent_deterministic_nonce_is_acknowledged_and_stored_once(tmp_path, receiver):
    # receiver fixture: token "test-token". A restart resends the same record with the same nonce and
    # ts; the receiver recognises the exact resend: acknowledged, not stored twice, nothing dead-lettered.
    h = Harness(tmp_path)

    async def main():
        ep = EndpointSettings(
            url=receiver.url, token=Secret("test-token"), nonce="deterministic", max_backoff=0.02
        )
        await ship_all(h, ep, [record(1)])
        await ship_all(h, ep, [record(1)])

    run(main())
    assert [o.kind for _, o in h.settled] == ["acked", "acked"]
    assert receiver.count() == 1
    assert not h.dlq.exists()
