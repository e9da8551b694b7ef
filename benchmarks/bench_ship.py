"""Single-record POST throughput: httpx default transport vs httpx over aiohttp vs bare aiohttp.

    python benchmarks/bench_ship.py [--n 3000] [--cap 30] [--concurrency 8 32]

The server runs in a subprocess (its own core): the project's EmbeddedReceiver once it is committed,
else a minimal aiohttp app answering {"ret": 0, "msg": "ok"}. Each client sends ``n`` POSTs, one record
each, at each concurrency, stopping early at ``cap`` seconds; records/s and the ratio to (a) are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

SERVER = r"""
import sys
from aiohttp import web

async def report(request):
    await request.read()
    return web.json_response({"ret": 0, "msg": "ok"})

app = web.Application()
app.router.add_post("/api/v1/OperReport", report)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
# The receiver, when present, is started the same way in its own process.
RECEIVER = r"""
import sys
from tailer.receiver.server import ReceiverConfig, serve
serve(ReceiverConfig(token="bench-token"), "127.0.0.1", int(sys.argv[1]))
"""
RUN = secrets.token_hex(8)
HEADERS = {"Content-Type": "application/json", "Authorization": "bench-token"}


_nonces = itertools.count()


def body(i: int) -> bytes:
    """A valid record with a nonce never sent before (the receiver refuses a repeated nonce with 409)."""
    data = {"oper_id": "1504000120618", "gid": 5, "target_id": "c1", "uid": 42, "ext1": str(i)}
    nonce = f"{RUN}{next(_nonces):016x}"
    return json.dumps({"ts": int(time.time()), "nonce": nonce, "data": data}).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver_committed() -> bool:
    """Use the project's receiver only once it is committed (a work-in-progress file may be half done)."""
    probe = subprocess.run(["git", "ls-files", "--error-unmatch", "tailer/receiver.py"], capture_output=True)
    return probe.returncode == 0


def start_server() -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    kind, script = (
        ("EmbeddedReceiver (tailer.receiver.server.serve)", RECEIVER)
        if receiver_committed()
        else (
            "minimal aiohttp app",
            SERVER,
        )
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(port)])
    url = f"http://127.0.0.1:{port}/api/v1/OperReport"
    for _ in range(200):  # bounded: up to ~10 s for the server to listen
        try:
            httpx.post(url, content=body(0), headers=HEADERS, timeout=1.0)
            return proc, url, kind
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


async def pump(
    send: Callable[[int], Awaitable[None]], n: int, concurrency: int, cap: float
) -> tuple[int, float]:
    """``concurrency`` workers share a counter; returns (sent, seconds)."""
    counter = iter(range(n))
    start = time.perf_counter()
    deadline = start + cap
    sent = 0

    async def worker() -> None:
        nonlocal sent
        for i in counter:
            if time.perf_counter() > deadline:
                return
            await send(i)
            sent += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent, time.perf_counter() - start


async def run_httpx(url: str, n: int, c: int, cap: float, aiohttp_transport: bool) -> tuple[int, float]:
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    transport = AiohttpTransport(limits=limits) if aiohttp_transport else None
    async with httpx.AsyncClient(transport=transport, limits=limits, timeout=10.0) as client:

        async def send(i: int) -> None:
            r = await client.post(url, content=body(i), headers=HEADERS)
            assert r.status_code == 200 and r.json()["ret"] == 0, r.text

        await send(0)  # warm the connection pool outside the timing
        return await pump(send, n, c, cap)


async def run_aiohttp(url: str, n: int, c: int, cap: float) -> tuple[int, float]:
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def send(i: int) -> None:
            async with session.post(url, data=body(i), headers=HEADERS) as r:
                answer = await r.json()
                assert r.status == 200 and answer["ret"] == 0

        await send(0)
        return await pump(send, n, c, cap)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000, help="POSTs per client and concurrency")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per run at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    proc, url, kind = start_server()
    try:
        print(f"server: {kind} at {url} (pid {proc.pid}); n={args.n} per run, cap {args.cap:.0f}s")
        clients = {
            "(a) httpx default transport": lambda c: run_httpx(url, args.n, c, args.cap, False),
            "(b) httpx + AiohttpTransport": lambda c: run_httpx(url, args.n, c, args.cap, True),
            "(c) bare aiohttp.ClientSession": lambda c: run_aiohttp(url, args.n, c, args.cap),
        }
        for c in args.concurrency:
            print(f"\nconcurrency {c}")
            base = None
            for name, make in clients.items():
                sent, seconds = asyncio.run(make(c))
                rate = sent / seconds
                base = base or rate
                print(f"  {name:34s} {sent:6d} in {seconds:6.2f}s  {rate:8.0f} records/s  x{rate / base:.2f}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
