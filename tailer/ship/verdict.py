"""What one HTTP answer of the OperReport API means for the record sent (shared/DESIGN.md "Failures").
Pure: status and body in, a Verdict out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = frozenset({408, 429})
AUTH_STATUSES = frozenset({401, 403})


@dataclass(slots=True, frozen=True)
class Verdict:
    kind: str  # "ack" | "retry" | "auth" | "dead"
    reason: str
    answer: Any = None


def parse_answer(body: bytes) -> tuple[Any, bool]:
    """(parsed JSON, True) or (the body as text, False)."""
    try:
        return json.loads(body), True
    except ValueError:
        return body.decode("utf-8", errors="replace"), False


def judge(status: int, body: bytes) -> Verdict:
    """What one HTTP answer means for the record. Pure."""
    answer, is_json = parse_answer(body)
    if status in AUTH_STATUSES:
        return Verdict("auth", f"HTTP {status}", answer)
    if status in RETRY_STATUSES or (500 <= status < 600 and status != 501):
        return Verdict("retry", f"HTTP {status}", answer)
    if 400 <= status < 600:
        return Verdict("dead", f"HTTP {status}", answer)
    if not 200 <= status < 300:
        return Verdict("retry", f"unexpected HTTP {status}", answer)
    if not is_json:
        return Verdict("dead", "answer is not JSON", answer)
    ret = answer.get("ret") if isinstance(answer, dict) else None
    if type(ret) is not int:  # bool is an int subclass, and "0" is not 0
        return Verdict("dead", "answer has no integer ret", answer)
    if ret != 0:
        return Verdict("dead", f"rejected: ret={ret} msg={answer.get('msg')!r}", answer)
    return Verdict("ack", "ok", answer)
