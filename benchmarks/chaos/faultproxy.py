"""A raw asyncio TCP server on 127.0.0.1 in front of the real receiver, that misbehaves per request in the
ways a network and a platform do and that an HTTP framework will not do for us:

* ``reset``: the connection is reset (RST, SO_LINGER 0) before the request is forwarded (nothing stored);
* ``reset_after``: the request is forwarded and stored, then the connection is reset instead of answered;
* ``close``: the request is forwarded and stored, then the connection is closed cleanly without an answer
  (a server that accepts and then closes before answering);
* ``drop``: the request is read, then the connection is closed without forwarding (nothing stored);
* ``slow``: the request is forwarded and stored, the answer is held ``slow`` seconds (longer than the
  client's timeout) before it is written;
* ``pass``: forwarded, answered.

A request is read with its Content-Length body, forwarded on a keep-alive connection of its own to the
receiver, and the receiver's answer (Content-Length framed, as aiohttp's json_response is) is read whole.
The mix is drawn per request from a seeded RNG and can change at runtime (``set_mix``). Bounded: every read
and wait has a timeout; ``stop()`` closes the server and every connection and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter

KINDS = ("pass", "reset", "reset_after", "close", "drop", "slow")
IO_TIMEOUT = 30.0


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (head + Content-Length body), or None at a clean EOF before any byte."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await asyncio.wait_for(reader.readexactly(length), IO_TIMEOUT) if length else b""
    return head + body


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """``FaultProxy(upstream_port, mix={"pass": .6, "close": .4}, slow=1.5, seed=1).start()``; ``url`` is
    the OperReport URL through it. ``counts`` says what was done to how many requests."""

    def __init__(self, upstream_port: int, *, mix: dict[str, float] | None = None, slow: float = 1.5,
                 seed: int = 0, path: str = "/api/v1/OperReport") -> None:  # fmt: skip
        self.upstream_port, self.slow, self.api_path = upstream_port, slow, path
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.port = 0
        self._mix: list[tuple[str, float]] = []
        self.set_mix(mix or {"pass": 1.0})
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.api_path}"

    def set_mix(self, mix: dict[str, float]) -> None:
        bad = set(mix) - set(KINDS)
        if bad:
            raise ValueError(f"unknown fault(s) {sorted(bad)}")
        total = sum(mix.values())
        self._mix = [(k, v / total) for k, v in mix.items() if v > 0]

    def _pick(self) -> str:
        with self._lock:
            x = self.rng.random()
            for kind, share in self._mix:
                x -= share
                if x < 0:
                    return kind
            return self._mix[-1][0]

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="chaos-fault-proxy", daemon=False)
        self._thread.start()
        if not self._ready.wait(30) or self._server is None:
            raise RuntimeError("fault proxy did not start")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._conns):
            w.transport.abort()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError("fault proxy did not stop")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one client connection -----------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._conns.add(writer)
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                kind = self._pick()
                with self._lock:
                    self.counts[kind] += 1
                if kind == "reset":
                    _reset(writer)
                    return
                if kind == "drop":
                    writer.close()
                    return
                if up is None:
                    up = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.upstream_port), IO_TIMEOUT
                    )
                up[1].write(request)
                await up[1].drain()
                answer = await _read_message(up[0])
                if answer is None:
                    _reset(writer)
                    return
                if kind == "reset_after":
                    _reset(writer)
                    return
                if kind == "close":
                    writer.close()
                    return
                if kind == "slow":
                    await asyncio.sleep(self.slow)
                writer.write(answer)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            writer.transport.abort()
        finally:
            self._conns.discard(writer)
            self._tasks.discard(task)
            if up is not None:
                up[1].transport.abort()
            if not writer.is_closing():
                writer.close()
