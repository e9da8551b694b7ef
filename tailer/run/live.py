"""The agent loop behind ``tailer run`` (Vector's ``file_server``): the only place that knows about time,
shutdown and the sink.

    follower.poll() -> Batch(TailedFile, lines) -> Pipeline.feed -> ... -> Watermark.settle -> checkpoint

The pipeline (tailer.run.pipeline, shared with replay) is the backpressure: while the in-flight window is
full (the endpoint slow or down) feeding waits and the loop does not read, so memory holds at most the
window plus one read budget per file; the log file is the buffer. The checkpoint
(``state_dir/checkpoint.json``) is written at most every ``checkpoint_interval`` seconds when something
moved, and at shutdown, after in-flight requests had ``grace`` seconds to finish.

Signals (run.stopper.Stopper, installed when running on the main thread): SIGTERM/SIGINT stop reading, drain,
write the checkpoint, exit 0; a second one stops waiting at once (exit 130: what was acknowledged is
checkpointed, what was in flight is sent again next time). SIGHUP reloads rules and sources from the config
file; a broken file keeps the old ones and says why at ERROR. Endpoint changes need a restart. One
``tailer run`` per state_dir: a second one is refused (StateDirBusy) while the first holds ``run.lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tailer.config.settings import Settings, load_settings
from tailer.errors import TailerError
from tailer.run import sdnotify
from tailer.run.metrics import agent_facts, judge_health
from tailer.run.metrics_server import MetricsServer, serve_agent
from tailer.run.pipeline import Counters, Pipeline, flat_stats
from tailer.run.recover import CompressedRotations
from tailer.run.stopper import Stopper
from tailer.ship.shipper import Shipper
from tailer.source.fileset import READ_BUDGET, Follower
from tailer.state.checkpoint import CheckpointStore, FileCheckpoint
from tailer.state.statedir import RUN_LOCK_NAME, StateDir

log = logging.getLogger("tailer.live")


@dataclass(slots=True)
class ReloadCounters:
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
        self.state = StateDir(settings.state_dir)
        self.store = CheckpointStore(self.state.checkpoint)
        self.pipeline = Pipeline(settings.rules, clock=clock)
        self.reloads = ReloadCounters()
        self.follower: Follower | None = None
        self.recovery: CompressedRotations | None = None  # set at start: archives rotated while stopped
        self._transport = transport
        self._handle_signals = handle_signals
        self._clock = clock
        self._saved: dict[str, FileCheckpoint] | None = None
        self._stopper: Stopper | None = None
        self._wake: asyncio.Event | None = None
        # For /healthz (tailer.run.metrics): the two loops, and when the checkpoint was last known current.
        self.reading_task: asyncio.Task[None] | None = None
        self.checkpoint_task: asyncio.Task[None] | None = None
        self.checkpoint_ok_at = time.monotonic()  # written, or nothing to write
        self.checkpoint_error: str | None = None  # the last failed write's error, until one succeeds

    @property
    def counters(self) -> Counters:
        return self.pipeline.counters

    @property
    def shipper(self) -> Shipper | None:
        return self.pipeline.shipper

    # -- public ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Follow until ``stop`` is set (or a signal); 0 after a clean stop, 130 after an aborted drain,
        1 when the last checkpoint write failed."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.state.prepare()
        stopper = self._stopper = Stopper(on_stop=self._stopping, on_hup=self.reload).install(
            self._handle_signals
        )
        try:
            with self.state.lock(RUN_LOCK_NAME, "tailer run"):
                since = self.store.path.stat().st_mtime if self.store.path.exists() else None
                entries = self.store.load()
                self._saved = dict(entries)
                self.recovery = CompressedRotations(self.settings.sources, entries, since)
                async with self.pipeline.shipping(
                    self.settings.endpoint, self.state, transport=self._transport
                ) as shipper:
                    self.follower = Follower(
                        self.settings.sources,
                        checkpoints=entries,
                        wake=self._wake_from_thread(loop),
                        read_budget=self.read_budget,
                        rescan_interval=self.rescan_interval,
                        rotate_wait=self.rotate_wait,
                        select=self.pipeline.selector,
                    )
                    log.info(
                        "following %d source(s); checkpoint %s", len(self.settings.sources), self.store.path
                    )
                    self.follower.start()
                    server: MetricsServer | None = None
                    try:
                        if self.settings.metrics_listen:
                            server = serve_agent(self, self.settings.metrics_listen, loop)
                        sdnotify.ready(f"following {len(self.settings.sources)} source(s)")
                        await self._serve(stop)
                        await stopper.drain(shipper, self.grace)
                    finally:
                        if server is not None:
                            server.stop()
                        saved = self.save_checkpoint()  # before the descriptors close: hashes come from them
                        self.follower.stop()
                    return stopper.exit_code if saved else 1
        finally:
            stopper.remove()

    def request_stop(self, abort: bool = False) -> None:
        """Stop reading and drain (what SIGTERM does); ``abort``, or a second call, also stops waiting for
        in-flight records (what a second SIGINT does)."""
        if self._stopper is not None:
            self._stopper.request_stop(abort or self._stopper.stopping)

    def reload(self) -> bool:
        """Re-read the config file (SIGHUP): new rules and sources, positions kept. False if it is broken."""
        try:
            new = load_settings(self.config_path)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the old rules keep running
            self.reloads.reload_failures += 1
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
        self.pipeline.rules = new.rules
        if self.follower is not None:
            self.follower.update_sources(new.sources)
        if self._wake is not None:
            self._wake.set()
        self.reloads.reloads += 1
        log.info("reloaded %s: %d rule(s), %d source(s)", self.config_path, len(new.rules), len(new.sources))
        return True

    def save_checkpoint(self, force: bool = False) -> bool:
        """Write the checkpoint if any entry changed since the last write (or ``force``). False if the
        write failed."""
        if self.follower is None:
            return True
        if self.recovery is not None:
            self.recovery.settle(self.follower)  # an archive whose records all settled is done from now on
        entries = self.follower.snapshot(self._clock())
        if entries == self._saved and not force:
            self.checkpoint_ok_at = time.monotonic()
            return True
        try:
            self.store.save(entries)
        except TailerError as exc:
            self.counters.state_write_failures += 1
            self.checkpoint_error = str(exc)
            log.error("%s; positions are kept in memory and the write is retried", exc)
            return False
        self._saved = entries
        self.checkpoint_ok_at, self.checkpoint_error = time.monotonic(), None
        self.counters.state_writes += 1
        return True

    def read_ahead(self) -> int:
        """Bytes read but not yet settled, summed over open files (what memory holds for the backlog)."""
        if self.follower is None:
            return 0
        return sum(tf.read_offset - tf.watermark.offset for tf in self.follower.open_files())

    def stats(self) -> dict[str, Any]:
        follower, shipper = self.follower, self.shipper
        out = flat_stats(
            live=self.counters, reload=self.reloads, follow=follower.stats if follower else None,
            ship=shipper.stats if shipper else None,
        )  # fmt: skip
        if shipper is not None:
            out["ship_in_flight"] = shipper.in_flight
        return out

    # -- the loop ----------------------------------------------------------------------------------

    async def _serve(self, stop: asyncio.Event | None) -> None:
        """Read until a stop (ours, or the caller's ``stop``); a dead read loop raises why."""
        stopper = self._stopper
        assert stopper is not None
        reading = self.reading_task = asyncio.create_task(self._read_loop(), name="tailer-read")
        ticking = self.checkpoint_task = asyncio.create_task(
            self._checkpoint_loop(), name="tailer-checkpoint"
        )
        waits = {asyncio.create_task(stopper.event.wait())}
        if stop is not None:
            waits.add(asyncio.create_task(stop.wait()))
        try:
            done, _ = await asyncio.wait({reading, *waits}, return_when=asyncio.FIRST_COMPLETED)
            if reading in done:
                reading.result()  # the loop died: raise why
            stopper.request_stop()  # the caller's stop is a stop like SIGTERM
        finally:
            for task in (reading, ticking, *waits):
                task.cancel()
            await asyncio.gather(reading, ticking, *waits, return_exceptions=True)

    async def _read_loop(self) -> None:
        follower, wake, pipeline = self.follower, self._wake, self.pipeline
        assert follower is not None and wake is not None
        stopper, recovery = self._stopper, self.recovery
        assert stopper is not None and recovery is not None
        first = True
        while True:
            wake.clear()
            for batch in follower.poll(time.monotonic()):
                await pipeline.feed(batch.file, batch.lines, end=batch.end, count=batch.count, cut=batch.cut)
            if first:  # the first scan knows which checkpointed files are still here
                first = False
                # Written at once, not a second later, with the archives found entered in it: its time
                # tells the next start that we were following from here on (run/recover.py).
                recovery.discover(follower)
                self.save_checkpoint(force=True)
                await recovery.read(pipeline, lambda: stopper.stopping)
            if follower.more:
                await asyncio.sleep(0)  # let deliveries and settlements run between budgets
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.rescan_interval)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            self.save_checkpoint()
            if not judge_health(agent_facts(self)):
                sdnotify.watchdog()  # only while healthy: systemd restarts a unit whose pings stop

    def _stopping(self) -> None:
        sdnotify.stopping("stopping: draining in-flight records, then writing the checkpoint")

    def _wake_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """A wake-up callable for watchdog's thread (it must not block, and the loop may be closing)."""
        event = self._wake
        assert event is not None

        def wake() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        return wake


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
