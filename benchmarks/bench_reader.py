"""LineReader throughput against a baseline measured in the same run.

The baseline is the least a line reader can do in Python: ``for line in open(path, "rb")`` plus a decode
per line. The ratio (LineReader time / baseline time) is what to watch; absolute numbers depend on the
machine. Run: ``python benchmarks/bench_reader.py [--lines N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tailer.source.reader import LineReader, open_log

SAMPLE = (
    "2026-11-28 10:00:01,{ms:03d} [exec-7] INFO c.a.VoteService - VOTE_JOIN voteId={n} groupId=5 "
    "channelId=c1 uid={uid} 投票\n"
)


def write_log(path: Path, lines: int) -> int:
    with open(path, "w", encoding="utf-8") as out:
        for n in range(lines):
            out.write(SAMPLE.format(ms=n % 1000, n=n, uid=n * 7))
    return path.stat().st_size


def baseline(path: Path) -> int:
    count = 0
    with open(path, "rb") as stream:
        for raw in stream:
            raw.decode("utf-8", "replace")
            count += 1
    return count


def line_reader(path: Path) -> int:
    count = 0
    with open_log(path) as stream:
        reader = LineReader(stream)
        while True:
            count += len(reader.read())
            if reader.at_eof:
                break
        if reader.flush() is not None:
            count += 1
    return count


def best_of(func, path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(repeat):
        began = time.perf_counter()
        result = func(path)
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.log"
        size = write_log(path, args.lines)
        base_s, base_n = best_of(baseline, path, args.repeat)
        ours_s, ours_n = best_of(line_reader, path, args.repeat)
    assert base_n == ours_n == args.lines, (base_n, ours_n)
    mb = size / 1e6
    print(f"file: {args.lines} lines, {mb:.1f} MB")
    print(
        f"baseline  for-line+decode: {base_s:.3f}s  {args.lines / base_s / 1e6:.2f} M lines/s  {mb / base_s:.0f} MB/s"
    )
    print(
        f"LineReader               : {ours_s:.3f}s  {args.lines / ours_s / 1e6:.2f} M lines/s  {mb / ours_s:.0f} MB/s"
    )
    print(f"ratio LineReader/baseline time: {ours_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
