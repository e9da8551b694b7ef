"""What a replay shows its user: the counts it keeps, the summary at the end, a progress line on a terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(slots=True)
class ReplaySummary:
    files: int = 0
    files_done_before: int = 0  # finished by an earlier run: skipped
    files_failed: int = 0
    lines: int = 0
    matched: int = 0  # lines some rule matched
    records: int = 0  # records sent (or printed by --dry-run): matched, mapped, inside the window
    sent: int = 0  # acknowledged by the endpoint
    dead_lettered: int = 0
    unmapped: int = 0  # a rule matched but its captured word is missing from the oper_id map
    invalid: int = 0  # a rule matched but a value did not convert (gid not an integer, bad time)
    outside_window: int = 0
    untimed: int = 0
    cut_lines: int = 0
    interrupted: bool = False
    elapsed: float = 0.0

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
    """A one-line progress display on a terminal, redrawn at most 5 times a second."""

    def __init__(self, out: TextIO | None, total_files: int):
        self.out, self.total, self.last = out, total_files, 0.0

    def show(self, s: ReplaySummary, index: int, name: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not force and now - self.last < 0.2):
            return
        self.last = now
        self.out.write(
            f"\r[{index}/{self.total}] {name[:40]:<40} lines {s.lines:,}  sent {s.sent:,}  "
            f"dead-letter {s.dead_lettered:,}  in flight {s.records - s.sent - s.dead_lettered:,} "
        )
        self.out.flush()

    def close(self) -> None:
        if self.out is not None:
            self.out.write("\n")
            self.out.flush()
