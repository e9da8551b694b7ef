"""Prometheus metrics and health for ``tailer run`` (served by tailer.run.metrics_server) and ``tailer replay
--metrics-file`` (the node-exporter textfile format).

Nothing is counted twice: a custom prometheus_client Collector reads the counters the parts already keep
(Pipeline.counters, Follower.read_by_source and its files, Shipper.stats and its LatencyHistogram) when
scraped, so the per-line path pays nothing for metrics. The scrape runs on the server's thread while the
event loop mutates those objects: it only reads ints and copies dicts (atomic under the GIL), so a sample
may be a moment old, never torn.

Health (``/healthz``, and whether systemd's watchdog is fed) is :func:`judge_health` over plain facts:
200 only while the read loop, the watchdog observer threads and the shipper are alive and the checkpoint
is being written; 503 with the reasons otherwise. An endpoint outage or a refused token is *not*
unhealthy (a restart would not help; ``tailer_endpoint_paused`` and the bytes behind say it).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tailer.errors import TailerError
from tailer.run.pipeline import Counters
from tailer.ship.shipper import Shipper
from tailer.source.settings import SourceSettings

if TYPE_CHECKING:
    from tailer.run.live import Agent

log = logging.getLogger("tailer.metrics")

LOOP_TIMEOUT = 2.0  # seconds the event loop may take to answer a /healthz before it counts as stuck


# -- health -------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class HealthFacts:
    stopping: bool = False
    reading: str | None = None  # None: the read loop runs; else why not
    watcher_alive: bool = True  # every watchdog observer thread runs (True when there is no watcher)
    shipper_open: bool = True
    checkpointing: str | None = None  # None: the checkpoint loop runs; else why not
    checkpoint_age: float = 0.0  # seconds since the checkpoint was last written, or found unchanged
    checkpoint_error: str | None = None  # the last write's error, None once a write succeeds
    stale_after: float = 5.0  # a checkpoint age above this is unhealthy


def judge_health(f: HealthFacts) -> list[str]:
    """Why the agent is unhealthy; empty when healthy. Pure."""
    reasons = []
    if f.stopping:
        reasons.append("stopping")
    if f.reading is not None:
        reasons.append(f"follower: {f.reading}")
    if not f.watcher_alive:
        reasons.append("follower: a watchdog observer thread is not running (restarted at the next poll)")
    if not f.shipper_open:
        reasons.append("shipper: not running")
    if f.checkpointing is not None:
        reasons.append(f"checkpoint: {f.checkpointing}")
    if f.checkpoint_age > f.stale_after:
        why = f" (last error: {f.checkpoint_error})" if f.checkpoint_error else ""
        reasons.append(f"checkpoint: not written for {f.checkpoint_age:.0f}s{why}")
    return reasons


def _task_state(task: Any, what: str) -> str | None:
    if task is None:
        return f"the {what} has not started"
    if not task.done():
        return None
    if task.cancelled():
        return f"the {what} was cancelled"
    exc = task.exception()
    return f"the {what} died: {exc!r}" if exc is not None else f"the {what} ended"


def agent_facts(agent: Agent, now: float | None = None) -> HealthFacts:
    """The facts about a live Agent (``now``: time.monotonic())."""
    now = time.monotonic() if now is None else now
    follower, shipper, stopper = agent.follower, agent.shipper, agent._stopper
    watcher = follower.watcher if follower is not None else None
    return HealthFacts(
        stopping=stopper is not None and stopper.stopping,
        reading=_task_state(agent.reading_task, "read loop"),
        watcher_alive=watcher is None or watcher.alive,
        shipper_open=shipper is not None and shipper.open,
        checkpointing=_task_state(agent.checkpoint_task, "checkpoint loop"),
        checkpoint_age=max(0.0, now - agent.checkpoint_ok_at),
        checkpoint_error=agent.checkpoint_error,
        stale_after=max(5.0, 5 * agent.checkpoint_interval),
    )


def loop_answers(loop: Any, timeout: float = LOOP_TIMEOUT) -> bool:
    """Does the event loop run a callback within ``timeout`` seconds? (Call from another thread.)"""
    answered: concurrent.futures.Future[bool] = concurrent.futures.Future()
    try:
        loop.call_soon_threadsafe(answered.set_result, True)
        return answered.result(timeout)
    except (RuntimeError, concurrent.futures.TimeoutError):  # closed, or stuck
        return False


# -- the collector ----------------------------------------------------------------------------------


def source_label(source: SourceSettings | None) -> str:
    return ",".join(source.paths) if source is not None and source.paths else "(none)"


def reason_label(reason: str) -> str:
    """``"HTTP 503"`` -> ``http_503``, ``"ConnectError"`` -> ``connect_error``: a stable label value."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", reason)
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_") or "unknown"


def _by_reason(name: str, doc: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    summed: dict[str, int] = {}
    for reason, n in dict(counts).items():  # two reasons may share a label: add them up
        label = reason_label(reason)
        summed[label] = summed.get(label, 0) + n
    family = CounterMetricFamily(name, doc, labels=["reason"])
    for label, n in sorted(summed.items()):
        family.add_metric([label], n)
    return family


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def common_metrics(
    counters: Counters,
    read_by_source: Mapping[SourceSettings | None, list[int]],
    shipper: Shipper | None,
) -> Iterator[Metric]:
    """What live and replay share: reading, rules, shipping, checkpoint writes."""
    lines = CounterMetricFamily(
        "tailer_lines_read", "Complete lines read, per source (its globs).", labels=["source"]
    )
    read_bytes = CounterMetricFamily(
        "tailer_bytes_read", "Bytes of complete lines read, per source.", labels=["source"]
    )
    for source, (n_lines, n_bytes) in sorted(
        ((source_label(s), v) for s, v in dict(read_by_source).items()), key=lambda kv: kv[0]
    ):
        lines.add_metric([source], n_lines)
        read_bytes.add_metric([source], n_bytes)
    yield lines
    yield read_bytes
    matched = CounterMetricFamily(
        "tailer_records_matched", "Lines a rule matched, per rule.", labels=["rule"]
    )
    for rule, n in sorted(dict(counters.matched_by_rule).items()):
        matched.add_metric([rule], n)
    yield matched
    c = counters
    yield _counter(
        "tailer_records_unmapped", "Matched lines whose captured word is not in the oper_id map.", c.unmapped
    )
    yield _counter("tailer_records_invalid", "Matched lines with a value that did not convert.", c.invalid)
    yield _counter(
        "tailer_lines_cut", "Lines longer than max_line_bytes (matched on their head).", c.cut_lines
    )
    yield _counter("tailer_checkpoint_writes", "Checkpoint (or replay state) writes.", c.state_writes)
    yield _counter("tailer_checkpoint_write_failures", "Checkpoint (or replay state) writes that failed.",
                   c.state_write_failures)  # fmt: skip
    stats = shipper.stats if shipper is not None else None
    yield _counter(
        "tailer_records_submitted", "Records handed to the shipper.", stats.submitted if stats else 0
    )
    yield _counter("tailer_records_sent", "Records acknowledged by the endpoint (2xx, ret == 0).", c.acked)
    yield _by_reason("tailer_records_retried", "Failed attempts that will be retried, by reason.",
                     stats.retries_by_reason if stats else {})  # fmt: skip
    yield _by_reason("tailer_records_dead_lettered", "Records written to the dead-letter file, by reason.",
                     stats.dead_by_reason if stats else {})  # fmt: skip
    yield _gauge("tailer_records_in_flight", "Records submitted and not settled yet.",
                 shipper.in_flight if shipper is not None else 0)  # fmt: skip
    yield _gauge("tailer_endpoint_paused", "1 while sending is paused because the endpoint refuses the token.",
                 1 if shipper is not None and shipper.paused else 0)  # fmt: skip
    latency = HistogramMetricFamily(
        "tailer_ack_latency_seconds", "Seconds from submit to settle (acked or dead-lettered)."
    )
    if shipper is not None:
        h = shipper.latency
        buckets = [("+Inf" if math.isinf(b) else repr(b), n) for b, n in h.cumulative()]
        latency.add_metric([], buckets, h.total)
    yield latency


class LiveCollector(Collector):
    """``tailer run``'s series: the common ones plus per-file lag, reloads and health."""

    def __init__(self, agent: Agent, clock: Callable[[], float] = time.time) -> None:
        self.agent, self.clock = agent, clock

    def collect(self) -> Iterable[Metric]:
        agent = self.agent
        follower = agent.follower
        yield from common_metrics(agent.counters, follower.read_by_source if follower else {}, agent.shipper)
        behind = GaugeMetricFamily("tailer_file_bytes_behind", "Bytes of a followed file not yet settled.",
                                   labels=["path", "key"])  # fmt: skip
        since = GaugeMetricFamily("tailer_file_seconds_since_ack",
                                  "Seconds since a record of this file was last acknowledged.", labels=["path", "key"])  # fmt: skip
        now = self.clock()
        # list() of a dict view is one C call (the loop thread cannot resize the dict under it).
        for tf in list(follower.files.values()) if follower is not None else []:
            if not tf.attached:
                continue
            labels = [tf.path, tf.key[:16]]
            behind.add_metric(labels, max(0, tf.size - tf.watermark.offset))
            if tf.last_ack_at is not None:
                since.add_metric(labels, max(0.0, now - tf.last_ack_at))
        yield behind
        yield since
        yield _counter("tailer_reloads", "Successful reloads (SIGHUP).", agent.reloads.reloads)
        yield _counter(
            "tailer_reload_failures", "Reloads refused (the old rules kept).", agent.reloads.reload_failures
        )
        yield _gauge("tailer_healthy", "1 when /healthz answers 200 (event loop check aside).",
                     0 if judge_health(agent_facts(agent)) else 1)  # fmt: skip


class ReplayCollector(Collector):
    """``tailer replay``'s series: the common ones plus files and how the run ended."""

    def __init__(self, runner: Any, finished_at: float) -> None:
        self.runner, self.finished_at = runner, finished_at

    def collect(self) -> Iterable[Metric]:
        r = self.runner
        s = r.summary
        yield from common_metrics(r.pipeline.counters, r.read_by_source, r.shipper)
        yield _counter("tailer_replay_files", "Files taken by this replay (its shard).", s.files)
        yield _counter(
            "tailer_replay_files_done_before",
            "Files finished by an earlier run, skipped.",
            s.files_done_before,
        )
        yield _counter(
            "tailer_replay_files_failed", "Files that could not be read to the end.", s.files_failed
        )
        yield _gauge("tailer_replay_duration_seconds", "How long the replay ran.", s.elapsed)
        yield _gauge(
            "tailer_replay_interrupted", "1 if stopped by a signal (a rerun continues).", int(s.interrupted)
        )
        yield _gauge(
            "tailer_replay_last_end_timestamp_seconds", "When the replay ended (epoch).", self.finished_at
        )


def write_replay_textfile(path: Path, runner: Any) -> None:
    """The replay's series at ``path`` (written to a temp file beside it, then renamed over it)."""
    registry = CollectorRegistry()
    registry.register(ReplayCollector(runner, time.time()))
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise TailerError(f"cannot write the metrics file {path}: {exc.strerror or exc}") from exc
