"""The reference receiver in-process: ``EmbeddedReceiver``, a background thread with its own loop, for
tests, benchmarks and ``endpoint.url: embedded`` (started by ``tailer.run.endpoint``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import threading
from typing import Any

from tailer.errors import TailerError
from tailer.receiver.server import (
    API_PATH,
    STATE_KEY,
    ReceiverConfig,
    ReceiverState,
    create_app,
    start_site,
    validate_config,
)

log = logging.getLogger("tailer.embedded")

class EmbeddedReceiver:
    """The receiver on a background thread with its own event loop; a context manager.

    ``start()`` returns once the socket listens (port 0 picks a free port; ``port`` and ``url`` then give the
    real one); ``stop()`` closes connections, the db, the loop and joins the thread. One instance runs once:
    to restart on the same db file, make a new one.
    """

    def __init__(self, cfg: ReceiverConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self._app = create_app(cfg if cfg is not None else ReceiverConfig())
        self._state = self._app[STATE_KEY]
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._running = False

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{API_PATH}"

    def start(self, timeout: float = 30.0) -> EmbeddedReceiver:
        if self._thread is not None:
            raise RuntimeError("an EmbeddedReceiver runs once; make a new one to restart")
        ready = threading.Event()
        # Not a daemon: stop() must always be called, and the leak check catches a forgotten one.
        self._thread = threading.Thread(target=self._run, args=(ready,), name="tailer-receiver", daemon=False)
        self._thread.start()
        if not ready.wait(timeout):
            raise TailerError("receiver did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            try:
                runner, self.port = loop.run_until_complete(start_site(self._app, self.host, self.port))
            except BaseException as exc:  # handed to start(), which raises it in the caller's thread
                self._error = exc
                return
            self._running = True
            ready.set()
            loop.run_forever()
            self._running = False
            loop.run_until_complete(runner.cleanup())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # joins the getaddrinfo thread
            loop.close()
            ready.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Idempotent. Closes the listening socket and connections, the db, the loop; joins the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise TailerError("receiver thread did not stop in time")

    def __enter__(self) -> EmbeddedReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _on_loop(self, fn: Any) -> Any:
        """Run ``fn(state)`` on the receiver's loop, where the db connection lives."""
        if not self._running or self._loop is None:
            raise RuntimeError("receiver is not running")

        async def call() -> Any:
            return fn(self._state)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def records(self) -> list[dict[str, Any]]:
        """Accepted bodies ``{ts, nonce, data}`` in arrival order (from the db, so earlier runs' too)."""
        return self._on_loop(ReceiverState.rows)

    def count(self) -> int:
        return self._on_loop(lambda state: state.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    @property
    def stats(self) -> dict[int, int]:
        """Requests to the OperReport path so far, by HTTP status (a copy)."""
        with self._state.lock:
            return dict(self._state.stats)

    @property
    def duplicates(self) -> int:
        """Exact resends acknowledged without being stored again."""
        with self._state.lock:
            return self._state.duplicates

    def set_token(self, token: str) -> None:
        with self._state.lock:
            self._state.cfg = dataclasses.replace(self._state.cfg, token=token)

    def set_faults(self, **fields: Any) -> None:
        """Change any config field but token (set_token) and db_path at runtime; ``seed`` reseeds the RNG."""
        settable = {f.name for f in dataclasses.fields(ReceiverConfig)} - {"token", "db_path"}
        bad = set(fields) - settable
        if bad:
            raise TypeError(f"set_faults() cannot set {sorted(bad)}")
        with self._state.lock:
            self._state.cfg = validate_config(dataclasses.replace(self._state.cfg, **fields))
            if "seed" in fields:
                self._state.rng = random.Random(fields["seed"])

    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``n`` OperReport requests with ``status`` (after any queued before), unread."""
        if n > 0:
            with self._state.lock:
                self._state.queued.append([n, status, retry_after])
