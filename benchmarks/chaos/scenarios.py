"""The chaos scenarios. Each builds its own workspace, drives ``tailer run`` / ``tailer replay`` as
subprocesses against the project's receiver on 127.0.0.1, and returns one ``Result`` row. Every loop is
bounded in count and in time; sizes come from the ``Ctx`` (``quick`` for CI, full by default)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging.handlers
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.chaos.faultproxy import FaultProxy
from benchmarks.chaos.harness import (
    AppWriter,
    Crash,
    Result,
    Workspace,
    account,
    check_stderr,
    crash_bounds,
    lines_on_disk,
    saved_offsets,
    settle,
    start_replay,
    start_run,
    stored,
    wait_for,
    wait_until,
    where_lost,
    write_archives,
)

LOGROTATE = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
BOUND_NOTE = ("bound per crash = records acknowledged (stored) before the kill whose line lies past the offset "
              "of the state file the killed process left")
LINE_BYTES = 150  # about one operation line plus its share of noise lines: sizes rotations to ~1/s


@dataclass
class Ctx:
    base: Path
    kills: int = 50
    quick: bool = False
    seed: int = 20261203
    say: Callable[[str], None] = field(default=lambda msg: None)

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}-{name}")

    def size(self, quick: float, full: float) -> float:
        return quick if self.quick else full


# -- helpers ---------------------------------------------------------------------------------------------


def _started(run, timeout: float = 60) -> bool:
    # SIGTERM before the signal handlers are installed would kill it by default: wait for them.
    return wait_until(lambda: "following " in run.stderr() or run.proc.poll() is not None, timeout)


def _resends(recv, db: Path, acked_before: int) -> int:
    """Resends seen so far: exact resends acknowledged without storing + extra rows stored."""
    got = stored(db)
    return acked_before + recv.duplicates + sum(got.values()) - len(got)


def _per_crash(result: Result, crashes: list[Crash], final_resends: int, lines) -> None:
    result.crashes = len(crashes)
    result.bound_per_crash = crash_bounds(crashes, lines)
    marks = [c.dup_before for c in crashes] + [final_resends]
    result.resent_per_crash = [marks[k + 1] - marks[k] for k in range(len(crashes))]
    if crashes and crashes[0].dup_before:
        result.problems.append(f"{crashes[0].dup_before} resend(s) before the first crash")


# -- SIGKILL of tailer run -----------------------------------------------------------------------------


def sigkill_run(ctx: Ctx, nonce: str, *, log4j: bool = False) -> Result:
    """``ctx.kills`` SIGKILLs of ``tailer run`` at random moments (each once the new process delivers)
    while the app writes 300 operations/s through a RotatingFileHandler (rename rotation every ~10 s),
    restarted at once. With ``log4j``: ``max(3, kills // 5)`` kills, a log4j2-style writer rolling about
    once a second into app-N.log.gz, and the tailer down 0.5-2.5 s after each kill (a restart delay), so
    rollovers and compressions happen while no tailer runs."""
    name = "sigkill-run-log4j2-gz" if log4j else f"sigkill-run-{nonce}"
    res, ws, rng, t0 = Result(name), Workspace(ctx.base, name), ctx.rng(name), time.monotonic()
    kills = max(3, ctx.kills // 5) if log4j else ctx.kills
    recv = ws.receiver()
    try:
        cfg = ws.config(recv.url, nonce=nonce, concurrency=8)
        log = ws.logs / "app.log"
        if log4j:
            writer = AppWriter(log, rate=300, sink="log4j", log4j_bytes=300 * LINE_BYTES, max_seconds=kills * 10 + 60)
        else:
            handler = logging.handlers.RotatingFileHandler(log, maxBytes=400_000, backupCount=2000)
            writer = AppWriter(log, rate=300, sink=handler, max_seconds=kills * 10 + 60)
        checkpoint = ws.state / "checkpoint.json"
        crashes: list[Crash] = []
        writer.start()
        try:
            for k in range(kills):
                run = start_run(cfg, name=f"run{k}")
                try:
                    before = recv.count()
                    if not wait_until(lambda b=before, r=run: recv.count() > b or r.proc.poll() is not None, 60):
                        res.problems.append(f"run {k} delivered nothing within 60 s")
                    time.sleep(rng.uniform(0.05, 3.0))  # a random moment, before or after checkpoint writes
                finally:
                    run.stop(signal.SIGKILL)
                check_stderr(res, run, allowed_exit=(-signal.SIGKILL,))
                settle(recv)  # requests whose bodies arrived before the kill are stored
                got = stored(ws.db)
                crashes.append(Crash(set(got), saved_offsets(checkpoint), _resends(recv, ws.db, 0)))
                if log4j:
                    time.sleep(rng.uniform(0.5, 2.5))  # down: the app rolls over and gzips meanwhile
                if (k + 1) % 10 == 0:
                    ctx.say(f"  {name}: {k + 1} kills")
        finally:
            expected = writer.finish()
        final = start_run(cfg, name="final")
        try:
            _started(final)
            if not wait_for(ws.db, set(range(expected)), 300, lambda: final.proc.poll() is None):
                res.problems.append("the final run stopped delivering before everything had arrived")
            settle(recv)
        finally:
            final.stop()
        check_stderr(res, final)
        account(res, ws.db, expected, acked_resends=recv.duplicates)
        lines = lines_on_disk(ws.logs)
        _per_crash(res, crashes, _resends(recv, ws.db, 0), lines)
        where_lost(res, ws.db, expected, lines)
        res.notes.append(BOUND_NOTE)
    finally:
        recv.stop()
    res.seconds = time.monotonic() - t0
    return res


# -- SIGKILL of tailer replay ----------------------------------------------------------------------------


def sigkill_replay(ctx: Ctx) -> Result:
    """``tailer replay`` of five gz archives (``--rate 500``) killed with SIGKILL ``max(2, kills // 5)``
    times at random moments, then rerun to completion; a further rerun must send nothing."""
    name = "sigkill-replay-gz"
    res, ws, rng, t0 = Result(name), Workspace(ctx.base, name), ctx.rng(name), time.monotonic()
    kills = max(2, ctx.kills // 5)
    total = kills * 700 + 1500
    write_archives(ws.logs, total, files=5)
    recv = ws.receiver()
    try:
        cfg = ws.config(recv.url, nonce="deterministic", concurrency=8)
        crashes: list[Crash] = []
        for k in range(kills):
            rp = start_replay(cfg, str(ws.logs), "--rate", "500", name=f"replay{k}")
            try:
                before = recv.count()
                wait_until(lambda b=before, r=rp: recv.count() > b or r.proc.poll() is not None, 60)
                if rp.proc.poll() is not None:
                    res.notes.append(f"replay finished before kill {k + 1}")
                    check_stderr(res, rp)
                    break
                time.sleep(rng.uniform(0.05, 1.5))
            finally:
                rp.stop(signal.SIGKILL)
            check_stderr(res, rp, allowed_exit=(-signal.SIGKILL, 0))
            settle(recv)
            states = sorted(ws.state.glob("replay-*.json"))
            saved = saved_offsets(states[0]) if states else {}
            crashes.append(Crash(set(stored(ws.db)), saved, _resends(recv, ws.db, 0)))
        for attempt in ("final", "again"):
            rp = start_replay(cfg, str(ws.logs), "--rate", "500", name=attempt)
            before = recv.count()
            try:
                rp.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                res.problems.append(f"{attempt} replay did not finish within 300 s")
            finally:
                rp.stop(signal.SIGKILL)
            check_stderr(res, rp)
            settle(recv)
            if attempt == "again" and recv.count() != before:
                res.problems.append(f"a rerun of a finished replay sent {recv.count() - before} record(s)")
        account(res, ws.db, total, acked_resends=recv.duplicates)
        _per_crash(res, crashes, _resends(recv, ws.db, 0), lines_on_disk(ws.logs))
        res.notes.append(BOUND_NOTE)
    finally:
        recv.stop()
    res.seconds = time.monotonic() - t0
    return res


# -- tailer run under faults, rotations, full disk -------------------------------------------------------


@dataclass
class Live:
    """One live scenario in progress (handed to its chaos callback)."""

    ctx: Ctx
    ws: Workspace
    res: Result
    recv: object
    writer: AppWriter
    cfg: Path
    run: object = None
    acked_before: int = 0  # exact resends acknowledged by receivers stopped earlier (outage)
    proxy: FaultProxy | None = None
    crashes: list[Crash] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def _live(ctx: Ctx, name: str, chaos: Callable[[Live], None], *, seconds: float, rate: float = 300,
          sink="fd", paths=("logs/app*.log*",), exclude=("*.gz",), proxy_mix: dict | None = None,
          slow: float = 1.5, timeout: float = 5, log4j_bytes: int = 64_000,
          unrecoverable: Callable[[Live, list], set[int]] | None = None,
          state_dir: Callable[[Workspace, Result], contextlib.AbstractContextManager] | None = None) -> Result:  # fmt: skip
    """Start ``tailer run``, let the app write ``rate`` operations/s for ``seconds`` while ``chaos(live)``
    does its worst, then wait (bounded) for every operation still on disk in a followed file, SIGTERM
    (exit 0 expected) and count."""
    res, ws, t0 = Result(name), Workspace(ctx.base, name), time.monotonic()
    mount = state_dir(ws, res) if state_dir is not None else contextlib.nullcontext()
    with mount:
        if res.problems:
            return res
        live: Live | None = None
        recv = ws.receiver()
        proxy = None
        try:
            url = recv.url
            if proxy_mix is not None:
                proxy = FaultProxy(recv.port, mix=proxy_mix, slow=slow, seed=ctx.seed).start()
                url = proxy.url
            cfg = ws.config(url, nonce="deterministic", concurrency=8, timeout=timeout, paths=paths,
                            exclude=exclude)  # fmt: skip
            log = ws.logs / "app.log"
            writer = AppWriter(log, rate=rate, sink=sink(log) if callable(sink) else sink,
                               limit=int(rate * seconds), max_seconds=seconds * 3 + 60,
                               log4j_bytes=log4j_bytes)  # fmt: skip
            live = Live(ctx, ws, res, recv, writer, cfg, proxy=proxy)
            live.run = start_run(cfg, name="run")
            try:
                if not _started(live.run):
                    res.problems.append("tailer run did not start")
                writer.start()
                try:
                    # the chaos only once the tailer follows the file (a file it never saw is no rotation)
                    wait_until(lambda: live.recv.count() > 0 or live.run.proc.poll() is not None, 60)
                    chaos(live)
                finally:
                    expected = writer.finish()
                if proxy is not None:
                    proxy.set_mix({"pass": 1.0})  # the storm is over: what is left must get through
                lines = lines_on_disk(ws.logs)
                gone = unrecoverable(live, lines) if unrecoverable else set()
                if not wait_for(ws.db, set(range(expected)) - gone, 300, lambda: live.run.proc.poll() is None):
                    res.problems.append("delivery stopped before everything on disk had arrived")
                settle(live.recv, quiet=1.0)
                if unrecoverable:  # what was unread in an excluded copy is only known once all has arrived
                    gone = unrecoverable(live, lines)
            finally:
                live.run.stop()
            check_stderr(res, live.run)
            account(res, ws.db, expected, acked_resends=live.acked_before + live.recv.duplicates,
                    unrecoverable=gone if unrecoverable else None)  # fmt: skip
            if live.crashes:
                _per_crash(res, live.crashes, _resends(live.recv, ws.db, live.acked_before), lines)
            if res.lost:
                where_lost(res, ws.db, expected, lines)
            faults = {k: v for k, v in sorted(live.recv.stats.items()) if k != 200}
            if faults:
                res.notes.append("receiver refused: " + ", ".join(f"{v} x {k}" for k, v in faults.items()))
            if proxy is not None:
                res.notes.append("proxy: " + ", ".join(f"{k} {v}" for k, v in sorted(proxy.counts.items())))
            dead = ws.state / "dead-letter.jsonl"
            if dead.exists() and dead.stat().st_size:
                res.problems.append("records were dead-lettered")
        finally:
            if proxy is not None:
                proxy.stop()
            (live.recv if live is not None else recv).stop()
    res.seconds = time.monotonic() - t0
    return res


def _for(live: Live, seconds: float, step: Callable[[], None] | None = None, every: float = 1.0) -> None:
    """Call ``step`` every ``every`` s for ``seconds`` s or until the writer is done (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and live.writer.is_alive():
        if step is not None:
            step()
        time.sleep(every)


def outage(ctx: Ctx) -> Result:
    """The endpoint down (the receiver stopped: connection refused) for 5 s (quick) or 120 s (full) while
    the app writes; then it comes back on the same port and db."""
    down = ctx.size(5, 120)

    def chaos(live: Live) -> None:
        time.sleep(1)
        port = live.recv.port
        live.acked_before += live.recv.duplicates
        live.recv.stop()
        ctx.say(f"  outage: endpoint down for {down:g} s")
        time.sleep(down)
        live.recv = live.ws.receiver(port=port)
        _for(live, 1e9, every=0.5)

    return _live(ctx, "endpoint-down", chaos, seconds=down + 4)


def storms(ctx: Ctx) -> Result:
    """503 and 429 storms with Retry-After: 60% of requests refused for a while, then every request for
    a burst, alternating statuses, while the app writes."""
    seconds = ctx.size(8, 40)

    def chaos(live: Live) -> None:
        rng = ctx.rng("storms")
        while live.writer.is_alive():
            status = rng.choice((503, 429))
            live.recv.set_faults(fail_rate=0.6, fail_status=status, retry_after=rng.choice((0.2, 0.5, 1)))
            time.sleep(1.5)
            live.recv.set_faults(fail_rate=0.0)
            live.recv.fail_next(rng.randint(20, 80), status, retry_after=0.2)
            time.sleep(1.0)
        live.recv.set_faults(fail_rate=0.0)

    res = _live(ctx, "503-429-storms", chaos, seconds=seconds)
    return res


def resets_and_slow(ctx: Ctx) -> Result:
    """Through the fault proxy: connection resets (before and after the receiver stored the record) and
    answers held 1.5 s, longer than the 1 s client timeout."""
    mix = {"pass": 0.6, "reset": 0.1, "reset_after": 0.1, "slow": 0.2}
    return _live(ctx, "resets-slow-answers", lambda live: _for(live, 1e9), seconds=ctx.size(8, 40),
                 proxy_mix=mix, slow=1.5, timeout=1)  # fmt: skip


def close_before_answer(ctx: Ctx) -> Result:
    """Through the fault proxy: a receiver that accepts the request (and stores it) and then closes the
    connection before answering, or reads it and closes without storing."""
    mix = {"pass": 0.6, "close": 0.3, "drop": 0.1}
    return _live(ctx, "close-before-answer", lambda live: _for(live, 1e9), seconds=ctx.size(8, 40),
                 proxy_mix=mix)  # fmt: skip


# -- rotations --------------------------------------------------------------------------------------------


def _logrotate(live: Live, directives: str, reopen: bool) -> None:
    log = live.ws.logs / "app.log"
    conf = live.ws.dir / "logrotate.conf"
    conf.write_text(f"{log} {{\n  rotate 100000\n  missingok\n{directives}}}\n")
    conf.chmod(0o644)  # logrotate refuses a config others may write
    state = live.ws.dir / "logrotate.state"

    def step() -> None:
        done = subprocess.run([LOGROTATE, "-s", str(state), "-f", str(conf)], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        if done.returncode != 0:
            live.res.problems.append(f"logrotate failed: {done.stderr.strip()[:200]}")
        if reopen:
            live.writer.reopen()  # the app's postrotate: write to the new app.log
        live.extra["rotations"] = live.extra.get("rotations", 0) + 1

    _for(live, 1e9, step, every=1.0)
    live.res.notes.append(f"{live.extra.get('rotations', 0)} logrotate runs")


def _in_no_file(live: Live, lines) -> set[int]:
    """Operations the app wrote that are in no file afterwards (scan of every file, gz included)."""
    return set(range(live.writer.written)) - {ln.number for ln in lines}


def logrotate_scenario(ctx: Ctx, kind: str, name: str | None = None) -> Result:
    """Real logrotate every second under load: ``create``, ``create`` + ``compress`` + ``delaycompress``,
    ``copytruncate`` with the copy in the globs (``app.log*``) and out of them (``paths: [.../app.log]``)."""
    if LOGROTATE is None:
        res = Result(name or f"logrotate-{kind}")
        res.problems.append("logrotate is not installed")
        return res
    seconds = ctx.size(6, 30)
    directives = {
        "create": ("  create 0644\n", True),
        "compress": ("  create 0644\n  compress\n  delaycompress\n", True),
        "copytruncate-in": ("  copytruncate\n", False),
        "copytruncate-out": ("  copytruncate\n", False),
    }[kind]
    paths = ("logs/app*.log*",)
    gone = None
    if kind == "copytruncate-in":

        def gone(live: Live, lines) -> set[int]:
            nowhere = _in_no_file(live, lines)
            rescued = len(nowhere & set(stored(live.ws.db)))
            live.res.unrecoverable_detail = (f"{len(nowhere)} in no file (written between copy and truncate), "
                                             f"{rescued} of them delivered anyway (read before the truncation)")  # fmt: skip
            return nowhere
    if kind == "copytruncate-out":
        paths = ("logs/app.log",)

        def gone(live: Live, lines) -> set[int]:  # the copy outside the globs too
            in_followed = {ln.number for ln in lines if ln.path.name == "app.log"}
            in_copies = {ln.number for ln in lines} - in_followed
            missing_copies = in_copies - set(stored(live.ws.db))
            nowhere = _in_no_file(live, lines)
            rescued = len(nowhere & set(stored(live.ws.db)))
            live.res.unrecoverable_detail = (f"{len(nowhere)} in no file (written between copy and truncate; "
                                             f"{rescued} of them delivered anyway, read before the truncation) "
                                             f"+ {len(missing_copies)} unread when truncated, only in copies "
                                             "outside the globs")  # fmt: skip
            return nowhere | missing_copies

    def chaos(live: Live) -> None:
        _logrotate(live, *directives)

    res = _live(ctx, name or f"logrotate-{kind}", chaos, seconds=seconds, paths=paths, unrecoverable=gone)
    return res


def python_rotating(ctx: Ctx) -> Result:
    """Python's RotatingFileHandler rolling over about once a second (rename + new file)."""
    sink = lambda log: logging.handlers.RotatingFileHandler(log, maxBytes=300 * LINE_BYTES, backupCount=2000)  # noqa: E731
    return _live(ctx, "python-RotatingFileHandler", lambda live: _for(live, 1e9), seconds=ctx.size(6, 30),
                 sink=sink)  # fmt: skip


def log4j_rolling(ctx: Ctx) -> Result:
    """A log4j2-style RollingFileAppender (app.log -> app-N.log, gzipped to app-N.log.gz in the
    background and the plain copy deleted) rolling about once a second."""
    return _live(ctx, "log4j2-rolling-gz", lambda live: _for(live, 1e9), seconds=ctx.size(6, 30),
                 sink="log4j", log4j_bytes=300 * LINE_BYTES)  # fmt: skip


# -- the state_dir's disk full ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(ws: Workspace, res: Result, size_kb: int = 512):
    """``ws.state`` on a small tmpfs (we are root); a loop-mounted ext2 image if tmpfs is refused; else
    the row says why it could not run."""
    ws.state.mkdir(exist_ok=True)
    mounted = False
    tries = [["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(ws.state)]]
    image = ws.dir / "state.img"
    tries.append(["sh", "-c", f"dd if=/dev/zero of={image} bs=1k count={size_kb} 2>/dev/null && "
                  f"mkfs.ext2 -q -F {image} && mount -o loop {image} {ws.state}"])  # fmt: skip
    why = []
    for cmd in tries:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            mounted = True
            res.notes.append(f"state_dir on {'tmpfs' if cmd[0] == 'mount' else 'a loop-mounted ext2 image'} "
                             f"of {size_kb} KiB")  # fmt: skip
            break
        why.append(done.stderr.strip()[:120])
    if not mounted:
        res.problems.append("NOT RUN: cannot mount a small filesystem here: " + " / ".join(why))
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ws.state)], capture_output=True, timeout=60)


def _fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` until ENOSPC (bounded by its size)."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as out:
        for _ in range(1 << 20):  # at most 4 GiB: the filesystem is far smaller
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


def disk_full(ctx: Ctx) -> Result:
    """The state_dir's filesystem full while the app writes. Phase 1: filled for a while, then freed:
    the checkpoint on disk stays the previous one (intact, parseable, unchanged), the tool says so, and it
    moves again once space returns, in the same process. Phase 2: filled, the tailer is SIGKILLed while
    full, space returns, a new run resends no more than what was acknowledged since the intact checkpoint."""
    phase = ctx.size(3, 15)

    def chaos(live: Live) -> None:
        res, ws = live.res, live.ws
        cp = ws.state / "checkpoint.json"
        if not wait_until(lambda: bool(saved_offsets(cp)), 30):
            res.problems.append("no checkpoint was written before the disk filled")
        for k in (1, 2):
            filler = _fill(ws.state)
            time.sleep(1.5)  # a write that raced the fill may still land: then the file is what stays
            before = cp.read_bytes()
            count_before = live.recv.count()
            deadline = time.monotonic() + phase
            while time.monotonic() < deadline:
                if cp.read_bytes() != before:
                    res.problems.append(f"phase {k}: the checkpoint changed while the disk was full")
                    break
                json.loads(before)  # intact: still a valid document
                time.sleep(0.2)
            err = live.run.stderr()
            if "cannot write checkpoint" not in err or "No space left" not in err:
                res.problems.append(f"phase {k}: no 'cannot write checkpoint ... No space left' in stderr")
            moved = live.recv.count() - count_before
            if k == 1:
                res.notes.append(f"full {phase:g} s: checkpoint intact, said so, {moved} acked meanwhile")
                filler.unlink()
                if not wait_until(lambda b=before: cp.read_bytes() != b, 30):
                    res.problems.append("the checkpoint did not move again once space returned")
                else:
                    res.notes.append("recovered in-process once space returned")
                continue
            live.run.stop(signal.SIGKILL)
            settle(live.recv)
            live.crashes.append(Crash(set(stored(ws.db)), saved_offsets(cp), _resends(live.recv, ws.db, 0)))
            # A start while the disk is still full: it must refuse or run, say why, never crash; stopped
            # with SIGTERM it cannot write its checkpoint (exit 1 and said), so it counts as a crash too.
            early = start_run(live.cfg, name="while-full")
            _started(early, 30)
            time.sleep(2)
            code = early.stop()
            err = early.stderr()
            if "Traceback" in err:
                res.problems.append("traceback from a start while the disk was full")
            if code != 0 and "checkpoint" not in err and "state_dir" not in err:
                res.problems.append(f"a start while full exited {code} without saying why")
            last = (err.strip().splitlines() or [""])[-1][9:140]
            res.notes.append(f"a start while still full exited {code}: {last!r}")
            settle(live.recv)
            crash = Crash(set(stored(ws.db)), saved_offsets(cp), _resends(live.recv, ws.db, 0))
            filler.unlink()
            live.run = start_run(live.cfg, name="after-full")
            _started(live.run)
            live.crashes.append(crash)
        _for(live, 1e9, every=0.5)

    return _live(ctx, "state-dir-disk-full", chaos, seconds=phase * 2 + 20, state_dir=small_filesystem)


# -- the registry --------------------------------------------------------------------------------------


SCENARIOS: dict[str, Callable[[Ctx], Result]] = {
    "sigkill-run-random": lambda ctx: sigkill_run(ctx, "random"),
    "sigkill-run-deterministic": lambda ctx: sigkill_run(ctx, "deterministic"),
    "sigkill-run-log4j2-gz": lambda ctx: sigkill_run(ctx, "deterministic", log4j=True),
    "sigkill-replay-gz": sigkill_replay,
    "endpoint-down": outage,
    "503-429-storms": storms,
    "resets-slow-answers": resets_and_slow,
    "close-before-answer": close_before_answer,
    "logrotate-create": lambda ctx: logrotate_scenario(ctx, "create"),
    "logrotate-compress-delaycompress": lambda ctx: logrotate_scenario(ctx, "compress", "logrotate-compress-delaycompress"),
    "logrotate-copytruncate-in": lambda ctx: logrotate_scenario(ctx, "copytruncate-in"),
    "logrotate-copytruncate-out": lambda ctx: logrotate_scenario(ctx, "copytruncate-out"),
    "python-RotatingFileHandler": python_rotating,
    "log4j2-rolling-gz": log4j_rolling,
    "state-dir-disk-full": disk_full,
}
