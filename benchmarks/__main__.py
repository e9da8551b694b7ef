"""``python3 -m benchmarks [--quick] [--only GROUP...] [--keep DIR]``: every row of issue 9's table.

Groups, in order: extract (dry run and gzip against the read loop, the naive way, mtail, pygtail), ship
(against bare aiohttp, plain httpx, concurrency/latency at 1 ms and 30 ms), live (append to arrival under
a noisy writer), memory (peak RSS over a 1 GB backlog, endpoint down then up), idle (1,000 followed
files). ``--quick`` uses smaller sizes and shorter windows for a smoke run (a couple of minutes); the full
run takes about 6 minutes. Optional peers (mtail, pygtail) are installed when missing and possible, or
their rows say skipped. ``chaos`` is a separate command: ``python3 -m benchmarks.chaos``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import Context, Row, table

GROUPS = ("extract", "ship", "live", "memory", "idle")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter windows: a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        default=list(GROUPS),
        metavar="GROUP",
        help=f"run only these groups: {', '.join(GROUPS)}",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not apt-get/pip install missing optional peers: skip their rows",
    )
    parser.add_argument("--keep", type=Path, help="generate files here and keep them (default: a temp dir)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tailer-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ctx = Context(quick=args.quick, work=work, install=not args.no_install)
        rows: list[Row] = []
        for group in [g for g in GROUPS if g in args.only]:
            print(f"[{group}]", file=sys.stderr, flush=True)
            try:
                rows += importlib.import_module(f"benchmarks.{group}").rows(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken group must not hide the others' rows
                traceback.print_exc()
                last = (str(exc).strip().splitlines() or [""])[-1]
                rows.append(Row(f"{group}: failed", f"{type(exc).__name__}: {last}"[:100], "-", None))
    print(f"machine: {machine()}")
    print(
        f"command: python3 -m benchmarks{' --quick' if args.quick else ''}"
        f"{' --only ' + ' '.join(args.only) if args.only != list(GROUPS) else ''}"
        f"  ({time.monotonic() - began:.0f} s; every ratio: ours / baseline, both measured in this run)"
    )
    print(table(rows))
    for note in ctx.notes:
        print(f"note: {note}")
    return 1 if any(r.name.endswith(": failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
