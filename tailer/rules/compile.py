"""Rules from rules.yaml's ``rules:`` list, compiled and checked: every error names file, line and rule.
Pure, no I/O (tailer/rules/engine.py holds what a compiled rule does with a line)."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo
from typing import Any

from tailer.errors import ConfigError
from tailer.record import INT_FIELDS, PAYLOAD_FIELDS
from tailer.rules.cases import Case
from tailer.rules.engine import Rule, RuleSet
from tailer.rules.linear import Hostile, compile_linear
from tailer.rules.prefilter import required_literal
from tailer.rules.timeparse import check_format, make_parser

RULE_KEYS = ("name", "pattern", "oper_id", "ts_format", "timezone", "fields", "tests")
_PAYLOAD = frozenset(PAYLOAD_FIELDS)


class _Where:
    """Locates errors inside one rule: the key's line when known, else the rule's line."""

    def __init__(self, node: Any, file: str) -> None:
        self.node, self.file, self.rule = node, file, None
        self.line = getattr(node, "line", None)

    def error(self, message: str, key: str | None = None, node: Any = None) -> ConfigError:
        node = self.node if node is None else node
        line = getattr(node, "key_lines", {}).get(key) if key else None
        return ConfigError(
            message, file=self.file, line=line or getattr(node, "line", None) or self.line, rule=self.rule
        )


def unknown_key_message(key: Any, known: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
    return f"unknown key '{key}' in {where}{hint}"


def _digit_str(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


def _zone(name: Any, where: _Where) -> tzinfo:
    if name in (None, "UTC"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise where.error(f"unknown timezone {name!r}", "timezone") from exc


def _compile_one(node: Mapping[str, Any], file: str, seen: dict[str, int | None]) -> Rule:
    where = _Where(node, file)
    if not isinstance(node, Mapping):
        raise where.error("each rule must be a mapping (name, pattern, oper_id, ...)")
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise where.error("rule has no 'name' (a non-empty string)", "name")
    where.rule = name
    for key in node:
        if key not in RULE_KEYS:
            raise where.error(unknown_key_message(key, RULE_KEYS, "a rule"), key)
    if name in seen:
        raise where.error(f"duplicate rule name (first defined at line {seen[name]})", "name")
    seen[name] = where.line
    pattern = node.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise where.error("rule has no 'pattern' (a regular expression)", "pattern")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        pos = exc.pos or 0
        raise where.error(
            f"pattern does not compile: {exc.msg} at position {pos}\n  {pattern}\n  {' ' * pos}^", "pattern"
        ) from exc
    try:
        linear = compile_linear(pattern, regex)
    except Hostile as exc:
        raise where.error(str(exc), "pattern") from None
    groups = regex.groupindex

    raw_oper = node.get("oper_id")
    oper_id, oper_from, oper_map, src = None, 0, {}, ""
    if isinstance(raw_oper, Mapping):
        for key in raw_oper:
            if key not in ("from", "map"):
                raise where.error(unknown_key_message(key, ("from", "map"), "oper_id"), key, raw_oper)
        src, mapping = raw_oper.get("from"), raw_oper.get("map")
        if not isinstance(src, str) or src not in groups:
            raise where.error(
                f"oper_id.from names group {src!r}, which the pattern does not have", "from", raw_oper
            )
        if not isinstance(mapping, Mapping) or not mapping:
            raise where.error(
                "oper_id.map must be a mapping of captured words to digit strings", "map", raw_oper
            )
        for word, value in mapping.items():
            digits = _digit_str(value)
            if digits is None:
                raise where.error(f"oper_id.map[{word!r}] = {value!r} is not a digit string", "map", raw_oper)
            oper_map[str(word)] = digits
        oper_from = groups[src]
    else:
        oper_id = _digit_str(raw_oper)
        if oper_id is None:
            raise where.error(f"oper_id must be a digit string or {{from, map}}, got {raw_oper!r}", "oper_id")

    ts_format, tz = node.get("ts_format"), _zone(node.get("timezone"), where)
    ts_group = groups.get("ts", 0)
    if ts_group and not isinstance(ts_format, str):
        raise where.error("the pattern captures 'ts' but the rule has no 'ts_format'", "pattern")
    if ts_format is not None:
        if not ts_group:
            raise where.error("ts_format is set but the pattern has no (?P<ts>...) group", "ts_format")
        if not isinstance(ts_format, str) or (why := check_format(ts_format)) is not None:
            raise where.error(f"bad ts_format {ts_format!r}: {why or 'not a string'}", "ts_format")

    constants: dict[str, int | str] = {}
    raw_fields = node.get("fields") or {}
    if not isinstance(raw_fields, Mapping):
        raise where.error("fields must be a mapping of payload fields to constants", "fields")
    for field, value in raw_fields.items():
        if field not in _PAYLOAD:
            raise where.error(unknown_key_message(field, PAYLOAD_FIELDS, "fields"), field, raw_fields)
        if field in groups:
            raise where.error(
                f"field '{field}' is both captured by the pattern and a constant", field, raw_fields
            )
        if field in INT_FIELDS:
            digits = _digit_str(value)
            if digits is None:
                raise where.error(f"fields.{field} must be an integer, got {value!r}", field, raw_fields)
            constants[field] = int(digits)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            constants[field] = str(value)
        else:
            raise where.error(f"fields.{field} must be a string, got {value!r}", field, raw_fields)

    plan = tuple(
        (i, g, g in INT_FIELDS) for g, i in sorted(groups.items(), key=lambda kv: kv[1]) if g in _PAYLOAD
    )
    return Rule(
        name=name,
        pattern=pattern,
        regex=regex,
        search=linear.search,
        engine=linear.engine,
        engine_note=linear.note,
        literal=required_literal(pattern),
        oper_id=oper_id,
        oper_from=oper_from,
        oper_from_name=str(src),
        oper_map=oper_map,
        plan=plan,
        ts_group=ts_group,
        ts_parse=make_parser(ts_format, tz) if ts_group else None,
        constants=constants,
        cases=_cases(node.get("tests"), where),
        line=where.line,
    )


_EXPECT_KEYS = ("oper_id", *PAYLOAD_FIELDS, "ts")


def _cases(raw: Any, where: _Where) -> tuple[Case, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.error("tests must be a list of {line, expect}", "tests")
    cases = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("line"), str) or "expect" not in item:
            raise where.error(
                "each test needs 'line' (a string) and 'expect'",
                "tests",
                item if isinstance(item, Mapping) else None,
            )
        for key in item:
            if key not in ("line", "expect"):
                raise where.error(unknown_key_message(key, ("line", "expect"), "a test"), key, item)
        expect = item["expect"]
        if isinstance(expect, str) and expect.lower() == "none":
            expect = None
        if expect is not None:
            if not isinstance(expect, Mapping):
                raise where.error(f"expect must be a mapping or none, got {expect!r}", "expect", item)
            for key in expect:
                if key not in _EXPECT_KEYS:
                    raise where.error(unknown_key_message(key, _EXPECT_KEYS, "expect"), key, expect)
            expect = dict(expect)
        cases.append(Case(item["line"], expect, getattr(item, "line", None)))
    return tuple(cases)


def compile_rules(
    raw: Sequence[Mapping[str, Any]], *, file: str = "rules.yaml", prefilter: bool = True
) -> RuleSet:
    """Compile ``rules:`` (LineDict nodes from yamlconf.load_yaml give errors a line). ConfigError on any fault."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError("'rules' must be a list of rules", file=file, line=getattr(raw, "line", None))
    seen: dict[str, int | None] = {}
    return RuleSet([_compile_one(node, file, seen) for node in raw], prefilter=prefilter)
