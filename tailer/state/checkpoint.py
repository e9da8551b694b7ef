"""The ack watermark of every file, on disk, written so that a crash at any instant leaves either the old
or the new file and never a mix (pygtail's lesson: never rewrite an offset file in place).

On disk (version 1)::

    {"version": 1, "written_at": <epoch float>, "files": [{"key": ..., "path": ..., "offset": ..., ...}]}

Writing: a temp file in the same directory, flush, fsync, ``os.replace`` over the checkpoint, fsync of the
directory (so the rename itself survives a power cut). A write error is a CheckpointError.

Reading never raises on a bad file: an empty, half-written, invalid or unknown-version file is logged as a
WARNING, moved aside to ``<name>.corrupt-<timestamp>`` (nothing is destroyed) and read as no checkpoint at
all, so files are read again from their start (at-least-once: duplicates, never losses). An entry's unknown
extra fields are ignored (a newer minor writer); ``key``, ``path`` and ``offset`` are required.
Temp files left by a crash are ignored by load and removed by the next save.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailer.errors import CheckpointError

FORMAT_VERSION = 1
log = logging.getLogger("tailer.checkpoint")


@dataclass(slots=True)
class FileCheckpoint:
    """Where one file stands: identity (key, fingerprint, dev/ino), the settled offset and its hash."""

    key: str
    path: str
    offset: int
    fingerprint: str | None = None
    dev: int = 0
    ino: int = 0
    offset_hash: str | None = None
    size: int = 0
    updated_at: float = 0.0
    last_ack_at: float | None = None
    done: bool = False


_FIELDS = {f.name: f for f in dataclasses.fields(FileCheckpoint)}
_INT = (int,)
_NUM = (int, float)
# Expected JSON types per field (bool is an int in Python: refused where an int is meant).
_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "key": ((str,), False),
    "path": ((str,), False),
    "offset": (_INT, False),
    "fingerprint": ((str,), True),
    "dev": (_INT, False),
    "ino": (_INT, False),
    "offset_hash": ((str,), True),
    "size": (_INT, False),
    "updated_at": (_NUM, False),
    "last_ack_at": (_NUM, True),
    "done": ((bool,), False),
}
_REQUIRED = ("key", "path", "offset")


class _Unusable(Exception):
    """Why a checkpoint file cannot be used (internal: load turns it into a warning)."""


def _entry(raw: Any, index: int) -> FileCheckpoint:
    if not isinstance(raw, dict):
        raise _Unusable(f"files[{index}] is not an object")
    for name in _REQUIRED:
        if name not in raw:
            raise _Unusable(f"files[{index}] has no {name!r}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _FIELDS:
            continue  # forward compatibility: a field this version does not know
        types, nullable = _TYPES[name]
        ok = (value is None and nullable) or (
            isinstance(value, types) and (bool in types or not isinstance(value, bool))
        )
        if not ok:
            raise _Unusable(f"files[{index}].{name} has the wrong type ({type(value).__name__})")
        values[name] = value
    if values["offset"] < 0:
        raise _Unusable(f"files[{index}].offset is negative")
    return FileCheckpoint(**values)


def parse(text: str) -> dict[str, FileCheckpoint]:
    """Entries of a checkpoint document by key (later duplicates win); _Unusable says why not."""
    if not text.strip():
        raise _Unusable("it is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Unusable(f"it is not valid JSON ({exc.msg} at line {exc.lineno}), maybe half-written") from exc
    if not isinstance(doc, dict):
        raise _Unusable("it is not a JSON object")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise _Unusable(f"its version {version!r} is not {FORMAT_VERSION}, the one this tailer understands")
    files = doc.get("files")
    if not isinstance(files, list):
        raise _Unusable("'files' is not a list")
    entries = [_entry(raw, i) for i, raw in enumerate(files)]
    return {entry.key: entry for entry in entries}


def render(entries: Mapping[str, FileCheckpoint], *, written_at: float) -> str:
    """The version-1 document for ``entries`` (one entry per line: readable, and diffs stay small)."""
    lines = [json.dumps(dataclasses.asdict(entry), ensure_ascii=False) for entry in entries.values()]
    files = "[\n    " + ",\n    ".join(lines) + "\n  ]" if lines else "[]"
    return f'{{\n  "version": {FORMAT_VERSION},\n  "written_at": {json.dumps(written_at)},\n  "files": {files}\n}}\n'


class CheckpointStore:
    """The checkpoint file at ``path`` (its directory is created on the first save)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, FileCheckpoint]:
        """Entries by key; {} when the file is missing, or unusable (then warned about and moved aside).

        An unreadable file (permissions, I/O error) is not corruption: that is a CheckpointError."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {self.path}: {exc.strerror or exc}") from exc
        try:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Unusable("it is not UTF-8 text") from exc
            return parse(text)
        except _Unusable as why:
            kept = self._move_aside()
            where = f"kept as {kept}" if kept else "could not be moved aside"
            log.warning(
                "checkpoint %s is unusable: %s; it was %s and the files it covered will be read again "
                "from their start",
                self.path,
                why,
                where,
            )
            return {}

    def save(self, entries: Mapping[str, FileCheckpoint]) -> None:
        """Atomically replace the checkpoint with ``entries``: temp+fsync+rename+directory fsync."""
        text = render(entries, written_at=time.time())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temps()
            replace_atomically(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {self.path}: {exc.strerror or exc}") from exc

    # -- internals ---------------------------------------------------------------------------------

    def _temp_prefix(self) -> str:
        return f".{self.path.name}.tmp-"

    def _remove_stale_temps(self) -> None:
        """Temp files a crash left between write and rename: never read, so safe to delete."""
        for stale in self.path.parent.glob(f"{self._temp_prefix()}*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _move_aside(self) -> Path | None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        suffix = 1
        while target.exists() and suffix < 1000:  # two corrupt files within one second: keep both
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{suffix}")
            suffix += 1
        try:
            os.replace(self.path, target)
        except OSError:
            return None
        return target


def replace_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or what it held before, whatever instant a crash comes: a temp file beside
    it (``.<name>.tmp-*``, mode 0600), fsynced, renamed over it, and the directory fsynced. OSError
    propagates; the temp file is removed on failure."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=directory)
    tmp_name: str | None = tmp
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        tmp_name = None
        fsync_dir(directory)
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (POSIX needs the directory fsynced too;
    not possible on every platform or filesystem: skipped where not)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)
