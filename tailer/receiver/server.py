"""The embedded reference OperReport server (spec: shared/spec/OperReport.md), on aiohttp.

It checks what the spec and our readings ask of a request, in this order: injected fault (for tests and
demos), token, Content-Type, body size, JSON shape, optional ts window, nonce uniqueness; then it stores the
record in SQLite. Answers are ``{"ret": <0 or the HTTP status>, "msg": ...}``. Nonce uniqueness is a UNIQUE
constraint, so with a file-backed db it holds across restarts; with ``db_path=None`` the db is in memory and
lost on stop. ``stats`` counts requests to the OperReport path by HTTP status (other paths are not counted).
The token never appears in a repr, a log line or an answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tailer.errors import ConfigError, TailerError
from tailer.receiver.shape import check_body, parse_body

API_PATH = "/api/v1/OperReport"


@dataclass(slots=True)
class ReceiverConfig:
    token: str = field(default="dev-token", repr=False)  # repr=False: the token is never printed
    db_path: Path | None = None  # None: in-memory db, lost on stop
    ts_window: float | None = None  # seconds; None: any ts is accepted
    ts_unit: str = "s"  # s | ms: how the server reads ts for the window check
    max_body: int = 65536  # bytes
    auth_scheme: str = ""  # "Bearer" -> the header must be "Bearer <token>"
    fail_rate: float = 0.0  # probability of answering fail_status instead of handling the request
    fail_status: int = 503
    retry_after: float | None = None  # seconds, sent as Retry-After with injected failures
    latency: float = 0.0  # seconds slept before answering any OperReport request
    seed: int | None = None  # seeds the fail_rate RNG, so a run's mix of failures is reproducible


def validate_config(cfg: ReceiverConfig) -> ReceiverConfig:
    if cfg.ts_unit not in ("s", "ms"):
        raise ConfigError(f"receiver ts_unit must be 's' or 'ms', not {cfg.ts_unit!r}")
    if not 0.0 <= cfg.fail_rate <= 1.0:
        raise ConfigError(f"receiver fail_rate must be between 0 and 1, not {cfg.fail_rate}")
    if not 100 <= cfg.fail_status <= 599:
        raise ConfigError(f"receiver fail_status must be an HTTP status, not {cfg.fail_status}")
    if cfg.max_body <= 0 or cfg.latency < 0 or (cfg.ts_window is not None and cfg.ts_window < 0):
        raise ConfigError("receiver max_body must be positive, latency and ts_window not negative")
    if cfg.retry_after is not None and cfg.retry_after < 0:
        raise ConfigError("receiver retry_after must not be negative")
    return cfg


class ReceiverState:
    """Everything a request reads or changes, shared by the loop thread and the caller's thread (lock)."""

    def __init__(self, cfg: ReceiverConfig):
        self.lock = threading.Lock()
        self.cfg = validate_config(
            dataclasses.replace(cfg)
        )  # a private copy: later edits of cfg change nothing
        self.rng = random.Random(cfg.seed)
        self.queued: list[list[Any]] = []  # [remaining, status, retry_after] from fail_next, in order
        self.stats: Counter[int] = Counter()
        self.duplicates = 0  # exact resends acknowledged without storing them again
        self.db: sqlite3.Connection | None = None  # opened and closed on the loop thread

    def begin(self) -> tuple[ReceiverConfig, tuple[int, float | None] | None]:
        """A consistent snapshot of the config, and the fault to inject into this request, if any."""
        with self.lock:
            if self.queued:
                entry = self.queued[0]
                entry[0] -= 1
                if entry[0] <= 0:
                    self.queued.pop(0)
                return self.cfg, (entry[1], entry[2])
            if self.cfg.fail_rate > 0 and self.rng.random() < self.cfg.fail_rate:
                return self.cfg, (self.cfg.fail_status, self.cfg.retry_after)
            return self.cfg, None

    def answer(self, status: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
        with self.lock:
            self.stats[status] += 1
        return web.json_response(
            {"ret": 0 if status == 200 else status, "msg": msg}, status=status, headers=headers
        )

    def store(self, body: dict[str, Any]) -> None:
        """Insert one accepted body; sqlite3.IntegrityError when its nonce was seen before."""
        assert self.db is not None
        data = json.dumps(body["data"], ensure_ascii=False, separators=(",", ":"))
        with self.db:  # commits, or rolls back on the UNIQUE violation
            self.db.execute(
                "INSERT INTO records (nonce, ts, oper_id, data, received_at) VALUES (?, ?, ?, ?, ?)",
                (body["nonce"], body["ts"], body["data"]["oper_id"], data, time.time()),
            )

    def same_as_stored(self, body: dict[str, Any]) -> bool:
        """Is this body, nonce included, exactly the one already stored under its nonce?"""
        assert self.db is not None
        row = self.db.execute("SELECT ts, data FROM records WHERE nonce = ?", (body["nonce"],)).fetchone()
        return row is not None and row[0] == body["ts"] and json.loads(row[1]) == body["data"]

    def rows(self) -> list[dict[str, Any]]:
        assert self.db is not None
        cur = self.db.execute("SELECT ts, nonce, data FROM records ORDER BY id")
        return [{"ts": ts, "nonce": nonce, "data": json.loads(data)} for ts, nonce, data in cur]


STATE_KEY = web.AppKey("receiver_state", ReceiverState)


def _open_db(path: Path | str | None) -> sqlite3.Connection:
    try:
        if path is not None:
            path = Path(path)  # the CLI may hand over a str
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path) if path is not None else ":memory:")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable across process crashes, fast
        db.execute(
            "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, nonce TEXT UNIQUE, ts INTEGER,"
            " oper_id TEXT, data TEXT, received_at REAL)"
        )
        db.commit()
    except (OSError, sqlite3.Error) as exc:
        raise TailerError(f"receiver cannot open its database {path}: {exc}") from exc
    return db


async def _db_context(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    state.db = _open_db(state.cfg.db_path)
    try:
        yield
    finally:
        state.db.close()
        state.db = None


def _authorized(header: str | None, cfg: ReceiverConfig) -> bool:
    if header is None or not cfg.token:  # an empty token authorizes nobody
        return False
    expected = f"{cfg.auth_scheme} {cfg.token}" if cfg.auth_scheme else cfg.token
    # Bytes, not str: compare_digest refuses non-ASCII str, and a client may send any header bytes.
    return hmac.compare_digest(
        header.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


class _TooLarge(Exception):
    pass


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, or _TooLarge as soon as it is known to exceed ``limit`` (never reads more than a chunk past)."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    buf = bytearray()
    while chunk := await request.content.readany():
        buf += chunk
        if len(buf) > limit:  # chunked bodies carry no Content-Length
            raise _TooLarge
    return bytes(buf)


def _outside_window(ts: int, cfg: ReceiverConfig) -> bool:
    if cfg.ts_window is None:
        return False
    scale = 1000 if cfg.ts_unit == "ms" else 1
    return abs(ts - time.time() * scale) > cfg.ts_window * scale


def _retry_after_header(seconds: float) -> str:
    # Whole seconds as the RFC wants; a fraction is kept as given (handy for fast tests, non-standard).
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


async def _oper_report(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    cfg, fault = state.begin()
    if cfg.latency > 0:
        await asyncio.sleep(cfg.latency)
    if fault is not None:
        status, retry_after = fault
        headers = {"Retry-After": _retry_after_header(retry_after)} if retry_after is not None else None
        return state.answer(status, "injected failure", headers)
    if not _authorized(request.headers.get("Authorization"), cfg):
        return state.answer(401, "bad token")
    if request.content_type != "application/json":  # aiohttp strips parameters such as charset
        return state.answer(415, "Content-Type must be application/json")
    try:
        raw = await _read_bounded(request, cfg.max_body)
    except _TooLarge:
        return state.answer(413, f"body larger than {cfg.max_body} bytes")
    try:
        body = parse_body(raw)
        check_body(body)
    except ValueError as exc:
        return state.answer(400, str(exc))
    if _outside_window(body["ts"], cfg):
        return state.answer(400, "ts outside window")
    try:
        state.store(body)
    except sqlite3.IntegrityError:
        # An exact resend (same nonce, ts and data: a client retrying after a lost answer or a crash) is
        # acknowledged and not stored again, so at-least-once delivery ends exactly-once here without
        # dead-lettering the resend. A nonce reused for a different record is refused.
        if state.same_as_stored(body):
            with state.lock:
                state.duplicates += 1
            return state.answer(200, "duplicate: already stored")
        return state.answer(409, "duplicate nonce")
    return state.answer(200, "ok")


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ret": 0, "msg": "ok"})


def create_app(cfg: ReceiverConfig) -> web.Application:
    """The aiohttp app; its SQLite db opens on startup and closes on cleanup. ConfigError on a bad cfg."""
    app = web.Application()
    app[STATE_KEY] = ReceiverState(cfg)
    app.cleanup_ctx.append(_db_context)
    app.router.add_post(API_PATH, _oper_report)
    app.router.add_get("/healthz", _healthz)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # access_log=None: quiet and fast; aiohttp's access log never shows headers, but we log nothing at all.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise TailerError(f"receiver cannot listen on {host}:{port}: {exc}") from exc
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def serve(cfg: ReceiverConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the receiver in the foreground until SIGINT or SIGTERM (for `tailer receiver`)."""
    asyncio.run(_serve(cfg, host, port))


async def _serve(cfg: ReceiverConfig, host: str, port: int) -> None:
    runner, real_port = await start_site(create_app(cfg), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shown = f"[{host}]" if ":" in host else host
    db = str(cfg.db_path) if cfg.db_path is not None else ":memory: (records are lost on exit)"
    print(f"receiver listening on http://{shown}:{real_port}{API_PATH}, db {db}", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
