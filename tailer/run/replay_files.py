"""Which historical files a replay reads, and how: files and directories expanded, each file probed for its
first event time and put in time order (tailer/run/replay_order.py decides, purely, from what is probed
here), each file's source (for its encoding and line limit), and its content identity.

The probe reads a file's head with the replay's own reader (gzip by content, the source's encoding and
line limit), at most ``PROBE_BYTES`` of uncompressed data, and takes the earliest of its first
``PROBE_TIMED`` timed lines. A line is timed when

* a rule matches it and gives a record with an event time (the operation's own time), or
* it *starts with* a time one of the rules can read: for a rule whose pattern is anchored (``^`` or
  ``\\A``) and whose ``(?P<ts>...)`` group is not inside another group nor after a top-level ``|``, the
  pattern up to the end of that group is applied to every line and the group parsed with the rule's
  ``ts_format`` and ``timezone``. Most lines of an application log are not operations but carry the same
  leading time, so a file whose first operation is far down (or that has none) still gets the time it
  starts at, after a few lines instead of a scan of the whole file.

Rules without a ``ts`` group give no time: with only such rules, files are ordered by name and mtime.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from pathlib import Path
from typing import BinaryIO

from tailer.config.settings import Settings
from tailer.errors import ReplayError
from tailer.rules.engine import RuleSet
from tailer.rules.timeparse import TsParser
from tailer.run.replay_order import FileFacts, Placed, in_shard, name_key, place
from tailer.source.identity import FINGERPRINT_BYTES, identify_stream
from tailer.source.reader import LineReader, open_log
from tailer.source.settings import SourceSettings, source_for

PROBE_BYTES = 1 << 20  # uncompressed bytes of a file's head read at most to find its first event time
PROBE_TIMED = 8  # timed lines looked at; the earliest wins (a late-flushed first line does not mislead)
_PROBE_CHUNK = 64 << 10

LeadingTime = tuple[str, re.Pattern[str], TsParser]  # (rule name, regex with a ts group, parser)


def expand(paths: list[Path]) -> list[Path]:
    """Files named, and the files directly inside directories named, resolved; ReplayError for neither."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if c.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise ReplayError(f"{p}: no such file or directory")
    return [p.resolve() for p in found]


def collect_files(paths: list[Path], settings: Settings) -> list[Path]:
    """The files to replay, oldest first: by first event time, then name conventions, then mtime."""
    return [p.path for p in plan_files(paths, settings)]


def plan_files(
    paths: list[Path], settings: Settings, *, shard: tuple[int, int] | None = None
) -> list[Placed]:
    """The files in replay order, each with its first event time and why it is where it is. With ``shard``,
    only the files of that share (what ``tailer replay --shard`` would read)."""
    leading = leading_times(settings.rules)
    facts = []
    for path in dict.fromkeys(expand(paths)):
        if shard is not None:
            with open_log(path) as stream:
                if not in_shard(content_key(stream)[0], *shard):
                    continue
        first_ts, found = first_event(path, settings.rules, leading, source_for(settings.sources, path))
        try:
            mtime: float | None = os.stat(path).st_mtime
        except OSError:
            mtime = None
        facts.append(FileFacts(path, first_ts, name_key(path), mtime, found))
    return place(facts)


def leading_time_regex(pattern: str) -> re.Pattern[str] | None:
    """``pattern`` cut just after its ``(?P<ts>...)`` group, when the pattern is anchored at the start and
    the group sits at its top level with no ``|`` before it; else None."""
    if not pattern.startswith(("^", "\\A")):
        return None
    depth, start = 0, None
    for i, c in _structure(pattern):
        if c == "|" and depth == 0 and start is None:
            return None
        if c == "(":
            if depth == 0 and start is None and pattern.startswith("(?P<ts>", i):
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    return re.compile(pattern[: i + 1])
                except re.error:
                    return None
    return None


def _structure(pattern: str):
    """(index, char) of the ``(``, ``)`` and ``|`` that structure a regex: not escaped, not in a class."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a character class: skip it (a ']' right after '[' or '[^' is literal)
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c in "()|":
            yield i, c
        i += 1


def leading_times(rules: RuleSet) -> list[LeadingTime]:
    """For every rule that allows it, how to read a leading time off any line (module doc)."""
    out = []
    for rule in rules.rules:
        if rule.ts_group and rule.ts_parse is not None:
            regex = leading_time_regex(rule.pattern)
            if regex is not None:
                out.append((rule.name, regex, rule.ts_parse))
    return out


def line_time(text: str, rules: RuleSet, leading: list[LeadingTime]) -> tuple[float, str] | None:
    """The line's event time and how it was found, or None."""
    m = rules.match(text)
    if m is not None and m.record is not None and m.record.event_ts is not None:
        return m.record.event_ts, f"operation, rule {m.rule}"
    for name, regex, parse in leading:
        hit = regex.match(text)
        if hit is not None:
            try:
                return parse(hit["ts"]), f"leading time, rule {name}"
            except (ValueError, OverflowError):
                continue
    return None


def first_event(
    path: Path,
    rules: RuleSet,
    leading: list[LeadingTime],
    source: SourceSettings,
    *,
    max_bytes: int = PROBE_BYTES,
    timed: int = PROBE_TIMED,
) -> tuple[float | None, str]:
    """(earliest of the first ``timed`` timed lines within ``max_bytes``, where it is) or (None, why)."""
    found: list[tuple[float, int, str]] = []
    number = 0
    try:
        with open_log(path) as stream:
            reader = LineReader(stream, encoding=source.encoding, max_line_bytes=source.max_line_bytes)
            while len(found) < timed and reader.position < max_bytes:
                lines = reader.read(min(_PROBE_CHUNK, max_bytes - reader.position))
                if not lines and reader.at_eof:
                    last = reader.flush()
                    if last is None:
                        break
                    lines = [last]
                for line in lines:
                    number += 1
                    got = line_time(line.text, rules, leading)
                    if got is not None:
                        found.append((got[0], number, got[1]))
                        if len(found) >= timed:
                            break
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        if not found:
            return None, f"head unreadable ({exc})"
    if not found:
        return None, f"no timed line in the first {reader.position:,} bytes"
    ts, number, how = min(found)
    return ts, f"line {number} ({how})"


def content_key(stream: BinaryIO) -> tuple[str, bytes]:
    """The file's identity for replay state (the head fingerprint the live follower uses too, or for a
    file too short to have one, a hash of its whole short content), and its head: records in the first
    FINGERPRINT_BYTES are named by a hash of the bytes before them, as live names them."""
    pos = stream.tell()
    stream.seek(0)
    head = stream.read(FINGERPRINT_BYTES)
    stream.seek(pos)
    key = identify_stream(stream)
    if key is None:
        key = "short-" + hashlib.sha256(head).hexdigest()[:32]
    return key, head
