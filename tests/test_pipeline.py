"""The one pipeline live and replay share: lines -> rules -> window -> watermark -> ship -> settle (by ticket)."""

from __future__ import annotations

import asyncio
import io
import json

from helpers import start_tailer, status_json, wait_until, write_config
from logdata import record_name, vote_line, write_log

from tailer.config.settings import load_settings
from tailer.run.pipeline import FileLane, Pipeline, Window, payload_printer
from tailer.source.identity import identify
from tailer.source.reader import Line, LineReader
from tailer.source.tailfile import TailedFile
from tailer.state.statedir import StateDir


def lines_of(text: str) -> list[Line]:
    return LineReader(io.BytesIO(text.encode())).read()


def test_window_refuses_untimed_and_outside_records_only_when_set():
    assert Window().refuses(None) is None and Window().refuses(5.0) is None
    w = Window(since=10.0, until=20.0)
    assert [w.refuses(t) for t in (None, 9.99, 10.0, 19.99, 20.0)] == [
        "untimed", "outside", None, None, "outside",
    ]  # fmt: skip


def test_records_settle_through_their_ticket_and_the_watermark_reaches_the_end(tmp_path, receiver):
    settings = load_settings(write_config(tmp_path, receiver.url))
    text = "noise\n" + "".join(vote_line(i) + "\n" for i in range(20)) + "VOTE_JOIN id=x near miss\n"
    lines = lines_of(text)
    lane = FileLane("app.log", "k" * 32, text.encode()[:1024], 0, None)
    pipeline = Pipeline(settings.rules)

    async def go() -> None:
        async with pipeline.shipping(settings.endpoint, StateDir(tmp_path / "state")) as shipper:
            await pipeline.feed(lane, lines)
            assert await shipper.drain(30)

    asyncio.run(go())
    c = pipeline.counters
    assert (c.lines, c.records, c.acked, c.skipped, c.dead_lettered) == (22, 20, 20, 2, 0)
    assert lane.watermark.offset == len(text.encode()) and lane.watermark.in_flight == 0
    assert lane.last_ack_at is not None
    assert sorted(int(r["data"]["ext1"]) for r in receiver.records()) == list(range(20))
    assert pipeline.shipper is None  # closed on the way out


def test_an_unsettled_record_holds_the_watermark_before_its_line(tmp_path, make_receiver):
    down = make_receiver(token="test-token")
    down.fail_next(1000, status=503)  # nothing is acknowledged while we look
    settings = load_settings(write_config(tmp_path, down.url))
    text = vote_line(0) + "\n" + "noise\n" * 3
    lane = FileLane("app.log", "k" * 32, text.encode(), 0, None)
    pipeline = Pipeline(settings.rules)

    async def go() -> None:
        async with pipeline.shipping(settings.endpoint, StateDir(tmp_path / "state")):
            await pipeline.feed(lane, lines_of(text))
            await asyncio.sleep(0.2)
            assert lane.watermark.offset == 0 and lane.watermark.read_offset == len(text)

    asyncio.run(go())
    assert pipeline.counters.acked == 0


def test_dry_run_emits_payloads_and_settles_every_line(tmp_path):
    settings = load_settings(write_config(tmp_path, "http://127.0.0.1:9/api/v1/OperReport"))
    out = io.StringIO()
    pipeline = Pipeline(settings.rules, emit=payload_printer(settings.endpoint, out, clock=lambda: 0.0))
    text = vote_line(1) + "\n" + "noise\n"
    lane = FileLane("app.log", "k" * 32, text.encode(), 0, None)
    asyncio.run(pipeline.feed(lane, lines_of(text)))
    (payload,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert payload["data"]["ext1"] == "1" and lane.watermark.offset == len(text)


def test_live_and_replay_name_a_record_alike_and_as_the_contract_says(tmp_path):
    """The nonce contract between live and replay, checked against the rule written out in tests/logdata.py
    (a hash of the bytes before the record's end inside the first KiB, the file's key after), not the
    production code."""
    data = b"".join(f"line {i:04d} {'x' * 40}\n".encode() for i in range(60))  # > 1 KiB
    path = tmp_path / "app.log"
    path.write_bytes(data)
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    key = "f" * 32
    lane = FileLane(str(path), key, data[:1024], 0, None)
    tf = TailedFile(key, str(path))
    with open(path, "rb") as stream:
        tf.attach(stream, identify(stream.fileno()), 0, encoding="utf-8", max_line_bytes=65536)
        tf.read(1 << 20)
        for end in ends:
            want = record_name(data, end) if end < 1024 else tf.key
            assert tf.record_key(end) == want
            assert lane.record_key(end) == (want if end < 1024 else key)
        tf.detach()


def test_live_following_settles_noise_only_reads_and_counts_every_line(tmp_path, receiver):
    """Live reads select too: a read that hands out no line (only noise) still moves the checkpoint
    to the end of what it passed, and the line counters count every line."""
    cfg = write_config(tmp_path, receiver.url)
    log = tmp_path / "logs" / "app.log"
    write_log(log, [vote_line(i) for i in range(3)])
    run = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 3)
        with open(log, "a", encoding="utf-8") as f:
            f.writelines(f"2026-11-01 00:00:00 INFO heartbeat {i} {'z' * 60}\n" for i in range(20_000))
        size = log.stat().st_size
        assert wait_until(lambda: [f["offset"] for f in status_json(cfg)["files"]] == [size])
    finally:
        assert run.stop() == 0, run.stderr()
    assert receiver.count() == 3
