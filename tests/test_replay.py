"""`tailer replay` end to end against the real reference receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

import pytest
from helpers import run_tailer, start_tailer, wait_until, wait_until_async, write_config
from logdata import BASE_TS, expected_data, record_nonces, vote_line, write_log

from tailer.config.settings import load_settings
from tailer.run.replay import ReplayOptions, replay, state_path


def run_replay(cfg: Path, paths: list[Path], **options):
    settings = load_settings(cfg)
    return asyncio.run(replay(settings, paths, ReplayOptions(**options)))


def datas(receiver) -> list[dict]:
    return [r["data"] for r in receiver.records()]


def dead_letters(tmp_path: Path) -> list[dict]:
    path = tmp_path / "state" / "dead-letter.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def rotated_set(tmp_path: Path) -> list[Path]:
    logs = tmp_path / "logs"
    return [
        write_log(logs / "app.log.2.gz", [vote_line(i) for i in range(0, 30)], gz=True),
        write_log(
            logs / "app.log.1", [vote_line(i) for i in range(30, 60)] + ["noise line", "VOTE_JOIN broken"]
        ),
        write_log(logs / "app.log", [vote_line(i) for i in range(60, 90)]),
    ]


def test_rotated_set_is_sent_oldest_first_exactly_once(tmp_path, receiver):
    files = rotated_set(tmp_path)
    cfg = write_config(tmp_path, receiver.url, concurrency=1)
    summary = run_replay(cfg, [files[2], files[0], files[1]])
    assert datas(receiver) == [expected_data(i) for i in range(90)]  # concurrency 1 keeps file order
    assert [r["ts"] for r in receiver.records()] == [BASE_TS + i for i in range(90)]
    assert (summary.files, summary.sent, summary.dead_lettered, summary.lines) == (3, 90, 0, 92)
    assert summary.matched == 90


def test_finished_replay_sends_nothing_again_and_restart_starts_over(tmp_path, make_receiver):
    files = rotated_set(tmp_path)
    first = make_receiver(db_path=None)
    cfg = write_config(tmp_path, first.url)
    assert run_replay(cfg, [tmp_path / "logs"]).sent == 90
    again = run_replay(cfg, [tmp_path / "logs"])
    assert (again.sent, again.files_done_before) == (0, 3)
    assert first.count() == 90
    # Rotation renames and compresses between runs: content identity still knows the files.
    os.rename(files[1], tmp_path / "logs" / "app.log.3")
    assert run_replay(cfg, [tmp_path / "logs"]).sent == 0
    second = make_receiver(db_path=None)
    cfg = write_config(tmp_path, second.url)
    assert run_replay(cfg, [tmp_path / "logs"], restart=True).sent == 90
    assert second.count() == 90


def test_dry_run_prints_payloads_sends_nothing_writes_no_state(tmp_path, receiver, capsys):
    rotated_set(tmp_path)
    cfg = write_config(tmp_path, receiver.url)
    settings = load_settings(cfg)
    summary = run_replay(cfg, [tmp_path / "logs"], dry_run=True)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["data"] for p in out] == [expected_data(i) for i in range(90)]
    assert all(set(p) == {"ts", "nonce", "data"} for p in out)
    assert summary.records == 90 and summary.sent == 0
    assert receiver.count() == 0
    assert not state_path(settings, ReplayOptions(dry_run=True)).exists()


def test_time_window_filters_on_event_time(tmp_path, receiver):
    rotated_set(tmp_path)
    cfg = write_config(tmp_path, receiver.url, concurrency=1)
    summary = run_replay(cfg, [tmp_path / "logs"], since=BASE_TS + 10, until=BASE_TS + 20)
    assert datas(receiver) == [expected_data(i) for i in range(10, 20)]
    assert summary.outside_window == 80


def test_shards_together_send_everything_once(tmp_path, receiver):
    logs = tmp_path / "logs"
    for n in range(6):
        write_log(logs / f"svc{n}.log", [vote_line(n * 100 + i) for i in range(40)])
    cfg = write_config(tmp_path, receiver.url)
    sent = [run_replay(cfg, [logs], shard=(k, 3)).sent for k in (1, 2, 3)]
    assert sum(sent) == 240
    assert sorted(d["ext1"] for d in datas(receiver)) == sorted(
        str(n * 100 + i) for n in range(6) for i in range(40)
    )


def test_rejected_records_are_dead_lettered_after_one_attempt_and_replay_goes_on(tmp_path, receiver):
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(20)])
    cfg = write_config(tmp_path, receiver.url, concurrency=1)
    receiver.fail_next(2, status=400)
    summary = run_replay(cfg, [tmp_path / "logs"])
    assert (summary.sent, summary.dead_lettered) == (18, 2)
    dead = dead_letters(tmp_path)
    assert [d["attempts"] for d in dead] == [1, 1]
    assert all(d["rule"] == "vote" and d["payload"]["data"]["oper_id"] == "1504000120679" for d in dead)
    assert receiver.stats[400] == 2


def test_unavailable_endpoint_is_retried_to_success(tmp_path, receiver):
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(30)])
    cfg = write_config(tmp_path, receiver.url)
    receiver.fail_next(5, status=503, retry_after=0.01)
    summary = run_replay(cfg, [tmp_path / "logs"])
    assert summary.sent == 30 and summary.dead_lettered == 0
    assert sorted(int(d["ext1"]) for d in datas(receiver)) == list(range(30))
    assert receiver.stats[503] == 5


def test_wrong_token_pauses_then_resumes_when_fixed_nothing_dead_lettered(tmp_path, receiver):
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(25)])
    cfg = write_config(tmp_path, receiver.url, token="stale-token")
    receiver_token_fixed = threading.Event()

    def fix_token_after_refusals():
        wait_until(lambda: receiver.stats.get(401, 0) >= 3, timeout=20, step=0.02)
        receiver.set_token("stale-token")  # the platform accepts the token again
        receiver_token_fixed.set()

    fixer = threading.Thread(target=fix_token_after_refusals)
    fixer.start()
    try:
        summary = run_replay(cfg, [tmp_path / "logs"])
    finally:
        fixer.join()
    assert receiver_token_fixed.is_set()
    assert receiver.stats[401] >= 3
    assert summary.sent == 25 and summary.dead_lettered == 0
    assert dead_letters(tmp_path) == []


def test_gzip_truncated_midway_keeps_what_was_read_and_reports_failure(tmp_path, receiver):
    good = write_log(tmp_path / "logs" / "app.log.1.gz", [vote_line(i) for i in range(400)], gz=True)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    cfg = write_config(tmp_path, receiver.url)
    summary = run_replay(cfg, [tmp_path / "logs"])
    assert summary.files_failed == 1
    got = sorted(int(d["ext1"]) for d in datas(receiver))
    assert got == list(range(len(got))) and 0 < len(got) < 400  # a prefix, nothing invented


@pytest.mark.slow
def test_replay_killed_with_sigkill_loses_nothing_and_resends_only_the_unsaved_tail(tmp_path, receiver):
    """A replay SIGKILLed mid-way, then rerun: every record arrives; the only resends are records past the
    offset its state file held at the kill (in flight, or acknowledged since the last state write)."""
    total = 1500
    log = write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(total)])
    cfg = write_config(tmp_path, receiver.url, concurrency=8, rate_limit=600)
    cmd = ("replay", "-c", cfg, log)
    state = state_path(load_settings(cfg), ReplayOptions())
    proc = start_tailer(*cmd)
    try:
        # Kill mid-way, once the replay has written its state at least once.
        wait_until(lambda: proc.poll() is not None or (receiver.count() >= total // 2 and state.exists()),
                   timeout=60, step=0.02)  # fmt: skip
        assert proc.poll() is None, proc.stderr()
    finally:
        proc.stop(signal.SIGKILL, timeout=30)
    before = {r["nonce"] for r in receiver.records()}
    assert 0 < len(before) < total
    saved_offset = json.loads(state.read_text())["files"][0]["offset"]
    assert 0 < saved_offset < log.stat().st_size
    rerun = run_tailer(*cmd)
    assert rerun.code == 0, rerun.stderr
    nonces = record_nonces(log)
    stored = [r["nonce"] for r in receiver.records()]
    assert sorted(stored) == sorted(n for _, n in nonces)  # nothing lost, nothing stored twice
    resent = receiver.duplicates  # deterministic nonces: the receiver recognises each exact resend
    may_resend = {n for end, n in nonces if end > saved_offset} & before
    assert resent == len(may_resend)


def test_sigterm_while_token_refused_stops_within_grace_and_a_rerun_completes(tmp_path, receiver):
    """submit() blocks while the endpoint refuses the token; SIGTERM must still stop the replay, keep
    its state before the unsent records, and a rerun with the token fixed delivers everything."""
    log = write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(200)])
    cfg = write_config(tmp_path, receiver.url, token="right-token", concurrency=2)
    receiver.set_token("other-token")
    cmd = ("replay", "--grace", "0.5", "-c", cfg, log)
    proc = start_tailer(*cmd)
    try:
        wait_until(lambda: receiver.stats.get(401, 0) >= 2, timeout=30, step=0.02)
        code = proc.stop(signal.SIGTERM, timeout=30)
    finally:
        proc.stop(signal.SIGKILL)  # only if still running
    err = proc.stderr()
    assert code == 1 and "interrupted" in err, err
    receiver.set_token("right-token")
    rerun = run_tailer(*cmd)
    assert rerun.code == 0, rerun.stderr
    assert sorted(int(d["ext1"]) for d in datas(receiver)) == list(range(200))
    assert dead_letters(tmp_path) == []


def test_replayed_then_followed_live_the_same_records_carry_the_same_nonces(tmp_path, receiver):
    """Backfill a file, then follow it live from the beginning: every record is resent with the nonce the
    replay gave it (first KiB included), so the receiver acknowledges each resend and stores it once."""
    from tailer.run.live import Agent

    log = write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(60)])
    cfg = write_config(tmp_path, receiver.url)
    assert run_replay(cfg, [log]).sent == 60

    async def follow_until_all_resent() -> int:
        agent = Agent(load_settings(cfg), rescan_interval=0.2, handle_signals=False)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await wait_until_async(lambda: receiver.duplicates >= 60 or task.done(), timeout=30)
        stop.set()
        return await task

    assert asyncio.run(follow_until_all_resent()) == 0
    assert receiver.count() == 60 and receiver.duplicates == 60
    assert receiver.stats.get(409, 0) == 0


def test_progress_bar_goes_by_bytes_to_100_percent(tmp_path, receiver):
    import io

    files = rotated_set(tmp_path)
    cfg = write_config(tmp_path, receiver.url)
    shown = io.StringIO()
    summary = asyncio.run(replay(load_settings(cfg), files, ReplayOptions(), progress_to=shown))
    assert summary.sent == 90
    frames = [f for f in shown.getvalue().split("\r") if f.strip()]
    assert frames[-1].startswith("[" + "#" * 24 + "] 100%  file 3/3")
    assert "sent 90" in frames[-1]


def test_a_file_ending_in_a_long_run_of_noise_is_finished_and_not_read_again(tmp_path, receiver):
    """The reads after the last record hand out no line at all (nothing there can match): the file's
    state must still reach its end, so the file counts as done and the next run skips it."""
    noise = [f"2026-11-01 00:00:{i % 60:02d} INFO heartbeat n={i} {'z' * 80}" for i in range(30_000)]
    write_log(tmp_path / "logs" / "app.log", [vote_line(0), *noise])
    cfg = write_config(tmp_path, receiver.url)
    first = run_replay(cfg, [tmp_path / "logs"])
    assert (first.sent, first.lines, first.matched) == (1, 30_001, 1)
    state = json.loads(state_path(load_settings(cfg), ReplayOptions()).read_text())
    (entry,) = state["files"]
    assert entry["done"] and entry["offset"] == (tmp_path / "logs" / "app.log").stat().st_size
    again = run_replay(cfg, [tmp_path / "logs"])
    assert (again.files_done_before, again.lines) == (1, 0)
