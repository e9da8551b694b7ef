"""rules: compiling (errors with line and rule), matching, the literal prefilter, ts parsing, rule tests."""

from __future__ import annotations

import re
import textwrap
import zoneinfo
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailer.config.yamlconf import load_yaml
from tailer.errors import ConfigError
from tailer.record import Origin
from tailer.rules.cases import run_cases
from tailer.rules.compile import compile_rules
from tailer.rules.prefilter import required_literal
from tailer.rules.timeparse import make_parser

DESIGN_RULES = textwrap.dedent(
    """\
    rules:
      - name: vote
        pattern: '^(?P<ts>\\S+ \\S+) .*(?P<act>VOTE_CREATE|VOTE_START|VOTE_JOIN|VOTE_DELETE) voteId=(?P<ext1>\\d+) groupId=(?P<gid>\\d+) channelId=(?P<target_id>\\S+) uid=(?P<uid>\\d+)'
        oper_id: {from: act, map: {VOTE_CREATE: "1504000120618", VOTE_START: "1504000120678",
                                   VOTE_JOIN: "1504000120679", VOTE_DELETE: "1504000120617"}}
        ts_format: "%Y-%m-%d %H:%M:%S,%f"
        timezone: Asia/Shanghai
        fields: {ext2: web}    # constants
        tests:
          - line: "2026-11-28 10:00:01,123 [exec-7] INFO c.a.VoteService - VOTE_CREATE voteId=9 groupId=5 channelId=c1 uid=42"
            expect: {oper_id: "1504000120618", ext1: "9", ext2: web, gid: 5, target_id: c1, uid: 42}
          - line: "VOTE_CREATE failed voteId=9"
            expect: none
    """
)
VOTE_LINE = "2026-11-28 10:00:01,123 [exec-7] INFO c.a.VoteService - VOTE_CREATE voteId=9 groupId=5 channelId=c1 uid=42"


def rules_from(yaml_text: str):
    return compile_rules(load_yaml(textwrap.dedent(yaml_text), "r.yaml")["rules"], file="r.yaml")


def compile_error(yaml_text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        rules_from(yaml_text)
    return info.value


def test_design_example_rule_passes_its_own_tests():
    ruleset = compile_rules(load_yaml(DESIGN_RULES, "r.yaml")["rules"])
    results = run_cases(ruleset)
    assert [(r.ok, r.diff) for r in results] == [(True, ""), (True, "")]
    assert [r.yaml_line for r in results] == [10, 12]


def test_design_example_line_gives_the_record_with_shanghai_time():
    ruleset = compile_rules(load_yaml(DESIGN_RULES, "r.yaml")["rules"])
    origin = Origin("f1", "/var/log/a.log", 120)
    m = ruleset.match(VOTE_LINE, origin)
    assert m is not None and m.problem is None
    assert m.record.data() == {
        "oper_id": "1504000120618",
        "gid": 5,
        "target_id": "c1",
        "uid": 42,
        "ext1": "9",
        "ext2": "web",
    }
    # 10:00:01.123 in Shanghai (UTC+8, no DST) is 02:00:01.123 UTC
    assert m.record.event_ts == pytest.approx(datetime(2026, 11, 28, 2, 0, 1, 123000, tzinfo=UTC).timestamp())
    assert m.record.origin == origin and m.record.rule == "vote"


TWO_RULES = """\
rules:
  - name: first
    pattern: 'JOIN uid=(?P<uid>\\d+)'
    oper_id: 1
  - name: second
    pattern: 'JOIN uid=(?P<uid>\\d+) gid=(?P<gid>\\d+)'
    oper_id: "2"
"""


def test_first_matching_rule_wins_and_int_oper_id_becomes_a_string():
    ruleset = rules_from(TWO_RULES)
    m = ruleset.match("JOIN uid=7 gid=3")
    assert m.rule == "first" and m.record.oper_id == "1" and m.record.fields == {"uid": 7}
    assert ruleset.match("nothing here") is None


def test_captured_word_missing_from_map_is_unmapped():
    ruleset = rules_from(
        """\
        rules:
          - name: r
            pattern: 'ACT=(?P<act>\\w+)'
            oper_id: {from: act, map: {CREATE: "11"}}
        """
    )
    m = ruleset.match("ACT=VOTE_X")
    assert m.record is None and m.problem == "unmapped act='VOTE_X'" and m.unmapped
    assert ruleset.match("ACT=CREATE").record.oper_id == "11"


def test_non_integer_gid_gives_a_problem_not_a_record():
    ruleset = rules_from("rules:\n  - name: r\n    pattern: 'g=(?P<gid>\\S+)'\n    oper_id: '1'\n")
    m = ruleset.match("g=abc")
    assert m.record is None and m.problem == "gid 'abc' is not an integer" and not m.unmapped
    assert ruleset.match("g=-4").record.fields == {"gid": -4}


def test_empty_optional_group_is_left_out_of_the_data():
    ruleset = rules_from(
        "rules:\n  - name: r\n    pattern: 'u=(?P<uid>\\d+)(?: c=(?P<target_id>\\w*))?'\n    oper_id: '1'\n"
    )
    assert ruleset.match("u=1").record.data() == {"oper_id": "1", "uid": 1}
    assert ruleset.match("u=1 c=").record.data() == {"oper_id": "1", "uid": 1}
    assert ruleset.match("u=1 c=x").record.data() == {"oper_id": "1", "uid": 1, "target_id": "x"}


@pytest.mark.parametrize(
    ("rule", "line", "rule_name", "fragment"),
    [
        (
            "  - name: a\n    pattern: x\n    oper_id: '1'\n",
            5,
            "a",
            "duplicate rule name (first defined at line 2)",
        ),
        (
            "  - name: b\n    pattern: '(?P<ext1>x'\n    oper_id: '1'\n",
            6,
            "b",
            "missing ), unterminated subpattern",
        ),
        ("  - name: c\n    pattern: x\n    oper_id: '15x'\n", 7, "c", "oper_id must be a digit string"),
        (
            "  - name: d\n    pattern: '(?P<a>x)'\n    oper_id: {from: a, map: {x: 'one'}}\n",
            7,
            "d",
            "not a digit string",
        ),
        ("  - name: e\n    pattern: x\n    oper_id: {from: act, map: {x: '1'}}\n", 7, "e", "group 'act'"),
        (
            "  - name: f\n    pattern: x\n    oper_id: '1'\n    timezone: Mars/Base\n",
            8,
            "f",
            "unknown timezone",
        ),
        ("  - name: g\n    pattern: '(?P<ts>\\d+)'\n    oper_id: '1'\n", 6, "g", "no 'ts_format'"),
        (
            "  - name: h\n    pattern: '(?P<ts>\\d+)'\n    oper_id: '1'\n    ts_format: '%Q'\n",
            8,
            "h",
            "bad directive",
        ),
        (
            "  - name: i\n    pattern: x\n    oper_id: '1'\n    fields: {gid: abc}\n",
            8,
            "i",
            "must be an integer",
        ),
        (
            "  - name: j\n    pattern: x\n    oper_id: '1'\n    fields: {ext11: v}\n",
            8,
            "j",
            "unknown key 'ext11'",
        ),
        (
            "  - name: k\n    pattern: x\n    oper_id: '1'\n    colour: red\n",
            8,
            "k",
            "unknown key 'colour' in a rule",
        ),
        ("  - pattern: x\n    oper_id: '1'\n", 5, None, "rule has no 'name'"),
    ],
)
def test_compile_errors_name_line_and_rule(rule, line, rule_name, fragment):
    base = "rules:\n  - name: a\n    pattern: x\n    oper_id: '1'\n"
    e = compile_error(base + rule)
    assert (e.file, e.line, e.rule) == ("r.yaml", line, rule_name)
    assert fragment in str(e)


def test_bad_regex_error_shows_the_position():
    e = compile_error("rules:\n  - name: b\n    pattern: 'abc(?P<x'\n    oper_id: '1'\n")
    assert "at position 7" in str(e) and "\n  abc(?P<x\n         ^" in str(e)


def test_access_log_time_with_offset_wins_over_the_rule_timezone():
    ruleset = rules_from(
        """\
        rules:
          - name: clf
            pattern: '\\[(?P<ts>[^\\]]+)\\] "POST /vote/(?P<ext1>\\d+)/join'
            oper_id: "1504000120679"
            ts_format: "%d/%b/%Y:%H:%M:%S %z"
            timezone: America/New_York
        """
    )
    m = ruleset.match('1.2.3.4 - - [28/Nov/2026:10:00:01 +0800] "POST /vote/77/join HTTP/1.1" 200')
    assert m.record.event_ts == datetime(2026, 11, 28, 2, 0, 1, tzinfo=UTC).timestamp()
    m = ruleset.match('[31/Feb/2026:10:00:01 +0800] "POST /vote/77/join')
    assert m.record is None and m.problem.startswith("ts '31/Feb/2026:10:00:01 +0800' does not parse")


def test_epoch_ms_times_and_chinese_text():
    ruleset = rules_from(
        """\
        rules:
          - name: lottery
            pattern: '(?P<ts>\\d{13}) 用户(?P<uid>\\d+)创建了抽奖「(?P<ext2>[^」]+)」 群(?P<gid>\\d+)'
            oper_id: "1505000120618"
            ts_format: epoch_ms
        """
    )
    assert ruleset.rules[0].literal == "创建了抽奖「"
    m = ruleset.match("1795831201123 用户42创建了抽奖「新年抽奖🎉」 群5")
    assert m.record.data() == {"oper_id": "1505000120618", "gid": 5, "uid": 42, "ext2": "新年抽奖🎉"}
    assert m.record.event_ts == pytest.approx(1795831201.123)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("%Y-%m-%d %H:%M:%S", "2026-03-29 02:30:00"),  # inside Europe/Berlin's DST gap
        ("%Y-%m-%d %H:%M:%S", "2026-10-25 02:30:00"),  # Berlin's repeated hour
        ("%Y-%m-%d %H:%M:%S.%f", "2026-01-01 00:00:00.5"),
        ("%Y-%m-%d %H:%M:%S,%f", "2024-02-29 23:59:59,999999"),
        ("%Y-%m-%d %H:%M:%S", "2026-1-5 1:2:3"),  # strptime's lenient form: handled by the fallback
        ("%d/%b/%Y:%H:%M:%S %z", "01/jan/2026:00:00:00 -0530"),
        ("%d/%b/%Y:%H:%M:%S %z", "01/Jan/2026:00:00:00 +05:30"),
    ],
)
def test_fast_ts_paths_agree_with_strptime(fmt, text):
    for tz in (UTC, zoneinfo.ZoneInfo("Europe/Berlin")):
        expected = datetime.strptime(text, fmt)
        expected = (expected if expected.tzinfo else expected.replace(tzinfo=tz)).timestamp()
        assert make_parser(fmt, tz)(text) == pytest.approx(expected, abs=1e-6)


ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
]


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2037, 12, 31)),
    st.sampled_from(ZONES),
    st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S,%f", "%Y-%m-%d %H:%M:%S.%f"]),
)
def test_fast_ts_path_agrees_with_strptime_on_any_time_and_zone(moment, zone, fmt):
    tz = UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
    text = moment.strftime(fmt)
    expected = datetime.strptime(text, fmt).replace(tzinfo=tz).timestamp()
    assert make_parser(fmt, tz)(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "text", ["2026-13-01 00:00:00", "2026-02-30 00:00:00", "2026-01-01 24:00:00", "garbage"]
)
def test_fast_ts_path_refuses_what_strptime_refuses(text):
    with pytest.raises(ValueError):
        make_parser("%Y-%m-%d %H:%M:%S", UTC)(text)


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (
            r"^(?P<ts>\S+ \S+) .*(?P<act>VOTE_CREATE|VOTE_START|VOTE_JOIN|VOTE_DELETE) voteId=(?P<ext1>\d+) "
            r"groupId=(?P<gid>\d+) channelId=(?P<target_id>\S+) uid=(?P<uid>\d+)",
            " channelId=",
        ),
        (r"(?P<act>LOTTERY_CREATE|LOTTERY_JOIN) id=\d+", "LOTTERY_"),  # the parser factors out the prefix
        (r"ab?cdef", "cdef"),
        (r"\bvote\b(?=d)d", "voted"),  # zero-width items do not break the text
        (r"x(?i:abcdef)yz", "yz"),  # the case-insensitive part yields nothing
        (r"(?i)VOTE_CREATE", None),
        (r"(?:ping)+ pong?", "ping"),
        (r"a|b", None),
        (r"(?:uid=)?\d+", None),
    ],
)
def test_prefilter_literal_derivation(pattern, literal):
    assert required_literal(pattern) == literal


PROPERTY_RULES = [
    r"VOTE_(?P<act>CREATE|JOIN) id=(?P<ext1>\d+)",
    r"(?i)lottery (?P<ext1>\w+)",
    r"g=(?P<gid>\d+)(?: u=(?P<uid>\d*))?$",
    r"^\[(?P<target_id>[^\]]*)\] (?:ab)+c",
    r"x(?i:ab)yz?",
    r"抽奖(?P<ext2>.)",
]
FRAGMENTS = ["VOTE_", "CREATE", "JOIN", " id=", "1", "9", "lottery", "LOTTERY", "g=", " u=", "[", "]", " ",
             "ab", "c", "x", "AB", "y", "z", "抽奖", "奖", "ſ", "K",
             # near-misses and hits of whole rules, so both outcomes are common
             "xABy", "xaBy", "[t] ababc", "VOTE_JOIN id=3", "Vote_JOIN id=3", "LoTtErY a", "g=12 u=", "g=5"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=12).map("".join))
def test_prefilter_never_changes_the_result(line):
    raw = [{"name": f"r{i}", "pattern": p, "oper_id": "1"} for i, p in enumerate(PROPERTY_RULES)]
    fast, slow = compile_rules(raw, prefilter=True), compile_rules(raw, prefilter=False)
    assert fast.match(line) == slow.match(line)
    # and the regex alone decides whether a rule applies
    first = next((i for i, p in enumerate(PROPERTY_RULES) if re.search(p, line)), None)
    got = fast.match(line)
    assert (got.rule if got else None) == (f"r{first}" if first is not None else None)


def test_explain_says_why_each_rule_did_not_match():
    ruleset = rules_from(TWO_RULES + "  - name: third\n    pattern: 'VOTE_\\w+'\n    oper_id: '3'\n")
    assert ruleset.explain("VOTE_X") == [
        ("first", "literal 'JOIN uid=' not in line"),
        ("second", "literal 'JOIN uid=' not in line"),
        ("third", 'matched: {"oper_id": "3"}'),
    ]
    assert ruleset.explain("JOIN uid=x")[0] == ("first", "pattern did not match")
    assert ruleset.explain("JOIN uid=1")[1] == ("second", "not tried: rule 'first' matched first")


def test_failing_cases_show_a_readable_diff_and_rule_theft():
    ruleset = rules_from(
        TWO_RULES
        + "    tests:\n"
        + "      - line: 'JOIN uid=7 gid=3'\n        expect: {oper_id: '2', uid: 7, gid: 3}\n"
        + "      - line: 'nothing'\n        expect: {oper_id: '2', uid: '7', ts: 5}\n"
        + "      - line: 'JOIN uid=7'\n        expect: null\n"
    )
    first, second, third = run_cases(ruleset)
    assert not first.ok and "taken by rule 'first'" in first.diff
    assert not second.ok and second.got is None and '-  "uid": "7"' in second.diff and "+null" in second.diff
    assert not third.ok and third.expected is None and third.got == {"oper_id": "1", "uid": 7}
    assert third.yaml_line == 13


def test_case_expect_may_compare_ts_in_the_configured_unit():
    text = DESIGN_RULES.replace("ext2: web, gid: 5", "ext2: web, ts: 1795831201123, gid: 5")
    ruleset = compile_rules(load_yaml(text, "r.yaml")["rules"])
    assert run_cases(ruleset, ts_unit="ms")[0].ok
    assert not run_cases(ruleset, ts_unit="s")[0].ok


def test_expect_is_strict_about_integer_types():
    text = DESIGN_RULES.replace("gid: 5,", 'gid: "5",')
    result = run_cases(compile_rules(load_yaml(text, "r.yaml")["rules"]))[0]
    assert not result.ok and '-  "gid": "5"' in result.diff and '+  "gid": 5' in result.diff
