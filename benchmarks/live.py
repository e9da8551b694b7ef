"""Live latency: ``tailer run`` (a child process) following two files while a writer process appends
1,000 operation lines/s to one and 20,000 noise lines/s to the other; latency is each operation's write
to its record's ``received_at`` in the reference receiver (an ``EmbeddedReceiver`` in this process,
SQLite file db, same clock). Each record carries its line's sequence number in ``ext1``.

Baseline, same run, same receiver: single POSTs from a keep-alive ``httpx.Client`` paced the same way,
call to answer (one request's round trip): the least a line can take to arrive.
Bounded: ``seconds`` of writing, then at most 30 s for the records to arrive.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks import TOKEN, Context, Row, spawn, tailer_cmd
from benchmarks.logs import write_config
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

OP = "{t} [http-nio-8080-exec-7] INFO  c.a.vote.VoteService - VOTE_JOIN voteId={n} groupId=5 channelId=c1 uid=42\n"
NOISE = "{t} [http-nio-8080-exec-3] INFO  c.a.web.AccessLogFilter - GET /api/channels/{n}/messages 200 3ms 用户消息\n"
# Writes every 10 ms: ops_rate/100 operation lines in one write, noise_rate/100 noise lines in another.
WRITER = r"""
import json, os, sys, time
ops_path, noise_path, seconds, ops_rate, noise_rate, out = sys.argv[1:7]
seconds, ops_rate, noise_rate = float(seconds), int(ops_rate), int(noise_rate)
OP, NOISE = sys.argv[7], sys.argv[8]
ops = os.open(ops_path, os.O_WRONLY | os.O_APPEND)
noise = os.open(noise_path, os.O_WRONLY | os.O_APPEND)
written = []
seq = 1
start = time.monotonic()
tick = 0
while time.monotonic() - start < seconds:
    tick += 1
    t = time.strftime("%Y-%m-%d %H:%M:%S,000")
    os.write(noise, "".join(NOISE.format(t=t, n=tick * 1000 + i) for i in range(noise_rate // 100)).encode())
    batch = "".join(OP.format(t=t, n=seq + i) for i in range(ops_rate // 100))
    os.write(ops, batch.encode())
    at = time.time()
    written += [(seq + i, at) for i in range(ops_rate // 100)]
    seq += ops_rate // 100
    delay = start + tick * 0.01 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
json.dump({"written": written, "elapsed": time.monotonic() - start}, open(out, "w"))
"""


def arrivals(db: Path) -> dict[int, float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data, received_at FROM records").fetchall()
    return {int(json.loads(data)["ext1"]): at for data, at in rows}


def wait_for(db: Path, wanted: set[int], cap: float) -> dict[int, float]:
    deadline = time.monotonic() + cap
    while True:
        got = arrivals(db)
        if wanted <= got.keys() or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def round_trips(url: str, count: int, interval: float) -> list[float]:
    headers = {"Content-Type": "application/json", "Authorization": TOKEN}
    out = []
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            body = json.dumps(
                {
                    "ts": int(time.time()),
                    "nonce": f"rtt-{time.time_ns()}-{i}",
                    "data": {"oper_id": "1504000120679", "gid": 5, "uid": 42, "ext1": str(-i - 1)},
                }
            )
            began = time.perf_counter()
            r = client.post(url, content=body, headers=headers)
            out.append(time.perf_counter() - began)
            assert r.status_code == 200, r.text
            time.sleep(interval)
    return out


def rows(ctx: Context) -> list[Row]:
    seconds = 5.0 if ctx.quick else 20.0
    work = ctx.work / "live"
    work.mkdir(parents=True, exist_ok=True)
    ops, noise, db = work / "ops.log", work / "noise.log", work / "receiver.sqlite3"
    ops.write_text("")
    noise.write_text("")
    with EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)) as receiver:
        cfg = write_config(work / "rules.yaml", [str(ops), str(noise)], url=receiver.url, concurrency=16)
        agent = spawn(tailer_cmd("run", "-c", str(cfg), "--log-level", "warning"), work / "agent.err")
        try:
            with open(ops, "a") as f:  # warm-up: the agent is up once this one has arrived
                f.write(OP.format(t=time.strftime("%Y-%m-%d %H:%M:%S,000"), n=0))
            if 0 not in wait_for(db, {0}, 30.0):
                raise RuntimeError(
                    f"tailer run did not deliver the warm-up line: {(work / 'agent.err').read_text()[-500:]}"
                )
            rtt = round_trips(receiver.url, 200, 0.005)
            out = work / "written.json"
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    WRITER,
                    str(ops),
                    str(noise),
                    str(seconds),
                    "1000",
                    "20000",
                    str(out),
                    OP,
                    NOISE,
                ],
                check=True,
                timeout=seconds + 60,
            )
            report = json.loads(out.read_text())
            written = dict(map(tuple, report["written"]))
            got = wait_for(db, set(written), 30.0)
            rtt += round_trips(receiver.url, 200, 0.005)
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
    lat = [(got[n] - at) * 1000 for n, at in written.items() if n in got]
    missing = len(written) - len(lat)
    rtt_ms = [x * 1000 for x in rtt]
    ctx.note(
        f"live: {len(written):,} operations written in {report['elapsed']:.1f}s with 20x as much noise;"
        f" {missing} not arrived within 30 s after"
    )
    p50, p99 = pct(lat, 50), pct(lat, 99)
    r50, r99 = pct(rtt_ms, 50), pct(rtt_ms, 99)
    tail = f" ({missing} missing)" if missing else ""
    return [
        Row(
            "live append->receiver p50 (1k ops/s + 20k noise/s)",
            f"{p50:.1f} ms{tail}",
            f"one POST RTT {r50:.1f} ms",
            r50 / p50 if p50 else None,
            target=20,
            measured=p50,
            unit=" ms",
            lower_is_better=True,
        ),
        Row(
            "live append->receiver p99",
            f"{p99:.1f} ms{tail}",
            f"one POST RTT {r99:.1f} ms",
            r99 / p99 if p99 else None,
            target=200,
            measured=p99,
            unit=" ms",
            lower_is_better=True,
        ),
    ]
