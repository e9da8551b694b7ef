"""Which logical file each followed file is (Vector's fingerprinter and checkpoint lookup): the logical
files by key, the scan of the globs that finds new, renamed and rotated-away files, and the choice, for
each newly opened descriptor, between continuing a known logical file and starting a new one.

The scan decides for the open files what the poll could not: a file whose path names something else
(MOVED) and whose inode the globs still match was renamed within them, and is followed there; a file the
globs no longer match was rotated away, and is drained. A descriptor opened on a path is matched to a known
file by its identity key (the head checksum); it continues it only if the bytes before the saved position
are still the ones read (the offset hash), so a copytruncate copy resumes where reading stood and a reused
inode or a rewritten file starts again at 0. When to scan is the follower's business (``fileset``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from tailer.source.discovery import expand
from tailer.source.identity import FileIdentity, identify
from tailer.source.lifecycle import State
from tailer.source.settings import SourceSettings
from tailer.source.tailfile import TailedFile
from tailer.state.checkpoint import FileCheckpoint

log = logging.getLogger("tailer.follow")


@dataclass(slots=True)
class FollowStats:
    """What happened to followed files, counted by the registry and the follower (metrics, status)."""

    files_opened: int = 0
    files_closed: int = 0
    rotations: int = 0  # renamed away (or out of the globs) and drained
    truncations: int = 0  # truncated in place or by copytruncate, noticed while following
    truncated_unread_bytes: int = 0  # known unread when truncated/rewritten (lost unless a copy is followed)
    refills: int = 0  # bytes before the offset changed (while following, or while stopped)
    deletions: int = 0  # deleted while open, drained through the descriptor
    copies_recognised: int = 0  # a rotated copy continued a truncated file (nothing resent)
    observer_restarts: int = 0
    read_errors: int = 0


class FileRegistry:
    """The logical files by key: open, without descriptor, done and not yet forgotten."""

    def __init__(self, checkpoints: Mapping[str, FileCheckpoint], stats: FollowStats) -> None:
        self.stats = stats
        self.files: dict[str, TailedFile] = {}
        for cp in checkpoints.values():
            self.files[cp.key] = TailedFile.from_checkpoint(cp)
        self.started = False  # the first scan is done: later files are read from their start
        self.empty: set[str] = set()  # matched but empty at the last scan: looked at again once they grow
        self.unopenable: set[str] = set()  # matched but could not be opened: warned about once

    def open_files(self) -> list[TailedFile]:
        return [tf for tf in self.files.values() if tf.attached]

    def empty_grew(self) -> bool:
        """Has a file that was empty at the last scan been written to (or gone)? Then scan again."""
        return any(_grew(path) for path in self.empty)

    def scan(self, sources: Iterable[SourceSettings]) -> None:
        """Match the globs: follow renamed files, drain rotated-away ones, open the new ones."""
        self.empty.clear()
        found: dict[tuple[int, int], tuple[str, SourceSettings]] = {}
        for source in sources:
            for path in expand(source):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), (path, source))
        open_by_inode = {(tf.dev, tf.ino): tf for tf in self.open_files()}
        for inode, tf in open_by_inode.items():
            hit = found.get(inode)
            # Only a file whose path changed, or that had left the globs, takes the name found: an open
            # file the globs also match under another name (a hard link) keeps its own.
            if hit is not None and tf.state in (State.MOVED, State.DRAINING):
                log.info("%s was renamed to %s; following it there", tf.path, hit[0])
                tf.renamed_to(hit[0])
            elif hit is None and tf.state in (State.FOLLOWING, State.MOVED):
                log.info("%s was rotated away; reading the old file to its end", tf.path)
                self.stats.rotations += 1
                tf.rotated_away()
        for inode, (path, source) in found.items():
            if inode not in open_by_inode:
                self._consider(path, source, inode)
        self.started = True

    def _consider(self, path: str, source: SourceSettings, inode: tuple[int, int]) -> None:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - owned by a TailedFile from here on
        except FileNotFoundError:
            return  # rotated away between the scan and here: the next scan sees where it went
        except OSError as exc:
            # Said once per path (a rescan tries again every second), never silently skipped forever.
            if path not in self.unopenable:
                self.unopenable.add(path)
                self.stats.read_errors += 1
                log.warning(
                    "%s matches the globs but cannot be opened (%s); retrying", path, exc.strerror or exc
                )
            return
        self.unopenable.discard(path)
        try:
            st = os.fstat(stream.fileno())
            if st.st_size == 0:
                # Nothing to read yet, and nothing to know it by: an empty file may be a copy being
                # written (copytruncate's app.log.1 an instant before its head arrives), which followed
                # now would be a new file and sent again. Its first write brings it back (see poll).
                self.empty.add(path)
                stream.close()
                return
            if (st.st_dev, st.st_ino) == inode and self._adopt(
                stream, identify(stream.fileno()), path, source, st.st_size
            ):
                return
        except BaseException:
            stream.close()
            raise
        stream.close()

    def _adopt(
        self, stream: BinaryIO, ident: FileIdentity, path: str, source: SourceSettings, size: int
    ) -> bool:
        """Continue a known logical file with this descriptor, or start a new one. False: not taken."""
        prior = self.files.get(ident.key)
        if prior is not None and prior.attached:
            return False  # same head as a file being read: a copy of it (copytruncate, `copy`), or a twin
        if prior is None:  # a short file known by dev/ino in the checkpoint may have grown a fingerprint
            prior = next((tf for tf in self.files.values() if not tf.attached and tf.fingerprint is None
                          and (tf.dev, tf.ino) == (ident.dev, ident.ino)), None)  # fmt: skip
        if prior is None:
            # start_at applies to files found at start-up, except where a file we followed was (it was
            # rotated while we were stopped: the new one is read whole).
            known = any(tf.path == path for tf in self.files.values())
            start = size if not self.started and source.start_at == "end" and not known else 0
            self.new(stream, ident, path, source, start)
            return True
        truncated_away = prior.state is State.TRUNCATED_AWAY
        offset: int | None = None
        if prior.accepts(stream.fileno(), size):
            offset = prior.resume_at
        elif truncated_away and ident.fingerprint is not None and size < prior.resume_at:
            offset = size  # a copy taken before we read past its end: it holds nothing new to us
        if offset is None:
            if not prior.done:
                self.stats.refills += 1
                log.warning("%s changed while not followed (truncated or rewritten before offset %d): "
                            "reading it from 0 as a new file", path, prior.resume_at)  # fmt: skip
            self.new(stream, ident, path, source, 0)
            return True
        if truncated_away:
            self.stats.copies_recognised += 1
            log.info(
                "%s holds %s from before its truncation: continuing from offset %d", path, prior.path, offset
            )
        else:
            log.info("resuming %s at offset %d", path, offset)
        prior.attach(stream, ident, offset, encoding=source.encoding, max_line_bytes=source.max_line_bytes)
        prior.path, prior.source = path, source
        self.rekey(prior, ident)
        self.stats.files_opened += 1
        return True

    def new(
        self, stream: BinaryIO, ident: FileIdentity, path: str, source: SourceSettings, offset: int
    ) -> None:
        """Follow the file open on ``stream`` from ``offset`` as a new logical file."""
        key = ident.key
        other = self.files.get(key)
        if other is not None and other.attached:  # a twin head: fall back to the inode for this one
            key = f"dev{ident.dev}-ino{ident.ino}"
        tf = TailedFile(key, path, offset=offset)
        tf.attach(stream, ident, offset, encoding=source.encoding, max_line_bytes=source.max_line_bytes)
        tf.source = source
        self.files[key] = tf  # replaces a stale logical file with that key, if any
        self.stats.files_opened += 1
        log.info("following %s from offset %d", path, offset)

    def rekey(self, tf: TailedFile, ident: FileIdentity) -> None:
        """The key follows the content: a short file that grew gets its fingerprint key (state carried)."""
        tf.fingerprint = ident.fingerprint
        if ident.key == tf.key:
            return
        other = self.files.get(ident.key)
        if other is not None and other is not tf and other.attached:
            return  # a twin is open under that key: keep ours
        if self.files.get(tf.key) is tf:
            del self.files[tf.key]
        tf.key = ident.key
        self.files[tf.key] = tf


def _grew(path: str) -> bool:
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return True  # gone or renamed: the rescan sorts it out
