"""Shared pieces of the chaos harness: a workspace (logs, state, config with the shipped rules), an
application writer with a ground truth, what is on disk, what reached the receiver, and the result row.

Every line the writer logs is a vote or lottery operation in the shipped rules.yaml's layout A, with a
unique id in ``voteId=``/``lotteryId=`` (the record's ``data.ext1``), so expected, received, lost and
duplicated records are counted exactly, not estimated. The ``tailer`` under test only ever runs as a
subprocess (``python3 -m tailer ...``) through tests/helpers.py's runner.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(ROOT / "tests")):  # run from a checkout; the test helpers live in tests/
    if _p not in sys.path:
        sys.path.insert(0, _p)

from helpers import Tailer as Run  # noqa: E402
from helpers import settle, start_tailer, wait_until  # noqa: E402

from tailer.receiver.embedded import EmbeddedReceiver  # noqa: E402
from tailer.receiver.server import ReceiverConfig  # noqa: E402
from tailer.source.identity import identify_stream  # noqa: E402
from tailer.source.reader import open_log  # noqa: E402

__all__ = ["Run", "settle", "start_replay", "start_run", "wait_until"]


def start_run(cfg: Path, *extra: str, name: str = "run") -> Run:
    """``tailer run -c cfg EXTRA...`` in the background (``name`` only labels the call site)."""
    return start_tailer("run", "-c", cfg, *extra)


def start_replay(cfg: Path, *args: str, name: str = "replay") -> Run:
    """``tailer replay -c cfg ARGS...`` in the background."""
    return start_tailer("replay", "-c", cfg, *args)

TOKEN = "chaos-token"
ID = re.compile(rb" INFO +\S+ - (?:VOTE_[A-Z]+ voteId|lottery\.[a-z]+ lotteryId)=(\d+) ")
VOTE_ACTS = ("VOTE_CREATE", "VOTE_START", "VOTE_JOIN", "VOTE_DELETE")
LOTTERY_ACTS = ("lottery.create", "lottery.start", "lottery.join", "lottery.delete")


def app_line(i: int, when: datetime | None = None) -> str:
    """Operation number ``i`` as the legacy app logs it (shipped rules.yaml, layout A)."""
    ts = (when or datetime.now()).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    thread = f"http-nio-8080-exec-{i % 16}"
    if i % 2 == 0:
        return (f"{ts} [{thread}] INFO  c.a.vote.VoteService - {VOTE_ACTS[i // 2 % 4]} voteId={i} "
                f"groupId={i % 97} channelId=c{i % 5} uid={1000 + i % 501} title=周末聚餐")  # fmt: skip
    return (f"{ts} [{thread}] INFO  c.a.lottery.LotteryService - {LOTTERY_ACTS[i // 2 % 4]} lotteryId={i} "
            f"gid={i % 97} channel=c{i % 5} operator={1000 + i % 501}")  # fmt: skip


def noise_line(i: int) -> str:
    """A line no rule turns into a record (the app's DEBUG chatter): settles at once, never sent."""
    ts = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{ts} [http-nio-8080-exec-{i % 16}] DEBUG c.a.vote.VoteEventBus - will publish VOTE_JOIN #{i}"


def shipped_rules() -> str:
    """The ``rules:`` section of the shipped rules.yaml, verbatim."""
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    return text[text.index("\nrules:\n") + 1 :]


# -- a scenario's directory --------------------------------------------------------------------------


class Workspace:
    """``base/name``: ``logs/``, ``state/``, ``rules.yaml`` and the receiver's db."""

    def __init__(self, base: Path, name: str) -> None:
        self.dir = base / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.logs = self.dir / "logs"
        self.state = self.dir / "state"
        self.logs.mkdir(parents=True)
        self.db = self.dir / "receiver.sqlite3"

    def config(self, url: str, *, nonce: str = "deterministic", concurrency: int = 8, timeout: float = 5,
               max_backoff: float = 2, paths: Iterable[str] = ("logs/app*.log*",),
               exclude: Iterable[str] = ("*.gz",)) -> Path:  # fmt: skip
        cfg = self.dir / "rules.yaml"
        cfg.write_text(
            f"endpoint:\n  url: {url}\n  token: {TOKEN}\n  concurrency: {concurrency}\n  nonce: {nonce}\n"
            f"  timeout: {timeout}\n  max_backoff: {max_backoff}\n"
            f"sources:\n  - paths: {json.dumps(list(paths))}\n    exclude: {json.dumps(list(exclude))}\n"
            "state_dir: state\n" + shipped_rules(),
            encoding="utf-8",
        )
        return cfg

    def receiver(self, port: int = 0) -> EmbeddedReceiver:
        """The project's reference receiver on 127.0.0.1, storing into this workspace's db (the caller
        stops it)."""
        return EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=self.db), port=port).start()


# -- the application -----------------------------------------------------------------------------------


class AppWriter(threading.Thread):
    """Logs operation ``i`` for i = 0, 1, 2, ... at ``rate`` lines/s (in bursts every 10 ms), plus a noise
    line every 4th operation, until ``stop()`` or ``limit`` operations or ``max_seconds``.

    ``sink``: "fd" (the file held open with O_APPEND, as an app does; ``reopen()`` is the postrotate
    hook), a ``logging.Handler`` (Python's rotating handlers roll over from this thread), or "log4j" (a
    log4j2 RollingFileAppender with ``filePattern: app-%i.log.gz``: at ``log4j_bytes`` it renames app.log
    to app-N.log, opens a new app.log and gzips app-N.log into app-N.log.gz in the background, deleting
    app-N.log, with N growing as log4j2's default ``fileIndex=max`` does)."""

    def __init__(self, path: Path, *, rate: float = 400, sink: str | logging.Handler = "fd",
                 limit: int = 1_000_000, max_seconds: float = 900, log4j_bytes: int = 64_000) -> None:  # fmt: skip
        super().__init__(name=f"app-writer-{path.name}", daemon=True)
        self.path, self.rate, self.limit, self.max_seconds = path, rate, limit, max_seconds
        self.written = 0  # operations written so far: ids 0 .. written-1
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._handler: logging.Handler | None = None
        self._log4j = sink == "log4j"
        self._log4j_bytes, self._log4j_index, self._size = log4j_bytes, 0, 0
        self._compressors: list[threading.Thread] = []
        if isinstance(sink, logging.Handler):
            self._handler = sink
            sink.setFormatter(logging.Formatter("%(message)s"))
            self._logger = logging.Logger(f"app-{id(self)}")  # not registered globally
            self._logger.propagate = False
            self._logger.addHandler(sink)
        else:
            self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def reopen(self) -> None:
        """logrotate's postrotate for an app that reopens its log: write to the path's new file."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = self._open()

    def _emit(self, text: str) -> None:
        if self._handler is not None:
            self._logger.info(text)
            return
        data = (text + "\n").encode()
        with self._lock:
            assert self._fd is not None
            os.write(self._fd, data)  # one write: one whole line
            self._size += len(data)
            if self._log4j and self._size >= self._log4j_bytes:
                self._roll_log4j()

    def _roll_log4j(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._log4j_index += 1
        rolled = self.path.with_name(f"{self.path.stem}-{self._log4j_index}{self.path.suffix}")
        os.rename(self.path, rolled)
        self._fd, self._size = self._open(), 0
        t = threading.Thread(target=_gzip_away, args=(rolled,), name="log4j-gzip", daemon=True)
        t.start()
        self._compressors.append(t)

    def run(self) -> None:
        start = time.monotonic()
        try:
            step = max(1, round(self.rate / 100))  # lines per 10 ms
            while not self._halt.is_set() and self.written < self.limit:
                if time.monotonic() - start > self.max_seconds:
                    break
                for _ in range(min(step, self.limit - self.written)):
                    i = self.written
                    self._emit(app_line(i))
                    if i % 4 == 3:
                        self._emit(noise_line(i))
                    self.written += 1
                # paced by the clock, so a slow moment is caught up, not lost
                ahead = self.written / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    self._halt.wait(ahead)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def stop(self) -> None:
        self._halt.set()

    def finish(self, timeout: float = 120.0) -> int:
        """Stop, join, close; returns how many operations were written."""
        self.stop()
        self.join(timeout)
        for t in self._compressors:
            t.join(timeout)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self._handler is not None:
            self._logger.removeHandler(self._handler)
            self._handler.close()
        if self.is_alive():
            raise RuntimeError("writer did not finish")
        if self.error is not None:
            raise self.error
        return self.written

    def wait_written(self, n: int, timeout: float = 120.0) -> bool:
        return wait_until(lambda: self.written >= n or not self.is_alive(), timeout)


def _gzip_away(path: Path) -> None:
    with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)


def write_archives(logs: Path, total: int, files: int) -> None:
    """``app.log.<files>.gz`` ... ``app.log.1.gz``: ``total`` operations, oldest first, as logrotate leaves
    them (for replay)."""
    per = -(-total // files)
    i = 0
    for n in range(files, 0, -1):
        lines = []
        for _ in range(min(per, total - i)):
            lines.append(app_line(i))
            if i % 4 == 3:
                lines.append(noise_line(i))
            i += 1
        with gzip.open(logs / f"app.log.{n}.gz", "wb") as out:
            out.write("".join(line + "\n" for line in lines).encode())


# -- what is on disk, what arrived ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiskLine:
    number: int  # the operation id (data.ext1)
    path: Path
    key: str | None  # the file's content fingerprint (its checkpoint key); None below 1 KiB
    end: int  # offset just past the line's newline (uncompressed)


def lines_on_disk(directory: Path) -> list[DiskLine]:
    """Every operation line in every file directly in ``directory`` (gzip read transparently)."""
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
            m = ID.search(raw)
            if m is not None:
                out.append(DiskLine(int(m[1]), path, key, end))
    return out


def stored(db_path: Path) -> Counter[int]:
    """How many times each operation id is stored in the receiver's db (read with a connection of our
    own: WAL lets a reader in beside the receiver, and it is cheap enough to poll)."""
    if not db_path.exists():
        return Counter()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT json_extract(data, '$.ext1') FROM records").fetchall()
    finally:
        db.close()
    return Counter(int(r[0]) for r in rows)


def saved_offsets(state_file: Path) -> dict[str, int]:
    """key -> offset of a checkpoint or replay state file; {} when missing or unreadable."""
    try:
        doc = json.loads(state_file.read_text(encoding="utf-8"))
        return {e["key"]: e["offset"] for e in doc["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@dataclass
class Crash:
    """What one SIGKILL left: the ids stored when it died, and the offsets its state file held."""

    stored_before: set[int]
    saved: dict[str, int]
    dup_before: int  # resends counted at the receiver so far (acknowledged + stored)


def crash_bounds(crashes: list[Crash], lines: list[DiskLine]) -> list[int]:
    """Per crash, the records a restart may resend (DESIGN.md "Delivery"): those acknowledged (stored)
    before the kill whose line lies past the offset the state file held for its file. Records in flight at
    the kill that had not reached the receiver are not resends (they were never stored)."""
    where = {}
    for ln in lines:
        where.setdefault(ln.number, ln)
    out = []
    for c in crashes:
        n = 0
        for number in c.stored_before:
            ln = where.get(number)
            if ln is None or ln.end > c.saved.get(str(ln.key), 0):
                n += 1
        out.append(n)
    return out


# -- the result row --------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    expected: int = 0  # operations the app wrote
    received: int = 0  # distinct operations stored at the receiver
    lost: int = 0  # expected, not received, not unrecoverable by construction
    resent: int = 0  # duplicate sends the receiver saw (acknowledged exact resends + stored duplicates)
    stored_dup: int = 0  # extra rows stored for an operation already stored (random nonces)
    crashes: int = 0
    resent_per_crash: list[int] = field(default_factory=list)
    bound_per_crash: list[int] = field(default_factory=list)
    unrecoverable: int | None = None  # lines in no file afterwards (copytruncate), counted by scanning
    unrecoverable_detail: str = ""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anything that makes the row a failure
    seconds: float = 0.0

    @property
    def within_bound(self) -> bool:
        return all(r <= b for r, b in zip(self.resent_per_crash, self.bound_per_crash, strict=True))

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.within_bound and not self.problems

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d.update(within_bound=self.within_bound, ok=self.ok)
        return d


def account(result: Result, db: Path, expected: int, *, acked_resends: int,
            unrecoverable: set[int] | None = None) -> Counter[int]:  # fmt: skip
    """Fill expected/received/lost/duplicates from the receiver's db and its count of exact resends it
    acknowledged without storing (``EmbeddedReceiver.duplicates``, summed over its restarts)."""
    got = stored(db)
    result.expected = expected
    result.received = len(set(got) & set(range(expected)))
    strays = set(got) - set(range(expected))
    if strays:
        result.problems.append(f"{len(strays)} stored id(s) the app never wrote, e.g. {sorted(strays)[:5]}")
    missing = set(range(expected)) - set(got)
    gone = missing & (unrecoverable or set())
    result.unrecoverable = None if unrecoverable is None else len(unrecoverable)
    result.lost = len(missing - gone)
    if result.lost:
        result.notes.append(f"lost ids e.g. {sorted(missing - gone)[:10]}")
    result.stored_dup = sum(got.values()) - len(got)
    result.resent = acked_resends + result.stored_dup
    return got


def check_stderr(result: Result, run: Run, *, allowed_exit: Iterable[int | None] = (0,)) -> None:
    err = run.stderr()
    if "Traceback" in err:
        result.problems.append(f"traceback in stderr of pid {run.pid}")
    if run.proc.returncode not in allowed_exit:
        tail = " | ".join(err.strip().splitlines()[-3:])
        result.problems.append(f"exit {run.proc.returncode} (pid {run.pid}): {tail}")


def wait_for(db: Path, ids: set[int], timeout: float, alive: Callable[[], bool], stall: float = 20.0) -> bool:
    """Wait (bounded) until every id in ``ids`` is stored; give up early when the tailer died or nothing new
    was stored for ``stall`` seconds (what has not come by then is counted as lost, not waited for)."""
    last = [-1, time.monotonic()]

    def done() -> bool:
        got = stored(db)
        if len(got) != last[0]:
            last[0], last[1] = len(got), time.monotonic()
        return ids <= set(got) or not alive() or time.monotonic() - last[1] > stall

    wait_until(done, timeout, step=0.25)
    return ids <= set(stored(db))


def where_lost(result: Result, db: Path, expected: int, lines: list[DiskLine]) -> None:
    """Note in which files the lost operations are (by name pattern), to tell the cause."""
    missing = set(range(expected)) - set(stored(db))
    if not missing:
        return
    kinds: Counter[str] = Counter()
    found = {}
    for ln in lines:
        found.setdefault(ln.number, ln.path.name)
    for number in missing:
        name = found.get(number)
        kinds["in no file" if name is None else ("only in a .gz" if name.endswith(".gz") else "in a plain file")] += 1
    result.notes.append("lost: " + ", ".join(f"{v} {k}" for k, v in kinds.most_common()))
