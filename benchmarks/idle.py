"""1,000 followed files: ``tailer run`` start-up time (spawn to every file's one operation arrived at the
receiver) and its CPU while nothing is written (utime+stime from /proc over a fixed window; near zero
means no busy polling: inotify wake-ups plus the one-second rescan and fstat safety net).

Baseline, same run: the same agent following 1 file, started just before and measured over the same idle
window. Bounded: 60 s for start-up, ``idle`` seconds (60; ``--quick`` 10) of watching.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

from benchmarks import TOKEN, Context, Row, cpu_seconds, spawn, tailer_cmd
from benchmarks.live import OP
from benchmarks.logs import write_config
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

NOISE = "{t} [main] DEBUG c.a.cache.RedisCache - hit key=user:{n} ttl=300\n"


def count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM records").fetchone()[0]


def rows(ctx: Context) -> list[Row]:
    idle = 10.0 if ctx.quick else 60.0
    n_files = 1000
    work = ctx.work / "idle"
    agents: list[subprocess.Popen] = []
    t = time.strftime("%Y-%m-%d %H:%M:%S,000")
    started: dict[int, float] = {}
    work.mkdir(parents=True, exist_ok=True)
    db = work / "receiver.sqlite3"
    with EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)) as receiver:
        try:
            expected = 0
            for files in (1, n_files):
                logs = work / f"logs-{files}"
                logs.mkdir()
                for i in range(files):
                    (logs / f"app-{i:04d}.log").write_text(
                        NOISE.format(t=t, n=i) + OP.format(t=t, n=files * 10_000 + i) + NOISE.format(t=t, n=i)
                    )
                cfg = write_config(
                    work / f"rules-{files}.yaml",
                    [str(logs / "*.log")],
                    url=receiver.url,
                    state=work / f"state-{files}",
                    concurrency=16,
                )
                expected += files
                began = time.monotonic()
                agents.append(
                    spawn(
                        tailer_cmd("run", "-c", str(cfg), "--log-level", "warning"),
                        work / f"agent-{files}.err",
                    )
                )
                while count(db) < expected and time.monotonic() - began < 60:
                    time.sleep(0.02)
                if count(db) < expected:
                    raise RuntimeError(f"{files} files: not every record arrived within 60 s")
                started[files] = time.monotonic() - began
            time.sleep(2.0)  # let the start-up's last checkpoint write and rescan pass
            before = [cpu_seconds(a.pid) for a in agents]
            began = time.monotonic()
            time.sleep(idle)
            span = time.monotonic() - began
            used = [cpu_seconds(a.pid) - b for a, b in zip(agents, before, strict=True)]
        finally:
            for agent in agents:
                agent.send_signal(signal.SIGTERM)
            for agent in agents:
                try:
                    agent.wait(30)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait()
    one, many = (u / span * 100 for u in used)
    ctx.note(
        f"idle: start-up {started[1]:.2f}s (1 file), {started[n_files]:.2f}s ({n_files} files); idle {span:.0f}s"
    )
    return [
        Row(
            f"{n_files} followed files: start-up to all records arrived",
            f"{started[n_files]:.2f} s",
            f"{started[1]:.2f} s (1 file)",
            started[1] / started[n_files],
        ),
        Row(
            f"{n_files} followed files: idle CPU over {span:.0f} s",
            f"{many:.2f}% of a core",
            f"{one:.2f}% (1 file)",
            None,
            target=1.0,
            measured=many,
            unit="% of a core",
            lower_is_better=True,
        ),
    ]
