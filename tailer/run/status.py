"""``tailer status``: every file in the checkpoint, its size now, its settled offset and how far behind.

It reads only the checkpoint file (written atomically by ``tailer run``) and stats the paths, so it works
while ``run`` runs and never disturbs it. What it shows lags the agent by at most one checkpoint interval
(about a second). A path that is missing, or now names another file (rotated), shows as ``gone``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from tailer.config.settings import Settings
from tailer.state.checkpoint import FileCheckpoint, parse
from tailer.state.statedir import StateDir


@dataclass(slots=True, frozen=True)
class FileStatus:
    path: str
    key: str
    size: int | None  # None: gone (missing, or the path names another file now)
    offset: int
    behind: int | None  # size - offset, never negative; None when gone
    last_ack_at: float | None
    updated_at: float
    done: bool


def _size_now(cp: FileCheckpoint) -> int | None:
    try:
        st = os.stat(cp.path)
    except OSError:
        return None
    if (cp.dev or cp.ino) and (st.st_dev, st.st_ino) != (cp.dev, cp.ino):
        return None
    return st.st_size


def file_statuses(entries: dict[str, FileCheckpoint]) -> list[FileStatus]:
    out = []
    for cp in sorted(entries.values(), key=lambda c: (c.path, c.key)):
        size = _size_now(cp)
        behind = None if size is None else max(0, size - cp.offset)
        out.append(
            FileStatus(cp.path, cp.key, size, cp.offset, behind, cp.last_ack_at, cp.updated_at, cp.done)
        )
    return out


def _ago(then: float | None, now: float) -> str:
    if then is None:
        return "never"
    seconds = max(0.0, now - then)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def render_status(settings: Settings, as_json: bool, *, now: float | None = None) -> str:
    """The status of every checkpointed file, as a text table or (``as_json``) one JSON document."""
    path = StateDir(settings.state_dir).checkpoint
    now = time.time() if now is None else now
    # Read-only on purpose (no CheckpointStore.load, which moves a bad file aside): run owns that file.
    problem = None
    try:
        written: float | None = path.stat().st_mtime
        entries = parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        written, entries = None, {}
    except Exception as exc:  # noqa: BLE001 - unreadable or unusable: say so, run will move it aside
        written, entries, problem = None, {}, f"checkpoint {path} is unusable: {exc}"
    statuses = file_statuses(entries)
    if as_json:
        doc = {
            "checkpoint": str(path),
            "problem": problem,
            "written_at": written,
            "files": [asdict(s) for s in statuses],
            "behind_total": sum(s.behind or 0 for s in statuses),
        }
        return json.dumps(doc, indent=2)
    if problem is not None:
        return problem
    if written is None:
        return f"no checkpoint yet at {path} (tailer run has not written one)"
    rows = [("PATH", "SIZE", "OFFSET", "BEHIND", "LAST ACK", "KEY")]
    for s in statuses:
        size = "gone" if s.size is None else f"{s.size:,}"
        behind = "-" if s.behind is None else f"{s.behind:,}"
        path_text = s.path + (" (done)" if s.done else "")
        rows.append((path_text, size, f"{s.offset:,}", behind, _ago(s.last_ack_at, now), s.key[:16]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in (0, 4, 5) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    total = sum(s.behind or 0 for s in statuses)
    lines.append(
        f"{len(statuses)} file(s), {total:,} byte(s) behind; checkpoint {path} written {_ago(written, now)}"
    )
    return "\n".join(line.rstrip() for line in lines)
