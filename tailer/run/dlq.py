"""``tailer dlq``: list the dead-letter file, resend it through the Shipper, purge old lines.

Resend sends each payload as it was dead-lettered (same nonce, same ts) through the same Shipper and
policy as ``run`` (concurrency, rate limit, retries forever on 5xx and connection errors, pauses on
401/403). An acknowledged record leaves the file; one rejected again stays, with the new answer, its time
and the attempts summed. Every settlement is one fsynced journal line (tailer/ship/dlq.py), so a SIGKILL
loses nothing and the next resend sends again only what was in flight. Lines appended meanwhile (a running
``tailer run``) are kept and not sent by this pass. SIGTERM/SIGINT stop sending and give in-flight
records ``grace`` seconds; a second signal exits at once (130).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tailer.config.settings import Settings
from tailer.record import Record
from tailer.run.endpoint import resolve_endpoint
from tailer.run.stopper import Stopper
from tailer.ship.deadletter import make_entry
from tailer.ship.dlq import DeadLetterFile, Journal, Letter, group_by_nonce
from tailer.ship.shipper import Outcome, Shipper
from tailer.state.statedir import StateDir

log = logging.getLogger("tailer.dlq")

ANSWER_WIDTH = 48
JSON_FIELDS = ("time", "rule", "status", "reason", "answer", "attempts", "origin", "payload")


def dead_letter_file(settings: Settings) -> DeadLetterFile:
    return DeadLetterFile(StateDir(settings.state_dir).dead_letter)


# --- list ------------------------------------------------------------------------------------------------


def _answer_text(entry: dict[str, Any]) -> str:
    status, answer = entry.get("status"), entry.get("answer")
    parts = [f"HTTP {status}" if status is not None else str(entry.get("reason") or "-")]
    if isinstance(answer, dict):
        ret, msg = answer.get("ret"), answer.get("msg")
        if ret is not None and ret != status:
            parts.append(f"ret={ret}")
        if msg:
            parts.append(str(msg))
    elif answer:
        parts.append(str(answer))
    text = " ".join(parts).replace("\n", " ")
    return text if len(text) <= ANSWER_WIDTH else text[: ANSWER_WIDTH - 3] + "..."


def _origin_text(origin: Any) -> str:
    if isinstance(origin, dict) and "path" in origin:
        return f"{origin['path']}:{origin.get('offset', '?')}"
    return "-"


def _oper_id(letter: Letter) -> str:
    payload = letter.payload
    return payload["data"]["oper_id"] if payload else "-"


def render_list(dlq: DeadLetterFile, *, as_json: bool = False) -> str:
    letters = dlq.letters()
    readable = [x for x in letters if x.entry is not None]
    unreadable = len(letters) - len(readable)
    if as_json:
        records = [
            {"key": x.key, "oper_id": _oper_id(x)} | {k: (x.entry or {}).get(k) for k in JSON_FIELDS}
            for x in readable
        ]
        doc = {"file": str(dlq.path), "count": len(records), "unreadable": unreadable, "records": records}
        return json.dumps(doc, ensure_ascii=False, indent=2)
    rows = [("TIME", "RULE", "OPER_ID", "ANSWER", "ORIGIN")]
    for x in readable:
        entry = x.entry or {}
        time, rule, origin = str(entry.get("time", "-")), str(entry.get("rule", "-")), entry.get("origin")
        rows.append((time, rule, _oper_id(x), _answer_text(entry), _origin_text(origin)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    if not readable:
        lines = []
    footer = f"{len(readable)} record(s) in {dlq.path}"
    if unreadable:
        footer += f"; {unreadable} unreadable line(s), kept as they are"
    return "\n".join([*lines, footer])


# --- resend ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ResendSummary:
    path: Path
    letters: int = 0  # lines in the file when the resend began
    records: int = 0  # distinct records among them (lines sharing a nonce are one record)
    unusable: int = 0  # lines with no payload to send: kept as they are
    sent: int = 0  # acknowledged: their lines left the file
    dead_lettered: int = 0  # rejected again: kept, with the new answer
    interrupted: bool = False
    aborted: bool = False  # a second signal: stopped without waiting for in-flight records
    errors: list[str] = field(default_factory=list)

    @property
    def left(self) -> int:
        """Records not settled (interrupted): kept unchanged, sent again by the next resend."""
        return self.records - self.sent - self.dead_lettered

    def lines_text(self) -> list[str]:
        if not self.letters:
            return [f"nothing to resend: {self.path} holds no dead letters"]
        out = [
            f"dead letters    {self.records:,} record(s) in {self.path}",
            f"sent            {self.sent:,} (removed from the file)",
            f"rejected again  {self.dead_lettered:,} (kept, with the new answer)",
        ]
        if self.left:
            out.append(f"not sent        {self.left:,} (kept; run the same command again)")
        if self.unusable:
            out.append(f"unusable        {self.unusable:,} line(s) with no payload to send (kept)")
        return out


class _Resender:
    """Feeds the Shipper one payload per record and journals each settlement. It is also the Shipper's
    dead-letter writer: a record rejected again becomes its new line in the journal, not an append."""

    def __init__(self, journal: Journal, groups: dict[str, list[Letter]], summary: ResendSummary):
        self.journal, self.groups, self.summary = journal, groups, summary
        self.path = journal.path  # named in the Shipper's warning when a write fails

    async def feed(self, shipper: Shipper) -> None:
        for nonce, group in self.groups.items():
            first = group[0]
            payload = first.payload
            assert payload is not None and first.entry is not None
            record = Record(rule=str(first.entry.get("rule") or "-"), oper_id=payload["data"]["oper_id"])
            await shipper.submit(record, nonce, payload=payload)

    def write(
        self,
        *,
        payload: dict[str, Any],
        answer: Any,
        status: int | None,
        attempts: int,
        origin: Any,
        rule: str,
        reason: str,
    ) -> None:
        """DeadLetterWriter.write's contract: durable on return, OSError otherwise (the Shipper retries)."""
        group = self.groups[payload["nonce"]]
        old = group[0].entry or {}
        before = old.get("attempts")
        entry = make_entry(
            payload=payload,
            answer=answer,
            status=status,
            attempts=attempts + (before if isinstance(before, int) else 0),
            origin=old.get("origin"),  # where the line was read, not this resend
            rule=str(old.get("rule") or rule),
            reason=reason,
        )
        self.journal.settle([x.key for x in group], entry)

    def on_settled(self, record: Record, outcome: Outcome) -> None:
        if outcome.kind == "dead_lettered":  # already journaled by write()
            self.summary.dead_lettered += 1
            return
        try:
            self.journal.settle([x.key for x in self.groups[outcome.ticket]], None)
        except OSError as exc:  # not lost: the line stays and the next resend sends it again
            self.summary.errors.append(str(exc))
            log.warning("cannot write %s (%s): an acknowledged record stays in the file", self.path, exc)
            return
        self.summary.sent += 1


async def resend(
    settings: Settings, *, grace: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
) -> ResendSummary:
    """Resend every record of the dead-letter file (DeadLetterBusy if another resend or purge runs)."""
    dlq = dead_letter_file(settings)
    summary = ResendSummary(dlq.path)
    with dlq.operator() as journal:
        letters = dlq.letters()
        groups, unusable = group_by_nonce(letters)
        summary.letters, summary.records, summary.unusable = len(letters), len(groups), len(unusable)
        if not groups:
            return summary
        resender = _Resender(journal, groups, summary)
        try:
            with resolve_endpoint(settings.endpoint, StateDir(settings.state_dir).receiver_db) as endpoint:
                async with Shipper(
                    endpoint, dead_letter=resender, on_settled=resender.on_settled, transport=transport
                ) as shipper:
                    stopped = await _send(resender, shipper, grace)
        finally:
            journal.compact()  # one rewrite for the whole resend; a crash leaves it to the next one
    summary.interrupted = stopped.stopping and summary.left > 0
    summary.aborted = stopped.aborted
    return summary


async def _send(resender: _Resender, shipper: Shipper, grace: float) -> Stopper:
    """Feed the shipper and wait for every record to settle; the stopper says whether a signal came. The stop
    semantics of run and replay (run/stopper.py): the first signal stops feeding and gives in-flight
    records ``grace`` seconds, a second stops waiting; the journal holds every settled record."""
    feed = asyncio.create_task(resender.feed(shipper))
    stopper = Stopper(on_stop=feed.cancel).install()
    try:
        try:
            await feed
        except asyncio.CancelledError:
            if not stopper.stopping:  # we are being cancelled ourselves, not stopped by a signal
                raise
        await stopper.drain(shipper, grace)
        return stopper
    finally:
        stopper.remove()
