"""One owner per state file: a second ``tailer run`` (or a second replay of the same window) on one state_dir
is refused with the holder's pid; the kernel frees the lock when the holder dies, SIGKILL included; a live
run and a backfill keep different state and may share a state_dir."""

from __future__ import annotations

import os
import signal

import pytest
from helpers import run_tailer, start_tailer, wait_until, write_config
from logdata import append_log, vote_line, write_log

from tailer.errors import StateDirBusy
from tailer.state.statedir import RUN_LOCK_NAME, StateDir


def test_a_second_lock_on_the_same_file_is_refused_naming_the_holder(tmp_path):
    state = StateDir(tmp_path / "state")
    state.prepare()
    with state.lock(RUN_LOCK_NAME, "tailer run"):
        with pytest.raises(StateDirBusy, match=rf"in use by tailer run \(pid {os.getpid()}\)"):
            state.lock(RUN_LOCK_NAME, "tailer run")
        state.lock("replay-abc.lock", "tailer replay").release()  # another state file: its own owner
    with state.lock(RUN_LOCK_NAME, "tailer run"):  # released: free again
        pass


def test_second_tailer_run_is_refused_and_a_sigkilled_owner_frees_the_state_dir(tmp_path, receiver):
    cfg = write_config(tmp_path, receiver.url)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(5)])
    first = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 5)
        second = run_tailer("run", "-c", cfg, timeout=60)
        assert second.code == 1
        assert f"in use by tailer run (pid {first.pid})" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        # A backfill of old files keeps its own state: allowed beside the live run.
        replay = run_tailer("replay", "-c", cfg, tmp_path / "logs", timeout=60)
        assert replay.code == 0, replay.stderr
    finally:
        first.stop(signal.SIGKILL)
    restarted = start_tailer("run", "-c", cfg)  # the kernel released the dead owner's lock
    try:
        append_log(tmp_path / "logs" / "app.log", [vote_line(5)])
        assert wait_until(lambda: receiver.count() == 6)
    finally:
        assert restarted.stop() == 0, restarted.stderr()


def test_two_replays_of_the_same_window_do_not_run_at_once(tmp_path, make_receiver):
    slow = make_receiver(token="test-token", latency=0.2)
    cfg = write_config(tmp_path, slow.url, concurrency=1)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(50)])
    first = start_tailer("replay", "-c", cfg, tmp_path / "logs")
    try:
        assert wait_until(lambda: slow.count() >= 1)
        second = run_tailer("replay", "-c", cfg, tmp_path / "logs", timeout=60)
        assert second.code == 1
        assert f"(pid {first.pid})" in second.stderr and "tailer replay" in second.stderr, second.stderr
        other_window = run_tailer("replay", "-c", cfg, "--dry-run", "--since", "2026-11-01", tmp_path / "logs",
                              timeout=60)
        assert other_window.code == 0, other_window.stderr  # a dry run keeps no state: no lock
    finally:
        first.stop(signal.SIGKILL)
