"""The printed table: one row per scenario, then each row's notes and problems."""

from __future__ import annotations

import statistics

from benchmarks.chaos.harness import Result

COLUMNS = ("scenario", "expected", "received", "lost", "resent", "crashes", "resent/crash med/max",
           "bound/crash med/max", "within bound", "stored dup", "unrecoverable", "result")  # fmt: skip


def _med_max(values: list[int]) -> str:
    return f"{int(statistics.median(values))}/{max(values)}" if values else "-"


def _row(r: Result) -> list[str]:
    crashed = r.crashes > 0
    return [
        r.name,
        f"{r.expected:,}",
        f"{r.received:,}",
        f"{r.lost:,}",
        f"{r.resent:,}",
        str(r.crashes) if crashed else "-",
        _med_max(r.resent_per_crash) if crashed else "-",
        _med_max(r.bound_per_crash) if crashed else "-",
        ("yes" if r.within_bound else "NO") if crashed else "-",
        f"{r.stored_dup:,}",
        "-" if r.unrecoverable is None else f"{r.unrecoverable:,}",
        "ok" if r.ok else "FAILED",
    ]


def table(results: list[Result]) -> str:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    out = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("| " + " | ".join(cells) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    out.append("")
    for r in results:
        extra = []
        if r.crashes:
            extra.append(f"resent per crash {sum(r.resent_per_crash)} in total vs bound {sum(r.bound_per_crash)}")
        if r.unrecoverable_detail:
            extra.append("unrecoverable: " + r.unrecoverable_detail)
        extra += r.notes + [f"PROBLEM: {p}" for p in r.problems]
        out.append(f"* {r.name} ({r.seconds:.0f} s): " + "; ".join(extra))
    return "\n".join(out)
