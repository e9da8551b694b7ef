"""Files that rotation compressed while the tailer was not running, and which lines of them are ours to read.

While ``tailer run`` follows a file, a rotation that renames and then gzips it is drained through the open
descriptor: nothing is lost. While it is stopped (a crash, a restart, an upgrade), log4j2's ``app-%i.log.gz``
or logrotate's ``compress`` without ``delaycompress`` can leave the unread end of a followed file, and whole
files rolled in the meantime, only inside ``.gz`` archives, which live following does not read (``exclude:
["*.gz"]``: compressed bytes are not text). At start-up this module finds them among the files the sources'
globs match (excludes not applied), by content: an archive whose uncompressed head is a checkpointed file
that is neither done nor followed again continues that file from its saved offset; an archive of a head we
never saw, written since the last checkpoint, is read whole. Anything older or already done is left alone
(``tailer replay`` is the tool for old archives).
"""

from __future__ import annotations

import glob
import gzip
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tailer.source.identity import FINGERPRINT_BYTES, identify_stream
from tailer.source.reader import GZIP_MAGIC, open_log
from tailer.source.settings import SourceSettings
from tailer.state.checkpoint import FileCheckpoint

log = logging.getLogger("tailer.follow")


@dataclass(slots=True, frozen=True)
class Archive:
    """A compressed file to read from ``start`` (uncompressed offset) to its end, as logical file ``key``."""

    path: str
    key: str
    head: bytes  # its first FINGERPRINT_BYTES, uncompressed: records there are named by them
    start: int
    source: SourceSettings
    known: bool  # continues a checkpointed file (else: a file rolled entirely while we were stopped)


def rotated_archives(
    sources: Iterable[SourceSettings],
    entries: Mapping[str, FileCheckpoint],
    *,
    since: float,
    followed: set[str],
) -> list[Archive]:
    """The archives to read (see the module docstring). ``since``: when the last checkpoint was written;
    ``followed``: keys of the files the first scan found again under their own names."""
    out: list[Archive] = []
    seen: set[str] = set()
    for source in sources:
        for pattern in source.paths:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if path in seen or not _is_gzip(path):
                    continue
                seen.add(path)
                try:
                    found = _probe(path, source, entries, since, followed)
                except (OSError, EOFError, gzip.BadGzipFile) as exc:
                    log.warning("%s: cannot read this archive (%s); left alone", path, exc)
                    continue
                if found is not None:
                    out.append(found)
    return out


def _probe(
    path: str, source: SourceSettings, entries: Mapping[str, FileCheckpoint], since: float, followed: set[str]
) -> Archive | None:
    with open_log(path) as stream:
        head = stream.read(FINGERPRINT_BYTES)
        key = identify_stream(stream)
    if key is None:  # too short to know by its head: only a new one can be ours
        key = "dev{}-ino{}".format(*_dev_ino(path))
    entry = entries.get(key)
    if entry is not None:
        if entry.done or key in followed:
            return None
        return Archive(path, key, head, entry.offset, source, known=True)
    if os.stat(path).st_mtime >= since:
        return Archive(path, key, head, 0, source, known=False)
    return None


def _is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return os.path.isfile(path) and f.read(2) == GZIP_MAGIC
    except OSError:
        return False


def _dev_ino(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino
