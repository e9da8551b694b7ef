"""Rule tests (the ``tests:`` list of a rule): run them against the whole rule set, as production would.

Case is one parsed test (compiled by rules.compile_rules into ``Rule.cases``); run_cases gives a CaseResult
per case, with a unified diff of expected and got when they differ. Pure, no I/O.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tailer.record import make_ts

if TYPE_CHECKING:  # rules imports Case from here at runtime; the RuleSet type is only a hint
    from tailer.rules.engine import RuleSet


@dataclass(slots=True, frozen=True)
class Case:
    line: str
    expect: dict[str, Any] | None  # None: the line must give no record
    yaml_line: int | None


@dataclass(slots=True, frozen=True)
class CaseResult:
    rule: str
    line: str
    expected: dict | None
    got: dict | None
    ok: bool
    diff: str
    yaml_line: int | None


def _dump(value: dict | None) -> list[str]:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").splitlines(keepends=True)


def run_cases(ruleset: RuleSet, *, ts_unit: str = "s") -> list[CaseResult]:
    """Run every rule's tests against the whole rule set (first match wins, as in production)."""
    results = []
    for rule in ruleset.rules:
        for case in rule.cases:
            m = ruleset.match(case.line)
            got: dict | None = None
            note = ""
            if m is not None and m.record is not None:
                got = m.record.data()
                if case.expect is not None and "ts" in case.expect and m.record.event_ts is not None:
                    got["ts"] = make_ts(m.record.event_ts, ts_unit)  # type: ignore[arg-type]
                if m.rule != rule.name:
                    note = f"# the line was taken by rule '{m.rule}', listed before '{rule.name}'\n"
            elif m is not None:
                note = f"# rule '{m.rule}' matched but gave no record: {m.problem}\n"
            ok = got == case.expect and (got is None or m.rule == rule.name)  # type: ignore[union-attr]
            diff = ""
            if not ok:
                diff = note + "".join(
                    difflib.unified_diff(_dump(case.expect), _dump(got), "expected", "got", lineterm="\n")
                )
            results.append(CaseResult(rule.name, case.line, case.expect, got, ok, diff, case.yaml_line))
    return results
