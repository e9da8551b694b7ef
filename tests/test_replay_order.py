"""`tailer replay` orders files by the first event time found in each, whatever tool named them; files
with no timed line fall back to name conventions, then mtime. End to end into the real receiver, plus
the pure ordering and the probe on real files."""

from __future__ import annotations

import gzip
import os
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import VOTE_RULES, write_config
from logdata import BASE_TS, expected_data, vote_line, write_log

from tailer.cli.main import main
from tailer.config.settings import load_settings
from tailer.run.replay_files import first_event, leading_time_regex, leading_times, plan_files
from tailer.run.replay_order import FileFacts, name_key, place
from tailer.source.settings import SourceSettings

DAY = 86400
PER_FILE = 5
# Chronology: day d of the archive -> the file that holds it. Four applications, four naming schemes,
# interleaved, so neither grouping by set nor any one name convention gives this order.
CHRONOLOGY = [
    "api-1.log.gz",  # log4j2 DefaultRolloverStrategy: the higher index is newer
    "py.log.2026-11-02",  # Python TimedRotatingFileHandler
    "web.2026-11-03.0.log.gz",  # logback SizeAndTimeBasedRollingPolicy
    "job.log.3.gz",  # logrotate: the higher number is older
    "api-2.log.gz",
    "web.2026-11-06.0.log.gz",
    "job.log.2.gz",
    "py.log.2026-11-08.gz",
    "api-3.log.gz",
    "job.log.1",
    "web.2026-11-11.1.log.gz",
    "api.log",
    "job.log",
    "py.log",
]
LEGACY_RULE = """
  - name: legacy
    pattern: '^LEGACY (?P<act>VOTE_[A-Z]+) id=(?P<ext1>\\d+) gid=(?P<gid>\\d+) ch=(?P<target_id>\\S+) uid=(?P<uid>\\d+)$'
    oper_id: {from: act, map: {VOTE_JOIN: "1504000120679"}}
"""


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def legacy_line(i: int) -> str:
    """An operation line with no time: the legacy rule (no ts group) sends it with the send time."""
    return f"LEGACY VOTE_JOIN id={i} gid={i % 7} ch=c{i % 3} uid={1000 + i}"


def day_lines(day: int) -> tuple[list[str], list[int]]:
    """A file's lines for one day: an untimed banner, a timed non-operation line (the file's start), then
    operations with noise between them; and the record ids in it."""
    start = BASE_TS + day * DAY
    ids = [day * PER_FILE + k for k in range(PER_FILE)]
    lines = ["=== service started ===", f"{stamp(start)} DEBUG c.a.Health - ok"]
    for k, i in enumerate(ids):
        lines += [
            vote_line(i, ts=start + 60 * (k + 1)),
            f"{stamp(start + 60 * k + 30)} DEBUG c.a.Cache - hit",
        ]
    return lines, ids


def write_archive(logs: Path, untimed: dict[str, list[str]] | None = None) -> dict[str, list[int]]:
    """Every CHRONOLOGY file (those in ``untimed`` get those lines instead), with copied, reset mtimes:
    the newest content gets the oldest mtime. Returns the record ids per file name."""
    ids: dict[str, list[int]] = {}
    for day, name in enumerate(CHRONOLOGY):
        lines, ids[name] = day_lines(day)
        if untimed and name in untimed:
            lines = untimed[name]
            ids[name] = [int(re.search(r"id=(\d+)", line)[1]) for line in lines if line.startswith("LEGACY")]
        path = write_log(logs / name, lines, gz=name.endswith(".gz"))
        copied = BASE_TS + 100 * DAY - day * 3600
        os.utime(path, (copied, copied))
    return ids


def shuffled(logs: Path, names: list[str]) -> list[str]:
    given = random.Random(8).sample(names, len(names))
    assert given != names
    return [str(logs / n) for n in given]


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_shuffled_log4j2_dated_and_logrotate_archives_are_sent_in_event_time_order(tmp_path, receiver):
    logs = tmp_path / "logs"
    ids = write_archive(logs)
    cfg = write_config(tmp_path, receiver.url, concurrency=1)
    result = cli("replay", "-c", str(cfg), *shuffled(logs, CHRONOLOGY))
    assert result.exit_code == 0, result.output
    got = receiver.records()
    ts = [r["ts"] for r in got]
    assert len(ts) == len(CHRONOLOGY) * PER_FILE
    assert ts == sorted(ts)  # non-decreasing event time
    want = [i for name in CHRONOLOGY for i in ids[name]]
    assert [r["data"] for r in got] == [expected_data(i) for i in want]


def untimed_layout(tmp_path: Path, url: str) -> tuple[Path, dict[str, list[int]]]:
    """job.log.2.gz holds only untimed operations (placed by name, after job.log.3.gz); a lone
    import.txt too, whose mtime says it comes between days 5 and 6."""
    logs = tmp_path / "logs"
    ids = write_archive(
        logs, {"job.log.2.gz": ["banner without time"] + [legacy_line(i) for i in (900, 901)]}
    )
    lone = write_log(logs / "import.txt", [legacy_line(i) for i in (950, 951)])
    os.utime(lone, (BASE_TS + 5.5 * DAY, BASE_TS + 5.5 * DAY))
    ids["import.txt"] = [950, 951]
    cfg = write_config(tmp_path, url, concurrency=1, rules=VOTE_RULES + LEGACY_RULE)
    return cfg, ids


UNTIMED_ORDER = CHRONOLOGY[:4] + ["job.log.2.gz"] + CHRONOLOGY[4:6] + ["import.txt"] + CHRONOLOGY[7:]


def test_files_without_a_timed_line_are_placed_by_name_then_mtime(tmp_path, receiver):
    cfg, ids = untimed_layout(tmp_path, receiver.url)
    logs = tmp_path / "logs"
    result = cli("replay", "-c", str(cfg), *shuffled(logs, UNTIMED_ORDER))
    assert result.exit_code == 0, result.output
    got = receiver.records()
    assert [int(r["data"]["ext1"]) for r in got] == [i for name in UNTIMED_ORDER for i in ids[name]]
    timed = [r["ts"] for r in got if int(r["data"]["ext1"]) < 900]
    assert timed == sorted(timed) and len(timed) == (len(CHRONOLOGY) - 1) * PER_FILE


LIST_LINE = re.compile(r"^\s*(\d+)  (\S+)\s+(\S+)  (.+)$")


@pytest.mark.parametrize("flags", [["--list"], ["--dry-run", "--list"]])
def test_list_prints_the_order_with_times_and_reasons_and_sends_nothing(tmp_path, receiver, flags):
    cfg, _ = untimed_layout(tmp_path, receiver.url)
    result = cli("replay", "-c", str(cfg), *flags, str(tmp_path / "logs"))
    assert result.exit_code == 0, result.output
    rows = [LIST_LINE.match(line).groups() for line in result.stdout.splitlines()]
    assert [int(r[0]) for r in rows] == list(range(1, len(UNTIMED_ORDER) + 1))
    assert [Path(r[1]).name for r in rows] == UNTIMED_ORDER
    by_name = {Path(r[1]).name: r for r in rows}
    for day, name in enumerate(CHRONOLOGY):
        if name != "job.log.2.gz":  # each file starts with its timed DEBUG line (line 2, not an operation)
            assert datetime.fromisoformat(by_name[name][2]).timestamp() == BASE_TS + day * DAY
            assert by_name[name][3] == "first event at line 2 (leading time, rule vote)"
    assert by_name["job.log.2.gz"][2] == "-"
    assert "name: logrotate .2 (higher is older), after job.log.3.gz" in by_name["job.log.2.gz"][3]
    assert by_name["import.txt"][2] == "-"
    assert by_name["import.txt"][3].endswith(
        "mtime " + datetime.fromtimestamp(BASE_TS + 5.5 * DAY).astimezone().isoformat(timespec="seconds")
    )
    assert receiver.count() == 0
    assert not (tmp_path / "state").exists()


# --- the pure ordering -----------------------------------------------------------------------------------


def facts(name: str, ts: float | None, mtime: float | None = None, d: str = "/l") -> FileFacts:
    path = Path(d) / name
    return FileFacts(path, ts, name_key(path), mtime)


def names(placed) -> list[str]:
    return [p.path.name for p in placed]


def test_event_time_wins_over_names_and_mtimes_in_any_input_order():
    # Names say app.log.1 is newer than app.log.2, and mtimes say the reverse of the times: both ignored.
    given = [
        facts("app.log.1", 100, mtime=1),
        facts("app.log.2", 200, mtime=2),
        facts("b-1.log", 150, mtime=3),
    ]
    for seed in range(6):
        placed = place(random.Random(seed).sample(given, 3))
        assert names(placed) == ["app.log.1", "b-1.log", "app.log.2"]
        assert [p.first_ts for p in placed] == [100, 150, 200]
        assert all(p.reason == "first event" for p in placed)


def test_equal_first_times_tie_deterministically_by_set_then_name():
    given = [facts("b.log", 5), facts("a.log.1", 5), facts("a.log", 5)]
    assert names(place(given)) == names(place(given[::-1])) == ["a.log.1", "a.log", "b.log"]


def test_untimed_file_goes_after_its_older_timed_sibling_by_name():
    given = [facts("app.log", 300), facts("x.log", 250), facts("app.log.1", None), facts("app.log.2.gz", 100)]
    placed = place(given)
    assert names(placed) == ["app.log.2.gz", "app.log.1", "x.log", "app.log"]
    assert placed[1].reason == "no timed line; name: logrotate .1 (higher is older), after app.log.2.gz"


def test_untimed_file_with_no_older_timed_sibling_goes_before_the_newer_one():
    given = [facts("x.log", 150), facts("app-2.log.gz", 200), facts("app-1.log.gz", None, mtime=9e9)]
    placed = place(given)
    assert names(placed) == ["x.log", "app-1.log.gz", "app-2.log.gz"]
    assert placed[1].reason.endswith("name: log4j2 -1 (higher is newer), before app-2.log.gz")


def test_a_set_with_no_timed_file_keeps_name_order_and_is_placed_by_its_oldest_mtime():
    # Reset mtimes disagree with the names inside the set: the names decide there; the set sits at 150.
    given = [
        facts("t.log", 100),
        facts("u.log", 200),
        facts("app.log", None, mtime=150),
        facts("app.log.1", None, mtime=170),
        facts("lone.txt", None, mtime=120),
    ]
    placed = place(given)
    assert names(placed) == ["t.log", "lone.txt", "app.log.1", "app.log", "u.log"]
    assert placed[1].reason.startswith("no timed line; mtime ")
    assert "placed by the set's oldest mtime" in placed[2].reason


def test_a_path_given_twice_counts_once_and_the_probe_note_is_kept():
    path = Path("/l/a.log")
    once = FileFacts(path, 7.0, name_key(path), None, "line 3 (operation, rule vote)")
    placed = place([once, once._replace(first_ts=1.0)])
    assert [(p.path, p.first_ts, p.reason) for p in placed] == [
        (path, 7.0, "first event at line 3 (operation, rule vote)")
    ]


# --- reading a time off any line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,head",
    [
        (r"^(?P<ts>\S+ \S+) INFO (?P<act>\w+)", r"^(?P<ts>\S+ \S+)"),
        (r"^\[(?P<ts>[^]]+)\] (?P<act>\w+)", r"^\[(?P<ts>[^]]+)"),
        (r"^\((?P<x>a|b)\) (?P<ts>\d+(?:\.\d+)?) (?P<act>\w+)", r"^\((?P<x>a|b)\) (?P<ts>\d+(?:\.\d+)?)"),
        (r"\A(?:[(|]x\))? ?(?P<ts>\d+) (?P<act>\w+)", r"\A(?:[(|]x\))? ?(?P<ts>\d+)"),
        (r"(?P<ts>\S+ \S+) INFO", None),  # not anchored: a time inside a message would be taken
        (r"^((?P<ts>\d+) )x", None),  # nested in another group
        (r"^a|(?P<ts>\d+)", None),  # in an alternative that is not anchored
        (r"^(?P<act>\w+)", None),  # no ts
    ],
)
def test_leading_time_regex_is_the_pattern_up_to_its_ts_group_or_none(pattern, head):
    got = leading_time_regex(pattern)
    assert (got.pattern if got else None) == head


def probe_settings(tmp_path: Path, *, only_untimed_rule: bool = False):
    # only_untimed_rule: a config whose only rule has no ts group
    rules = "rules:" + LEGACY_RULE if only_untimed_rule else VOTE_RULES
    return load_settings(write_config(tmp_path, "http://127.0.0.1:9/unused", rules=rules))


def probe(settings, path: Path, **limits):
    rules = settings.rules
    return first_event(path, rules, leading_times(rules), SourceSettings(paths=()), **limits)


def test_probe_takes_the_earliest_of_the_first_timed_lines_of_a_gz(tmp_path):
    settings = probe_settings(tmp_path)
    lines = ["no time here", *(vote_line(i, ts=BASE_TS + t) for i, t in ((1, 50), (2, 10), (3, 70)))]
    path = write_log(tmp_path / "a.log.gz", lines, gz=True)
    assert probe(settings, path) == (BASE_TS + 10, "line 3 (operation, rule vote)")
    assert probe(settings, path, timed=1) == (BASE_TS + 50, "line 2 (operation, rule vote)")


def test_probe_is_bounded_and_untimed_heads_give_none(tmp_path):
    settings = probe_settings(tmp_path)
    path = write_log(tmp_path / "big.log", ["untimed stack frame"] * 500 + [f"{stamp(BASE_TS)} WARN later"])
    size = path.stat().st_size
    assert probe(settings, path, max_bytes=4096) == (None, "no timed line in the first 4,096 bytes")
    assert probe(settings, path, max_bytes=size) == (BASE_TS, "line 501 (leading time, rule vote)")


def test_probe_without_any_timed_rule_finds_nothing(tmp_path):
    path = write_log(tmp_path / "a.log", [legacy_line(1), vote_line(2)])
    assert probe(probe_settings(tmp_path), path)[0] == BASE_TS + 2
    settings = probe_settings(tmp_path, only_untimed_rule=True)
    assert [r.name for r in settings.rules.rules] == ["legacy"]
    assert probe(settings, path) == (None, f"no timed line in the first {path.stat().st_size:,} bytes")


def test_probe_of_a_corrupt_gz_says_so_and_gives_no_time(tmp_path):
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(gzip.compress(vote_line(1).encode() * 100)[:12] + b"garbage")
    ts, why = probe(probe_settings(tmp_path), bad)
    assert ts is None and why.startswith("head unreadable")


def test_plan_files_expands_directories_and_uses_each_files_mtime(tmp_path):
    settings = probe_settings(tmp_path)
    logs = tmp_path / "logs"
    write_log(logs / "b.log", ["untimed"])
    write_log(logs / "a.log", ["untimed"])
    os.utime(logs / "b.log", (1000, 1000))
    os.utime(logs / "a.log", (2000, 2000))
    assert names(plan_files([logs, logs / "a.log"], settings)) == ["b.log", "a.log"]


def test_list_with_a_shard_shows_that_shards_files_in_order(tmp_path):
    logs = tmp_path / "logs"
    write_archive(logs)
    cfg = write_config(tmp_path, "http://127.0.0.1:9/unused")
    shares = []
    for k in (1, 2):
        result = cli("replay", "-c", str(cfg), "--list", "--shard", f"{k}/2", str(logs))
        assert result.exit_code == 0, result.output
        shares.append([Path(LIST_LINE.match(line)[2]).name for line in result.stdout.splitlines()])
    assert all(shares) and sorted(shares[0] + shares[1]) == sorted(CHRONOLOGY)
    for share in shares:
        assert share == [n for n in CHRONOLOGY if n in share]
