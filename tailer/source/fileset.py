"""The follower engine (Vector's ``file_server`` loop + the reconcile of Fluent Bit's ``in_tail``): watchdog
wake-ups, a periodic rescan, fstat reconcile of every open descriptor, bounded reads, and when a drained
file is finished, closed and forgotten. Which file a path is, and the scan of the globs, are
``tailer.source.registry``'s; what state a file may go to next is ``tailer.source.lifecycle``'s: the
engine only calls the transitions (``mark_moved``, ``deleted``, ``finish``, ``retire``, ...).

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tailer.source.discovery import Watcher, watch_point
from tailer.source.identity import identify
from tailer.source.lifecycle import State
from tailer.source.reader import Line
from tailer.source.registry import FileRegistry, FollowStats
from tailer.source.select import LineSelector
from tailer.source.settings import SourceSettings
from tailer.source.tailfile import Change, TailedFile
from tailer.state.checkpoint import FileCheckpoint

log = logging.getLogger("tailer.follow")

READ_BUDGET = 1 << 20  # bytes per file per poll: one busy file cannot starve the others
FULL_RESCAN_EVERY = (
    10.0  # seconds: glob and stat everything at least this often, directories unchanged or not
)


@dataclass(slots=True, frozen=True)
class Batch:
    """What one read of one logical file gave: the lines that can match (all of them without a selector),
    in offset order, and how far the read went: ``end`` is just past its last complete line, ``count``
    and ``cut`` the complete (and cut) lines it passed, selected or not."""

    file: TailedFile
    lines: list[Line]
    end: int
    count: int
    cut: int


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
        select: Callable[[str], LineSelector] | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.select = select  # encoding -> which lines can match (the pipeline's rules); None: every line
        self.read_budget = read_budget
        self.rescan_interval = rescan_interval
        self.rotate_wait = rotate_wait
        self.forget_after = forget_after
        self.stats = FollowStats()
        # [lines, bytes] read per source (None: a file whose source is unknown), counted per batch (metrics)
        self.read_by_source: dict[SourceSettings | None, list[int]] = {}
        self.registry = FileRegistry(checkpoints or {}, self.stats)
        self.more = False  # some file has more to read than the last poll's budget allowed
        self.watcher = Watcher(wake) if wake is not None else None
        self._last_scan = self._last_full_scan = -math.inf
        self._marks: tuple[tuple[str, int | None], ...] | None = None  # directory mtimes at the last scan

    # -- start, stop, what is followed ------------------------------------------------------------

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

    @property
    def files(self) -> dict[str, TailedFile]:
        """The logical files by key: open, without descriptor, done and not yet forgotten."""
        return self.registry.files

    def open_files(self) -> list[TailedFile]:
        return self.registry.open_files()

    def snapshot(self, wall_now: float) -> dict[str, FileCheckpoint]:
        return {key: tf.checkpoint(wall_now) for key, tf in self.files.items()}

    # -- the engine --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Batch]:
        """One turn: restart a dead observer, close finished files, reconcile, rescan when due, read."""
        watcher = self.watcher
        rescan = now - self._last_scan >= self.rescan_interval
        forced = self._last_scan == -math.inf  # the first scan, or new sources
        if watcher is not None:
            if watcher.check():
                self.stats.observer_restarts += 1
            forced = forced or watcher.names_changed
        self._housekeep(now)
        for tf in self.open_files():
            try:
                change = tf.reconcile()
            except OSError as exc:
                self._lost(tf, exc)
                continue
            if change in (Change.TRUNCATED, Change.REFILLED):
                self._restart(tf, change)
            elif change is Change.DELETED and tf.state in (State.FOLLOWING, State.MOVED, State.DRAINING):
                log.warning("%s was deleted; reading what is left through the open descriptor", tf.path)
                self.stats.deletions += 1
                tf.deleted()
            elif change is Change.MOVED and tf.state in (State.FOLLOWING, State.MOVED):
                tf.mark_moved()  # (a file being drained is read to its end, whatever its path names)
                forced = True
        if self.registry.empty and not forced:
            forced = self.registry.empty_grew()
        rescan = rescan or forced
        # (a file that could not be opened is tried again at every due scan, directories unchanged or not)
        quiet_dirs_skip = not forced and not self.registry.unopenable
        if rescan and quiet_dirs_skip and now - self._last_full_scan < FULL_RESCAN_EVERY:
            # Due by the clock alone: the glob's directories unchanged since the last scan means no name
            # in them was added, removed or renamed, so globbing and stat-ing every file again would
            # find nothing new (recursive globs and a full rescan every FULL_RESCAN_EVERY seconds aside).
            marks = self._dir_marks()
            if marks is not None and marks == self._marks:
                rescan = False
                self._last_scan = now
        if rescan:
            self._scan(now)
        batches: list[Batch] = []
        self.more = False
        select = self.select
        for tf in self.open_files():
            if tf.quiet and tf.state is State.FOLLOWING:
                continue  # unchanged since the last look, and read to its end
            start = tf.read_offset
            try:
                lines = tf.read(self.read_budget, select(tf.encoding) if select is not None else None)
                count, cut = tf.last_count, tf.last_cut
                if tf.state in (State.DRAINING, State.DELETED):
                    flushed = self._finish_if_drained(tf, now, lines)
                    count, cut = count + flushed, cut + (flushed and lines[-1].cut)
            except OSError as exc:
                self._lost(tf, exc)
                continue
            if count:
                end = tf.read_offset
                batches.append(Batch(tf, lines, end, count, cut))
                read = self.read_by_source.setdefault(tf.source, [0, 0])
                read[0] += count
                read[1] += end - start
            self.more = self.more or tf.more
            ident = tf.new_identity()
            if ident is not None:
                self.registry.rekey(tf, ident)
        return batches

    def _finish_if_drained(self, tf: TailedFile, now: float, lines: list[Line]) -> int:
        """Finish a drained file; 1 when its partial last line was flushed (appended to ``lines``)."""
        if tf.last_count or not tf.at_end():
            tf.busy()
            return 0
        # A renamed file may still get the writer's last lines before it reopens; a deleted one is not
        # waited for.
        if tf.state is State.DRAINING and tf.idle_for(now) < self.rotate_wait:
            return 0
        last = tf.finish()
        if last is None:
            return 0
        lines.append(last)
        return 1

    def _housekeep(self, now: float) -> None:
        for tf in list(self.files.values()):
            if tf.attached:
                if tf.state is State.FINISHED and tf.settled:
                    tf.retire()
                    self.stats.files_closed += 1
                    log.info("%s: finished and settled; closed", tf.path)
            elif (  # gone_for starts the clock on the first look; a newer file under that key is kept
                self.registry.started
                and tf.settled
                and tf.gone_for(now) >= self.forget_after
                and self.files.get(tf.key) is tf
            ):
                del self.files[tf.key]

    def _lost(self, tf: TailedFile, exc: OSError) -> None:
        log.warning("%s: cannot read (%s); it will be looked for again", tf.path, exc.strerror or exc)
        self.stats.read_errors += 1
        tf.close()

    def _restart(self, tf: TailedFile, change: Change) -> None:
        """Truncated or rewritten under us: the old logical file keeps its place (a copy may continue it);
        the descriptor starts again at 0 as a new logical file."""
        at, unread = tf.read_offset, tf.unread_at_change
        stream = tf.truncated_away()
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
            source = tf.source or SourceSettings(paths=())
            self.registry.new(stream, identify(stream.fileno()), tf.path, source, 0)
        except BaseException:
            stream.close()
            raise

    def _scan(self, now: float) -> None:
        self._last_scan = self._last_full_scan = now
        self._marks = self._dir_marks()  # before the scan: a change while it runs is seen next time
        if self.watcher is not None:
            self.watcher.names_changed = False
            self.watcher.sync(self.sources)
        self.registry.scan(self.sources)

    def _dir_marks(self) -> tuple[tuple[str, int | None], ...] | None:
        """(directory, mtime_ns) of every glob's literal directory; None when a glob is recursive (its
        subdirectories' changes do not show in the top directory's mtime)."""
        marks = []
        for source in self.sources:
            for pattern in source.paths:
                directory, deep = watch_point(pattern)
                if deep:
                    return None
                try:
                    marks.append((directory, os.stat(directory).st_mtime_ns))
                except OSError:
                    marks.append((directory, None))
        return tuple(marks)
