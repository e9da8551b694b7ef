"""Extraction speed with and without the literal prefilter, measured in the same run.

~200k synthetic application-log lines, ~2% of them operations, 8 rules (votes and lotteries, app-log and
access-log style, Chinese text). Prints lines/s for both and the ratio; asserts nothing about absolute time.

    python benchmarks/bench_rules.py [--lines 200000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tailer.rules.engine import compile_rules  # noqa: E402

TS = r"^(?P<ts>\S+ \S+) "
OPS = {"CREATE": "18", "START": "78", "JOIN": "79", "DELETE": "17"}
RULES = [
    {"name": f"{kind.lower()}_{op.lower()}",
     "pattern": TS + rf".*{kind}_{op} {kind.lower()}Id=(?P<ext1>\d+) groupId=(?P<gid>\d+) channelId=(?P<target_id>\S+) uid=(?P<uid>\d+)",
     "oper_id": f"150{4 if kind == 'VOTE' else 5}0001206{code}",
     "ts_format": "%Y-%m-%d %H:%M:%S,%f", "timezone": "Asia/Shanghai"}
    for kind in ("VOTE", "LOTTERY") for op, code in list(OPS.items())[:3]
] + [
    {"name": "lottery_cn", "pattern": TS + r".*用户(?P<uid>\d+)删除了抽奖(?P<ext1>\d+) 群(?P<gid>\d+)",
     "oper_id": "1505000120617", "ts_format": "%Y-%m-%d %H:%M:%S,%f"},
    {"name": "vote_delete_http", "pattern": r'\[(?P<ts>[^\]]+)\] "DELETE /api/votes/(?P<ext1>\d+)\?uid=(?P<uid>\d+)',
     "oper_id": "1504000120617", "ts_format": "%d/%b/%Y:%H:%M:%S %z"},
]  # fmt: skip

NOISE = [
    "{ts} [exec-{n}] INFO c.a.http.RequestLogger - GET /api/channels/{n}/messages 200 {n}ms",
    "{ts} [exec-{n}] DEBUG c.a.cache.RedisCache - hit key=user:{n} ttl=300",
    "{ts} [pool-2-thread-{n}] WARN c.a.push.PushService - retry push to device {n}, attempt 2",
    "{ts} [exec-{n}] INFO c.a.VoteService - loading vote page for groupId={n}",
    "{ts} [main] INFO c.a.Scheduler - 用户{n}的消息已投递 channelId=c{n}",
    '127.0.0.1 - - [28/Nov/2026:10:00:01 +0800] "GET /api/votes/{n} HTTP/1.1" 200 512',
]
HITS = [
    "{ts} [exec-{n}] INFO c.a.VoteService - VOTE_JOIN voteId={n} groupId=5 channelId=c1 uid={n}",
    "{ts} [exec-{n}] INFO c.a.LotteryService - LOTTERY_CREATE lotteryId={n} groupId=7 channelId=c9 uid=42",
    "{ts} [exec-{n}] INFO c.a.LotteryService - 用户{n}删除了抽奖{n} 群3",
    '10.0.0.1 - - [28/Nov/2026:10:00:01 +0800] "DELETE /api/votes/{n}?uid={n} HTTP/1.1" 200 0',
]


def make_lines(count: int, hit_rate: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        ts = f"2026-11-28 10:{(i // 60) % 60:02d}:{i % 60:02d},{i % 1000:03d}"
        template = rng.choice(HITS) if rng.random() < hit_rate else rng.choice(NOISE)
        lines.append(template.format(ts=ts, n=rng.randrange(1, 100000)))
    return lines


def timed(ruleset, lines: list[str]) -> tuple[float, int]:
    match = ruleset.match
    start = time.perf_counter()
    records = sum(1 for line in lines if (m := match(line)) is not None and m.record is not None)
    return time.perf_counter() - start, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--hit-rate", type=float, default=0.02)
    args = parser.parse_args()
    lines = make_lines(args.lines, args.hit_rate)
    fast, slow = compile_rules(RULES, prefilter=True), compile_rules(RULES, prefilter=False)
    print("literals:", {r.name: r.literal for r in fast.rules})
    timed(fast, lines[:2000])  # warm up
    best_fast = best_slow = float("inf")
    for _ in range(3):  # best of three, alternating, so a noisy moment hurts neither side alone
        t_fast, n_fast = timed(fast, lines)
        t_slow, n_slow = timed(slow, lines)
        assert n_fast == n_slow, "the prefilter changed the result"
        best_fast, best_slow = min(best_fast, t_fast), min(best_slow, t_slow)
    print(f"{len(lines)} lines, {n_fast} records, {len(RULES)} rules")
    print(f"with prefilter:    {len(lines) / best_fast:12,.0f} lines/s")
    print(f"without prefilter: {len(lines) / best_slow:12,.0f} lines/s")
    print(f"ratio: {best_slow / best_fast:.1f}x faster with the prefilter")


if __name__ == "__main__":
    main()
