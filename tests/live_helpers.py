"""Not for tests (they use tests/helpers.py): the names benchmarks/chaos/harness.py imports from here, on top
of tests/helpers.py, until harness.py imports ``start_tailer``/``Tailer``/``settle``/``wait_until`` from
``helpers`` itself. Then delete this file."""

from __future__ import annotations

from pathlib import Path

from helpers import Tailer as Run
from helpers import settle, start_tailer, wait_until

__all__ = ["Run", "settle", "start_replay", "start_run", "wait_until"]


def start_run(cfg: Path, *extra: str, name: str = "run") -> Run:
    """``tailer run -c cfg EXTRA...`` in the background (``name`` is no longer used)."""
    return start_tailer("run", "-c", cfg, *extra)


def start_replay(cfg: Path, *args: str, name: str = "replay") -> Run:
    """``tailer replay -c cfg ARGS...`` in the background (``name`` is no longer used)."""
    return start_tailer("replay", "-c", cfg, *args)
