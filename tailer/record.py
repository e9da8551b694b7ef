"""The Record type and the OperReport payload built from it (spec: shared/spec/OperReport.md).

A Record is what a rule extracts from one log line. The payload ``{ts, nonce, data}`` is built once,
before the first attempt, and reused for every retry: the nonce and ts of one record never change.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

EXT_FIELDS: tuple[str, ...] = tuple(f"ext{i}" for i in range(1, 11))
#: Every field of ``data`` besides ``oper_id``, in the spec's order.
PAYLOAD_FIELDS: tuple[str, ...] = ("gid", "target_id", "uid", *EXT_FIELDS)
#: Fields the spec types as integer; all others are strings.
INT_FIELDS: frozenset[str] = frozenset({"gid", "uid"})

TsUnit = Literal["s", "ms"]
TsSource = Literal["event", "now"]
NonceMode = Literal["random", "deterministic"]


@dataclass(slots=True, frozen=True)
class Origin:
    """Where a record came from: the file's identity key, its path when read, and the byte offset just
    past the line's newline (the position a checkpoint may move to once the record is settled)."""

    file_id: str
    path: str
    offset: int


@dataclass(slots=True, frozen=True)
class Record:
    """One operation extracted from one line. ``fields`` holds only payload fields (gid, uid as int)."""

    rule: str
    oper_id: str
    fields: dict[str, int | str] = field(default_factory=dict)
    event_ts: float | None = None  # epoch seconds of the operation, when the line carries a time
    origin: Origin | None = None

    def data(self) -> dict[str, Any]:
        """The payload's ``data`` object: oper_id first, then the fields in the spec's order."""
        out: dict[str, Any] = {"oper_id": self.oper_id}
        for name in PAYLOAD_FIELDS:
            if name in self.fields:
                out[name] = self.fields[name]
        return out


def deterministic_nonce(origin: Origin) -> str:
    """Same file identity and offset -> same nonce, so a resend after a crash can be dropped by the server."""
    return hashlib.sha256(f"{origin.file_id}:{origin.offset}".encode()).hexdigest()[:32]


def make_ts(seconds: float, unit: TsUnit) -> int:
    return int(seconds * 1000) if unit == "ms" else int(seconds)


def build_payload(
    record: Record,
    *,
    ts_unit: TsUnit = "s",
    ts_source: TsSource = "event",
    nonce: NonceMode = "random",
    now: float,
) -> dict[str, Any]:
    """The request body for one record. ``now`` is the send time, used when ts_source is ``now`` or the
    line carries no time. A deterministic nonce needs an origin; without one it falls back to random."""
    seconds = record.event_ts if ts_source == "event" and record.event_ts is not None else now
    if nonce == "deterministic" and record.origin is not None:
        value = deterministic_nonce(record.origin)
    else:
        value = secrets.token_hex(16)
    return {"ts": make_ts(seconds, ts_unit), "nonce": value, "data": record.data()}
