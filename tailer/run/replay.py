"""Backfill: send what historical log files (plain or gzip) hold, in rotation order, resumably.

Replay is the static phase of tailing alone: the same reader and the same pipeline (rules, watermark,
shipper, signals: tailer.run.pipeline) as ``tailer run``, lines coming from a fixed list of files instead of
a watcher. Its progress lives in its own state file
(``state_dir/replay-<window>.json``), keyed by each file's content fingerprint, so

* a rerun continues where the last run's acknowledgements reached (a resend is at most the records that
  were in flight plus those acknowledged since the state was last written);
* a finished file is never sent again, even after rotation renamed or compressed it;
* the live checkpoint is never touched.

A line without an event time cannot be placed in a ``--since/--until`` window: with a window it is
skipped and counted as ``untimed``; without one it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from tailer.config.settings import Settings
from tailer.errors import CheckpointError
from tailer.run.pipeline import FileLane, Pipeline, Window, payload_printer, with_rate
from tailer.run.replay_files import collect_files, content_key
from tailer.run.replay_order import in_shard
from tailer.run.replay_report import Progress, ReplaySummary
from tailer.run.stopper import Stopper
from tailer.source.reader import LineReader, open_log
from tailer.source.settings import SourceSettings, source_for
from tailer.state.checkpoint import CheckpointStore, FileCheckpoint
from tailer.state.statedir import StateDir

if TYPE_CHECKING:
    from tailer.ship.shipper import Shipper

log = logging.getLogger("tailer.replay")

STATE_EVERY = 1.0  # seconds between replay state writes: bounds what a crash makes us resend


@dataclass(slots=True, frozen=True)
class ReplayOptions:
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    rate: float | None = None  # records/s; overrides endpoint.rate_limit
    dry_run: bool = False
    shard: tuple[int, int] | None = None  # (K, N), 1-based
    restart: bool = False
    grace: float = 10.0  # seconds in-flight requests may take to finish on SIGINT/SIGTERM


def state_tag(options: ReplayOptions) -> str:
    """One state file (and lock) per window and shard, so different backfills never share progress."""
    shard = f"{options.shard[0]}/{options.shard[1]}" if options.shard else "-"
    return hashlib.sha256(f"{options.since}|{options.until}|{shard}".encode()).hexdigest()[:12]


def state_path(settings: Settings, options: ReplayOptions) -> Path:
    return StateDir(settings.state_dir).replay_state(state_tag(options))


def _disk_position(stream: BinaryIO) -> int:
    """How far into the file on disk reading is: the compressed position for a .gz."""
    raw = getattr(stream, "fileobj", None) or stream
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


def _resume_at(stream: BinaryIO, offset: int, path: Path) -> int:
    """Seek to a saved offset, or to 0 when the file holds fewer bytes than that: the state is not this
    file's (hand-edited, or damaged) and skipping would lose records, while a resend only costs time."""
    if offset <= 0:
        return 0
    stream.seek(offset)  # a .gz stops at its end; a plain file seeks past it
    size = stream.tell() if hasattr(stream, "fileobj") else os.fstat(stream.fileno()).st_size
    if size < offset:
        log.warning("%s: saved offset %d is past its end (%d bytes): replaying it from the start",
                    path.name, offset, size)  # fmt: skip
        stream.seek(0)
        return 0
    log.info("%s: resuming at byte %d", path.name, offset)
    return offset


class _Replay:
    def __init__(self, settings: Settings, options: ReplayOptions, out: TextIO):
        self.settings, self.options = settings, options
        self.state = StateDir(settings.state_dir)
        emit = payload_printer(settings.endpoint, out) if options.dry_run else None
        self.pipeline = Pipeline(settings.rules, window=Window(options.since, options.until), emit=emit)
        self.summary = ReplaySummary(counters=self.pipeline.counters)
        self.lanes: dict[str, FileLane] = {}
        self.entries: dict[str, FileCheckpoint] = {}
        self.store = None if options.dry_run else CheckpointStore(self.state.replay_state(state_tag(options)))
        self.stopper = Stopper(on_stop=self._cancel_reading)
        self._reading: asyncio.Task[None] | None = None
        self._finished: list[tuple[str, int]] = []  # (key, end) read to the end, maybe not all settled
        self.read_by_source: dict[SourceSettings, list[int]] = {}  # [lines, bytes] per source (metrics)
        self.shipper: Shipper | None = None  # kept after the run for --metrics-file

    # -- state ---------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.store is None:
            return
        self.mark_done()
        for key, lane in self.lanes.items():
            entry = self.entries[key]
            entry.offset, entry.last_ack_at = lane.watermark.offset, lane.last_ack_at
            entry.updated_at = time.time()
        self.store.save(self.entries)
        self.pipeline.counters.state_writes += 1

    async def _save_periodically(self) -> None:
        # A timer, not the read loop: reading may sit in backpressure for long while acks still arrive.
        while True:
            await asyncio.sleep(STATE_EVERY)
            try:
                self.save()
            except CheckpointError as exc:  # the final save raises; until then keep sending, say why
                self.pipeline.counters.state_write_failures += 1
                log.error("%s; progress is kept in memory and written again in a second", exc)

    def mark_done(self) -> None:
        """A file is done once read to its end and every record of it is settled."""
        still = []
        for key, end in self._finished:
            mark = self.lanes[key].watermark
            if mark.in_flight == 0 and mark.offset >= end:
                self.entries[key].done = True
            else:
                still.append((key, end))
        self._finished = still

    # -- one file --------------------------------------------------------------------------------------
    async def replay_file(self, path: Path, progress: Progress, index: int) -> None:
        source = source_for(self.settings.sources, path)
        s, o, stopper = self.summary, self.options, self.stopper
        with open_log(path) as stream:
            key, head = content_key(stream)
            if o.shard and not in_shard(key, *o.shard):
                return
            s.files += 1
            entry = self.entries.get(key)
            if entry is not None and entry.done:
                s.files_done_before += 1
                log.info("%s: already replayed, skipped", path.name)
                return
            if entry is None:
                entry = self.entries[key] = FileCheckpoint(key=key, path=str(path), offset=0)
            entry.path = str(path)
            start = _resume_at(stream, entry.offset, path)
            lane = self.lanes[key] = FileLane(str(path), key, head, start, entry.last_ack_at)
            reader = LineReader(
                stream, offset=start, encoding=source.encoding, max_line_bytes=source.max_line_bytes
            )
            lines_before = self.pipeline.counters.lines
            reached = await self.pipeline.pump(
                lane, reader, stopping=lambda: stopper.stopping,
                after_read=lambda: progress.show(s, index, path.name, _disk_position(stream)),
            )  # fmt: skip
            read = self.read_by_source.setdefault(source, [0, 0])  # per file, not per read: for metrics
            read[0] += self.pipeline.counters.lines - lines_before
            read[1] += reader.offset - start
            if reached:
                entry.size = reader.offset
                self._finished.append((key, reader.offset))

    async def _one(self, path: Path, progress: Progress, index: int) -> None:
        try:
            await self.replay_file(path, progress, index)
        except (OSError, EOFError, LookupError) as exc:
            # A corrupt gzip or an unreadable file stops that file only; what it gave stays settled.
            self.summary.files_failed += 1
            log.error(
                "%s: %s (what was read before is kept; the rest of this file is not replayed)", path, exc
            )

    async def _read_files(self, files: list[Path], progress: Progress) -> None:
        for i, path in enumerate(files, 1):
            if self.stopper.stopping:
                break
            await self._one(path, progress, i)
            self.mark_done()

    def _cancel_reading(self) -> None:
        # A stop cancels reading even while submit() waits (endpoint down, token refused): the record it
        # held stays unsettled, so the saved offset stays before it.
        if self._reading is not None:
            self._reading.cancel()

    # -- the whole run ---------------------------------------------------------------------------------
    async def run(self, files: list[Path], progress: Progress) -> ReplaySummary:
        self.stopper.install()
        started = time.monotonic()
        try:
            if self.store is None:
                await self._read_all(files, progress, None)
            else:
                self.state.prepare()
                with self.state.lock(
                    self.store.path.with_suffix(".lock").name, "tailer replay of this window"
                ):
                    if self.options.restart:
                        self.store.path.unlink(missing_ok=True)
                    self.entries = self.store.load()
                    await self._send_all(files, progress)
        finally:
            self.stopper.remove()
            self.summary.elapsed = time.monotonic() - started
            self.summary.interrupted = self.stopper.stopping
            self.summary.aborted = self.stopper.aborted
            progress.show(self.summary, len(files) + 1, "done", force=True)
            progress.close()
        return self.summary

    async def _read_all(self, files: list[Path], progress: Progress, shipper: Shipper | None) -> None:
        self._reading = asyncio.create_task(self._read_files(files, progress))
        try:
            await self._reading
        except asyncio.CancelledError:
            if not self.stopper.stopping:  # we are being cancelled ourselves, not stopping by signal
                raise
        if shipper is not None:
            await self.stopper.drain(shipper, self.options.grace)

    async def _send_all(self, files: list[Path], progress: Progress) -> None:
        endpoint = with_rate(self.settings.endpoint, self.options.rate)
        async with self.pipeline.shipping(endpoint, self.state) as shipper:
            self.shipper = shipper
            saver = asyncio.create_task(self._save_periodically())
            try:
                await self._read_all(files, progress, shipper)
            finally:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
                self.save()


async def replay(
    settings: Settings,
    paths: list[Path],
    options: ReplayOptions = ReplayOptions(),
    *,
    out: TextIO | None = None,
    progress_to: TextIO | None = None,
    on_files: Callable[[list[Path]], None] | None = None,
    metrics_file: Path | None = None,
) -> ReplaySummary:
    """Replay ``paths`` (files or directories). ``out`` receives --dry-run payloads (default stdout);
    ``progress_to`` a one-line progress display (pass a terminal, or None); ``metrics_file`` receives the
    counters at the end, in the node-exporter textfile format (also after an interruption)."""
    files = collect_files(paths, settings)
    if on_files is not None:
        on_files(files)
    runner = _Replay(settings, options, out or sys.stdout)
    summary = await runner.run(files, Progress(progress_to, files))
    if metrics_file is not None:
        from tailer.run.metrics import write_replay_textfile  # prometheus_client only when asked for

        write_replay_textfile(metrics_file, runner)
    return summary
