"""Requests per second the embedded receiver sustains: aiohttp clients POSTing valid, distinct records.

Bounded: at most --requests requests and --time-cap seconds. Client and server share this process (the
receiver runs on its own thread), so the figure is a floor. Prints one line; asserts nothing.

    python benchmarks/bench_receiver.py [--requests 5000] [--concurrency 8] [--time-cap 60] [--memory]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

TOKEN = "bench-token"


async def _drive(
    url: str, requests: int, concurrency: int, time_cap: float
) -> tuple[int, dict[int, int], float]:
    numbers = itertools.count()
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + time_cap
    headers = {"Authorization": TOKEN}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while time.monotonic() < deadline and (i := next(numbers)) < requests:
                payload = {
                    "ts": int(time.time()),
                    "nonce": f"bench-{i}",
                    "data": {"oper_id": "1504000120679", "gid": 5, "uid": i, "target_id": "c1", "ext1": "9"},
                }
                async with session.post(url, json=payload, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return sum(statuses.values()), statuses, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-cap", type=float, default=60.0)
    parser.add_argument(
        "--memory", action="store_true", help="in-memory db instead of a WAL file in a temp dir"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = None if args.memory else Path(tmp) / "bench.db"
        with EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)) as receiver:
            done, statuses, elapsed = asyncio.run(
                _drive(receiver.url, args.requests, args.concurrency, args.time_cap)
            )
            stored = receiver.count()
    print(
        f"receiver: {done / elapsed:,.0f} requests/s ({done} requests in {elapsed:.2f}s, "
        f"{args.concurrency} connections, statuses {statuses}, stored {stored}, db {'memory' if db is None else 'file'})"
    )


if __name__ == "__main__":
    main()
