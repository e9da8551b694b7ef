"""Shipping: ``Shipper`` (httpx API over AiohttpTransport) against bare aiohttp and plain
``httpx.AsyncClient`` at the same concurrency, into the same fast sink (``benchmarks.Sink``, its own
process) at 1 ms and 30 ms of added server latency; and concurrency / latency, the in-flight window's
ideal rate.

The shipper gets ``Record`` objects (it builds, encodes and judges every payload, and calls on_settled);
the baselines POST precomputed bodies and only check the status, the least a client can do. Each pass is
bounded by a record count and a time cap; passes alternate and the best of each side is kept.

    python3 -m benchmarks.ship [--n 4000] [--concurrency 32] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

from benchmarks import TOKEN, Context, Row, Sink, child_env, tailer_cmd
from benchmarks.logs import write_config, write_log
from tailer.record import Origin, Record
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.settings import EndpointSettings, Secret
from tailer.ship.shipper import Shipper

HEADERS = {"Content-Type": "application/json", "Authorization": TOKEN}
FIELDS = {"gid": 5, "target_id": "c1", "uid": 42, "ext2": "app"}


def records(n: int) -> list[Record]:
    key = secrets.token_hex(8)
    return [
        Record(
            rule="vote",
            oper_id="1504000120679",
            fields={**FIELDS, "ext1": str(i)},
            event_ts=1795831201.0 + i,
            origin=Origin(key, "/var/log/app.log", 100 * (i + 1)),
        )
        for i in range(n)
    ]


def bodies(n: int) -> list[bytes]:
    run = secrets.token_hex(8)
    return [
        json.dumps(
            {
                "ts": 1795831201 + i,
                "nonce": f"{run}{i:016x}",
                "data": {"oper_id": "1504000120679", **FIELDS, "ext1": str(i)},
            },
            separators=(",", ":"),
        ).encode()
        for i in range(n)
    ]


async def pump(
    send: Callable[[bytes], Awaitable[None]], items: list[bytes], c: int, cap: float
) -> tuple[int, float]:
    todo = iter(items)
    done = 0
    start = time.perf_counter()
    deadline = start + cap

    async def worker() -> None:
        nonlocal done
        for body in todo:
            if time.perf_counter() > deadline:
                return
            await send(body)
            done += 1

    await asyncio.gather(*(worker() for _ in range(c)))
    return done, time.perf_counter() - start


async def run_aiohttp(url: str, n: int, c: int, cap: float) -> tuple[int, float]:
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes) -> None:
            async with session.post(url, data=body, headers=HEADERS) as r:
                await r.read()
                assert r.status == 200

        await send(bodies(1)[0])
        return await pump(send, bodies(n), c, cap)


async def run_httpx(url: str, n: int, c: int, cap: float) -> tuple[int, float]:
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def send(body: bytes) -> None:
            r = await client.post(url, content=body, headers=HEADERS)
            assert r.status_code == 200

        await send(bodies(1)[0])
        return await pump(send, bodies(n), c, cap)


async def run_shipper(url: str, n: int, c: int, cap: float) -> tuple[int, float]:
    endpoint = EndpointSettings(url=url, token=Secret(TOKEN), concurrency=c, nonce="random")
    acked = 0

    def on_settled(record: Record, outcome) -> None:
        nonlocal acked
        acked += outcome.kind == "acked"

    with tempfile.TemporaryDirectory() as tmp:
        dead = DeadLetterWriter(Path(tmp) / "dead-letter.jsonl")
        async with Shipper(endpoint, dead_letter=dead, on_settled=on_settled) as shipper:
            for r in records(1):
                await shipper.submit(r)
            await shipper.drain(10)
            acked = 0
            start = time.perf_counter()
            deadline = start + cap
            for r in records(n):
                if time.perf_counter() > deadline:
                    break
                await shipper.submit(r)
            await shipper.drain(cap)
            elapsed = time.perf_counter() - start
            assert not shipper.stats.dead_lettered, shipper.stats
    return acked, elapsed


CLIENTS = {"shipper": run_shipper, "aiohttp": run_aiohttp, "httpx": run_httpx}


def measure(url: str, n: int, c: int, cap: float, repeat: int, names=tuple(CLIENTS)) -> dict[str, float]:
    """Best records/s of each client over ``repeat`` alternating passes."""
    best = dict.fromkeys(names, 0.0)
    for k in range(repeat):
        for name in names if k % 2 == 0 else names[::-1]:
            cpu = time.process_time()
            done, seconds = asyncio.run(CLIENTS[name](url, n, c, cap))
            cpu = time.process_time() - cpu
            best[name] = max(best[name], done / seconds)
            print(
                f"    ship {name:8s} {done:6d} in {seconds:6.2f}s {done / seconds:8.0f} rec/s"
                f" {cpu / max(done, 1) * 1e6:6.0f} us CPU/rec",
                file=sys.stderr,
            )
    return best


def replay_send(ctx: Context, url: str, c: int, latency: float) -> Row:
    """``tailer replay`` (whole process: start, read, match, ship) of a log dense in operations (30%),
    against bare aiohttp POSTing as many precomputed bodies at the same concurrency to the same sink."""
    work = ctx.work / "ship"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "dense.log"
    hits = write_log(log, 20_000 if ctx.quick else 100_000, ops=0.3)
    cfg = write_config(work / "rules.yaml", [str(log)], url=url, concurrency=c, state=work / "state")
    began = time.perf_counter()
    proc = subprocess.run(
        tailer_cmd("replay", "--restart", "-c", str(cfg), str(log)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    seconds = time.perf_counter() - began
    sent = re.search(r"^sent\s+([\d,]+)", proc.stdout + proc.stderr, re.M)
    if proc.returncode != 0 or sent is None:
        raise RuntimeError(f"tailer replay failed ({proc.returncode}): {proc.stderr[-300:]}")
    sent_n = int(sent.group(1).replace(",", ""))
    done, base_s = asyncio.run(run_aiohttp(url, hits, c, 120.0))
    ours, base = sent_n / seconds, done / base_s
    return Row(
        f"replay send, whole process, c={c} @{latency * 1000:g} ms: vs bare aiohttp",
        f"{ours:,.0f} rec/s",
        f"{base:,.0f} rec/s",
        ours / base,
    )


def rows(ctx: Context) -> list[Row]:
    c = 32
    out: list[Row] = []
    for latency in (0.001, 0.030):
        ideal = c / latency
        # enough records for several seconds at the expected rate, bounded either way
        n = (1500 if ctx.quick else 6000) if latency < 0.01 else (1000 if ctx.quick else 3000)
        cap = 15.0 if ctx.quick else 40.0
        with Sink(latency) as url:
            best = measure(url, n, c, cap, repeat=1 if ctx.quick else 2)
            if latency < 0.01:
                whole = replay_send(ctx, url, c, latency)
        ms = f"{latency * 1000:g} ms"
        ours = f"{best['shipper']:,.0f} rec/s"
        out.append(
            Row(
                f"ship c={c} @{ms}: vs bare aiohttp",
                ours,
                f"{best['aiohttp']:,.0f} rec/s",
                best["shipper"] / best["aiohttp"],
                target=0.8 if latency < 0.01 else None,
            )
        )
        out.append(
            Row(
                f"ship c={c} @{ms}: vs plain httpx.AsyncClient",
                ours,
                f"{best['httpx']:,.0f} rec/s",
                best["shipper"] / best["httpx"],
            )
        )
        out.append(
            Row(
                f"ship c={c} @{ms}: vs concurrency/latency",
                ours,
                f"{ideal:,.0f} rec/s (ideal)",
                best["shipper"] / ideal,
                target=0.8 if latency > 0.01 else None,
            )
        )
    out.append(whole)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.001)
    parser.add_argument("--cap", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", nargs="+", default=list(CLIENTS))
    args = parser.parse_args()
    with Sink(args.latency) as url:
        best = measure(url, args.n, args.concurrency, args.cap, args.repeat, tuple(args.only))
    for name, rate in best.items():
        print(f"{name:8s} {rate:8.0f} rec/s")


if __name__ == "__main__":
    main()
