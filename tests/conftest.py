"""Shared fixtures. Every test is checked for leaked threads and file descriptors (as watchdog's own
conftest does): a follower or shipper that forgets to close something fails the test that leaked it."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # not Linux: no fd check
        return set()


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves a thread running or a descriptor open behind it."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    deadline = time.monotonic() + 5.0
    while True:
        leaked_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        leaked_fds = _open_fds() - fds_before
        # A descriptor only counts as leaked while it is still open (listdir itself opens one briefly).
        leaked_fds = {fd for fd in leaked_fds if os.path.exists(f"/proc/self/fd/{fd}")}
        if not leaked_threads and not leaked_fds:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    details = []
    if leaked_threads:
        details.append("threads: " + ", ".join(t.name for t in leaked_threads))
    if leaked_fds:
        targets = []
        for fd in sorted(leaked_fds):
            try:
                targets.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
            except OSError:
                continue
        if targets:
            details.append("fds: " + ", ".join(targets))
    if details:
        pytest.fail("test leaked " + "; ".join(details))


@pytest.fixture(autouse=True)
def tailer_logger_restored():
    """An in-process CLI call (click's CliRunner) routes the "tailer" logger to its own stderr handler
    and stops propagation, which would hide every later test's log records from caplog."""
    logger = logging.getLogger("tailer")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: skip the thread/fd leak check for this test")


# The real reference receiver on 127.0.0.1, for every test module (fixtures: receiver, make_receiver).
from fixtures_receiver import make_receiver, receiver  # noqa: E402, F401
