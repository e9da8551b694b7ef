"""The live agent end to end: real files, the real embedded receiver on 127.0.0.1, real signals in a
``tailer run`` subprocess. Every wait is bounded; no test asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import delivered, start_tailer, wait_until, wait_until_async, write_config
from logdata import append_log

from tailer.config.settings import load_settings
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig
from tailer.run.live import Agent

TOKEN = "live-test-token-do-not-print"
RULES = r"""rules:
  - name: vote
    pattern: 'VOTE_JOIN voteId=(?P<ext1>\d+) uid=(?P<uid>\d+)'
    oper_id: "1504000120679"
"""
LOTTERY_RULE = r"""
  - name: lottery
    pattern: 'LOTTERY_JOIN lotteryId=(?P<ext1>\d+) uid=(?P<uid>\d+)'
    oper_id: "1505000120679"
"""


def live_config(tmp_path: Path, url: str, *, rules: str = RULES, logs: str = "*.log") -> Path:
    """Random nonces (the tailer's default), so a line sent twice would be stored twice."""
    return write_config(tmp_path, url, token=TOKEN, paths=[f"{tmp_path}/logs/{logs}"], exclude=(), nonce="random",
                        rate_limit=None, max_backoff=0.3, state_dir=tmp_path / "state", rules=rules)  # fmt: skip


def vote(i: int) -> str:
    return f"2026-11-28 10:00:01,123 [exec-7] INFO c.a.VoteService - VOTE_JOIN voteId={i} uid=42"


def test_lines_appended_while_running_reach_the_receiver_and_the_checkpoint(tmp_path, make_receiver):
    receiver = make_receiver(token=TOKEN)
    cfg = live_config(tmp_path, receiver.url)
    log = tmp_path / "logs" / "app.log"
    append_log(log, [vote(i) for i in range(5)] + ["a line no rule matches"])

    async def scenario() -> int:
        agent = Agent(load_settings(cfg), checkpoint_interval=0.1, rescan_interval=0.2, handle_signals=False)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        assert await wait_until_async(lambda: receiver.count() == 5)
        append_log(log, [vote(i) for i in range(5, 10)])
        assert await wait_until_async(lambda: receiver.count() == 10)
        stop.set()
        code = await task
        assert agent.counters.skipped == 1 and agent.counters.acked == 10
        return code

    assert asyncio.run(scenario()) == 0
    assert delivered(receiver) == Counter(range(10))
    doc = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    (entry,) = doc["files"]
    assert entry["path"] == str(log) and entry["offset"] == log.stat().st_size
    assert entry["last_ack_at"] is not None


def test_endpoint_down_then_up_loses_nothing_and_reading_stays_within_the_window(tmp_path):
    db = tmp_path / "receiver.db"
    first = EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)).start()
    second = EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db), port=first.port)
    try:
        _endpoint_down_then_up(tmp_path, first, second)
    finally:
        first.stop()
        second.stop()


def _endpoint_down_then_up(tmp_path: Path, first: EmbeddedReceiver, second: EmbeddedReceiver) -> None:
    cfg = live_config(tmp_path, first.url)
    log = tmp_path / "logs" / "app.log"
    budget = 2048
    total = 400
    window_bytes = 4 * (len(vote(total)) + 1)

    async def scenario() -> tuple[int, int]:
        agent = Agent(load_settings(cfg), checkpoint_interval=0.1, rescan_interval=0.1, read_budget=budget,
                      handle_signals=False)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        append_log(log, [vote(i) for i in range(10)])
        assert await wait_until_async(lambda: first.count() == 10)
        await asyncio.to_thread(first.stop)  # the agent's loop keeps running while the server shuts down
        append_log(log, [vote(i) for i in range(10, total)])  # ~30 KB backlog while the endpoint is down
        assert agent.shipper is not None
        assert await wait_until_async(lambda: agent.shipper.in_flight == 4)
        most = 0
        for _ in range(40):  # watch the backlog for a while: reading must stay stopped
            most = max(most, agent.read_ahead())
            await asyncio.sleep(0.02)
        await asyncio.to_thread(second.start)
        assert await wait_until_async(lambda: second.count() == total)
        stop.set()
        code = await task
        counts = delivered(second)
        assert counts == Counter(range(total))
        return code, most

    code, most = asyncio.run(scenario())
    assert code == 0
    assert 0 < most <= window_bytes + budget
    assert most < log.stat().st_size // 4


# -- subprocess: real signals ------------------------------------------------------------------------------


def test_sigterm_writes_the_checkpoint_exits_0_and_a_restart_resends_nothing(tmp_path, make_receiver):
    receiver = make_receiver(token=TOKEN)
    cfg = live_config(tmp_path, receiver.url)
    log = tmp_path / "logs" / "app.log"
    append_log(log, [vote(i) for i in range(20)])
    proc = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 20)
        append_log(log, [vote(i) for i in range(20, 30)])
        assert wait_until(lambda: receiver.count() == 30)
    finally:
        code = proc.stop()
    err = proc.stderr()
    assert code == 0, err
    assert TOKEN not in err
    entry = json.loads((tmp_path / "state" / "checkpoint.json").read_text())["files"][0]
    assert entry["offset"] == log.stat().st_size
    append_log(log, [vote(i) for i in range(30, 35)])  # written while stopped
    proc = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() >= 35)
    finally:
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.stderr()
    assert delivered(receiver) == Counter(range(35))


def test_sighup_reloads_rules_keeps_positions_and_survives_a_broken_file(tmp_path, make_receiver):
    receiver = make_receiver(token=TOKEN)
    cfg = live_config(tmp_path, receiver.url)
    log = tmp_path / "logs" / "app.log"
    lottery = "2026-11-28 10:00:02,000 INFO LOTTERY_JOIN lotteryId={} uid=7"
    append_log(log, [vote(1), lottery.format(100)])
    proc = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 1)
        live_config(tmp_path, receiver.url, rules=RULES + LOTTERY_RULE)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # not an assertion: gives the reload a chance before the next line (else it waits)
        append_log(log, [lottery.format(101)])
        assert wait_until(lambda: receiver.count() == 2)
        cfg.write_text(cfg.read_text() + "  - name: [broken\n")
        proc.send_signal(signal.SIGHUP)
        append_log(log, [lottery.format(102), vote(2)])
        assert wait_until(lambda: receiver.count() == 4)
    finally:
        code = proc.stop()
    err = proc.stderr()
    assert code == 0, err
    # lottery 100 was read before the reload (no rule then): positions are kept, it is not read again.
    assert delivered(receiver) == Counter([1, 101, 102, 2])
    assert "reload of" in err and "keeping the previous rules" in err and "ERROR" in err


def test_second_sigint_exits_at_once_and_the_in_flight_records_are_sent_again(tmp_path, make_receiver):
    receiver = make_receiver(token=TOKEN)
    cfg = live_config(tmp_path, receiver.url)
    log = tmp_path / "logs" / "app.log"
    append_log(log, [vote(i) for i in range(3)])
    proc = start_tailer("run", "-c", cfg, "--grace", "600")
    try:
        assert wait_until(lambda: receiver.count() == 3)
        assert wait_until(lambda: (tmp_path / "state" / "checkpoint.json").exists())
        receiver.set_faults(fail_rate=1.0, fail_status=503)  # the endpoint now refuses everything
        append_log(log, [vote(i) for i in range(3, 6)])
        assert wait_until(lambda: receiver.stats.get(503, 0) >= 3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # not an assertion: lets the first SIGINT start the (600 s) drain
        code = proc.stop(signal.SIGINT)  # bounded by 60 s, far below the grace period
    finally:
        proc.stop(signal.SIGKILL)  # only if still running
    assert code == 130, proc.stderr()
    receiver.set_faults(fail_rate=0.0)
    proc = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 6)
    finally:
        code = proc.stop()
    assert code == 0, proc.stderr()
    assert delivered(receiver) == Counter(range(6))


@pytest.mark.parametrize("rotate", ["rename", "copytruncate"])
def test_rotation_while_running_delivers_every_line_once(tmp_path, make_receiver, rotate):
    receiver = make_receiver(token=TOKEN)
    cfg = live_config(tmp_path, receiver.url, logs="app.log*")
    log = tmp_path / "logs" / "app.log"

    async def scenario() -> None:
        agent = Agent(load_settings(cfg), checkpoint_interval=0.1, rescan_interval=0.1, handle_signals=False)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        append_log(log, [vote(i) for i in range(30)])
        assert await wait_until_async(lambda: receiver.count() == 30)
        append_log(log, [vote(i) for i in range(30, 40)])
        if rotate == "rename":
            os.rename(log, log.with_name("app.log.1"))
        else:
            log.with_name("app.log.1").write_bytes(log.read_bytes())
            os.truncate(log, 0)
        append_log(log, [vote(i) for i in range(40, 45)])
        assert await wait_until_async(lambda: receiver.count() >= 45)
        stop.set()
        assert await task == 0

    asyncio.run(scenario())
    assert delivered(receiver) == Counter(range(45))
