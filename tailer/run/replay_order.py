"""Pure ordering of historical log files: oldest first, the way rotation left them.

``app.log.2.gz``, ``app.log.1``, ``app.log`` (numbered: the highest number is the oldest) and
``app.log-20261127.gz``, ``app.log-20261128``, ``app.log`` (dated: the earliest date is the oldest);
the live file itself comes last. Files of different bases are grouped by base name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_NUMBERED = re.compile(r"^(?P<base>.+?)\.(?P<n>\d{1,4})$")
_DATED = re.compile(r"^(?P<base>.+?)[-._](?P<date>\d{4}-?\d{2}-?\d{2}(?:[-_T]?\d{2,6})?)$")


def rotation_key(path: Path) -> tuple[str, str, int, str]:
    """Sort key: (directory + base name, rank, -number, date). Rank 0 dated, 1 numbered, 2 the live file."""
    name = path.name
    if name.endswith(".gz"):
        name = name[:-3]
    parent = str(path.parent)
    m = _NUMBERED.match(name)
    if m:
        return (f"{parent}/{m['base']}", "1", -int(m["n"]), "")
    m = _DATED.match(name)
    if m:
        return (f"{parent}/{m['base']}", "0", 0, m["date"].replace("-", ""))
    return (f"{parent}/{name}", "2", 0, "")


def order_files(paths: list[Path]) -> list[Path]:
    """Oldest to newest within each rotation set, whatever order the paths were given in."""
    unique = list(dict.fromkeys(paths))
    return sorted(unique, key=lambda p: (rotation_key(p), p.name))


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"shard must be K/N with 1 <= K <= N, got {text!r}")
    return int(m[1]), int(m[2])


def in_shard(file_key: str, k: int, n: int) -> bool:
    """A stable share: by the file's content identity, so a file renamed by rotation between two runs
    (app.log.1 -> app.log.2.gz) stays in the same shard."""
    digest = hashlib.sha256(file_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1
