"""``python3 -m benchmarks``: oper-tailer raced against its peers, one table of ratios from one run.

Shared pieces: the result row, the table, child processes, the loopback sink, optional peers. Each row
module (extract, ship, live, memory, idle) exposes ``rows(ctx) -> list[Row]``; every pair in a row is
measured in the same run, on the same data, against the same server. Loopback (127.0.0.1) only; every
load loop is bounded in count and in time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


@dataclass(slots=True)
class Row:
    """One line of the table. ``ratio`` is ours / baseline (both from this run, higher is better for us
    unless said). ``target`` is the issue's bound on ``measured`` (default: the ratio itself, in ``unit``),
    met when ``measured >= target`` (``<=`` with ``lower_is_better``); else the distance is shown."""

    name: str
    ours: str
    baseline: str
    ratio: float | None
    target: float | None = None
    measured: float | None = None
    unit: str = "x"
    lower_is_better: bool = False

    def value(self) -> float | None:
        return self.measured if self.measured is not None else self.ratio

    def verdict(self) -> str:
        value = self.value()
        if value is None or self.target is None:
            return "-"
        met = value <= self.target if self.lower_is_better else value >= self.target
        if met:
            return "met"
        if self.lower_is_better:
            return f"missed: {value / self.target:.1f}x over"
        return f"missed: {value / self.target:.2f} of it"


@dataclass(slots=True)
class Context:
    quick: bool
    work: Path
    install: bool = True  # may optional peers be installed (apt-get, pip) when missing
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  . {text}", file=sys.stderr, flush=True)


def fmt_ratio(row: Row) -> str:
    return "-" if row.ratio is None else f"{row.ratio:.3g}x"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return "-"
    return f"{'<=' if row.lower_is_better else '>='} {row.target:g}{row.unit}"


def table(rows: list[Row]) -> str:
    head = ("row", "ours", "baseline (same run)", "ratio", "target", "verdict")
    body = [(r.name, r.ours, r.baseline, fmt_ratio(r), fmt_target(r), r.verdict()) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def tailer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tailer.cli.main", *args]


def spawn(cmd: list[str], err: Path) -> subprocess.Popen:
    """Start a child with the project importable, stdout discarded, stderr into ``err``."""
    with open(err, "w") as stream:
        return subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=stream)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MB; 0.0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The fast sink: a bare aiohttp app in its own process (its own core), answering {"ret": 0} after
# ``latency`` seconds. It checks nothing and stores nothing, so the client side is what is measured.
SINK = r"""
import asyncio, sys
from aiohttp import web
latency = float(sys.argv[2])
async def report(request):
    await request.read()
    if latency:
        await asyncio.sleep(latency)
    return web.Response(body=b'{"ret":0,"msg":"ok"}', content_type="application/json")
app = web.Application()
app.router.add_post("/api/v1/OperReport", report)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024)
"""


class Sink:
    """``with Sink(latency) as url:`` a fast loopback OperReport sink in a subprocess."""

    def __init__(self, latency: float = 0.0, port: int | None = None):
        self.latency = latency
        self.port = port
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = self.port or free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", SINK, str(port), str(self.latency)])
        url = f"http://127.0.0.1:{port}/api/v1/OperReport"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # bounded: the sink must listen within 15 s
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return url
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("sink did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def ensure_mtail(ctx: Context) -> str | None:
    """mtail from Debian, installed with apt-get when missing and we are root; None (skipped) otherwise."""
    if have("mtail"):
        return shutil.which("mtail")
    if not ctx.install:
        ctx.note("mtail: not installed (--no-install): skipped")
        return None
    if os.geteuid() != 0 or not have("apt-get"):
        ctx.note("mtail: not installed and cannot apt-get (not root): skipped")
        return None
    ctx.note("mtail: installing with apt-get install -y mtail")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "mtail"]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            break
    if have("mtail"):
        return shutil.which("mtail")
    ctx.note("mtail: apt-get install failed: skipped")
    return None


def ensure_pip(ctx: Context, module: str, package: str) -> bool:
    """An optional Python peer (the ``bench`` extra), pip-installed when missing; False (skipped) if not."""
    import importlib

    try:
        importlib.import_module(module)
        return True
    except ImportError:
        pass
    if not ctx.install:
        ctx.note(f"{package}: not installed (--no-install): skipped")
        return False
    ctx.note(f"{package}: installing with pip")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], capture_output=True, timeout=300)
    try:
        importlib.invalidate_caches()
        importlib.import_module(module)
        return True
    except ImportError:
        ctx.note(f"{package}: pip install failed: skipped")
        return False
