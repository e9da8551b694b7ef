"""Operations on the dead-letter file for ``tailer dlq``: read it, rewrite it atomically, resend journal.

Files, all beside the dead-letter file (``state_dir/dead-letter.jsonl``)::

    dead-letter.jsonl          the lines; DeadLetterWriter appends (``tailer run``, ``tailer replay``)
    dead-letter.jsonl.lock     flock held by every append and by every rewrite, each for a moment
    dead-letter.jsonl.resend   the journal of a resend: one fsynced line per settled record; its flock
                               is held by a resend or a purge for its whole run (one operator at a time)

A **rewrite** takes the lock, reads the file as it is now (lines appended a moment ago included), writes
the new content to a temp file, fsyncs it, renames it over the file and fsyncs the directory, then lets
go: an append waits for it and then opens the new file (tailer/ship/deadletter.py), so no line appended
before, during or after a rewrite is lost, and a crash at any instant leaves the old or the new file.

A **resend** does not rewrite the file per record (that would be quadratic): each settled record adds one
fsynced journal line naming the lines it settles, ``{"keys": [...], "entry": null}`` (acknowledged: they
leave the file) or ``{"keys": [...], "entry": {...}}`` (rejected again: the first is replaced by the new
line, the others leave). The journal is applied by one rewrite at the end, or, after a crash, at the start
of the next resend or purge; reading (``tailer dlq list``) applies it in memory. Applying is idempotent:
a key no longer in the file is skipped. So a SIGKILL loses nothing, and a rerun resends only what was in
flight when it struck.

A line is named by ``key``, a hash of its bytes. Lines whose payloads share a nonce are one record for
the platform (it refuses a nonce reused for another record and acknowledges an exact resend): a resend
sends it once, and settles all of them together.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tailer.errors import CheckpointError
from tailer.ship.deadletter import encode_entry, locked
from tailer.state.checkpoint import replace_atomically


class DeadLetterBusy(CheckpointError):
    """Another ``tailer dlq resend`` or ``purge`` is working on this dead-letter file."""


@dataclass(slots=True, frozen=True)
class Letter:
    """One line of the file: its key, its bytes (no newline), and the object it holds (None: unreadable)."""

    key: str
    raw: bytes
    entry: dict[str, Any] | None

    @property
    def payload(self) -> dict[str, Any] | None:
        """The request body to resend, or None when the line holds none that could be sent."""
        payload = self.entry.get("payload") if self.entry else None
        if not isinstance(payload, dict) or not isinstance(payload.get("nonce"), str):
            return None
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("oper_id"), str):
            return None
        return payload

    @property
    def time(self) -> float | None:
        """When the line was written (epoch seconds), None when it has no readable time."""
        when = self.entry.get("time") if self.entry else None
        try:
            return datetime.fromisoformat(when).timestamp() if isinstance(when, str) else None
        except ValueError:
            return None


def line_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def parse_letters(data: bytes) -> list[Letter]:
    """Every non-blank line of a dead-letter file, readable or not (a torn last line is one too)."""
    letters = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueError
            entry = None
        letters.append(Letter(line_key(raw), raw, entry if isinstance(entry, dict) else None))
    return letters


def parse_journal(data: bytes) -> list[dict[str, Any]]:
    """The journal's settlements in order; a torn or unreadable line (a crash mid-append) is skipped:
    the record it would have settled stays in the file and is sent again."""
    out = []
    for raw in data.split(b"\n"):
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("keys"), list):
            out.append(item)
    return out


def apply_journal(letters: list[Letter], journal: list[dict[str, Any]]) -> list[Letter]:
    """``letters`` with every settlement applied. Pure; a key not (or no longer) present is skipped."""
    where: dict[str, deque[int]] = defaultdict(deque)
    for i, letter in enumerate(letters):
        where[letter.key].append(i)
    out: list[Letter | None] = list(letters)
    for item in journal:
        entry = item.get("entry")
        for n, key in enumerate(item["keys"]):
            if not isinstance(key, str) or not where.get(key):
                continue
            i = where[key].popleft()
            if n == 0 and isinstance(entry, dict):
                raw = encode_entry(entry)
                out[i] = Letter(line_key(raw), raw, entry)
            else:
                out[i] = None
    return [letter for letter in out if letter is not None]


def group_by_nonce(letters: list[Letter]) -> tuple[dict[str, list[Letter]], list[Letter]]:
    """(nonce -> its lines in file order, lines with no payload to send)."""
    groups: dict[str, list[Letter]] = {}
    unusable = []
    for letter in letters:
        payload = letter.payload
        if payload is None:
            unusable.append(letter)
        else:
            groups.setdefault(payload["nonce"], []).append(letter)
    return groups, unusable


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


class DeadLetterFile:
    """The dead-letter file at ``path`` and its sidecars."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + ".resend")

    def letters(self) -> list[Letter]:
        """The lines as they stand, a running resend's settlements applied. Takes no lock: safe at any time.

        The journal is read first: a rewrite that lands in between makes its entries no-ops, never
        hides a line."""
        journal = parse_journal(_read(self.journal_path))
        return apply_journal(parse_letters(_read(self.path)), journal)

    def rewrite(self, transform: Callable[[list[Letter]], list[Letter]]) -> tuple[int, int]:
        """Replace the file with ``transform(lines)`` under the lock, atomically; (lines before, after).

        Nothing is written when the lines do not change."""
        try:
            with locked(self.path):
                before = parse_letters(_read(self.path))
                after = transform(before)
                if [x.raw for x in after] != [x.raw for x in before]:
                    replace_atomically(self.path, b"".join(x.raw + b"\n" for x in after))
        except OSError as exc:
            raise CheckpointError(f"cannot rewrite {self.path}: {exc.strerror or exc}") from exc
        return len(before), len(after)

    @contextlib.contextmanager
    def operator(self) -> Iterator[Journal]:
        """Be the one resend or purge of this file: DeadLetterBusy if another runs. A journal left by an
        interrupted resend is applied first, so the caller starts from the file as it really stands."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CheckpointError(f"cannot open {self.journal_path}: {exc.strerror or exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeadLetterBusy(
                    f"another `tailer dlq resend` or `purge` is working on {self.path}; try again when it ends"
                ) from None
            journal = Journal(self, fd)
            journal.compact()
            yield journal
        finally:
            os.close(fd)


class Journal:
    """The open, locked resend journal of a DeadLetterFile (see the module docstring)."""

    def __init__(self, dlq: DeadLetterFile, fd: int):
        self.dlq, self.path, self._fd = dlq, dlq.journal_path, fd

    def settle(self, keys: list[str], entry: dict[str, Any] | None) -> None:
        """Durably record that the lines ``keys`` leave the file (``entry`` None) or become ``entry``."""
        data = json.dumps({"keys": keys, "entry": entry}, ensure_ascii=False, default=str) + "\n"
        view = memoryview(data.encode("utf-8"))
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def compact(self) -> None:
        """Apply the journal to the file with one rewrite, then empty it."""
        if os.fstat(self._fd).st_size == 0:
            return
        journal = parse_journal(os.pread(self._fd, os.fstat(self._fd).st_size, 0))
        self.dlq.rewrite(lambda letters: apply_journal(letters, journal))
        # Emptied only once the rewrite is durable; a crash in between re-applies it: a no-op.
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)


def purge_before(dlq: DeadLetterFile, before: float) -> tuple[int, int]:
    """Remove the lines written before ``before`` (epoch seconds); (removed, kept). Lines with no readable
    time are kept: nothing is destroyed that cannot be dated."""
    with dlq.operator():
        n_before, n_after = dlq.rewrite(
            lambda letters: [x for x in letters if x.time is None or x.time >= before]
        )
    return n_before - n_after, n_after
