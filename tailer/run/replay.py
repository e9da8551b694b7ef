"""Backfill: send what historical log files (plain or gzip) hold, in rotation order, resumably.

Replay is the static phase of tailing alone: the same reader, rules and shipper as ``tailer run``, lines
coming from a fixed list of files instead of a watcher. Its progress lives in its own state file
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
import dataclasses
import hashlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tailer.config.settings import Settings
from tailer.run.endpoint import resolve_endpoint
from tailer.run.replay_files import collect_files, content_key
from tailer.run.replay_order import in_shard
from tailer.run.replay_report import Progress, ReplaySummary
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.shipper import Outcome, Shipper
from tailer.source.identity import FINGERPRINT_BYTES, record_file_id
from tailer.source.reader import LineReader, open_log
from tailer.source.settings import source_for
from tailer.state.checkpoint import CheckpointStore, FileCheckpoint, prepare_state_dir
from tailer.state.watermark import Watermark

from tailer.errors import CheckpointError
from tailer.record import Origin, Record, build_payload

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


def state_path(settings: Settings, options: ReplayOptions) -> Path:
    """One state file per window and shard, so different backfills never share progress."""
    shard = f"{options.shard[0]}/{options.shard[1]}" if options.shard else "-"
    tag = hashlib.sha256(f"{options.since}|{options.until}|{shard}".encode()).hexdigest()[:12]
    return settings.state_dir / f"replay-{tag}.json"


def _disk_position(stream) -> int:
    """How far into the file on disk reading is: the compressed position for a .gz."""
    raw = getattr(stream, "fileobj", None) or stream
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


class _Replay:
    def __init__(self, settings: Settings, options: ReplayOptions, out: TextIO):
        self.settings, self.options, self.out = settings, options, out
        self.summary = ReplaySummary()
        self.marks: dict[str, Watermark] = {}
        self.entries: dict[str, FileCheckpoint] = {}
        self.store = None if options.dry_run else CheckpointStore(state_path(settings, options))
        self.stopping = False
        self._reading: asyncio.Task | None = None
        self._file_of: dict[int, str] = {}  # id(record) in flight -> key of its file's watermark

    # -- settlement and state ------------------------------------------------------------------------
    def on_settled(self, record: Record, outcome: Outcome) -> None:
        if outcome.kind == "acked":
            self.summary.sent += 1
        else:
            self.summary.dead_lettered += 1
        key = self._file_of.pop(id(record), None)  # the file's key: file_id may be a head key
        if key is not None and record.origin is not None:
            self.marks[key].settle(record.origin.offset)
            if outcome.kind == "acked":
                self.entries[key].last_ack_at = time.time()

    async def _save_periodically(self) -> None:
        # A timer, not the read loop: reading may sit in backpressure for long while acks still arrive.
        while True:
            await asyncio.sleep(STATE_EVERY)
            self.mark_done()
            try:
                self.save()
            except CheckpointError as exc:  # the final save raises; until then keep sending, say why
                log.error("%s; progress is kept in memory and written again in a second", exc)

    def save(self) -> None:
        if self.store is None:
            return
        for key, mark in self.marks.items():
            entry = self.entries[key]
            entry.offset = mark.offset
            entry.updated_at = time.time()
        self.store.save(self.entries)

    # -- one file --------------------------------------------------------------------------------------
    def _within_window(self, record: Record) -> bool:
        o = self.options
        if o.since is None and o.until is None:
            return True
        if record.event_ts is None:
            self.summary.untimed += 1
            return False
        if (o.since is not None and record.event_ts < o.since) or (
            o.until is not None and record.event_ts >= o.until
        ):
            self.summary.outside_window += 1
            return False
        return True

    async def replay_file(self, path: Path, shipper: Shipper | None, progress: Progress, index: int) -> None:
        source = source_for(self.settings.sources, path)
        rules, s, o = self.settings.rules, self.summary, self.options
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
            start = entry.offset if entry is not None else 0
            if entry is None:
                entry = self.entries[key] = FileCheckpoint(key=key, path=str(path), offset=0)
            entry.path = str(path)
            if start:
                stream.seek(start)
                log.info("%s: resuming at byte %d", path.name, start)
            mark = self.marks[key] = Watermark(start)
            reader = LineReader(
                stream, offset=start, encoding=source.encoding, max_line_bytes=source.max_line_bytes
            )
            cut_before = reader.stats.cut_lines
            while not self.stopping:
                lines = reader.read()
                if not lines and reader.at_eof:
                    last = reader.flush()  # a rotated file's last line may lack its newline
                    if last is None:
                        break
                    lines = [last]
                for line in lines:
                    s.lines += 1
                    file_id = record_file_id(key, head, line.end) if line.end < FINGERPRINT_BYTES else key
                    m = rules.match(line.text, Origin(file_id, str(path), line.end))
                    if m is not None:
                        s.matched += 1
                    if m is None or m.record is None:
                        if m is not None:
                            if (m.problem or "").startswith("unmapped"):
                                s.unmapped += 1
                            else:
                                s.invalid += 1
                        mark.skip(line.end)
                        continue
                    if not self._within_window(m.record):
                        mark.skip(line.end)
                        continue
                    s.records += 1
                    if shipper is None:
                        self.emit(m.record)
                        mark.skip(line.end)
                    else:
                        mark.track(line.end)
                        self._file_of[id(m.record)] = key
                        await shipper.submit(m.record)
                    if self.stopping:
                        break
                progress.show(s, index, path.name, _disk_position(stream))
            s.cut_lines += reader.stats.cut_lines - cut_before
            if not self.stopping:
                entry.size = reader.offset
                self._finished.append((key, reader.offset))

    def emit(self, record: Record) -> None:
        e = self.settings.endpoint
        payload = build_payload(
            record, ts_unit=e.ts_unit, ts_source=e.ts_source, nonce=e.nonce, now=time.time()
        )
        self.out.write(json.dumps(payload, ensure_ascii=False) + "\n")

    def mark_done(self) -> None:
        """A file is done once read to its end and every record of it is settled."""
        still = []
        for key, end in self._finished:
            mark = self.marks[key]
            if mark.in_flight == 0 and mark.offset >= end:
                self.entries[key].done = True
            else:
                still.append((key, end))
        self._finished = still

    # -- the whole run ---------------------------------------------------------------------------------
    async def run(self, files: list[Path], progress: Progress) -> ReplaySummary:
        self._finished: list[tuple[str, int]] = []
        if self.store is not None:
            prepare_state_dir(self.settings.state_dir)
            if self.options.restart:
                self.store.path.unlink(missing_ok=True)
            self.entries = self.store.load()
        self._install_signals()
        started = time.monotonic()
        try:
            if self.options.dry_run:
                for i, path in enumerate(files, 1):
                    await self._one(path, None, progress, i)
            else:
                await self._send_all(files, progress)
        finally:
            self._remove_signals()
            self.summary.elapsed = time.monotonic() - started
            self.summary.interrupted = self.stopping
            progress.show(self.summary, len(files) + 1, "done", force=True)
            progress.close()
        return self.summary

    async def _send_all(self, files: list[Path], progress: Progress) -> None:
        endpoint = self.settings.endpoint
        if self.options.rate is not None:
            endpoint = dataclasses.replace(endpoint, rate_limit=self.options.rate)
        dead = DeadLetterWriter(self.settings.state_dir / "dead-letter.jsonl")
        with resolve_endpoint(endpoint, self.settings.state_dir) as endpoint:
            async with Shipper(endpoint, dead_letter=dead, on_settled=self.on_settled) as shipper:
                saver = asyncio.create_task(self._save_periodically())
                self._reading = asyncio.create_task(self._read_files(files, shipper, progress))
                try:
                    # A stop signal cancels reading even while submit() waits (endpoint down, token
                    # refused): the record it held stays unsettled, so the saved offset stays before it.
                    try:
                        await self._reading
                    except asyncio.CancelledError:
                        if not self.stopping:  # we are being cancelled ourselves, not stopping by signal
                            raise
                    drained = await shipper.drain(self.options.grace if self.stopping else None)
                    if not drained:
                        log.warning(
                            "stopped with %d records still in flight: a rerun sends them", shipper.in_flight
                        )
                finally:
                    saver.cancel()
                    self.mark_done()
                    self.save()

    async def _read_files(self, files: list[Path], shipper: Shipper, progress: Progress) -> None:
        for i, path in enumerate(files, 1):
            if self.stopping:
                break
            await self._one(path, shipper, progress, i)
            self.mark_done()

    async def _one(self, path: Path, shipper: Shipper | None, progress: Progress, index: int) -> None:
        try:
            await self.replay_file(path, shipper, progress, index)
        except (OSError, EOFError, LookupError) as exc:
            # A corrupt gzip or an unreadable file stops that file only; what it gave stays settled.
            self.summary.files_failed += 1
            log.error(
                "%s: %s (what was read before is kept; the rest of this file is not replayed)", path, exc
            )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not on the main thread (tests, embedding): the caller handles signals.
            with contextlib.suppress(RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._stop, sig)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.stopping:  # a second signal: leave now; the state written so far loses nothing
            raise SystemExit(130)
        log.warning("%s: stopping; letting in-flight records finish", signal.Signals(sig).name)
        self.stopping = True
        if self._reading is not None:
            self._reading.cancel()


async def replay(
    settings: Settings,
    paths: list[Path],
    options: ReplayOptions = ReplayOptions(),
    *,
    out: TextIO | None = None,
    progress_to: TextIO | None = None,
    on_files: Callable[[list[Path]], None] | None = None,
) -> ReplaySummary:
    """Replay ``paths`` (files or directories). ``out`` receives --dry-run payloads (default stdout);
    ``progress_to`` a one-line progress display (pass a terminal, or None)."""
    files = collect_files(paths)
    if on_files is not None:
        on_files(files)
    runner = _Replay(settings, options, out or sys.stdout)
    return await runner.run(files, Progress(progress_to, files))
