"""Which paths the sources name now, and wake-ups when that may have changed (Vector's ``paths_provider``).

Globs are expanded with :func:`glob.glob` (``**`` is recursive), then ``exclude`` patterns are applied with
fnmatch to the file name and to the full path. watchdog observers (or polling observers for ``poll: true``
sources) watch each glob's longest literal directory; their events are hints only: the handler asks for a
wake-up and cannot raise (an exception in a handler kills watchdog's thread silently), and a stopped
observer is noticed by :meth:`Watcher.check` and restarted. A directory that does not exist yet is not
watched; the periodic rescan finds it, and the next :meth:`Watcher.sync` watches it.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import stat
from collections.abc import Callable, Iterable
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from tailer.source.settings import SourceSettings

log = logging.getLogger("tailer.follow")

_QUIET_EVENTS = frozenset({"opened", "closed_no_write"})  # our own opens must not wake us up
POLL_INTERVAL = 0.5  # seconds between two looks of a polling observer


def excluded(source: SourceSettings, path: str) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(name, x) or fnmatch.fnmatchcase(path, x) for x in source.exclude)


def expand(source: SourceSettings) -> list[str]:
    """The absolute paths the source's globs name now (``**`` recursive), minus the excluded ones."""
    out: list[str] = []
    for pattern in source.paths:
        for path in sorted(glob.glob(pattern, recursive=True)):
            full = os.path.abspath(path)
            if not excluded(source, full):
                out.append(full)
    return out


def watch_point(pattern: str) -> tuple[str, bool]:
    """The directory to watch for a glob (its longest literal prefix) and whether recursively."""
    parts = os.path.abspath(pattern).split(os.sep)
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return os.sep.join(parts[:i]) or os.sep, i < len(parts) - 1
    return os.path.dirname(os.path.abspath(pattern)), False


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _WakeHandler(FileSystemEventHandler):
    """Runs on watchdog's thread: only asks for a wake-up, and never raises."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type in _QUIET_EVENTS:
                return
            if event.event_type != "modified":
                self._watcher.names_changed = True  # a name appeared, moved or went: rescan the globs
            self._watcher.wake()
        except Exception:  # noqa: BLE001, S110 - never kill the observer; the periodic rescan is the net
            pass


class Watcher:
    """watchdog observers for the sources' directories; ``wake`` must be thread-safe and must not block."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.names_changed = True  # set from watchdog's thread: a plain bool store is atomic
        self.restarts = 0
        self._handler = _WakeHandler(self)
        self._observers: dict[bool, Any] = {}  # poll? -> running observer
        self._watches: dict[tuple[str, bool, bool], tuple[Any, tuple[int, int] | None]] = {}
        self._stopped = False

    def sync(self, sources: Iterable[SourceSettings]) -> None:
        """Watch what the sources need now; drop watches no longer needed or whose directory was replaced."""
        if self._stopped:
            return
        wanted = {(*watch_point(pattern), source.poll) for source in sources for pattern in source.paths}
        for spec, (watch, dir_id) in list(self._watches.items()):
            if spec not in wanted or _dir_id(spec[0]) != dir_id:
                del self._watches[spec]
                observer = self._observers.get(spec[2])
                try:
                    if observer is not None:
                        observer.unschedule(watch)
                except Exception:  # noqa: BLE001 - already gone with its directory
                    log.debug("unschedule %s failed", spec[0], exc_info=True)
        for spec in wanted - self._watches.keys():
            dir_id = _dir_id(spec[0])
            if dir_id is None:
                continue
            try:
                watch = self._observer(spec[2]).schedule(self._handler, spec[0], recursive=spec[1])
            except Exception as exc:  # noqa: BLE001 - e.g. the inotify watch limit: the rescan still works
                log.warning("cannot watch %s (%s); relying on the periodic rescan", spec[0], exc)
                continue
            self._watches[spec] = (watch, dir_id)

    def check(self) -> bool:
        """Restart any observer whose thread stopped (True if one did); the next sync re-watches."""
        restarted = False
        for poll, observer in list(self._observers.items()):
            if self._stopped or observer.is_alive():
                continue
            log.warning(
                "the file watcher thread stopped; restarting it (the periodic rescan covered the gap)"
            )
            self.restarts += 1
            restarted = True
            try:
                observer.stop()  # also stops and joins its emitter threads
            except Exception:  # noqa: BLE001
                log.debug("stopping the dead observer failed", exc_info=True)
            del self._observers[poll]
            for spec in [s for s in self._watches if s[2] == poll]:
                del self._watches[spec]
            self.names_changed = True
        return restarted

    @property
    def alive(self) -> bool:
        """Every observer thread runs (a dead one is restarted by the next :meth:`check`); for /healthz."""
        return not self._stopped and all(o.is_alive() for o in list(self._observers.values()))

    def stop(self) -> None:
        """Stop and join every watchdog thread."""
        self._stopped = True
        for observer in self._observers.values():
            observer.stop()
        for observer in self._observers.values():
            observer.join(timeout=10)
        self._observers.clear()
        self._watches.clear()

    def _observer(self, poll: bool) -> Any:
        observer = self._observers.get(poll)
        if observer is None:
            observer = PollingObserver(timeout=POLL_INTERVAL) if poll else Observer()
            observer.daemon = True
            observer.start()
            self._observers[poll] = observer
        return observer
