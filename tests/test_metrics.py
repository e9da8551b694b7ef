"""Metrics and health (issue 8 item 1): a real ``tailer run`` subprocess scraped over HTTP on 127.0.0.1,
the real receiver with its fault injection, ``tailer replay --metrics-file`` parsed with
prometheus_client's own parser, and the health rules as a pure function. Every wait is bounded; no test
asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import TOKEN, run_tailer, start_tailer, wait_until, wait_until_async, write_config
from logdata import append_log, vote_line, write_log
from prometheus_client.parser import text_string_to_metric_families

from tailer.config.settings import load_settings
from tailer.errors import ConfigError
from tailer.run.live import Agent
from tailer.run.metrics import HealthFacts, judge_health, reason_label
from tailer.ship.latency import LatencyHistogram

DASHBOARD = Path(__file__).resolve().parent.parent / "samples" / "grafana" / "oper-tailer.json"

# -- helpers ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_config(tmp: Path, url: str, port: int) -> Path:
    return write_config(tmp, url, extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET; (0, why) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics by (name, labels); {} when nothing answers."""
    status, text = get(port, "/metrics")
    if status != 200:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def until_metric(port: int, name: str, want, **labels: str) -> dict:
    """Scrape until ``name{labels}`` satisfies ``want`` (a value or a predicate); the last scrape."""
    check = want if callable(want) else (lambda v: v == want)
    last: dict = {}

    def ok() -> bool:
        nonlocal last
        last = scrape(port)
        v = value(last, name, **labels)
        return v is not None and check(v)

    assert wait_until(ok, timeout=60, step=0.1), (
        name,
        labels,
        value(last, name, **labels),
        get(port, "/healthz"),
    )
    return last


def dashboard_series() -> set[str]:
    """The series samples/grafana/oper-tailer.json queries."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel["targets"]]
    assert exprs
    return {name for e in exprs for name in re.findall(r"\b((?:tailer|process)_[a-z_]+)\{", e)}


# -- the pure parts --------------------------------------------------------------------------------------


def test_health_is_ok_only_while_every_part_runs_and_the_checkpoint_is_current():
    assert judge_health(HealthFacts()) == []
    cases = {
        "stopping": HealthFacts(stopping=True),
        "follower: the read loop died": HealthFacts(reading="the read loop died: OSError()"),
        "watchdog observer": HealthFacts(watcher_alive=False),
        "shipper: not running": HealthFacts(shipper_open=False),
        "checkpoint: the checkpoint loop ended": HealthFacts(checkpointing="the checkpoint loop ended"),
        "checkpoint: not written for 7s (last error: disk full)": HealthFacts(
            checkpoint_age=7.0, checkpoint_error="disk full", stale_after=5.0
        ),
    }
    for expected, facts in cases.items():
        reasons = judge_health(facts)
        assert len(reasons) == 1 and expected in reasons[0], (expected, reasons)
    # A failed write is tolerated until it is stale: one bad second must not restart a pod.
    assert judge_health(HealthFacts(checkpoint_age=4.0, checkpoint_error="disk full", stale_after=5.0)) == []
    both = judge_health(HealthFacts(watcher_alive=False, shipper_open=False))
    assert len(both) == 2


def test_latency_histogram_counts_each_observation_in_the_first_bucket_at_or_above_it():
    h = LatencyHistogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(seconds)
    assert h.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert h.count == 5 and h.total == pytest.approx(4.65)


def test_reason_labels_are_stable_snake_case():
    assert reason_label("HTTP 503") == "http_503"
    assert reason_label("ConnectError") == "connect_error"
    assert reason_label("rejected") == "rejected"
    assert reason_label("answer is not JSON") == "answer_is_not_json"


@pytest.mark.parametrize("listen", ["localhost", "127.0.0.1:99999", "127.0.0.1:0"])
def test_metrics_listen_must_be_host_and_port(tmp_path, listen):
    cfg = write_config(tmp_path, "http://127.0.0.1:1/api", extra=f"metrics:\n  listen: '{listen}'\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml:\d+.*host:port"):
        load_settings(cfg)


# -- a real `tailer run` -----------------------------------------------------------------------------------


def test_run_serves_reads_matches_sends_retries_dead_letters_and_the_auth_pause(tmp_path, receiver):
    port = free_port()
    cfg = metrics_config(tmp_path, receiver.url, port)
    log = tmp_path / "logs" / "app.log"
    log.write_text("")
    run = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: get(port, "/healthz")[0] == 200), run.stderr()
        assert get(port, "/healthz")[1] == "ok\n"
        append_log(log, [vote_line(i) for i in range(5)] + ["a line no rule matches"])
        glob = str(tmp_path / "logs" / "*.log*")
        m = until_metric(port, "tailer_records_sent_total", 5)
        m = until_metric(port, "tailer_lines_read_total", 6, source=glob)
        assert value(m, "tailer_bytes_read_total", source=glob) == log.stat().st_size
        assert value(m, "tailer_records_matched_total", rule="vote") == 5
        assert value(m, "tailer_records_submitted_total") == 5
        assert value(m, "tailer_ack_latency_seconds_count") == 5
        assert value(m, "tailer_ack_latency_seconds_bucket", le="+Inf") == 5
        assert value(m, "tailer_endpoint_paused") == 0
        assert value(m, "tailer_healthy") == 1
        files = [k for k in m if k[0] == "tailer_file_bytes_behind"]
        assert [dict(k[1])["path"] for k in files] == [str(log)]
        m = until_metric(port, "tailer_file_bytes_behind", 0, **dict(files[0][1]))
        assert value(m, "tailer_file_seconds_since_ack", **dict(files[0][1])) is not None
        assert receiver.count() == 5

        receiver.fail_next(2, 503)  # retried
        append_log(log, [vote_line(5)])
        m = until_metric(port, "tailer_records_sent_total", 6)
        assert value(m, "tailer_records_retried_total", reason="http_503") == 2

        receiver.fail_next(1, 400)  # dead-lettered
        append_log(log, [vote_line(6)])
        m = until_metric(port, "tailer_records_dead_lettered_total", 1, reason="http_400")
        assert value(m, "tailer_records_sent_total") == 6

        receiver.set_token("another-token")  # 401: paused, retried, not dead-lettered, still healthy
        append_log(log, [vote_line(7)])
        m = until_metric(port, "tailer_endpoint_paused", 1)
        assert value(m, "tailer_records_retried_total", reason="http_401") >= 1
        assert value(m, "tailer_records_in_flight") == 1
        assert get(port, "/healthz")[0] == 200
        receiver.set_token(TOKEN)
        m = until_metric(port, "tailer_records_sent_total", 7)
        assert value(m, "tailer_endpoint_paused") == 0
        assert value(m, "tailer_records_dead_lettered_total", reason="http_400") == 1
        assert value(m, "tailer_ack_latency_seconds_count") == 8  # 7 acked + 1 dead-lettered
        m = until_metric(port, "tailer_checkpoint_writes_total", lambda v: v >= 1)
        assert value(m, "tailer_checkpoint_write_failures_total") == 0
        assert value(m, "process_resident_memory_bytes") > 0
        assert get(port, "/nothing")[0] == 404
        served = {name for name, _ in m}
        assert dashboard_series() <= served, dashboard_series() - served
    finally:
        code = run.stop()
    assert code == 0, run.stderr()
    assert get(port, "/healthz")[0] == 0  # the server went with the process
    assert TOKEN not in run.stderr()


def test_healthz_says_503_and_why_while_the_checkpoint_cannot_be_written(tmp_path, receiver):
    port = free_port()
    cfg = metrics_config(tmp_path, receiver.url, port)
    log = tmp_path / "logs" / "app.log"
    append_log(log, [vote_line(0)])
    run = start_tailer("run", "-c", cfg)
    checkpoint = tmp_path / "state" / "checkpoint.json"
    try:
        until_metric(port, "tailer_records_sent_total", 1)
        assert wait_until(checkpoint.is_file)
        assert wait_until(lambda: get(port, "/healthz")[0] == 200)
        # Root ignores permissions, so make the rename fail instead: the checkpoint's path is a directory.
        checkpoint.unlink()
        checkpoint.mkdir()
        append_log(log, [vote_line(1)])
        until_metric(port, "tailer_checkpoint_write_failures_total", lambda v: v >= 1)
        assert wait_until(lambda: get(port, "/healthz")[0] == 503), get(port, "/healthz")
        status, body = get(port, "/healthz")
        assert status == 503 and "checkpoint: not written for" in body and str(checkpoint) in body, body
        assert value(scrape(port), "tailer_healthy") == 0
        checkpoint.rmdir()  # writable again: healthy again
        assert wait_until(lambda: get(port, "/healthz")[0] == 200), get(port, "/healthz")
        assert checkpoint.is_file()
    finally:
        code = run.stop()
    assert code == 0, run.stderr()


def test_run_refuses_to_start_when_the_metrics_port_is_taken(tmp_path, receiver):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = metrics_config(tmp_path, receiver.url, port)
        run = start_tailer("run", "-c", cfg)
        try:
            code = run.wait(timeout=60)
        finally:
            run.stop()
    assert code == 1
    assert f"Error: cannot serve metrics on 127.0.0.1:{port}" in run.stderr()


# -- in-process: the parts' threads, and a stuck loop ------------------------------------------------------


def test_a_dead_watchdog_observer_or_a_stuck_loop_is_unhealthy_and_the_server_thread_is_joined(
    tmp_path, receiver
):
    port = free_port()
    cfg = metrics_config(tmp_path, receiver.url, port)
    (tmp_path / "logs" / "app.log").write_text(vote_line(0) + "\n")

    async def scenario() -> int:
        # A long rescan: only an explicit wake polls, so the dead observer stays dead until we say.
        agent = Agent(load_settings(cfg), rescan_interval=30.0, handle_signals=False)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        fetch = asyncio.to_thread

        async def healthy() -> bool:
            return (await fetch(get, port, "/healthz"))[0] == 200

        await wait_until_async(lambda: receiver.count() == 1 and healthy(), timeout=30)
        assert (await fetch(get, port, "/healthz"))[0] == 200
        # A blocking call on the loop's own thread: the loop cannot answer the health check.
        status, body = get(port, "/healthz")
        assert status == 503 and "event loop did not answer" in body, body
        # Kill the observer thread as an exception in a handler would.
        watcher = agent.follower.watcher
        for observer in list(watcher._observers.values()):
            observer.stop()
            await fetch(observer.join, 10)
        status, body = await fetch(get, port, "/healthz")
        assert status == 503 and "watchdog observer" in body, body
        agent._wake.set()  # the next poll restarts it
        await wait_until_async(healthy, timeout=30)
        assert (await fetch(get, port, "/healthz"))[0] == 200
        assert agent.follower.stats.observer_restarts == 1
        stop.set()
        return await task

    assert asyncio.run(scenario()) == 0
    assert get(port, "/healthz")[0] == 0  # stopped; the leak check proves the thread was joined


# -- replay --metrics-file ---------------------------------------------------------------------------------


def test_replay_writes_its_counters_as_a_textfile_collector_file(tmp_path, receiver):
    cfg = write_config(tmp_path, receiver.url)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(4)] + ["no rule matches this"])
    out_dir = tmp_path / "textfile"
    out_dir.mkdir()
    prom = out_dir / "oper_tailer_replay.prom"
    receiver.fail_next(2, 503)
    done = run_tailer("replay", "-c", cfg, tmp_path / "logs", "--metrics-file", prom)
    assert done.code == 0, done.stderr
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples}
    glob = str(tmp_path / "logs" / "*.log*")
    assert value(samples, "tailer_lines_read_total", source=glob) == 5
    assert (
        value(samples, "tailer_bytes_read_total", source=glob)
        == (tmp_path / "logs" / "app.log").stat().st_size
    )
    assert value(samples, "tailer_records_matched_total", rule="vote") == 4
    assert value(samples, "tailer_records_sent_total") == 4
    assert value(samples, "tailer_records_retried_total", reason="http_503") == 2
    assert value(samples, "tailer_ack_latency_seconds_count") == 4
    assert value(samples, "tailer_replay_files_total") == 1
    assert value(samples, "tailer_replay_interrupted") == 0
    assert value(samples, "tailer_checkpoint_writes_total") >= 1
    assert families["tailer_records_sent"].type == "counter"
    assert families["tailer_ack_latency_seconds"].type == "histogram"
    assert sorted(p.name for p in out_dir.iterdir()) == [prom.name]  # written beside it, then renamed


def test_replay_without_metrics_file_writes_none(tmp_path, receiver):
    cfg = write_config(tmp_path, receiver.url)
    write_log(tmp_path / "logs" / "app.log", [vote_line(0)])
    done = run_tailer("replay", "-c", cfg, tmp_path / "logs")
    assert done.code == 0, done.stderr
    assert not list(tmp_path.rglob("*.prom"))
