"""End-to-end latency of ``tailer run``: from a line's write to its record's arrival at the receiver.

``python -m tailer run`` runs as a subprocess following a file in a temp dir and sending to an
EmbeddedReceiver in this process (127.0.0.1, SQLite file db). The benchmark appends one vote line at a
time (``--lines``, one every ``--interval`` seconds, unbuffered) and notes when each write returned; the
receiver stamps ``received_at`` (``time.time()``, same clock) when it stores a record, read back from its
db after the run. Each record carries its line number in ``ext1``, so latency = received_at - written_at.

Baseline, measured in the same run against the same receiver: as many single POSTs from this process
with a keep-alive ``httpx.Client``, paced the same way, timed two ways: from the call to the answer (the
round trip; the ratios are against it) and from the call to ``received_at`` (what the tailer's figure
measures: no answer path). The agent is measured twice: with inotify
wake-ups (``poll: false``, the default) and with the polling fallback (``poll: true``).

    python benchmarks/bench_live.py [--lines 300] [--interval 0.02] [--cap 60]

Bounded: ``--lines`` writes per mode and ``--cap`` seconds per mode at most. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
from tailer.receiver.embedded import EmbeddedReceiver  # noqa: E402
from tailer.receiver.server import ReceiverConfig  # noqa: E402

TOKEN = "bench-token"
LINE = "{ts},000 [exec-7] INFO c.a.VoteService - VOTE_JOIN voteId={n} groupId=5 channelId=c1 uid=42\n"
CONFIG = """\
endpoint:
  url: {url}
  token: {token}
  concurrency: 16
  nonce: random
sources:
  - paths: ["{log}"]
    start_at: beginning
    poll: {poll}
state_dir: {state}
rules:
  - name: vote
    pattern: '^(?P<ts>\\S+ \\S+),\\d+ .*VOTE_JOIN voteId=(?P<ext1>\\d+) groupId=(?P<gid>\\d+) channelId=(?P<target_id>\\S+) uid=(?P<uid>\\d+)'
    oper_id: "1504000120679"
    ts_format: "%Y-%m-%d %H:%M:%S"
"""
WARMUP = 0  # ext1 of the line that proves the agent is up; measured lines are numbered from `base + 1`


def arrivals(db: Path) -> dict[int, float]:
    """ext1 -> received_at, from the receiver's SQLite file (WAL: readable while the receiver runs)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data, received_at FROM records").fetchall()
    return {int(json.loads(data)["ext1"]): at for data, at in rows}


def wait_for(db: Path, wanted: set[int], deadline: float) -> dict[int, float]:
    while True:
        got = arrivals(db)
        if wanted <= got.keys() or time.time() > deadline:
            return got
        time.sleep(0.05)


def write_line(fd: int, n: int) -> float:
    os.write(fd, LINE.format(ts=time.strftime("%Y-%m-%d %H:%M:%S"), n=n).encode())
    return time.time()


def measure_agent(
    tmp: Path, receiver: EmbeddedReceiver, db: Path, args, poll: bool, base: int
) -> list[float]:
    """Start ``tailer run``, wait until a warm-up line arrives, then time ``args.lines`` writes."""
    work = tmp / ("poll" if poll else "inotify")
    work.mkdir()
    log_path = work / "app.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    cfg = work / "rules.yaml"
    cfg.write_text(
        CONFIG.format(
            url=receiver.url, token=TOKEN, log=log_path, poll=str(poll).lower(), state=work / "state"
        )
    )
    stderr = open(work / "stderr.txt", "w+b")  # noqa: SIM115 - closed in finally
    cmd = [sys.executable, "-m", "tailer", "run", "-c", str(cfg), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + args.cap
    try:
        write_line(fd, base + WARMUP)
        if base + WARMUP not in wait_for(db, {base + WARMUP}, min(deadline, time.time() + 30)):
            raise SystemExit(f"tailer run sent nothing within 30s:\n{(work / 'stderr.txt').read_text()}")
        written: dict[int, float] = {}
        for i in range(1, args.lines + 1):
            if time.time() > deadline:
                break
            written[base + i] = write_line(fd, base + i)
            time.sleep(args.interval)
        got = wait_for(db, set(written), deadline + 5)
    finally:
        os.close(fd)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        stderr.close()
    missing = len(written) - len(written.keys() & got.keys())
    if missing:
        print(f"  warning: {missing} of {len(written)} lines had not arrived by the cap")
    return [got[n] - at for n, at in written.items() if n in got]


def measure_baseline(
    receiver: EmbeddedReceiver, db: Path, args, base: int
) -> tuple[list[float], list[float]]:
    """Single POSTs over one keep-alive connection, paced like the writes: (round trips, call -> stored)."""
    headers = {"Content-Type": "application/json", "Authorization": TOKEN}
    rtts: list[float] = []
    sent: dict[int, float] = {}
    deadline = time.time() + args.cap
    with httpx.Client(timeout=10.0) as client:
        for i in range(args.lines + 1):  # the first one opens the connection and is not counted
            if time.time() > deadline:
                break
            data = {"oper_id": "1504000120679", "gid": 5, "target_id": "c1", "uid": 42, "ext1": str(base + i)}
            body = json.dumps({"ts": int(time.time()), "nonce": f"base-{base + i}", "data": data})
            sent_at, began = time.time(), time.perf_counter()
            answer = client.post(receiver.url, content=body, headers=headers)
            elapsed = time.perf_counter() - began
            assert answer.status_code == 200 and answer.json()["ret"] == 0, answer.text
            if i:
                rtts.append(elapsed)
                sent[base + i] = sent_at
            time.sleep(args.interval)
    got = arrivals(db)
    return rtts, [got[n] - at for n, at in sent.items()]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300, help="measured lines (and POSTs) per mode")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between two writes")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per mode at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "receiver.sqlite3"
        with EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)) as receiver:
            rtts, one_way = measure_baseline(receiver, db, args, 3_000_000)
            results = {
                "baseline: httpx single POST RTT": rtts,
                "baseline: httpx POST call->stored": one_way,
                "tailer run (inotify)": measure_agent(tmp, receiver, db, args, False, 1_000_000),
                "tailer run (poll: true)": measure_agent(tmp, receiver, db, args, True, 2_000_000),
            }
    print(f"{args.lines} lines per mode, one every {args.interval * 1000:.0f} ms; latency in ms")
    print(f"  {'':34s} {'n':>5s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'max':>8s}")
    stats = {name: summary(values) for name, values in results.items()}
    for name, values in results.items():
        s = stats[name]
        cols = " ".join(f"{s[k] * 1000:8.2f}" for k in ("p50", "p95", "p99", "max"))
        print(f"  {name:34s} {len(values):5d} {cols}")
    base = stats["baseline: httpx single POST RTT"]
    for name in list(stats)[2:]:
        ratios = "  ".join(f"{k} x{stats[name][k] / base[k]:.1f}" for k in ("p50", "p95", "p99"))
        print(f"  ratio {name} / baseline: {ratios}")


if __name__ == "__main__":
    main()
