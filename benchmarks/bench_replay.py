"""``tailer replay`` throughput against baselines measured in the same run.

A generated log (``--lines``, ``--hit-rate`` of them vote operations) is replayed, in this process through
the library (``tailer.run.replay.replay``, the code behind the CLI), into the reference receiver running in a
subprocess (``tailer.receiver.server.serve``, SQLite file db), so client and server each get a core as in
bench_ship.py. Compared with, in the same run:

* send: a bare ``aiohttp.ClientSession`` POSTing the same number of precomputed payloads with the same
  concurrency to the same receiver (the least a Python client can do): records/s of both and the ratio;
* ``--dry-run`` (read + match + serialize to /dev/null, no network): lines/s against the reader alone
  (``LineReader`` over the same file, the loop replay runs) and against ``for line in file`` + decode.

    python benchmarks/bench_replay.py [--lines 200000] [--hit-rate 0.05] [--concurrency 16] [--cap 120]

Bounded: ``--repeat`` send passes of each (alternating, each stopped at ``--cap`` seconds, each against a
fresh receiver and db), three of each dry/reader pass; the best of each is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
from tailer.config.settings import load_settings  # noqa: E402
from tailer.run.replay import ReplayOptions, replay  # noqa: E402
from tailer.source.reader import LineReader, open_log  # noqa: E402

TOKEN = "bench-token"
HIT = "{ts},{ms:03d} [exec-{t}] INFO c.a.VoteService - VOTE_JOIN voteId={n} groupId=5 channelId=c1 uid={u}\n"
NOISE = [
    "{ts},{ms:03d} [exec-{t}] INFO c.a.http.RequestLogger - GET /api/channels/{n}/messages 200 {u}ms\n",
    "{ts},{ms:03d} [exec-{t}] DEBUG c.a.cache.RedisCache - hit key=user:{n} ttl=300\n",
    "{ts},{ms:03d} [exec-{t}] INFO c.a.VoteService - loading vote page for groupId={n}\n",
    "{ts},{ms:03d} [main] INFO c.a.Scheduler - 用户{u}的消息已投递 channelId=c{n}\n",
]
CONFIG = """\
endpoint:
  url: {url}
  token: {token}
  concurrency: {concurrency}
  nonce: random
sources:
  - paths: ["{log}"]
state_dir: {state}
rules:
  - name: vote
    pattern: '^(?P<ts>\\S+ \\S+) .*VOTE_JOIN voteId=(?P<ext1>\\d+) groupId=(?P<gid>\\d+) channelId=(?P<target_id>\\S+) uid=(?P<uid>\\d+)'
    oper_id: "1504000120679"
    ts_format: "%Y-%m-%d %H:%M:%S,%f"
    timezone: Asia/Shanghai
"""
RECEIVER = r"""
import sys
from tailer.receiver.server import ReceiverConfig, serve
serve(ReceiverConfig(token=sys.argv[1], db_path=sys.argv[2]), "127.0.0.1", 0)
"""


def write_log(path: Path, lines: int, hit_rate: float) -> int:
    """The log; returns how many lines are operations."""
    rng = random.Random(7)
    hits = 0
    with open(path, "w", encoding="utf-8") as out:
        for i in range(lines):
            ts = f"2026-11-28 {10 + i // 3_600_000 % 10}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}"
            hit = rng.random() < hit_rate
            hits += hit
            template = HIT if hit else rng.choice(NOISE)
            out.write(template.format(ts=ts, ms=i % 1000, t=i % 16, n=rng.randrange(10**6), u=i))
    return hits


def start_receiver(db: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, TOKEN, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "receiver listening on http://127.0.0.1:PORT/api/v1/OperReport, db ..."
    if "listening on " not in first:
        proc.kill()
        raise SystemExit(f"receiver did not start: {first!r}")
    return proc, first.split("listening on ", 1)[1].split(",", 1)[0]


async def bare_aiohttp(url: str, bodies: list[bytes], concurrency: int, cap: float) -> tuple[int, float]:
    """``concurrency`` workers POST the precomputed bodies; returns (acknowledged, seconds)."""
    headers = {"Content-Type": "application/json", "Authorization": TOKEN}
    todo = iter(bodies)
    acked = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.perf_counter()
        deadline = start + cap

        async def worker() -> None:
            nonlocal acked
            for body in todo:
                if time.perf_counter() > deadline:
                    return
                async with session.post(url, data=body, headers=headers) as r:
                    answer = await r.json()
                    assert r.status == 200 and answer["ret"] == 0, answer
                    acked += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return acked, time.perf_counter() - start


def payloads(count: int) -> list[bytes]:
    run = secrets.token_hex(6)
    data = {"oper_id": "1504000120679", "gid": 5, "target_id": "c1", "uid": 42}
    return [
        json.dumps({"ts": int(time.time()), "nonce": f"{run}-{i}", "data": {**data, "ext1": str(i)}}).encode()
        for i in range(count)
    ]


def reader_only(path: Path) -> int:
    count = 0
    with open_log(path) as stream:
        reader = LineReader(stream)
        while not reader.at_eof:
            count += len(reader.read())
        count += reader.flush() is not None
    return count


def for_line_decode(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for raw in stream if raw.decode("utf-8", "replace") is not None)


def best_of(repeat: int, func, *args) -> tuple[float, object]:
    """The fastest of ``repeat`` runs (the cheap passes are short enough for a noisy moment to dominate)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - began)
    return best, result


def dry_run(settings, log: Path):
    with open(os.devnull, "w") as devnull:
        return asyncio.run(replay(settings, [log], ReplayOptions(dry_run=True), out=devnull))


async def send_replay(settings, log: Path, cap: float):
    return await asyncio.wait_for(replay(settings, [log], ReplayOptions(restart=True)), cap)


def settings_for(url: str, args, tmp: Path, log: Path):
    cfg = tmp / "rules.yaml"
    cfg.write_text(
        CONFIG.format(url=url, token=TOKEN, concurrency=args.concurrency, log=log, state=tmp / "st")
    )
    return load_settings(cfg)


def send_pass(tmp: Path, n: int, func) -> tuple[int, float]:
    """One send pass against a fresh receiver (a fresh db: its size then favours no pass over another)."""
    proc, url = start_receiver(tmp / f"receiver-{n}.sqlite3")
    try:
        return func(url)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--hit-rate", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="send passes of each, alternating; best kept")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per send pass at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "app.log"
        hits = write_log(log, args.lines, args.hit_rate)
        mb = log.stat().st_size / 1e6
        print(f"log: {args.lines:,} lines, {mb:.1f} MB, {hits:,} operations; concurrency {args.concurrency}")

        dry_s, dry = best_of(3, dry_run, settings_for("http://127.0.0.1:9/unused", args, tmp, log), log)
        assert dry.lines == args.lines and dry.records == hits, (dry.lines, dry.records)
        reader_s, n_reader = best_of(3, reader_only, log)
        plain_s, n_plain = best_of(3, for_line_decode, log)
        assert n_reader == n_plain == args.lines

        def baseline(url: str) -> tuple[int, float]:
            return asyncio.run(bare_aiohttp(url, payloads(hits), args.concurrency, args.cap))

        def tailer(url: str) -> tuple[int, float]:
            settings = settings_for(url, args, tmp, log)
            began = time.perf_counter()
            summary = asyncio.run(send_replay(settings, log, args.cap))
            elapsed = time.perf_counter() - began
            assert summary.sent == hits and not summary.dead_lettered, (summary.sent, summary.dead_lettered)
            return summary.sent, elapsed

        best = {"baseline": (0, float("inf")), "tailer": (0, float("inf"))}
        for n in range(args.repeat):
            order = (("baseline", baseline), ("tailer", tailer))
            for name, func in order if n % 2 == 0 else order[::-1]:
                sent, seconds = send_pass(tmp, len(best) * n + (name == "tailer"), func)
                print(
                    f"  pass {n + 1} {name:8s} {sent:7,d} in {seconds:6.2f}s {sent / seconds:9,.0f} records/s"
                )
                if sent / seconds > best[name][0] / best[name][1]:
                    best[name] = (sent, seconds)
    (acked, base_s), (sent, replay_s) = best["baseline"], best["tailer"]
    base_rate, ours_rate = acked / base_s, sent / replay_s
    print(f"send (records/s acknowledged by the receiver, best of {args.repeat}):")
    print(f"  baseline bare aiohttp, precomputed payloads {acked:7,d} in {base_s:6.2f}s {base_rate:9,.0f}")
    print(f"  tailer replay (read+match+ship)             {sent:7,d} in {replay_s:6.2f}s {ours_rate:9,.0f}")
    print(f"  ratio replay/baseline: {ours_rate / base_rate:.2f}")
    print("dry run (lines/s, no network, best of 3):")
    for name, seconds in (
        ("baseline for-line+decode", plain_s),
        ("baseline LineReader only", reader_s),
        ("tailer replay --dry-run", dry_s),
    ):
        print(f"  {name:44s} {seconds:6.2f}s {args.lines / seconds:11,.0f}")
    print(
        f"  ratio dry-run/LineReader time: {dry_s / reader_s:.1f}x; dry-run/for-line time: {dry_s / plain_s:.1f}x"
    )


if __name__ == "__main__":
    main()
