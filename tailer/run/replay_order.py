"""Pure ordering of historical log files, oldest first, and replay shards. No I/O here: the facts about
each file (its first event time, its mtime) are probed by tailer/run/replay_files.py.

Order, in this precedence:

1. **First event time.** A file in which the probe found a timed line is placed by the earliest of its first
   few timed lines (ties: rotation set, name position, path). Files of different applications interleave
   by time: a replay at concurrency 1 sends in event-time order as long as the files' time spans do not
   overlap (files written at the same time by two applications cannot be merged line by line here).
2. **Name, next to timed siblings.** A file with no timed line whose rotation set (below) has timed files
   goes right after the nearest *older* (by name) timed sibling, or, when it has none, right before the
   nearest *newer* one.
3. **mtime.** A set with no timed file at all is kept together in name order and placed as if its time were
   the oldest mtime among its files (copied archives often have reset mtimes, which is why this comes last).

Name conventions (``.gz`` is ignored; the *set* is directory + the live file's name the archive came from):

* logrotate / Python ``RotatingFileHandler``: ``app.log.1``, ``app.log.2.gz``: the higher number is
  **older**; set ``app.log``.
* dated suffix, logrotate ``dateext`` and Python ``TimedRotatingFileHandler``: ``app.log-20261127``,
  ``app.log.2026-11-27``, ``app.log.2026-11-27_10-30-00``: the earlier date is older; set ``app.log``.
* dated infix, logback ``%d``/``%d.%i`` and log4j2 ``%d-%i``: ``app.2026-11-27.log``,
  ``app.2026-11-27.0.log.gz``, ``app-2026-11-27-3.log.gz``: earlier date older, then within a date the
  higher index is **newer** (logback SizeAndTimeBasedRollingPolicy, log4j2's default ``fileIndex="max"``);
  set ``app.log``.
* log4j2 ``DefaultRolloverStrategy`` ``%i``: ``app-1.log.gz``, ``app-2.log.gz``: the higher index is
  **newer**, as with its default ``fileIndex="max"`` (and ``"nomax"``); set ``app.log``. With
  ``fileIndex="min"`` (the fixed window) it is the reverse: names alone would be wrong, event times are not.
* anything else is the live file of its own set, newest of it. ``app.1.log`` (dot before the index) is
  deliberately not read as an index: logback's FixedWindowRollingPolicy makes 1 the newest, log4j2's
  default makes it the oldest.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

_NUMBERED = re.compile(r"^(?P<base>.+?)\.(?P<n>\d{1,4})$")
_DATED_SUFFIX = re.compile(
    r"^(?P<base>.+?)[-._](?P<date>\d{4}-?\d{2}-?\d{2}(?:[-_T]?\d{2}(?:[-:]?\d{2}){0,2})?)$"
)
_DATED_INFIX = re.compile(
    r"^(?P<stem>.+?)[-._](?P<date>\d{4}-?\d{2}-?\d{2}(?:[_T]?\d{2}(?:[-:]?\d{2}){0,2})?)"
    r"(?:[-._](?P<n>\d{1,4}))?(?P<ext>\.[A-Za-z][A-Za-z0-9]{0,9})$"
)
_LOG4J2 = re.compile(r"^(?P<stem>.+?)-(?P<n>\d{1,4})(?P<ext>\.[A-Za-z][A-Za-z0-9]{0,9})$")

# Rank of a name inside its set: dated archives, then numbered ones, then the live file.
_DATED, _INDEXED, _LIVE = 0, 1, 2


class NameKey(NamedTuple):
    set: str  # directory + the name of the live file this one was rotated from
    position: tuple[int, str, int]  # (rank, digits of the date, index): sorts oldest first within the set
    convention: str  # what the name was read as, for humans


class FileFacts(NamedTuple):
    """What the probe learnt about one file: the input of :func:`place`."""

    path: Path
    first_ts: float | None  # epoch seconds of the earliest of its first timed lines; None: none found
    name: NameKey
    mtime: float | None
    found: str = ""  # where first_ts came from ("line 3 (operation, rule vote)") or why there is none


@dataclass(frozen=True, slots=True)
class Placed:
    path: Path
    first_ts: float | None
    reason: str


def name_key(path: Path) -> NameKey:
    """The rotation set a file belongs to and its place in it, by the conventions in the module doc."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    parent = str(path.parent)
    if m := _NUMBERED.match(name):
        n = int(m["n"])
        return NameKey(f"{parent}/{m['base']}", (_INDEXED, "", -n), f"logrotate .{n} (higher is older)")
    if m := _DATED_SUFFIX.match(name):
        return NameKey(f"{parent}/{m['base']}", (_DATED, _digits(m["date"]), 0), f"date {m['date']}")
    if m := _DATED_INFIX.match(name):
        n = int(m["n"] or 0)
        index = f", index {m['n']} (higher is newer)" if m["n"] else ""
        base = m["stem"] + m["ext"]
        return NameKey(f"{parent}/{base}", (_DATED, _digits(m["date"]), n), f"date {m['date']}{index}")
    if m := _LOG4J2.match(name):
        n = int(m["n"])
        base = m["stem"] + m["ext"]
        return NameKey(f"{parent}/{base}", (_INDEXED, "", n), f"log4j2 -{n} (higher is newer)")
    return NameKey(f"{parent}/{name}", (_LIVE, "", 0), "live file (newest of its set)")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def iso(ts: float | None) -> str:
    """An epoch time as this machine's local time with its offset (how --since/--until read naive times)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def place(facts: Iterable[FileFacts]) -> list[Placed]:
    """Order files oldest first by the rules in the module doc, each with the reason it was put there.
    Pure and total: the same facts give the same order whatever order they come in; a path given twice
    counts once (its first facts)."""
    first: dict[Path, FileFacts] = {}
    for f in facts:
        first.setdefault(f.path, f)
    unique = list(first.values())
    by_set: dict[str, list[FileFacts]] = defaultdict(list)
    for f in unique:
        by_set[f.name.set].append(f)
    keyed: list[tuple[tuple, Placed]] = []
    for members in by_set.values():
        members.sort(key=lambda f: (f.name.position, f.mtime or 0.0, str(f.path)))
        timed = [i for i, f in enumerate(members) if f.first_ts is not None]
        set_time = None if timed else min((f.mtime or 0.0) for f in members)
        for i, f in enumerate(members):
            tail = (f.name.position, f.mtime or 0.0, str(f.path))
            if f.first_ts is not None:
                key = (f.first_ts, _tie(f), 0, *tail)
                why = f"first event at {f.found}" if f.found else "first event"
            elif set_time is not None:
                key = (set_time, (f.name.set, (), ""), 0, *tail)
                none = f.found or "no timed line"
                if len(members) == 1:
                    why = f"{none}; mtime {iso(f.mtime)}" if f.mtime is not None else f"{none}; no mtime"
                else:
                    why = (
                        f"{none}; name: {f.name.convention}, in a set with no timed file, placed by "
                        f"the set's oldest mtime {iso(set_time)}"
                    )
            else:
                older = [j for j in timed if j < i]
                anchor = members[older[-1] if older else next(j for j in timed if j > i)]
                side, where = (1, "after") if older else (-1, "before")
                key = (anchor.first_ts, _tie(anchor), side, *tail)
                why = f"{f.found or 'no timed line'}; name: {f.name.convention}, {where} {anchor.path.name}"
            keyed.append((key, Placed(f.path, f.first_ts, why)))
    keyed.sort(key=lambda kp: kp[0])
    return [p for _, p in keyed]


def _tie(f: FileFacts) -> tuple[str, tuple[int, str, int], str]:
    return (f.name.set, f.name.position, str(f.path))


def order_files(paths: Iterable[Path]) -> list[Path]:
    """By name alone (no probing, no mtime): oldest to newest within each rotation set, sets by name."""
    return [p.path for p in place(FileFacts(p, None, name_key(p), None) for p in paths)]


def format_plan(placed: list[Placed]) -> list[str]:
    """One line per file for ``tailer replay --list``: index, path, first event time or ``-``, why."""
    width = max((len(str(p.path)) for p in placed), default=0)
    return [
        f"{i:>4}  {str(p.path):<{width}}  {iso(p.first_ts):<25}  {p.reason}" for i, p in enumerate(placed, 1)
    ]


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
