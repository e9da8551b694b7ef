"""Peak RSS of ``tailer replay`` and ``tailer run`` over a large backlog (1 GB; ``--quick``: 64 MB) with
the endpoint down (nothing listens on its port: connections refused, retried with backoff), then up (the
fast sink starts on that port). Backpressure should hold memory flat: the log file is the buffer.

Baseline, same run: the same command over a 2 MB backlog with the endpoint up, the floor of the
interpreter, the imports and the pools. Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``.
Bounded: each phase has a fixed length; the child is then stopped with SIGTERM (killed 30 s later).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from benchmarks import Context, Row, Sink, free_port, peak_rss_mb, spawn, tailer_cmd
from benchmarks.logs import write_config, write_log


def backlog(path: Path, size: int) -> None:
    """``size`` bytes of generated log: a ~16 MB block, repeated (offsets, hence nonces, still differ)."""
    block = path.with_suffix(".block")
    write_log(block, min(120_000, max(10_000, size // 140)))
    with open(path, "wb") as out:
        while out.tell() < size:
            with open(block, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    block.unlink()


class Child:
    """A child process reaped with ``os.wait4``, so its own peak RSS (``ru_maxrss``) is known."""

    def __init__(self, cmd: list[str], err: Path):
        self.proc = spawn(cmd, err)
        self.maxrss_mb: float | None = None
        self.err = err
        self.stopping = False  # after our SIGTERM any exit is expected (replay says "interrupted", exit 1)

    def alive(self) -> bool:
        if self.maxrss_mb is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.maxrss_mb = usage.ru_maxrss / 1024
                code = os.waitstatus_to_exitcode(status)
                if code != 0 and not self.stopping:
                    last = self.err.read_text(errors="replace").strip().splitlines()[-1:]
                    raise RuntimeError(f"child exited with {code}: {' '.join(last)}")
        return self.maxrss_mb is None

    def wait_alive(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.alive() and time.monotonic() < end:
            time.sleep(0.1)

    def stop(self) -> float:
        """SIGTERM (SIGKILL 30 s later); the peak RSS in MB."""
        if self.alive():
            self.stopping = True
            self.proc.send_signal(signal.SIGTERM)
            self.wait_alive(30.0)
        if self.alive():
            self.proc.kill()
            _, _, usage = os.wait4(self.proc.pid, 0)
            self.maxrss_mb = usage.ru_maxrss / 1024
        self.proc.returncode = 0  # reaped here; keep Popen from waiting again
        return self.maxrss_mb or 0.0


def measure(cmd: list[str], port: int, down: float, up: float, err: Path) -> tuple[float, float]:
    """(peak RSS MB by the end of the down phase, peak RSS MB overall); endpoint down for ``down``
    seconds (0: up from the start), then up for ``up`` seconds or until the child exits."""
    if down == 0:
        with Sink(0.0, port=port):
            child = Child(cmd, err)
            child.wait_alive(up)
            return 0.0, child.stop()
    child = Child(cmd, err)
    try:
        child.wait_alive(down)
        down_peak = peak_rss_mb(child.proc.pid)
        with Sink(0.0, port=port):
            child.wait_alive(up)
            return down_peak, child.stop()
    finally:
        child.stop()


def rows(ctx: Context) -> list[Row]:
    size = (64 if ctx.quick else 1024) << 20
    down, up = (4.0, 6.0) if ctx.quick else (15.0, 30.0)
    work = ctx.work / "memory"
    work.mkdir(parents=True, exist_ok=True)
    big, small = work / "big" / "app.log", work / "small" / "app.log"
    big.parent.mkdir()
    small.parent.mkdir()
    backlog(big, size)
    backlog(small, 2 << 20)
    ctx.note(
        f"memory: backlog {big.stat().st_size / 2**20:,.0f} MiB; endpoint down {down:g}s then up {up:g}s"
    )
    out = []
    for mode in ("replay", "run"):
        results = {}
        for name, log, phases in (("big", big, (down, up)), ("small", small, (0.0, 4.0))):
            port = free_port()
            cfg = write_config(
                work / f"{mode}-{name}.yaml",
                [str(log)],
                state=work / f"state-{mode}-{name}",
                url=f"http://127.0.0.1:{port}/api/v1/OperReport",
                max_backoff=1.0,
            )
            args = ["replay", "-c", str(cfg), str(log)] if mode == "replay" else ["run", "-c", str(cfg)]
            results[name] = measure(tailer_cmd(*args), port, *phases, work / f"{mode}-{name}.err")
        (down_peak, peak), (_, floor) = results["big"], results["small"]
        label = "replay" if mode == "replay" else "run (follow)"
        out.append(
            Row(
                f"peak RSS, {label}: {big.stat().st_size >> 20} MiB backlog, endpoint down then up",
                f"{peak:.0f} MB ({down_peak:.0f} MB while down)",
                f"{floor:.0f} MB (2 MiB backlog)",
                floor / peak,
                target=100,
                measured=peak,
                unit=" MB",
                lower_is_better=True,
            )
        )
    return out
