"""How ``tailer run``, ``tailer replay`` and ``tailer dlq resend`` stop: the same signals, the same drain."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailer.ship.shipper import Shipper

log = logging.getLogger("tailer.pipeline")

EXIT_ABORTED = 130


class Stopper:
    """SIGTERM/SIGINT for both commands: the first stops reading and lets in-flight records finish within
    the grace period; a second stops waiting (exit 130: what was acknowledged is in the state, what was in
    flight is sent again next time). ``on_hup`` (live only) reloads. Installed on the main thread only:
    elsewhere (tests, embedding) the caller calls ``request_stop``."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self, *, on_stop: Callable[[], None] | None = None, on_hup: Callable[[], None] | None = None
    ):
        self.event = asyncio.Event()
        self.aborted = False
        self._on_stop, self._on_hup = on_stop, on_hup
        self._drain: asyncio.Task[bool] | None = None
        self._installed: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stopping(self) -> bool:
        return self.event.is_set()

    def install(self, enabled: bool = True) -> Stopper:
        self._loop = asyncio.get_running_loop()
        if not enabled or threading.current_thread() is not threading.main_thread():
            return self
        wanted = list(self.SIGNALS) + ([signal.SIGHUP] if self._on_hup is not None else [])
        for sig in wanted:
            try:
                self._loop.add_signal_handler(sig, self._signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(sig)
        return self

    def remove(self) -> None:
        if self._loop is not None:
            for sig in self._installed:
                self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def request_stop(self, abort: bool = False) -> None:
        """Stop reading and drain; ``abort`` (a second signal) also stops waiting for in-flight records."""
        if abort:
            self.aborted = True
            if self._drain is not None:
                self._drain.cancel()
        first = not self.stopping
        self.event.set()
        if first and self._on_stop is not None:
            self._on_stop()

    def _signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if sig == signal.SIGHUP:
            assert self._on_hup is not None
            self._on_hup()
        elif self.stopping:
            log.warning("%s again: exiting without waiting for in-flight records (they will be resent)", name)
            self.request_stop(abort=True)
        else:
            log.info("%s: stopping; letting in-flight records finish", name)
            self.request_stop()

    async def drain(self, shipper: Shipper, grace: float) -> bool:
        """Wait until nothing is in flight: as long as it takes while no stop was asked for (a finished
        replay or resend waits for its last records), ``grace`` seconds once one was (at once, or during
        the wait), not at all after a second one. True when nothing is left in flight."""
        drained = False
        if not self.aborted:
            self._drain = task = asyncio.create_task(shipper.drain())
            try:
                if not self.stopping:
                    stop = asyncio.create_task(self.event.wait())
                    try:
                        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stop.cancel()
                if not task.done():
                    log.info("stopping: up to %.1fs for %d record(s) in flight", grace, shipper.in_flight)
                    await asyncio.wait({task}, timeout=grace)
            finally:
                if not task.done():
                    task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self._drain = None
            drained = not task.cancelled() and task.result() is True
        if not drained and shipper.in_flight:
            log.warning(
                "%d record(s) still in flight: they will be sent again at the next start", shipper.in_flight
            )
        return drained

    @property
    def exit_code(self) -> int:
        return EXIT_ABORTED if self.aborted else 0
