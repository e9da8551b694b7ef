"""Logs for the tests and what the tailer must make of them: numbered vote lines (``vote_line(i)``, which
tests/helpers.py ``VOTE_RULES`` matches: the receiver's ``data.ext1`` is the line number), files of them, a
paced writer thread, and each line's record name and deterministic nonce.

The record name and nonce are computed here from the contract as written below, never by calling the
tailer's own functions (tailer.source.identity, tailer.record): a bug there must not be mirrored here.

- A file's fingerprint: ``blake2b(content[:1024], digest_size=16).hexdigest()`` of its (uncompressed)
  content; a file shorter than 1024 bytes has none.
- The record name (``Origin.file_id``) of the line ending at byte ``end``: for ``end < 1024``,
  ``"head-" + blake2b(content[:end], digest_size=16).hexdigest()``; else the file's fingerprint.
- The deterministic nonce: ``sha256(f"{record_name}:{end}").hexdigest()[:32]``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from helpers import wait_until

VOTE_IDS = {"VOTE_CREATE": "1504000120618", "VOTE_JOIN": "1504000120679", "VOTE_DELETE": "1504000120617"}
BASE_TS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
HEAD_BYTES = 1024  # the contract's first KiB (written out here on purpose, not imported)

# -- lines and files -------------------------------------------------------------------------------------


def vote_line(i: int, act: str = "VOTE_JOIN", ts: int | None = None) -> str:
    when = datetime.fromtimestamp(BASE_TS + i if ts is None else ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} INFO {act} id={i} gid={i % 7} ch=c{i % 3} uid={1000 + i}"


def expected_data(i: int, act: str = "VOTE_JOIN") -> dict:
    """The ``data`` of the record the vote rule makes of ``vote_line(i, act)``."""
    return {"oper_id": VOTE_IDS[act], "gid": i % 7, "target_id": f"c{i % 3}", "uid": 1000 + i, "ext1": str(i)}


def write_log(path: Path, lines: Iterable[str], *, gz: bool = False) -> Path:
    """``path`` holding ``lines`` (a newline after each), gzipped if ``gz``; parent directories made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def append_log(path: Path, lines: Iterable[str]) -> None:
    """Append ``lines`` (a newline after each) in one write, as an application's logger would."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


# -- the record-name and nonce contract ------------------------------------------------------------------


def content(path: Path) -> bytes:
    """A file's bytes, gunzipped when it starts with the gzip magic (the tailer reads .gz content)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _blake2b_128(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint(data: bytes) -> str | None:
    """The fingerprint of a file whose content is ``data`` (its checkpoint key); None below 1 KiB."""
    return _blake2b_128(data[:HEAD_BYTES]) if len(data) >= HEAD_BYTES else None


def record_name(data: bytes, end: int) -> str:
    """The record name (``Origin.file_id``) of the line ending at ``end`` in a file holding ``data``."""
    if end < HEAD_BYTES:
        return "head-" + _blake2b_128(data[:end])
    key = fingerprint(data)
    assert key is not None  # end >= 1024 means the file has its first KiB
    return key


def expected_nonce(data: bytes, end: int) -> str:
    """The deterministic nonce of the record whose line ends at ``end``."""
    return hashlib.sha256(f"{record_name(data, end)}:{end}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DiskLine:
    number: int  # the vote_line number (data.ext1)
    path: Path
    key: str | None  # the file's fingerprint (its checkpoint key); None below 1 KiB
    end: int  # byte offset just past its newline (uncompressed)
    nonce: str  # the deterministic nonce the tailer gives it


def vote_lines_of(path: Path) -> list[DiskLine]:
    """Every vote line of one file (gzip read transparently), with its expected nonce."""
    data = content(path)
    key = fingerprint(data)
    out: list[DiskLine] = []
    end = 0
    for raw in data.split(b"\n")[:-1]:
        end += len(raw) + 1
        if b" VOTE_" in raw:
            number = int(raw.split(b" id=", 1)[1].split(b" ", 1)[0])
            out.append(DiskLine(number, path, key, end, expected_nonce(data, end)))
    return out


def lines_on_disk(directory: Path) -> list[DiskLine]:
    """Every vote line in every file of ``directory``."""
    return [line for path in sorted(directory.iterdir()) if path.is_file() for line in vote_lines_of(path)]


def record_nonces(path: Path) -> list[tuple[int, str]]:
    """(end offset, deterministic nonce) of every vote line of a file."""
    return [(line.end, line.nonce) for line in vote_lines_of(path)]


# -- an application writing while the tailer follows ---------------------------------------------------


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
