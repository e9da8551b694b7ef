"""One stop semantics for run, replay and dlq resend (run/stopper.py): the drain waits as long as it takes
while nobody asked to stop, ``grace`` seconds once someone did (even in the middle of the wait), and not at
all after a second stop."""

from __future__ import annotations

import asyncio
import signal

from helpers import start_tailer, wait_until, write_config
from logdata import vote_line, write_log

from tailer.config.settings import load_settings
from tailer.run.pipeline import FileLane, Pipeline
from tailer.run.stopper import EXIT_ABORTED, Stopper
from tailer.source.reader import Line
from tailer.state.statedir import StateDir


async def _stuck_pipeline(tmp_path, receiver, body):
    """A pipeline with one record in flight that the receiver refuses (503) for as long as we look."""
    receiver.fail_next(10_000, status=503)
    settings = load_settings(write_config(tmp_path, receiver.url))
    pipeline = Pipeline(settings.rules)
    text = vote_line(1)
    lane = FileLane("app.log", "k" * 32, text.encode(), 0, None)
    async with pipeline.shipping(settings.endpoint, StateDir(tmp_path / "state")) as shipper:
        await pipeline.feed(lane, [Line(text, 0, len(text) + 1)])
        assert shipper.in_flight == 1
        return await body(shipper)


def test_a_stop_during_an_unbounded_drain_bounds_it_to_the_grace(tmp_path, receiver):
    async def body(shipper):
        stopper = Stopper()
        asyncio.get_running_loop().call_later(0.3, stopper.request_stop)
        drained = await stopper.drain(shipper, grace=0.2)  # would wait forever without the stop
        return drained, stopper.stopping, stopper.exit_code, shipper.in_flight

    assert asyncio.run(_stuck_pipeline(tmp_path, receiver, body)) == (False, True, 0, 1)


def test_a_second_stop_aborts_the_grace(tmp_path, receiver):
    async def body(shipper):
        stopper = Stopper()
        stopper.request_stop()
        asyncio.get_running_loop().call_later(0.3, stopper.request_stop, True)
        drained = await stopper.drain(shipper, grace=3600)  # the abort ends it, not the hour
        return drained, stopper.aborted, stopper.exit_code

    assert asyncio.run(_stuck_pipeline(tmp_path, receiver, body)) == (False, True, EXIT_ABORTED)


def test_a_drain_with_nothing_in_flight_returns_at_once_true(tmp_path, receiver):
    async def body(shipper):
        return await Stopper().drain(shipper, grace=3600)

    settings = load_settings(write_config(tmp_path, receiver.url))

    async def go():
        async with Pipeline(settings.rules).shipping(settings.endpoint, StateDir(tmp_path / "state")) as s:
            return await body(s)

    assert asyncio.run(go()) is True


def test_replay_grace_option_reaches_the_drain(tmp_path, make_receiver):
    """`tailer replay --grace` was once accepted and ignored: the drain must say the grace it was given."""
    down = make_receiver(token="test-token")
    down.fail_next(100_000, status=503)
    cfg = write_config(tmp_path, down.url)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(5)])
    run = start_tailer("replay", "-c", cfg, "--grace", "0.7", tmp_path / "logs")
    try:
        assert wait_until(lambda: sum(down.stats.values()) >= 3)
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(60)
    assert code == 1 and "up to 0.7s for" in run.stderr(), run.stderr()


def test_a_second_sigterm_ends_a_replay_with_130_without_waiting_for_the_grace(tmp_path, make_receiver):
    down = make_receiver(token="test-token")
    down.fail_next(100_000, status=503)
    cfg = write_config(tmp_path, down.url)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(5)])
    run = start_tailer("replay", "-c", cfg, "--grace", "3600", tmp_path / "logs")
    try:
        assert wait_until(lambda: sum(down.stats.values()) >= 3)
        run.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "up to 3600.0s" in run.stderr()), run.stderr()
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(60)
    assert code == 130 and "aborted: run the same command again" in run.stderr(), run.stderr()
