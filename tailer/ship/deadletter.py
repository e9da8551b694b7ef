"""The dead-letter file: records the platform rejected, one JSON object per line (JSONL).

A line is ``{time, reason, rule, origin: {file_id, path, offset} | null, attempts, status, answer,
payload}``. ``write`` returns only after the line is flushed and fsynced, because the caller then lets the
checkpoint move past the record: a line that is not durable would be a record lost. The file never holds
the token: the payload is the request body (the token travels in a header) and the answer is the
server's body, cut to ``MAX_ANSWER_CHARS``.

Concurrency: every append holds an exclusive ``flock`` on the sidecar ``<name>.lock`` (never renamed or
deleted), and so does every rewrite (``tailer dlq resend`` and ``purge``, tailer/ship/dlq.py), which
replaces the file atomically with a new inode. The writer opens the path anew for every append, under
the lock, so it always appends to the current inode: a line is never written into a file a rewrite has
just replaced, and a rewrite never misses a line. The lock is held for one append (microseconds plus an
fsync) or one rewrite (a read and a write of the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailer.record import Origin
from tailer.state.checkpoint import fsync_dir

#: A server's answer longer than this (as text or as serialised JSON) is cut and marked.
MAX_ANSWER_CHARS = 4096
TRUNCATED_MARK = "...[truncated]"


def _bounded_answer(answer: Any) -> Any:
    """Keep a JSON answer as an object when it is small; otherwise store (cut) text."""
    if answer is None:
        return None
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", errors="replace")
    if not isinstance(answer, str):
        text = json.dumps(answer, ensure_ascii=False, default=str)
        if len(text) <= MAX_ANSWER_CHARS:
            return answer
        answer = text
    if len(answer) > MAX_ANSWER_CHARS:
        return answer[:MAX_ANSWER_CHARS] + TRUNCATED_MARK
    return answer


def lock_path(path: Path) -> Path:
    """The sidecar lock file of the dead-letter file ``path``."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive flock of the dead-letter file ``path`` (creating its directory and lock file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def make_entry(
    *,
    payload: dict[str, Any],
    answer: Any,
    status: int | None,
    attempts: int,
    origin: Origin | dict[str, Any] | None,
    rule: str,
    reason: str,
) -> dict[str, Any]:
    """The object one dead-letter line holds (``origin`` as an Origin or as the dict a line stores)."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "reason": reason,
        "rule": rule,
        "origin": asdict(origin) if isinstance(origin, Origin) else origin,
        "attempts": attempts,
        "status": status,
        "answer": _bounded_answer(answer),
        "payload": payload,
    }


def encode_entry(entry: dict[str, Any]) -> bytes:
    """One line of the file, without its newline."""
    return json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8")


class DeadLetterWriter:
    """Appends dead-letter lines to ``path`` (parent directories are created on first write).

    The file is opened per write, under the lock: dead letters are rare, holding no descriptor between
    them keeps the writer free of close-ordering concerns, and it always appends to the file the path
    names now (a rewrite by ``tailer dlq`` replaces the inode). Safe from several threads and processes.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.written = 0
        self._lock = threading.Lock()

    def write(
        self,
        *,
        payload: dict[str, Any],
        answer: Any,
        status: int | None,
        attempts: int,
        origin: Origin | None,
        rule: str,
        reason: str,
    ) -> None:
        """Append one line and fsync it; OSError propagates (the record then stays unsettled)."""
        entry = make_entry(
            payload=payload,
            answer=answer,
            status=status,
            attempts=attempts,
            origin=origin,
            rule=rule,
            reason=reason,
        )
        data = encode_entry(entry) + b"\n"
        with self._lock, locked(self.path):
            created = not self.path.exists()
            # Read-write so the tail can be checked; O_APPEND makes every write land at the end.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                size = os.fstat(fd).st_size
                # A crash mid-write can leave a partial last line; start on a fresh line so only that
                # one line is lost to the reader, not ours as well.
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
            self.written += 1


class DeadLetters:
    """Iterates the dicts of a dead-letter file, skipping lines that are not JSON objects; ``corrupt``
    counts the skipped lines once iteration has run. A missing file yields nothing."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.corrupt = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.corrupt = 0
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueError
                    self.corrupt += 1
                    continue
                if not isinstance(entry, dict):
                    self.corrupt += 1
                    continue
                yield entry


def read_dead_letters(path: Path | str) -> DeadLetters:
    return DeadLetters(path)
