"""Extraction: ``tailer replay --dry-run`` (read + match + build + print every payload) on a generated log,
whole process, against what a user could run instead on the same file in the same run:

* the bare binary read loop ``for line in open(f, 'rb')`` (the limit: no decoding, no matching);
* the naive way: decode each line, every rule's ``re.search`` until one matches;
* ``mtail --one_shot`` with an equivalent program (the same four regexes, a counter per rule and action);
* pygtail's iteration (lines and an offset file, no matching);
* gzip: ``tailer replay --dry-run`` of the gzipped log against ``zcat | read loop``.

Every command is a child process timed from spawn to exit; commands alternate and the best of
``repeat`` passes is kept, so a noisy moment on the shared cores does not hurt one side only.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import Context, Row, child_env, ensure_mtail, ensure_pip, tailer_cmd
from benchmarks.logs import rule_patterns, write_config, write_log

READ_LOOP = "import sys\nfor line in open(sys.argv[1], 'rb'):\n    pass\n"
STDIN_LOOP = "import sys\nfor line in sys.stdin.buffer:\n    pass\n"
NAIVE = """\
import re, sys
rules = [re.compile(p) for p in sys.argv[2:]]
hits = 0
for raw in open(sys.argv[1], 'rb'):
    line = raw.decode('utf-8', 'replace')
    for rule in rules:
        if rule.search(line):
            hits += 1
            break
print(hits)
"""
# In-process: the library call behind the CLI, timed inside the child (no interpreter start, no imports).
EXTRACT = """\
import asyncio, os, sys, time
from pathlib import Path
from tailer.config.settings import load_settings
from tailer.run.replay import ReplayOptions, replay
settings = load_settings(Path(sys.argv[1]))
began = time.perf_counter()
with open(os.devnull, "w") as out:
    asyncio.run(replay(settings, [Path(sys.argv[2])], ReplayOptions(dry_run=True), out=out))
print(time.perf_counter() - began)
"""
READ_TIMED = """\
import sys, time
began = time.perf_counter()
for line in open(sys.argv[1], 'rb'):
    pass
print(time.perf_counter() - began)
"""
PYGTAIL = """\
import sys
from pygtail import Pygtail
n = 0
for line in Pygtail(sys.argv[1], offset_file=sys.argv[2], copytruncate=False):
    n += 1
print(n)
"""


def mtail_program(path: Path) -> Path:
    """The shipped rules as an mtail program: the same regexes (RE2 accepts them), counted by rule and
    action. mtail then does less than the dry run: no time parsing, no payload, no JSON."""
    import yaml

    from benchmarks import ROOT

    cfg = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    lines = ["counter oper_total by rule, act", ""]
    for rule in cfg["rules"]:
        pattern = rule["pattern"].replace("/", "\\/")
        lines += [f"/{pattern}/ {{", f'  oper_total["{rule["name"]}"][$act]++', "}", ""]
    path.mkdir(parents=True, exist_ok=True)
    (path / "ops.mtail").write_text("\n".join(lines), encoding="utf-8")
    return path


def timed(cmd: list[str] | str, *, shell: bool = False, cap: float = 600.0, cwd: Path | None = None) -> float:
    began = time.perf_counter()
    proc = subprocess.run(
        cmd,
        shell=shell,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=cap,
        env=child_env(),
        cwd=cwd,
    )
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(
            f"{cmd!r} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}"
        )
    return elapsed


def inner(cmd: list[str], cap: float = 600.0) -> float:
    """The seconds a child measured itself (its last stdout line)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, env=child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]!r} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return float(proc.stdout.split()[-1])


def best_of(repeat: int, commands: dict[str, callable]) -> dict[str, float]:
    best = {name: float("inf") for name in commands}
    names = list(commands)
    for k in range(repeat):
        for name in names if k % 2 == 0 else names[::-1]:
            seconds = commands[name]()
            best[name] = min(best[name], seconds)
            print(f"    extract {name:10s} {seconds:7.2f}s", file=sys.stderr, flush=True)
    return best


def rows(ctx: Context) -> list[Row]:
    lines = 200_000 if ctx.quick else 1_000_000
    repeat = 1 if ctx.quick else 2
    log = ctx.work / "extract" / "app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    hits = write_log(log, lines)
    with open(log, "rb") as stream:
        n = sum(1 for _ in stream)
    mb = log.stat().st_size / 1e6
    ctx.note(f"extract: generated {n:,} lines, {mb:.0f} MB, {hits:,} operations ({hits / n:.1%})")
    cfg = write_config(log.parent / "rules.yaml", [str(log), str(log) + ".gz"])
    py = sys.executable

    commands = {
        "extract": lambda: inner([py, "-c", EXTRACT, str(cfg), str(log)]),
        "read-inner": lambda: inner([py, "-c", READ_TIMED, str(log)]),
        "dry-run": lambda: timed(tailer_cmd("replay", "--dry-run", "-c", str(cfg), str(log))),
        "read-loop": lambda: timed([py, "-c", READ_LOOP, str(log)]),
        "naive": lambda: timed([py, "-c", NAIVE, str(log), *rule_patterns()]),
    }
    mtail = ensure_mtail(ctx)
    if mtail:
        progs = mtail_program(log.parent / "mtail")
        commands["mtail"] = lambda: timed([mtail, "--one_shot", "--progs", str(progs), "--logs", str(log)])
    if ensure_pip(ctx, "pygtail", "pygtail"):
        offset = log.parent / "pygtail.offset"

        def run_pygtail() -> float:
            offset.unlink(missing_ok=True)
            return timed([py, "-c", PYGTAIL, str(log), str(offset)])

        commands["pygtail"] = run_pygtail
    best = best_of(repeat, commands)
    rate = lambda name: n / best[name]  # noqa: E731
    ours = f"{rate('dry-run') / 1e6:.2f} M lines/s"
    out = [
        Row(
            "extraction in-process (replay dry-run call) vs read loop",
            f"{rate('extract') / 1e6:.2f} M lines/s",
            f"{rate('read-inner') / 1e6:.2f} M lines/s",
            rate("extract") / rate("read-inner"),
        ),
        Row(
            "dry run, whole process: lines/s",
            ours,
            "-",
            None,
            target=1.0,
            measured=rate("dry-run") / 1e6,
            unit=" M lines/s",
        ),
        Row(
            "dry run vs bare read loop (the limit)",
            ours,
            f"{rate('read-loop') / 1e6:.2f} M lines/s",
            rate("dry-run") / rate("read-loop"),
            target=0.3,
        ),
        Row(
            "dry run vs naive (every re.search)",
            ours,
            f"{rate('naive') / 1e6:.2f} M lines/s",
            rate("dry-run") / rate("naive"),
        ),
    ]
    if "mtail" in best:
        out.append(
            Row(
                "dry run vs mtail --one_shot",
                ours,
                f"{rate('mtail') / 1e6:.2f} M lines/s",
                rate("dry-run") / rate("mtail"),
                target=8.0,
            )
        )
    else:
        out.append(Row("dry run vs mtail --one_shot", ours, "skipped: mtail not available", None, target=8.0))
    if "pygtail" in best:
        out.append(
            Row(
                "dry run vs pygtail iteration",
                ours,
                f"{rate('pygtail') / 1e6:.2f} M lines/s",
                rate("dry-run") / rate("pygtail"),
            )
        )
    else:
        out.append(Row("dry run vs pygtail iteration", ours, "skipped: pygtail not installable", None))

    gz = Path(str(log) + ".gz")
    with open(log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    gz_best = best_of(
        repeat,
        {
            "gz dry-run": lambda: timed(tailer_cmd("replay", "--dry-run", "-c", str(cfg), str(gz))),
            "zcat|loop": lambda: timed(f"zcat '{gz}' | '{py}' -c \"{STDIN_LOOP}\"", shell=True),
        },
    )
    gz_rate = n / gz_best["gz dry-run"]
    out.append(
        Row(
            "gzip dry run vs zcat | read loop",
            f"{gz_rate / 1e6:.2f} M lines/s",
            f"{n / gz_best['zcat|loop'] / 1e6:.2f} M lines/s",
            gz_best["zcat|loop"] / gz_best["gz dry-run"],
            target=0.5,
        )
    )
    return out
