"""The endpoint goes away (its port closed) while the application keeps logging, then comes back on the
same port with the same database: ``tailer run`` (a subprocess) loses nothing, its memory does not grow with
the backlog (the log file is the buffer: reading stops while the in-flight window is full), and
``tailer status --json`` shows the lag while down and none after recovery. SIGTERM during the outage exits
0 after the grace period with the checkpoint at what was acknowledged."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import TOKEN, delivered, rss_kb, start_tailer, status_json, wait_until, write_config
from logdata import append_log, vote_line

from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

BEFORE = 100  # lines delivered before the outage
RSS_MARGIN_KB = 30 * 1024


def append(path: Path, first: int, stop: int, chunk: int = 1000) -> None:
    for base in range(first, stop, chunk):
        append_log(path, [vote_line(i) for i in range(base, min(base + chunk, stop))])


def peak_rss(pid: int, samples: int = 10, step: float = 0.1) -> int:
    """The highest VmRSS over ``samples`` looks (the process keeps retrying meanwhile)."""
    most = 0
    for _ in range(samples):
        most = max(most, rss_kb(pid))
        time.sleep(step)
    return most


def checkpoint_offset(tmp: Path) -> int:
    (entry,) = json.loads((tmp / "state" / "checkpoint.json").read_text())["files"]
    return entry["offset"]


class Endpoint:
    """The receiver that goes down and comes back on the same port with the same db."""

    def __init__(self, tmp: Path) -> None:
        self.cfg = ReceiverConfig(token=TOKEN, db_path=tmp / "receiver.db")
        self.current = EmbeddedReceiver(self.cfg).start()
        self.port = self.current.port
        self.url = self.current.url
        self.up = True

    def down(self) -> None:
        self.current.stop()
        self.up = False

    def back(self) -> EmbeddedReceiver:
        self.current = EmbeddedReceiver(self.cfg, port=self.port).start()
        self.up = True
        return self.current

    def close(self) -> None:
        self.current.stop()  # runs once: stopping a stopped receiver is a no-op


def deliver_before_outage(tmp: Path, endpoint: Endpoint, log: Path, run) -> int:
    """BEFORE lines delivered and checkpointed; returns the checkpointed offset."""
    append(log, 0, BEFORE)
    assert wait_until(lambda: endpoint.current.count() == BEFORE, 30), run.stderr()
    size = log.stat().st_size
    assert wait_until(lambda: checkpoint_offset(tmp) == size)  # FileNotFoundError: not written yet
    return size


@pytest.mark.slow
def test_endpoint_down_then_up_loses_nothing_memory_stays_flat_and_status_shows_the_lag(tmp_path):
    total = 20_000
    endpoint = Endpoint(tmp_path)
    cfg = write_config(tmp_path, endpoint.url, paths=["logs/app.log"], concurrency=16, max_backoff=0.5)
    log = tmp_path / "logs" / "app.log"
    run = start_tailer("run", "-c", cfg)
    try:
        saved = deliver_before_outage(tmp_path, endpoint, log, run)
        endpoint.down()
        append(log, BEFORE, 2000)
        time.sleep(0.5)  # not an assertion: the agent reads until its window is full, then retries
        small = peak_rss(run.pid)
        append(log, 2000, total)  # ten times the backlog
        time.sleep(0.5)
        large = peak_rss(run.pid)
        status = status_json(cfg)
        (entry,) = status["files"]
        assert entry["path"] == str(log) and entry["offset"] == saved  # nothing acknowledged while down
        assert entry["behind"] == log.stat().st_size - saved == status["behind_total"] > 0
        assert run.poll() is None, run.stderr()
        back = endpoint.back()
        assert wait_until(lambda: back.count() >= total, timeout=120), run.stderr()
        assert wait_until(lambda: status_json(cfg)["behind_total"] == 0, timeout=30)
        code = run.stop()
        got, resent = delivered(back), back.duplicates
    finally:
        run.stop()
        endpoint.close()
    assert code == 0, run.stderr()
    assert got == Counter(range(total))
    assert not (tmp_path / "state" / "dead-letter.jsonl").exists()
    print(f"\noutage: {total} lines ({total - BEFORE} while down), 0 lost, {resent} "
          f"resent; VmRSS {small // 1024} MB at a 2k-line backlog, {large // 1024} MB at 20k")  # fmt: skip
    assert large - small <= RSS_MARGIN_KB, (small, large)


@pytest.mark.slow
def test_sigterm_during_outage_exits_0_after_the_grace_keeps_the_checkpoint_and_a_restart_delivers_all(
    tmp_path,
):
    total = 2000
    endpoint = Endpoint(tmp_path)
    cfg = write_config(tmp_path, endpoint.url, paths=["logs/app.log"], concurrency=4, max_backoff=0.5)
    log = tmp_path / "logs" / "app.log"
    run = start_tailer("run", "-c", cfg, "--grace", "1")
    try:
        saved = deliver_before_outage(tmp_path, endpoint, log, run)
        endpoint.down()
        append(log, BEFORE, total)
        time.sleep(0.5)  # not an assertion: requests are failing and being retried now
        code = run.stop(timeout=30)  # bounded far above the 1 s grace
        assert code == 0, run.stderr()
        assert "still in flight" in run.stderr()
        assert checkpoint_offset(tmp_path) == saved  # exactly what was acknowledged, nothing unsent
        back = endpoint.back()
        rerun = start_tailer("run", "-c", cfg)
        try:
            assert wait_until(lambda: back.count() >= total, timeout=60), rerun.stderr()
        finally:
            assert rerun.stop() == 0, rerun.stderr()
        got = delivered(back)
    finally:
        run.stop()
        endpoint.close()
    assert got == Counter(range(total))
    assert checkpoint_offset(tmp_path) == log.stat().st_size
