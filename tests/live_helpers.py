"""Builders for the end-to-end ``tailer run`` tests (logrotate, SIGKILL loop, outage): a config, a paced
writer thread, the subprocess, and what is on disk versus what reached the receiver.

Every line is ``vote_line(i)`` (tests/replay_helpers.py), so the receiver's ``data.ext1`` is the line
number. Every wait is bounded; nothing here asserts how long anything took.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from replay_helpers import vote_line

from tailer.receiver.embedded import EmbeddedReceiver
from tailer.record import Origin, deterministic_nonce
from tailer.source.identity import FINGERPRINT_BYTES, identify_stream
from tailer.source.reader import open_log

TOKEN = "test-token"
RULE = r"""
rules:
  - name: vote
    pattern: '^(?P<ts>\S+ \S+) INFO (?P<act>VOTE_[A-Z]+) id=(?P<ext1>\d+) gid=(?P<gid>\d+) ch=(?P<target_id>\S+) uid=(?P<uid>\d+)$'
    oper_id: {from: act, map: {VOTE_CREATE: "1504000120618", VOTE_JOIN: "1504000120679", VOTE_DELETE: "1504000120617"}}
    ts_format: "%Y-%m-%d %H:%M:%S"
    timezone: UTC
"""


def write_live_config(
    tmp: Path,
    url: str,
    *,
    paths: Iterable[str] = ("logs/*.log*",),
    exclude: Iterable[str] = ("*.gz",),
    concurrency: int = 4,
    max_backoff: float = 0.3,
) -> Path:
    """rules.yaml next to ``tmp/logs`` and ``tmp/state`` with deterministic nonces (resends are exact)."""
    (tmp / "logs").mkdir(exist_ok=True)
    cfg = tmp / "rules.yaml"
    cfg.write_text(
        f"endpoint:\n  url: {url}\n  token: {TOKEN}\n  concurrency: {concurrency}\n  nonce: deterministic\n"
        f"  max_backoff: {max_backoff}\n  timeout: 5\n"
        f"sources:\n  - paths: {json.dumps(list(paths))}\n    exclude: {json.dumps(list(exclude))}\n"
        "state_dir: state\n" + RULE,
        encoding="utf-8",
    )
    return cfg


# -- the agent as a subprocess -------------------------------------------------------------------------


@dataclass
class Run:
    """A ``tailer run`` subprocess; stderr goes to a file (a pipe nobody reads could fill and block it)."""

    proc: subprocess.Popen[bytes]
    err_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait (bounded) for the exit code; killed if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_run(cfg: Path, *extra: str, name: str = "run") -> Run:
    err_path = cfg.parent / f"{name}-{time.monotonic_ns()}.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tailer", "run", "-c", str(cfg), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    return Run(proc, err_path)


def start_replay(cfg: Path, *args: str, name: str = "replay") -> Run:
    """``tailer replay -c cfg ARGS...`` as a subprocess (paths and options in ``args``), like start_run."""
    err_path = cfg.parent / f"{name}-{time.monotonic_ns()}.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tailer", "replay", "-c", str(cfg), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    return Run(proc, err_path)


def status_json(cfg: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tailer", "status", "--json", "-c", str(cfg)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def rss_kb(pid: int) -> int:
    """VmRSS of a live process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout``; returns its last value (callers assert on it)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


# -- writers ---------------------------------------------------------------------------------------------


class PacedWriter(threading.Thread):
    """Appends ``vote_line(i)`` for i in [start, stop) in bursts of ``burst`` lines every ``pause`` seconds.

    ``sink`` is ``"fd"`` (the file held open with O_APPEND, like an application; ``reopen()`` is its
    postrotate hook), or a ``logging.Handler`` (Python's rotating handlers rotate from this thread)."""

    def __init__(self, path: Path, stop: int, *, start: int = 0, burst: int = 10, pause: float = 0.01,
                 handler: logging.Handler | None = None) -> None:  # fmt: skip
        super().__init__(name=f"writer-{path.name}", daemon=True)
        self.path, self.first, self.last = path, start, stop
        self.burst, self.pause = burst, pause
        self.handler = handler
        self.written = 0  # lines written so far (read by the test thread)
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._fd: int | None = None
        if handler is None:
            self._fd = self._open()
        else:
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger = logging.Logger(f"writer-{id(self)}")  # not registered globally
            self._logger.propagate = False
            self._logger.addHandler(handler)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def reopen(self) -> None:
        """What an application does on logrotate's postrotate signal: write to the path's new file."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = self._open()

    def run(self) -> None:
        try:
            for base in range(self.first, self.last, self.burst):
                for i in range(base, min(base + self.burst, self.last)):
                    if self.handler is not None:
                        self._logger.info(vote_line(i))
                    else:
                        with self._lock:
                            assert self._fd is not None
                            os.write(self._fd, (vote_line(i) + "\n").encode())  # one write: one whole line
                    self.written += 1
                time.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self, timeout: float = 120.0) -> None:
        self.join(timeout)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self.handler is not None:
            self._logger.removeHandler(self.handler)
            self.handler.close()
        assert not self.is_alive(), "writer did not finish"
        if self.error is not None:
            raise self.error

    def wait_written(self, n: int, timeout: float = 60.0) -> None:
        assert wait_until(lambda: self.written >= n or not self.is_alive(), timeout), "writer stalled"


def rotating_handler(path: Path, max_bytes: int, backups: int = 50) -> logging.Handler:
    return logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)


def timed_handler(path: Path) -> logging.Handler:
    return logging.handlers.TimedRotatingFileHandler(path, when="S", interval=1, backupCount=0)


# -- what is on disk, what arrived -------------------------------------------------------------------


@dataclass(frozen=True)
class DiskLine:
    number: int  # the vote_line number (data.ext1)
    path: Path
    key: str | None  # the file's fingerprint (its checkpoint key); None below FINGERPRINT_BYTES
    end: int  # byte offset just past its newline (uncompressed)
    nonce: str  # the deterministic nonce the tailer gives it when it knows the file by its head


def record_key(data: bytes, key: str | None, end: int) -> str:
    """The tailer's Origin.file_id for a line ending at ``end`` (TailedFile.record_key)."""
    if end < FINGERPRINT_BYTES or key is None:
        return "head-" + hashlib.blake2b(data[:end], digest_size=16).hexdigest()
    return key


def lines_on_disk(directory: Path) -> list[DiskLine]:
    """Every vote line in every file of ``directory`` (gzip read transparently)."""
    out: list[DiskLine] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        with open_log(path) as stream:
            key = identify_stream(stream)
            data = stream.read()
        end = 0
        for raw in data.split(b"\n")[:-1]:
            end += len(raw) + 1
            if b" VOTE_" in raw:
                number = int(raw.split(b" id=", 1)[1].split(b" ", 1)[0])
                out.append(
                    DiskLine(
                        number,
                        path,
                        key,
                        end,
                        deterministic_nonce(Origin(record_key(data, key, end), "", end)),
                    )
                )
    return out


def delivered(receiver: EmbeddedReceiver) -> Counter[int]:
    """How many times each line number is stored at the receiver (exact resends are stored once)."""
    return Counter(int(r["data"]["ext1"]) for r in receiver.records())


def settle(receiver: EmbeddedReceiver, quiet: float = 0.3, timeout: float = 10.0) -> int:
    """Wait until the receiver's count stops moving for ``quiet`` seconds (requests whose bodies arrived
    before a kill are still being stored); bounded by ``timeout``. Returns the count."""
    deadline = time.monotonic() + timeout
    last = receiver.count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = receiver.count()
        if now == last:
            return now
        last = now
    return last
