"""Which files to follow and what happened to them (Vector's ``paths_provider`` + the reconcile of Fluent
Bit's ``in_tail``): globs and excludes, watchdog wake-ups, a periodic rescan, fstat reconcile.

watchdog events are hints only: they repeat, coalesce, vanish on NFS and on queue overflow, and an exception
in a handler kills the observer thread silently. So the handler only asks for a wake-up (and cannot raise),
a dead observer is noticed on every poll and restarted, and every poll reconciles each open descriptor with
fstat (truncation, deletion, rotation) while a rescan of the globs at least every ``rescan_interval`` seconds
finds what events missed. ``poll(now)`` is the whole engine and takes the time from its caller, so it can be
tested without sleeping; the live loop (``tailer.run.live``) decides when to call it.

Rotation styles and what happens (each one has a named test):

- rename + create: the renamed file keeps its descriptor; if the globs include its new name it is simply
  followed there, else it is drained to EOF, its partial last line flushed once it has been idle at EOF
  for ``rotate_wait`` seconds, and closed once its lines are settled. The new file is read from 0.
- copytruncate: the truncated original restarts at 0 as a new logical file (a WARNING); the copy, when the
  globs include it, has the original's head and so its key, and continues the original from where reading
  stood. When the globs exclude the copy, lines written between our last read and the truncation are lost:
  that window (usually well under a second, since a write wakes us) is inherent to copytruncate.
- truncation in place, and truncation + rewrite past our offset (caught by the offset hash): restart at 0.
- deletion: drained through the open descriptor to EOF, then closed (no descriptor leak).
- while stopped: a checkpoint resumes only if the offset hash still agrees; otherwise the file starts at 0.

Limits: two files whose first 1 KiB are equal are one file to us (identity.py); while one is open, the
other is not read. A file shorter than 1 KiB is known by (device, inode) only, so a copy of it is resent.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from tailer.source.discovery import Watcher, expand
from tailer.source.identity import FileIdentity, identify
from tailer.source.reader import Line
from tailer.source.settings import SourceSettings
from tailer.source.tailfile import Change, TailedFile
from tailer.state.checkpoint import FileCheckpoint

log = logging.getLogger("tailer.follow")

READ_BUDGET = 1 << 20  # bytes per file per poll: one busy file cannot starve the others


@dataclass(slots=True, frozen=True)
class Batch:
    """Complete lines just read from one logical file, in offset order."""

    file: TailedFile
    lines: list[Line]


@dataclass(slots=True)
class FollowStats:
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


class Follower:
    """Every followed file of ``sources``. ``wake`` (thread-safe, e.g. ``loop.call_soon_threadsafe``-based)
    is called on file system events; without it no watchdog thread runs and only polling finds changes."""

    def __init__(
        self,
        sources: Iterable[SourceSettings],
        *,
        checkpoints: Mapping[str, FileCheckpoint] | None = None,
        wake: Callable[[], None] | None = None,
        read_budget: int = READ_BUDGET,
        rescan_interval: float = 1.0,
        rotate_wait: float = 5.0,
        forget_after: float = 24 * 3600.0,
    ) -> None:
        self.sources = tuple(sources)
        self.read_budget = read_budget
        self.rescan_interval = rescan_interval
        self.rotate_wait = rotate_wait
        self.forget_after = forget_after
        self.stats = FollowStats()
        self.files: dict[str, TailedFile] = {}  # by key: open, detached, closed and not yet forgotten
        for cp in (checkpoints or {}).values():
            self.files[cp.key] = TailedFile.from_checkpoint(cp)
        self.more = False  # some file has more to read than the last poll's budget allowed
        self.watcher = Watcher(wake) if wake is not None else None
        self._last_scan = -math.inf
        self._started = False  # the first scan is done: later files are read from their start
        self._empty: set[str] = set()  # matched but empty at the last scan: looked at again once they grow
        self._unopenable: set[str] = set()  # matched but could not be opened: warned about once

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.sync(self.sources)

    def stop(self) -> None:
        """Stop and join the watchdog threads, close every descriptor (positions stay in ``files``)."""
        if self.watcher is not None:
            self.watcher.stop()
        for tf in self.open_files():
            tf.close()

    def update_sources(self, sources: Iterable[SourceSettings]) -> None:
        """New globs (SIGHUP): positions are kept; files no longer matched are drained and closed."""
        self.sources = tuple(sources)
        self._last_scan = -math.inf

    def open_files(self) -> list[TailedFile]:
        return [tf for tf in self.files.values() if tf.attached]

    def snapshot(self, wall_now: float) -> dict[str, FileCheckpoint]:
        return {key: tf.checkpoint(wall_now) for key, tf in self.files.items()}

    # -- the engine --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Batch]:
        """One turn: restart a dead observer, close finished files, reconcile, rescan when due, read."""
        watcher = self.watcher
        rescan = now - self._last_scan >= self.rescan_interval
        if watcher is not None:
            if watcher.check():
                self.stats.observer_restarts += 1
            rescan = rescan or watcher.names_changed
        self._housekeep(now)
        for tf in self.open_files():
            try:
                change = tf.reconcile()
            except OSError as exc:
                self._lost(tf, exc)
                continue
            if change in (Change.TRUNCATED, Change.REFILLED):
                self._restart(tf, change)
            elif change is Change.DELETED and not tf.deleted:
                log.warning("%s was deleted; reading what is left through the open descriptor", tf.path)
                self.stats.deletions += 1
                tf.deleted = tf.draining = True
            elif change is Change.MOVED and not tf.draining:
                tf.moved = rescan = True
        if self._empty and not rescan:
            rescan = any(self._grew(path) for path in self._empty)
        if rescan:
            self._scan(now)
        batches: list[Batch] = []
        self.more = False
        for tf in self.open_files():
            try:
                lines = tf.read(self.read_budget)
                if tf.draining and not tf.finished:
                    self._finish_if_drained(tf, now, lines)
            except OSError as exc:
                self._lost(tf, exc)
                continue
            if lines:
                batches.append(Batch(tf, lines))
            self.more = self.more or tf.more
            ident = tf.new_identity()
            if ident is not None:
                self._rekey(tf, ident)
        return batches

    def _finish_if_drained(self, tf: TailedFile, now: float, lines: list[Line]) -> None:
        if lines or not tf.at_end():
            tf.idle_since = None
            return
        if not tf.deleted:  # a renamed file may still get the writer's last lines before it reopens
            if tf.idle_since is None:
                tf.idle_since = now
            if now - tf.idle_since < self.rotate_wait:
                return
        last = tf.flush()
        if last is not None:
            lines.append(last)
        tf.finished = True

    def _housekeep(self, now: float) -> None:
        for tf in list(self.files.values()):
            if tf.attached:
                if tf.finished and tf.settled:
                    tf.close()
                    tf.done = True
                    self.stats.files_closed += 1
                    log.info("%s: finished and settled; closed", tf.path)
            elif self._started and tf.settled:
                if tf.gone_since is None:
                    tf.gone_since = now
                elif now - tf.gone_since >= self.forget_after and self.files.get(tf.key) is tf:
                    del self.files[tf.key]

    def _lost(self, tf: TailedFile, exc: OSError) -> None:
        log.warning("%s: cannot read (%s); it will be looked for again", tf.path, exc.strerror or exc)
        self.stats.read_errors += 1
        tf.close()

    def _restart(self, tf: TailedFile, change: Change) -> None:
        """Truncated or rewritten under us: the old logical file keeps its place (a copy may continue it);
        the descriptor starts again at 0 as a new logical file."""
        at, unread = tf.read_offset, tf.unread_at_change
        stream = tf.detach()
        tf.truncated_away = True
        self.stats.truncated_unread_bytes += unread
        if change is Change.TRUNCATED:
            self.stats.truncations += 1
            log.warning("%s was truncated (size %d, read up to %d; %d unread byte(s) known, more if written "
                        "since the last look): reading it again from 0 as a new file; unread lines are "
                        "recovered only from a rotated copy the globs include", tf.path, tf.size, at, unread)  # fmt: skip
        else:
            self.stats.refills += 1
            log.warning("%s was rewritten before offset %d (%d unread byte(s) known): reading it again "
                        "from 0 as a new file", tf.path, at, unread)  # fmt: skip
        try:
            self._new(stream, identify(stream.fileno()), tf.path, tf.source or SourceSettings(paths=()), 0)
        except BaseException:
            stream.close()
            raise

    # -- discovery ---------------------------------------------------------------------------------

    def _scan(self, now: float) -> None:
        self._last_scan = now
        self._empty.clear()
        if self.watcher is not None:
            self.watcher.names_changed = False
            self.watcher.sync(self.sources)
        found: dict[tuple[int, int], tuple[str, SourceSettings]] = {}
        for source in self.sources:
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
            if hit is not None and tf.moved and not tf.deleted:
                log.info("%s was renamed to %s; following it there", tf.path, hit[0])
                tf.path, tf.moved, tf.draining = hit[0], False, False
            elif hit is None and not tf.draining:
                log.info("%s was rotated away; reading the old file to its end", tf.path)
                self.stats.rotations += 1
                tf.draining = True
        for inode, (path, source) in found.items():
            if inode not in open_by_inode:
                self._consider(path, source, inode)
        self._started = True

    @staticmethod
    def _grew(path: str) -> bool:
        try:
            return os.stat(path).st_size > 0
        except OSError:
            return True  # gone or renamed: the rescan sorts it out

    def _consider(self, path: str, source: SourceSettings, inode: tuple[int, int]) -> None:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - owned by a TailedFile from here on
        except FileNotFoundError:
            return  # rotated away between the scan and here: the next scan sees where it went
        except OSError as exc:
            # Said once per path (a rescan tries again every second), never silently skipped forever.
            if path not in self._unopenable:
                self._unopenable.add(path)
                self.stats.read_errors += 1
                log.warning(
                    "%s matches the globs but cannot be opened (%s); retrying", path, exc.strerror or exc
                )
            return
        self._unopenable.discard(path)
        try:
            st = os.fstat(stream.fileno())
            if st.st_size == 0:
                # Nothing to read yet, and nothing to know it by: an empty file may be a copy being
                # written (copytruncate's app.log.1 an instant before its head arrives), which followed
                # now would be a new file and sent again. Its first write brings it back (see poll).
                self._empty.add(path)
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
            start = size if not self._started and source.start_at == "end" and not known else 0
            self._new(stream, ident, path, source, start)
            return True
        offset: int | None = None
        if prior.accepts(stream.fileno(), size):
            offset = prior.resume_at
        elif prior.truncated_away and ident.fingerprint is not None and size < prior.resume_at:
            offset = size  # a copy taken before we read past its end: it holds nothing new to us
        if offset is None:
            if not prior.done:
                self.stats.refills += 1
                log.warning("%s changed while not followed (truncated or rewritten before offset %d): "
                            "reading it from 0 as a new file", path, prior.resume_at)  # fmt: skip
            self._new(stream, ident, path, source, 0)
            return True
        if prior.truncated_away:
            self.stats.copies_recognised += 1
            log.info(
                "%s holds %s from before its truncation: continuing from offset %d", path, prior.path, offset
            )
        else:
            log.info("resuming %s at offset %d", path, offset)
        prior.attach(stream, ident, offset, encoding=source.encoding, max_line_bytes=source.max_line_bytes)
        prior.path, prior.source, prior.truncated_away = path, source, False
        self._rekey(prior, ident)
        self.stats.files_opened += 1
        return True

    def _new(
        self, stream: BinaryIO, ident: FileIdentity, path: str, source: SourceSettings, offset: int
    ) -> None:
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

    def _rekey(self, tf: TailedFile, ident: FileIdentity) -> None:
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
