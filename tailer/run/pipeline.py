"""The one pipeline behind ``tailer run`` and ``tailer replay``:

    lines of a Lane -> rules -> (replay's time window) -> watermark.track -> Shipper.submit(record, ticket=lane)
        -> Outcome.ticket -> watermark.settle -> the caller's checkpoint

Live and replay differ only in where lines come from (the Follower's batches, or a fixed list of files)
and which state they keep (``checkpoint.json`` or ``replay-<tag>.json``). Everything else is here once:
naming a record (``Lane.record_key``, the nonce contract between live and replay), the counters, the
endpoint/dead-letter/shipper wiring, the stop signals and the drain.

Backpressure is the ``await shipper.submit(...)``: while the in-flight window is full or the endpoint is
down, feeding waits, so the reader stops reading and the log file is the buffer. A line that gives no
record settles at once (``Watermark.skip``); a record's line is tracked *before* it is submitted, so a
submit cancelled by a stop still holds the checkpoint back and the record is read again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import operator
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tailer.record import Origin, Record, build_payload
from tailer.rules.engine import RuleSet
from tailer.rules.prefilter import required_literals
from tailer.ship.settings import EndpointSettings
from tailer.source.identity import record_file_id
from tailer.source.reader import Line, LineReader
from tailer.source.select import LineSelector
from tailer.state.statedir import StateDir
from tailer.state.watermark import Watermark

if TYPE_CHECKING:  # the sending side is imported only when sending: a dry run starts without aiohttp/httpx
    import httpx

    from tailer.ship.shipper import Outcome, Shipper

log = logging.getLogger("tailer.pipeline")

_CUT = operator.itemgetter(3)  # Line.cut


class Lane(Protocol):
    """One logical file as the pipeline sees it (a followed TailedFile, or a replayed file)."""

    path: str
    watermark: Watermark
    last_ack_at: float | None

    def record_key(self, end: int) -> str:
        """``Origin.file_id`` of the record whose line ends at ``end`` (``identity.record_file_id``)."""
        ...


class FileLane:
    """A file read from a start to its end (replay, a compressed rotation found at start-up). Records are named as the live follower names them
    (``record_file_id``: a hash of the bytes before them in the first KiB, else the file's key), so a
    line replayed and later followed carries the same deterministic nonce."""

    __slots__ = ("path", "watermark", "last_ack_at", "key", "head")

    def __init__(self, path: str, key: str, head: bytes, start: int, last_ack_at: float | None) -> None:
        self.path, self.key, self.head = path, key, head
        self.watermark = Watermark(start)
        self.last_ack_at = last_ack_at

    def record_key(self, end: int) -> str:
        return record_file_id(self.key, self.head, end)


@dataclass(slots=True)
class Counters:
    """What the pipeline saw, for live and replay alike (the follower and shipper keep their own)."""

    lines: int = 0
    cut_lines: int = 0  # longer than max_line_bytes, matched on their first max_line_bytes
    matched: int = 0  # a rule matched
    records: int = 0  # records submitted (or printed by --dry-run)
    skipped: int = 0  # matched no rule
    no_record: int = 0  # matched a rule but gave no record: unmapped + invalid
    unmapped: int = 0  # the captured word is missing from the oper_id map
    invalid: int = 0  # a value did not convert (gid not an integer, a bad time)
    untimed: int = 0  # outside a --since/--until window because the line has no time
    outside_window: int = 0
    acked: int = 0
    dead_lettered: int = 0
    state_writes: int = 0
    state_write_failures: int = 0
    matched_by_rule: dict[str, int] = dataclasses.field(default_factory=dict)  # counted on matched lines only


@dataclass(slots=True, frozen=True)
class Window:
    """Replay's ``--since`` (inclusive) / ``--until`` (exclusive), epoch seconds."""

    since: float | None = None
    until: float | None = None

    @property
    def open(self) -> bool:
        return self.since is None and self.until is None

    def refuses(self, event_ts: float | None) -> str | None:
        """None when the record is inside; else "untimed" or "outside"."""
        if self.open:
            return None
        if event_ts is None:
            return "untimed"
        if (self.since is not None and event_ts < self.since) or (
            self.until is not None and event_ts >= self.until
        ):
            return "outside"
        return None


class Pipeline:
    """Feeds lines through the rules to a shipper (or, for --dry-run, to ``emit``) and settles them."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        window: Window = Window(),
        emit: Callable[[Record], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.window = window
        self.counters = Counters()
        self.shipper: Shipper | None = None
        self._emit = emit
        self._clock = clock

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        """Swapped by a reload (SIGHUP); a batch in progress keeps the old ones."""
        self._rules = rules
        self._selectors: dict[str, LineSelector] = {}

    def selector(self, encoding: str) -> LineSelector:
        """Which lines of a file in ``encoding`` can match the current rules (source/select.py)."""
        sel = self._selectors.get(encoding)
        if sel is None:
            literal_sets = [
                required_literals(r.pattern) if self._rules.prefilter else () for r in self._rules.rules
            ]
            sel = self._selectors[encoding] = LineSelector(literal_sets, encoding)
        return sel

    async def feed(
        self, lane: Lane, lines: Sequence[Line], *, end: int | None = None, count: int | None = None,
        cut: int | None = None,
    ) -> None:  # fmt: skip
        """The complete lines of ``lane`` one read gave (in offset order): matched, filtered, shipped.

        With a selecting read, ``lines`` are only those that can match, and ``end`` (just past the read's
        last complete line), ``count`` and ``cut`` cover the lines between them, which settle at once."""
        c, rules, window, shipper = self.counters, self._rules, self.window, self.shipper
        watermark, path, key_of = lane.watermark, lane.path, lane.record_key
        if count is None:
            c.lines += len(lines)
        else:
            c.lines += count
            c.skipped += count - len(lines)  # not selected: they cannot match any rule
        c.cut_lines += sum(map(_CUT, lines)) if cut is None else cut
        for line in lines:
            match = rules.match(line.text, Origin(key_of(line.end), path, line.end))
            if match is None:
                c.skipped += 1
                continue
            c.matched += 1
            by_rule = c.matched_by_rule
            by_rule[match.rule] = by_rule.get(match.rule, 0) + 1
            record = match.record
            if record is None:
                c.no_record += 1
                if match.unmapped:
                    c.unmapped += 1
                else:
                    c.invalid += 1
                continue
            refused = window.refuses(record.event_ts)
            if refused is not None:
                if refused == "untimed":
                    c.untimed += 1
                else:
                    c.outside_window += 1
                continue
            c.records += 1
            if shipper is None:
                if self._emit is not None:
                    self._emit(record)
                continue
            # The lines before this one settled already (they gave no record); this one is tracked
            # before submit, so a submit cancelled by a stop still holds the checkpoint back.
            if line.start > watermark.read_offset:
                watermark.skip(line.start)
            watermark.track(line.end)
            await shipper.submit(record, lane)
        last = lines[-1].end if lines else 0
        if end is not None and end > last:
            last = end
        if last > watermark.read_offset:
            watermark.skip(last)

    async def pump(
        self,
        lane: Lane,
        reader: LineReader,
        *,
        stopping: Callable[[], bool],
        after_read: Callable[[], None] | None = None,
    ) -> bool:
        """Feed a finished file (a replayed one, an archive) to its end; True once there, False when
        ``stopping()`` said to stop first. Its last line may lack a newline: flushed at the end."""
        select = self.selector(reader.encoding)
        while not stopping():
            lines = reader.read(select=select)
            if reader.last_count:
                await self.feed(lane, lines, end=reader.offset, count=reader.last_count, cut=reader.last_cut)
            if reader.at_eof:
                last = reader.flush()
                if last is not None:
                    await self.feed(lane, [last])
                return True
            if after_read is not None:
                after_read()
            await asyncio.sleep(0)  # a dry run never waits on the shipper: let a signal in
        return False

    def on_settled(self, record: Record, outcome: Outcome) -> None:
        lane: Lane | None = outcome.ticket
        if outcome.kind == "acked":
            self.counters.acked += 1
        else:
            self.counters.dead_lettered += 1
        if lane is None or record.origin is None:
            return
        lane.watermark.settle(record.origin.offset)
        if outcome.kind == "acked":
            lane.last_ack_at = self._clock()

    @contextlib.asynccontextmanager
    async def shipping(
        self,
        endpoint: EndpointSettings,
        state: StateDir,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncIterator[Shipper]:
        """The endpoint resolved (``embedded`` started), the dead-letter file, the shipper settling into
        this pipeline; closed (in-flight records cancelled, left unsettled) on the way out."""
        from tailer.run.endpoint import resolve_endpoint
        from tailer.ship.deadletter import DeadLetterWriter
        from tailer.ship.shipper import Shipper

        with resolve_endpoint(endpoint, state.receiver_db) as resolved:
            dead = DeadLetterWriter(state.dead_letter)
            async with Shipper(
                resolved, dead_letter=dead, on_settled=self.on_settled, transport=transport
            ) as shipper:
                self.shipper = shipper
                try:
                    yield shipper
                finally:
                    self.shipper = None


def payload_printer(
    endpoint: EndpointSettings, out: TextIO, clock: Callable[[], float] = time.time
) -> Callable[[Record], None]:
    """--dry-run's ``emit``: each record's payload as one JSON line, built as the shipper would build it."""

    def emit(record: Record) -> None:
        payload = build_payload(
            record, ts_unit=endpoint.ts_unit, ts_source=endpoint.ts_source, nonce=endpoint.nonce, now=clock()
        )
        out.write(json.dumps(payload, ensure_ascii=False) + "\n")

    return emit


def with_rate(endpoint: EndpointSettings, rate: float | None) -> EndpointSettings:
    """``--rate`` overrides ``endpoint.rate_limit``."""
    return endpoint if rate is None else dataclasses.replace(endpoint, rate_limit=rate)


def flat_stats(**parts: Any) -> dict[str, Any]:
    """``{prefix_field: value}`` of dataclass counters, for status lines and, later, metrics."""
    out: dict[str, Any] = {}
    for prefix, obj in parts.items():
        if obj is not None:
            out.update({f"{prefix}_{k}": v for k, v in dataclasses.asdict(obj).items()})
    return out
