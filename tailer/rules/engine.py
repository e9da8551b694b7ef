"""Rules: compiled from rules.yaml's ``rules:`` list; a log line -> a Record, or nothing. Pure, no I/O.

Matching is the hot path (months of logs in a replay), so each rule carries the literal text every match
must contain (tailer/rules/prefilter.py) and checks ``literal in line`` before the regex runs; the results
are exactly those of the regex alone. Patterns are written in Python's ``re`` syntax and run on RE2, in time
linear in the line, whatever the pattern (tailer/rules/linear.py); what RE2 cannot express runs on ``re``
(``Rule.engine_note`` says why) or, when it could backtrack catastrophically, is refused at load. A rule's
``tests:`` are parsed into Case values (tailer/rules/compile.py, which builds rules from rules.yaml) and
run by tailer/rules/cases.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tailer.record import Origin, Record
from tailer.rules.cases import Case
from tailer.rules.linear import Groups, Searcher
from tailer.rules.timeparse import TsParser


@dataclass(slots=True, frozen=True)
class Match:
    rule: str
    record: Record | None  # None: the rule matched but gave no record (unmapped word, bad ts...)
    problem: str | None = None  # why no record, e.g. "unmapped act='VOTE_X'"

    @property
    def unmapped(self) -> bool:
        """The rule matched but the captured word is missing from its oper_id map (callers count these)."""
        return self.problem is not None and self.problem.startswith("unmapped ")


@dataclass(slots=True, frozen=True)
class Rule:
    name: str
    pattern: str
    regex: re.Pattern[str]  # Python's compile: group names and numbers (matching uses ``search``)
    search: Searcher  # line -> (None, *groups) or None, on ``engine``
    engine: str  # "re2" (linear time) or "re" (what RE2 cannot express)
    engine_note: str | None  # why the rule runs on re
    literal: str | None  # text every match contains; None: no prefilter
    oper_id: str | None  # constant oper_id, or None when mapped
    oper_from: int  # group index of the mapped word (0 when constant)
    oper_from_name: str
    oper_map: Mapping[str, str]
    plan: tuple[tuple[int, str, bool], ...]  # (group index, payload field, convert to int)
    ts_group: int  # 0: the line carries no time
    ts_parse: TsParser | None
    constants: Mapping[str, int | str]
    cases: tuple[Case, ...] = ()
    line: int | None = None

    def build(self, groups: Groups, origin: Origin | None) -> Match:
        """The Match for a regex hit (``(None, group 1, ...)``): a Record, or the reason there is none."""
        oper_id = self.oper_id
        if oper_id is None:
            word = groups[self.oper_from]
            oper_id = self.oper_map.get(word) if word is not None else None
            if oper_id is None:
                return Match(self.name, None, f"unmapped {self.oper_from_name}={word!r}")
        fields: dict[str, int | str] = dict(self.constants)
        for index, field, as_int in self.plan:
            value = groups[index]
            if not value:  # an optional group that did not take part, or captured nothing
                continue
            if as_int:
                digits = value[1:] if value[0] == "-" else value
                if not (digits.isascii() and digits.isdigit()):
                    return Match(self.name, None, f"{field} {value!r} is not an integer")
                fields[field] = int(value)
            else:
                fields[field] = value
        event_ts = None
        if self.ts_group:
            raw = groups[self.ts_group]
            if raw:
                try:
                    event_ts = self.ts_parse(raw)  # type: ignore[misc]
                except (ValueError, OverflowError) as exc:
                    return Match(self.name, None, f"ts {raw!r} does not parse: {exc}")
        return Match(self.name, Record(self.name, oper_id, fields, event_ts, origin))


class RuleSet:
    """Rules in order; the first whose regex matches a line wins."""

    __slots__ = ("rules", "prefilter", "_steps")

    def __init__(self, rules: Sequence[Rule] = (), *, prefilter: bool = True) -> None:
        self.rules = tuple(rules)
        self.prefilter = prefilter
        self._steps = tuple((r.literal if prefilter else None, r.search, r) for r in self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, line: str, origin: Origin | None = None) -> Match | None:
        """None when no rule matches; else the first matching rule's Match (a record or a problem)."""
        for literal, search, rule in self._steps:
            if literal is not None and literal not in line:
                continue
            groups = search(line)
            if groups is not None:
                return rule.build(groups, origin)
        return None

    def explain(self, line: str) -> list[tuple[str, str]]:
        """(rule, what happened) for every rule, for ``tailer match``."""
        out: list[tuple[str, str]] = []
        winner: str | None = None
        for rule in self.rules:
            if winner is not None:
                out.append((rule.name, f"not tried: rule '{winner}' matched first"))
            elif rule.literal is not None and rule.literal not in line:
                out.append((rule.name, f"literal {rule.literal!r} not in line"))
            elif (m := rule.search(line)) is None:
                out.append((rule.name, "pattern did not match"))
            else:
                winner = rule.name
                got = rule.build(m, None)
                if got.record is None:
                    out.append((rule.name, f"matched, but no record: {got.problem}"))
                else:
                    out.append((rule.name, "matched: " + json.dumps(got.record.data(), ensure_ascii=False)))
        return out


# --- compiling -------------------------------------------------------------------------------------------
