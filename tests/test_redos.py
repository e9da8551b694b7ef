"""Hostile patterns and lines: every rule runs on the linear-time engine (RE2), or is refused at load when it
must run on backtracking re and can backtrack catastrophically. Timing lives in benchmarks/bench_rules.py;
these tests assert the structure (which engine, what is refused) and that RE2 gives exactly re's groups."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tailer.cli.main import main
from tailer.config.settings import load_settings
from tailer.errors import ConfigError
from tailer.rules.compile import compile_rules
from tailer.rules.linear import _SPACE, _WORD, compile_linear

ROOT = Path(__file__).resolve().parent.parent


HOSTILE_USER = [
    r"^(?P<ext1>(a+)+)$",
    r"(?P<ext1>a|aa)+$",
    r"(?P<ext1>\w+\s?)+$",
    r"(?P<ext1>\d+)x",
    r"(?P<ext1>.*)(?P<ext2>.*)(?P<ext3>.*)=",
    r"^(?P<ext1>([a-z0-9]+[-.]?)+)@",
    r"(?P<ext1>(.*,){30})x",
    r"(?P<ext1>(a|a?)+)b",
]
N = 65536
HOSTILE_LINES = [
    "a" * (N - 1) + "b",
    "1" * (N - 1) + "y",
    ("a," * N)[:N],
    (
        "2026-11-28 10:00:01,123 [exec-1] INFO  c.a.VoteService - VOTE_CREATE voteId=1 groupId=2 channelId="
        + "c" * N
    )[:N],
    ('[28/Nov/2026:10:00:01 +0800] 1.2.3.4 "GET /' + " rt=1 op=vote_join" * N)[:N],
    " " * N,
]


def one_rule(pattern: str):
    return compile_rules([{"name": "u", "pattern": pattern, "oper_id": "1"}]).rules[0]


def test_every_shipped_rule_runs_on_the_linear_engine_and_survives_hostile_lines():
    shipped = load_settings(ROOT / "rules.yaml").rules
    assert [r.engine for r in shipped.rules] == ["re2"] * len(shipped.rules)
    for line in HOSTILE_LINES:
        assert shipped.match(line) is None  # none is an operation; each returned (linear time)


@pytest.mark.parametrize("pattern", HOSTILE_USER)
def test_hostile_user_patterns_run_on_the_linear_engine(pattern):
    rule = one_rule(pattern)
    assert rule.engine == "re2" and rule.engine_note is None
    for line in HOSTILE_LINES:
        rule.search(line)  # under re, several of these would not return for hours


def test_the_issue_pattern_gives_re_answers_without_backtracking():
    rule = one_rule(r"^(?P<ext1>(a+)+)$")
    assert rule.search("a" * 40 + "b") is None  # the 41-char line that held re for > 20 s
    assert rule.search("a" * 5) == (None, "aaaaa", "aaaaa")  # re: the inner group keeps the last repeat


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pattern_re2_cannot_express_runs_on_re_and_the_load_says_so(tmp_path):
    config = tmp_path / "rules.yaml"
    config.write_text(
        textwrap.dedent("""\
        endpoint: {url: embedded}
        rules:
          - name: fast
            pattern: 'VOTE (?P<ext1>\\d+)'
            oper_id: "1"
          - name: look
            pattern: 'VOTE_JOIN (?!test)(?P<ext1>\\w+)'
            oper_id: "2"
        """)
    )
    collect, logger = Collect(), logging.getLogger("tailer.config")
    logger.addHandler(collect)  # not caplog: the CLI's setup_logging stops "tailer" propagating to root
    try:
        settings = load_settings(config)
    finally:
        logger.removeHandler(collect)
    assert [r.engine for r in settings.rules.rules] == ["re2", "re"]
    assert "lookarounds" in settings.rules.rules[1].engine_note
    [message] = collect.messages
    assert f"{config}:6: rule 'look' runs on Python's backtracking re" in message and "lookarounds" in message
    assert settings.rules.match("VOTE_JOIN abc").record.fields == {"ext1": "abc"}
    assert settings.rules.match("VOTE_JOIN test") is None


@pytest.mark.parametrize(
    ("pattern", "shape"),
    [
        (r"^(?P<ext1>(a+)+)\b$", "a repeat inside a repeat"),
        (r"(?P<ext1>(?:x|xy)*)(?=z)", "an alternation inside an unbounded repeat"),
        (r"(?P<ext1>(\w+\s)*)\1", "a repeat inside a repeat"),
    ],
)
def test_catastrophic_pattern_that_needs_re_is_refused_with_file_line_rule_and_why(tmp_path, pattern, shape):
    config = tmp_path / "rules.yaml"
    config.write_text(
        f"endpoint: {{url: embedded}}\nrules:\n  - name: evil\n    pattern: '{pattern}'\n    oper_id: \"1\"\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.line == 4 and info.value.rule == "evil"
    assert "backtrack catastrophically" in str(info.value) and shape in str(info.value)
    result = CliRunner().invoke(main, ["check", "-c", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config}:4: rule 'evil': pattern can backtrack catastrophically")
    assert "Traceback" not in result.output


def test_named_groups_keep_working_on_re2():
    ruleset = compile_rules(
        [
            {
                "name": "v",
                "pattern": r"^(?P<ts>\d+) (?P<act>VOTE_[A-Z]+) id=(?P<ext1>\d+)(?: uid=(?P<uid>\d+))?",
                "oper_id": {"from": "act", "map": {"VOTE_JOIN": "15"}},
                "ts_format": "epoch",
            }
        ]  # fmt: skip
    )
    assert ruleset.rules[0].engine == "re2"
    m = ruleset.match("1700000000 VOTE_JOIN id=9 uid=42")
    assert m.record.fields == {"ext1": "9", "uid": 42} and m.record.event_ts == 1700000000
    assert ruleset.match("1700000000 VOTE_JOIN id=9").record.fields == {"ext1": "9"}  # unset group: absent
    assert ruleset.match("1700000000 VOTE_X id=9").problem == "unmapped act='VOTE_X'"


def chars(pred) -> str:
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF and pred(chr(c)))


def test_python_unicode_classes_are_kept_on_re2():
    """\\d, \\w, \\s mean what they mean in Python's re for str, over every assigned code point (RE2's own
    classes are ASCII-only: a Chinese nickname would stop being \\w)."""
    assigned = chars(lambda ch: unicodedata.category(ch) != "Cn")
    for cls in (r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", r"[\W\d]", r"[^\s_]"):
        pattern = f"(?P<x>{cls}+)"
        linear = compile_linear(pattern, re.compile(pattern))
        assert linear.engine == "re2"
        expected = "".join(re.findall(cls, assigned))
        got, rest = [], assigned
        while (g := linear.search(rest)) is not None:  # findall on RE2, by hand
            got.append(g[1])
            rest = rest[rest.index(g[1]) + len(g[1]) :]
        assert "".join(got) == expected, cls
    assert _SPACE and _WORD


PATTERNS = [
    r"^(?P<ts>\S+ \S+) .*(?P<act>VOTE_CREATE|VOTE_JOIN) voteId=(?P<ext1>\d+) uid=(?P<uid>\d+)",
    r"(?P<a>a+?)(?P<b>a*)b",
    r"(?i)(?P<a>vote)[_-](?P<b>[a-z]+)",
    r"(?P<a>[^=\s]+)=(?P<b>[^ ]*)",
    r"(?P<a>x|xy|xyz)+(?P<b>z?)$",
    r"(?P<a>\w+)@(?P<b>[\w.]+)|(?P<c>\d{2,3})",
    r"(?s)(?P<a>.{2}).*(?P<b>[用户]+)",
    r"(?m)^(?P<a>\W*)(?P<b>\d{1,3})?",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet="avoteVOTE_xyzb=@ .用户12３\u3000\t-", max_size=40))
def test_re2_gives_exactly_the_groups_re_gives(pattern, text):
    regex = re.compile(pattern)
    linear = compile_linear(pattern, regex)
    assert linear.engine == "re2"
    m = regex.search(text)
    assert linear.search(text) == (None if m is None else (None, *m.groups()))


def test_a_line_with_a_lone_surrogate_does_not_crash():
    rule = one_rule(r"uid=(?P<uid>\d+)")
    assert rule.search("x\udc80 uid=7") == (None, "7")
