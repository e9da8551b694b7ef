"""What lives in ``state_dir`` and who owns it: the names of every file the tool keeps there, proof that it
can be written before anything is sent, and one owner per state file at a time.

    state_dir/
      checkpoint.json          tailer run: positions of followed files          (owner: run.lock)
      replay-<tag>.json        tailer replay of one window and shard            (owner: replay-<tag>.lock)
      dead-letter.jsonl        records the platform refused, appended by any owner
      receiver.sqlite3         what the embedded receiver accepted (url: embedded)

Two ``tailer run`` on one state_dir (or two replays of the same window) would each write the same state
file and send every record twice, so each owner takes an exclusive ``flock`` on its lock file for its
lifetime. The kernel releases it when the process dies, SIGKILL included: a stale lock file never blocks a
restart. A ``tailer run`` and a ``tailer replay`` keep different state and may share a state_dir (a backfill
while the live watcher runs), so they lock different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tailer.errors import CheckpointError, StateDirBusy

CHECKPOINT_NAME = "checkpoint.json"
DEAD_LETTER_NAME = "dead-letter.jsonl"
RECEIVER_DB_NAME = "receiver.sqlite3"
RUN_LOCK_NAME = "run.lock"


@dataclass(slots=True, frozen=True)
class StateDir:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT_NAME

    @property
    def dead_letter(self) -> Path:
        return self.root / DEAD_LETTER_NAME

    @property
    def receiver_db(self) -> Path:
        return self.root / RECEIVER_DB_NAME

    def replay_state(self, tag: str) -> Path:
        return self.root / f"replay-{tag}.json"

    def prepare(self) -> Path:
        """Create the directory and prove we can write there before anything is sent: a record
        acknowledged but impossible to checkpoint would be resent at every start."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-")  # noqa: SIM115
            probe.close()
        except OSError as exc:
            raise CheckpointError(f"state_dir {self.root} is not usable: {exc.strerror or exc}") from exc
        return self.root

    def lock(self, name: str, role: str) -> StateLock:
        """Own ``name`` (e.g. RUN_LOCK_NAME) for this process's lifetime, or StateDirBusy naming the holder."""
        return StateLock.acquire(self.root / name, role)


class StateLock:
    """An exclusive ``flock`` on a lock file; the file says who holds it (pid, role) for the error message."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: Path, role: str) -> StateLock:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CheckpointError(f"cannot open lock file {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateDirBusy(
                f"{path.parent} is in use by {holder}: one {role} per state_dir at a time "
                f"(stop it, or give this one another state_dir)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise CheckpointError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip().split(maxsplit=1)
    except OSError:
        text = []
    if len(text) == 2 and text[0].isdigit():
        return f"{text[1]} (pid {text[0]})"
    return "another process"
