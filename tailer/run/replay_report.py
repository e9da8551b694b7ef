"""What a replay shows its user: the counts it keeps, the summary at the end, a progress line on a terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tailer.run.pipeline import Counters


@dataclass(slots=True)
class ReplaySummary:
    """The pipeline's counters plus what replay adds: files, and how the run ended."""

    counters: Counters = field(default_factory=Counters)
    files: int = 0
    files_done_before: int = 0  # finished by an earlier run: skipped
    files_failed: int = 0
    interrupted: bool = False  # stopped by a signal: a rerun continues
    aborted: bool = False  # a second signal: stopped without waiting for in-flight records
    elapsed: float = 0.0

    # The names the summary has always shown, over the pipeline's counters.
    lines = property(lambda self: self.counters.lines)
    matched = property(lambda self: self.counters.matched)
    records = property(lambda self: self.counters.records)  # sent (or printed): mapped, inside the window
    sent = property(lambda self: self.counters.acked)
    dead_lettered = property(lambda self: self.counters.dead_lettered)
    unmapped = property(lambda self: self.counters.unmapped)
    invalid = property(lambda self: self.counters.invalid)
    outside_window = property(lambda self: self.counters.outside_window)
    untimed = property(lambda self: self.counters.untimed)
    cut_lines = property(lambda self: self.counters.cut_lines)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def lines_text(self) -> list[str]:
        return [
            f"files       {self.files} ({self.files_done_before} already done, {self.files_failed} failed)",
            f"lines       {self.lines:,}",
            f"matched     {self.matched:,}",
            f"records     {self.records:,}",
            f"sent        {self.sent:,}",
            f"dead-letter {self.dead_lettered:,}",
            f"unmapped    {self.unmapped:,}",
            f"invalid     {self.invalid:,}",
            f"outside     {self.outside_window:,} outside the window, {self.untimed:,} without a time",
            f"cut lines   {self.cut_lines:,}",
            f"rate        {self.rate:,.0f} records/s over {self.elapsed:.1f} s",
        ]


class Progress:
    """A one-line progress bar on a terminal, by bytes on disk (compressed bytes for a .gz), redrawn at most
    5 times a second."""

    WIDTH = 24

    def __init__(self, out: TextIO | None, files: list[Path]):
        self.out, self.last = out, 0.0
        self.total_files = len(files)
        sizes = []
        for path in files:
            try:
                sizes.append(path.stat().st_size)
            except OSError:
                sizes.append(0)
        self.before = [sum(sizes[:i]) for i in range(len(sizes) + 1)]  # bytes of the files before file i
        self.total = self.before[-1]

    def show(self, s: ReplaySummary, index: int, name: str, disk_pos: int = 0, force: bool = False) -> None:
        """``index`` is 1-based; ``disk_pos`` how far into that file's bytes on disk reading is."""
        now = time.monotonic()
        if self.out is None or (not force and now - self.last < 0.2):
            return
        self.last = now
        done = self.before[min(max(index - 1, 0), self.total_files)] + disk_pos
        share = min(done / self.total, 1.0) if self.total else 1.0
        filled = round(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.out.write(
            f"\r[{bar}] {share:4.0%}  file {min(index, self.total_files)}/{self.total_files} {name[:30]:<30} lines {s.lines:,}  "
            f"sent {s.sent:,}  dead-letter {s.dead_lettered:,}  in flight {s.records - s.sent - s.dead_lettered:,} "
        )
        self.out.flush()

    def close(self) -> None:
        if self.out is not None:
            self.out.write("\n")
            self.out.flush()
