"""The dead-letter file: records the platform rejected, one JSON object per line (JSONL).

A line is ``{time, reason, rule, origin: {file_id, path, offset} | null, attempts, status, answer,
payload}``. ``write`` returns only after the line is flushed and fsynced, because the caller then lets the
checkpoint move past the record: a line that is not durable would be a record lost. The file never holds
the token: the payload is the request body (the token travels in a header) and the answer is the
server's body, cut to ``MAX_ANSWER_CHARS``.
"""

from __future__ import annotations

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


class DeadLetterWriter:
    """Appends dead-letter lines to ``path`` (parent directories are created on first write).

    The file is opened per write: dead letters are rare, and holding no descriptor between them keeps
    the writer free of close-ordering concerns. Safe to call from several threads.
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
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "reason": reason,
            "rule": rule,
            "origin": asdict(origin) if origin is not None else None,
            "attempts": attempts,
            "status": status,
            "answer": _bounded_answer(answer),
            "payload": payload,
        }
        data = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            # Read-write so the tail can be checked; O_APPEND makes every write land at the end.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
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
