"""The agent loop behind ``tailer run`` (Vector's ``file_server``): the only place that knows about time,
shutdown and the sink.

    follower.poll() -> lines -> rules.match -> Shipper.submit -> on_settled -> Watermark.settle -> checkpoint

Backpressure is the ``await shipper.submit(record)``: while the in-flight window is full (the endpoint slow
or down) the loop does not read, so memory holds at most the window plus one read budget per file; the log
file is the buffer. A line that gives no record settles at once (``Watermark.skip``). The checkpoint
(``state_dir/checkpoint.json``) is written at most every ``checkpoint_interval`` seconds when something
moved, and at shutdown, after in-flight requests had ``grace`` seconds to finish.

Signals (installed when running on the main thread): SIGTERM/SIGINT stop reading, drain, write the
checkpoint, exit 0; a second one stops waiting at once (exit 130: what was acknowledged is checkpointed,
what was in flight is sent again next time). SIGHUP reloads rules and sources from the config file; a broken
file keeps the old ones and says why at ERROR. Endpoint changes need a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from tailer.config.settings import Settings, load_settings
from tailer.errors import TailerError
from tailer.record import Origin, Record
from tailer.run.endpoint import resolve_endpoint
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.shipper import Outcome, Shipper
from tailer.source.fileset import READ_BUDGET, Batch, Follower
from tailer.source.tailfile import TailedFile
from tailer.state.checkpoint import CheckpointStore, FileCheckpoint, prepare_state_dir

log = logging.getLogger("tailer.live")

CHECKPOINT_NAME = "checkpoint.json"
DEAD_LETTER_NAME = "dead-letter.jsonl"
EXIT_ABORTED = 130


@dataclass(slots=True)
class LiveCounters:
    """What the loop saw (the follower's and shipper's own counters are in ``Agent.stats()``)."""

    lines_read: int = 0
    records: int = 0  # submitted to the shipper
    skipped: int = 0  # lines that matched no rule
    no_record: int = 0  # matched a rule but gave no record (unmapped word, bad time...)
    unmapped: int = 0  # of which: the captured word is missing from the oper_id map
    cut_lines: int = 0  # longer than max_line_bytes, sent cut
    acked: int = 0
    dead_lettered: int = 0
    checkpoints_written: int = 0
    checkpoint_failures: int = 0
    reloads: int = 0
    reload_failures: int = 0


class Agent:
    """One ``tailer run``. Build it, then ``await agent.run(stop)``; tests may look at its parts."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: str | Path | None = None,
        grace: float = 5.0,
        checkpoint_interval: float = 1.0,
        rescan_interval: float = 1.0,
        rotate_wait: float = 5.0,
        read_budget: int = READ_BUDGET,
        transport: httpx.AsyncBaseTransport | None = None,
        handle_signals: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config_path = Path(config_path) if config_path is not None else settings.path
        self.grace = grace
        self.checkpoint_interval = checkpoint_interval
        self.rescan_interval = rescan_interval
        self.rotate_wait = rotate_wait
        self.read_budget = read_budget
        self.counters = LiveCounters()
        self.follower: Follower | None = None
        self.shipper: Shipper | None = None
        self.store = CheckpointStore(settings.state_dir / CHECKPOINT_NAME)
        self._transport = transport
        self._handle_signals = handle_signals
        self._clock = clock
        self._inflight: dict[int, tuple[Record, TailedFile]] = {}  # id(record) -> (record, its file)
        self._saved: dict[str, FileCheckpoint] | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._drain_task: asyncio.Task[bool] | None = None
        self._abort = False

    # -- public ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Follow until ``stop`` is set (or a signal); 0 after a clean stop, 130 after an aborted drain."""
        loop = asyncio.get_running_loop()
        self._stop = stop if stop is not None else asyncio.Event()
        self._wake = asyncio.Event()
        state_dir = prepare_state_dir(self.settings.state_dir)
        entries = self.store.load()
        self._saved = dict(entries)
        installed = self._install_signals(loop)
        try:
            with resolve_endpoint(self.settings.endpoint, state_dir) as endpoint:
                dead = DeadLetterWriter(state_dir / DEAD_LETTER_NAME)
                async with Shipper(
                    endpoint, dead_letter=dead, on_settled=self._on_settled, transport=self._transport
                ) as shipper:
                    self.shipper = shipper
                    self.follower = Follower(
                        self.settings.sources,
                        checkpoints=entries,
                        wake=self._wake_from_thread(loop),
                        read_budget=self.read_budget,
                        rescan_interval=self.rescan_interval,
                        rotate_wait=self.rotate_wait,
                    )
                    log.info(
                        "following %d source(s); checkpoint %s", len(self.settings.sources), self.store.path
                    )
                    if self.settings.metrics_listen:
                        # Said rather than silently ignored: the key is accepted so configs can be written now.
                        log.warning("metrics.listen is set, but /metrics is not served yet by this version")
                    self.follower.start()
                    try:
                        code = await self._serve(shipper)
                    finally:
                        saved = self.save_checkpoint()  # before the descriptors close: hashes come from them
                        self.follower.stop()
                    return code if saved else 1
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def request_stop(self, abort: bool = False) -> None:
        """Stop reading and drain (what SIGTERM does); ``abort`` also stops waiting for in-flight records."""
        if abort or (self._stop is not None and self._stop.is_set()):
            self._abort = True
            if self._drain_task is not None:
                self._drain_task.cancel()
        if self._stop is not None:
            self._stop.set()

    def reload(self) -> bool:
        """Re-read the config file (SIGHUP): new rules and sources, positions kept. False if it is broken."""
        try:
            new = load_settings(self.config_path)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the old rules keep running
            self.counters.reload_failures += 1
            log.error(
                "reload of %s failed, keeping the previous rules and sources: %s", self.config_path, exc
            )
            return False
        if new.endpoint != self.settings.endpoint or new.state_dir != self.settings.state_dir:
            log.warning("endpoint and state_dir changes take effect at the next start")
        self.settings = Settings(
            path=new.path, endpoint=self.settings.endpoint, sources=new.sources,
            state_dir=self.settings.state_dir, metrics_listen=new.metrics_listen, rules=new.rules,
        )  # fmt: skip
        if self.follower is not None:
            self.follower.update_sources(new.sources)
        if self._wake is not None:
            self._wake.set()
        self.counters.reloads += 1
        log.info("reloaded %s: %d rule(s), %d source(s)", self.config_path, len(new.rules), len(new.sources))
        return True

    def save_checkpoint(self) -> bool:
        """Write the checkpoint if any entry changed since the last write. False if the write failed."""
        if self.follower is None:
            return True
        entries = self.follower.snapshot(self._clock())
        if entries == self._saved:
            return True
        try:
            self.store.save(entries)
        except TailerError as exc:
            self.counters.checkpoint_failures += 1
            log.error("%s; positions are kept in memory and the write is retried", exc)
            return False
        self._saved = entries
        self.counters.checkpoints_written += 1
        return True

    def read_ahead(self) -> int:
        """Bytes read but not yet settled, summed over open files (what memory holds for the backlog)."""
        if self.follower is None:
            return 0
        return sum(tf.read_offset - tf.watermark.offset for tf in self.follower.open_files())

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"live_{k}": v for k, v in asdict(self.counters).items()}
        if self.follower is not None:
            out.update({f"follow_{k}": v for k, v in asdict(self.follower.stats).items()})
        if self.shipper is not None:
            out.update({f"ship_{k}": v for k, v in asdict(self.shipper.stats).items()})
            out["ship_in_flight"] = self.shipper.in_flight
        return out

    # -- the loop ----------------------------------------------------------------------------------

    async def _serve(self, shipper: Shipper) -> int:
        assert self._stop is not None
        reading = asyncio.create_task(self._read_loop(), name="tailer-read")
        ticking = asyncio.create_task(self._checkpoint_loop(), name="tailer-checkpoint")
        stopping = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if reading in done:
                reading.result()  # the loop died: raise why
        finally:
            for task in (reading, ticking, stopping):
                task.cancel()
            await asyncio.gather(reading, ticking, stopping, return_exceptions=True)
        drained = False
        if not self._abort:
            log.info("stopping: up to %.1fs for %d record(s) in flight", self.grace, shipper.in_flight)
            self._drain_task = asyncio.create_task(shipper.drain(self.grace))
            with contextlib.suppress(asyncio.CancelledError):
                drained = await self._drain_task
            if self._drain_task.cancelled() and not self._abort:
                raise asyncio.CancelledError
        if not drained and shipper.in_flight:
            log.warning(
                "%d record(s) still in flight: they will be sent again at the next start", shipper.in_flight
            )
        return EXIT_ABORTED if self._abort else 0

    async def _read_loop(self) -> None:
        follower, wake = self.follower, self._wake
        assert follower is not None and wake is not None
        while True:
            wake.clear()
            for batch in follower.poll(time.monotonic()):
                await self._handle(batch)
            if follower.more:
                await asyncio.sleep(0)  # let deliveries and settlements run between budgets
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.rescan_interval)

    async def _handle(self, batch: Batch) -> None:
        tf, counters, shipper = batch.file, self.counters, self.shipper
        assert shipper is not None
        watermark = tf.watermark
        for line in batch.lines:
            counters.lines_read += 1
            if line.cut:
                counters.cut_lines += 1
            match = self.settings.rules.match(line.text, Origin(tf.record_key(line.end), tf.path, line.end))
            if match is None or match.record is None:
                if match is None:
                    counters.skipped += 1
                else:
                    counters.no_record += 1
                    counters.unmapped += match.unmapped
                watermark.skip(line.end)
                continue
            record = match.record
            watermark.track(line.end)  # before submit: a cancelled submit then holds the checkpoint back
            self._inflight[id(record)] = (record, tf)
            counters.records += 1
            await shipper.submit(record)

    def _on_settled(self, record: Record, outcome: Outcome) -> None:
        entry = self._inflight.pop(id(record), None)
        if entry is None or record.origin is None:
            return
        tf = entry[1]
        tf.watermark.settle(record.origin.offset)
        if outcome.kind == "acked":
            self.counters.acked += 1
            tf.last_ack_at = self._clock()
        else:
            self.counters.dead_lettered += 1

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            self.save_checkpoint()

    # -- signals and wake-ups ------------------------------------------------------------------------

    def _wake_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """A wake-up callable for watchdog's thread (it must not block, and the loop may be closing)."""
        event = self._wake
        assert event is not None

        def wake() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        return wake

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        handlers = {signal.SIGTERM: self._on_stop_signal, signal.SIGINT: self._on_stop_signal,
                    signal.SIGHUP: self._on_hup}  # fmt: skip
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(sig)
        return installed

    def _on_stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._stop is not None and self._stop.is_set():
            log.warning("%s again: exiting without waiting for in-flight records (they will be resent)", name)
            self.request_stop(abort=True)
        else:
            log.info("%s: stopping", name)
            self.request_stop()

    def _on_hup(self, sig: int) -> None:
        self.reload()


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    config_path: str | Path | None = None,
    grace: float = 5.0,
    **options: Any,
) -> int:
    """``tailer run``: follow ``settings``' sources until stopped; the exit code (0 after a clean stop)."""
    return await Agent(settings, config_path=config_path, grace=grace, **options).run(stop)
