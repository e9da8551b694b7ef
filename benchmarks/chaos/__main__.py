"""``python3 -m benchmarks.chaos``: run the scenarios, print the table (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import benchmarks.chaos
from benchmarks.chaos.report import table
from benchmarks.chaos.scenarios import SCENARIOS, Ctx


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.chaos", description=benchmarks.chaos.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--kills", type=int, default=None, help="SIGKILLs of tailer run per nonce mode "
                    "(default 50; 5 with --quick); replay is killed max(2, N // 5) times")  # fmt: skip
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), metavar="NAME",
                    help="run only this one (repeatable; default all): " + ", ".join(SCENARIOS))  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="the CI-sized version (seconds, not minutes)")
    ap.add_argument("--seed", type=int, default=20261203, help="seeds the kill moments and fault mixes")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    kills = args.kills if args.kills is not None else (5 if args.quick else 50)
    names = args.scenario or list(SCENARIOS)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        base = args.dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        ctx = Ctx(base, kills=kills, quick=args.quick, seed=args.seed, say=say)
        results = []
        t0 = time.monotonic()
        for name in names:
            say(f"{name} ...")
            res = SCENARIOS[name](ctx)
            results.append(res)
            say(f"{name}: {'ok' if res.ok else 'FAILED'} in {res.seconds:.0f} s")
        size = "--quick" if args.quick else "full"
        print(f"\nchaos harness ({size}, --kills {kills}, --seed {args.seed}; "
              f"{time.monotonic() - t0:.0f} s)\n")  # fmt: skip
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=sorted))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
