"""Per-file acknowledgement watermark: the end of the unbroken run of settled lines.

Records of one file are tracked in offset order; they settle (acknowledged or dead-lettered) in any
order. The checkpointable offset never passes an unsettled record, so a crash at any instant loses
nothing: everything after the watermark is read again. Pure logic, no I/O, no clock.
"""

from __future__ import annotations

from collections import deque


class Watermark:
    """Tracks one file. ``track(end)`` a record whose line ends at ``end``; ``skip(end)`` a line that
    settles at once (matched nothing, filtered out); ``settle(end)`` when the record's fate is durable."""

    __slots__ = ("_high", "_pending", "_settled")

    def __init__(self, offset: int = 0) -> None:
        self._high = offset  # end of the last line seen (tracked or skipped)
        # (end, end of the line before it) of records not yet known to be settled, in offset order
        self._pending: deque[tuple[int, int]] = deque()
        self._settled: set[int] = set()

    def track(self, end: int) -> None:
        if end <= self._high:
            raise ValueError(f"offsets must increase: {end} after {self._high}")
        self._pending.append((end, self._high))
        self._high = end

    def skip(self, end: int) -> None:
        if end < self._high:
            raise ValueError(f"offsets must not go back: {end} after {self._high}")
        self._high = end

    def settle(self, end: int) -> None:
        self._settled.add(end)
        pending, settled = self._pending, self._settled
        while pending and pending[0][0] in settled:
            settled.discard(pending.popleft()[0])

    @property
    def offset(self) -> int:
        """The offset a checkpoint may hold: every line before it is settled."""
        return self._pending[0][1] if self._pending else self._high

    @property
    def read_offset(self) -> int:
        """The end of the last line handed to us (what has been read, settled or not)."""
        return self._high

    @property
    def in_flight(self) -> int:
        """Records tracked and not yet settled."""
        return len(self._pending) - len(self._settled)
