"""The shipped rules.yaml against the shipped samples, through the real config loader, rules engine and reader.

The expected records (samples/expected.jsonl) were computed by samples/make_samples.py from what it wrote,
not by the engine, so these tests compare two independent answers.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tailer.config.settings import Settings, load_settings
from tailer.record import Origin, build_payload
from tailer.rules.cases import run_cases
from tailer.source.reader import Line, LineReader, ReaderStats, open_log
from tailer.source.settings import SourceSettings, source_for

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
LOGS = SAMPLES / "logs"
# Oldest first, as logrotate leaves them; then the gateway (layout B).
LAYOUT_A = ("app.log.2.gz", "app.log.1", "app.log")
LAYOUT_B = ("gateway.log",)
VOTE_IDS = {"1504000120618", "1504000120678", "1504000120679", "1504000120617"}
LOTTERY_IDS = {"1505000120618", "1505000120678", "1505000120679", "1505000120617"}
ALL_OPER_IDS = VOTE_IDS | LOTTERY_IDS
MAX_READS = 1000  # bounds every read loop: the samples are well under 1 MB each


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "rules.yaml", environ={})


@pytest.fixture(scope="module")
def expected() -> list[dict[str, Any]]:
    with (SAMPLES / "expected.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def source_of(settings: Settings, path: Path) -> SourceSettings:
    """The source whose encoding reads ``path`` (what replay and the follower use)."""
    return source_for(settings.sources, path)


def read_lines(settings: Settings, path: Path) -> tuple[list[Line], ReaderStats]:
    """Every line of the file, the partial last one included, with the reader's counters."""
    source = source_of(settings, path)
    lines: list[Line] = []
    with open_log(path) as stream:
        reader = LineReader(stream, encoding=source.encoding, max_line_bytes=source.max_line_bytes)
        for _ in range(MAX_READS):
            chunk = reader.read()
            if not chunk:
                break
            lines.extend(chunk)
        else:
            pytest.fail(f"{path.name}: not read to the end in {MAX_READS} reads")
        tail = reader.flush()
        if tail is not None:
            lines.append(tail)
    return lines, reader.stats


def records_of(settings: Settings, name: str) -> list[dict[str, Any]]:
    """What `tailer replay` would send for one sample file: {file, ts, data} per record, in file order."""
    path = LOGS / name
    lines, _ = read_lines(settings, path)
    ep = settings.endpoint
    out = []
    for line in lines:
        m = settings.rules.match(line.text, Origin(file_id=name, path=str(path), offset=line.end))
        if m is None or m.record is None:
            continue
        # now=0: a record without an event time would get ts 0 and fail the comparison.
        payload = build_payload(m.record, ts_unit=ep.ts_unit, ts_source=ep.ts_source, nonce=ep.nonce, now=0.0)
        out.append({"file": f"logs/{name}", "ts": payload["ts"], "data": payload["data"]})
    return out


# --- rules.yaml's own test cases --------------------------------------------------------------------------


def test_every_case_in_the_shipped_rules_passes(settings):
    results = run_cases(settings.rules, ts_unit=settings.endpoint.ts_unit)
    assert len(results) >= 8 * 2
    failures = [f"{r.rule} (rules.yaml:{r.yaml_line}): {r.line}\n{r.diff}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)


def test_cases_together_cover_all_eight_oper_ids(settings):
    results = run_cases(settings.rules, ts_unit=settings.endpoint.ts_unit)
    assert {r.expected["oper_id"] for r in results if r.expected is not None} == ALL_OPER_IDS


def test_each_rule_tests_every_oper_id_it_maps_and_some_near_miss(settings):
    names = [rule.name for rule in settings.rules.rules]
    assert names == ["vote", "lottery", "gateway_vote", "gateway_lottery"]
    for rule in settings.rules.rules:
        tested = {case.expect["oper_id"] for case in rule.cases if case.expect is not None}
        assert tested == set(rule.oper_map.values()), rule.name
        assert sum(case.expect is None for case in rule.cases) >= 3, f"{rule.name}: too few near-misses"


def test_shipped_endpoint_uses_deterministic_nonce_and_event_time(settings):
    ep = settings.endpoint
    assert (ep.url, ep.ts_unit, ep.ts_source, ep.nonce) == ("embedded", "s", "event", "deterministic")
    assert ep.token.reveal() == "dev-token"  # ${OPER_TOKEN:-dev-token} with OPER_TOKEN unset
    assert settings.state_dir == ROOT / ".tailer"


# --- the sample files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUT_A + LAYOUT_B)
def test_sample_file_gives_exactly_the_expected_records(settings, expected, name):
    want = [r for r in expected if r["file"] == f"logs/{name}"]
    assert want, f"expected.jsonl has no record for {name}"
    assert records_of(settings, name) == want


@pytest.mark.parametrize("name", LAYOUT_A + LAYOUT_B)
def test_sample_file_decodes_without_replacement_and_without_cut_lines(settings, name):
    lines, stats = read_lines(settings, LOGS / name)
    assert len(lines) > 200
    assert (stats.replaced, stats.cut_lines) == (0, 0)
    assert any("用户" in line.text for line in lines)  # Chinese text survived decoding


def test_expected_jsonl_lists_files_oldest_first(expected):
    order = list(dict.fromkeys(r["file"] for r in expected))
    assert order == [f"logs/{name}" for name in LAYOUT_A + LAYOUT_B]
    for r in expected:
        assert (
            isinstance(r["ts"], int)
            and isinstance(r["data"]["gid"], int)
            and isinstance(r["data"]["uid"], int)
        )


def test_every_oper_id_appears_in_every_file_of_both_layouts(expected):
    by_file: dict[str, set[str]] = defaultdict(set)
    for r in expected:
        by_file[r["file"]].add(r["data"]["oper_id"])
    for name in LAYOUT_A + LAYOUT_B:
        assert by_file[f"logs/{name}"] == ALL_OPER_IDS, name


def test_rotated_app_logs_each_cover_a_later_day(expected):
    days = []
    for name in LAYOUT_A:
        ts = [r["ts"] for r in expected if r["file"] == f"logs/{name}"]
        assert ts == sorted(ts), f"{name}: records out of time order"
        # Asia/Shanghai is UTC+8 all year: shift, then whole days.
        first, last = ((t + 8 * 3600) // 86400 for t in (ts[0], ts[-1]))
        assert first == last, f"{name} spans more than one day"
        days.append(first)
    assert days == sorted(set(days)), "app.log.2.gz, app.log.1, app.log must hold successive days"


@pytest.mark.parametrize(
    ("name", "marker", "unmapped"),
    [
        ("app.log", "VOTE_CREATE failed voteId=", False),
        ("app.log", "will publish VOTE_JOIN", False),
        ("app.log", "VOTE_JOIN rejected voteId=", False),
        ("app.log", "VoteClosedException: VOTE_JOIN voteId=", False),  # stack trace continuation line
        ("app.log", "\tat c.a.vote.", False),
        ("app.log.1", "lottery.join lotteryId= gid=", False),
        ("app.log.1", "lottery.join gid=", False),
        ("app.log.1", "VOTE_ARCHIVE voteId=", True),
        ("app.log.2.gz", "lottery.draw lotteryId=", True),
        ("gateway.log", "op=lottery_join group=", False),
        ("gateway.log", "409 rt=", False),
        ("gateway.log", "op=vote_archive vote_id=", True),
        ("gateway.log", "GET /healthz", False),
    ],
)
def test_near_misses_in_the_samples_give_no_record(settings, name, marker, unmapped):
    hits = [line.text for line in read_lines(settings, LOGS / name)[0] if marker in line.text]
    assert hits, f"{name} holds no {marker!r} line"
    for text in hits:
        m = settings.rules.match(text)
        assert m is None or m.record is None, text
        # An action word missing from the map is matched and reported (counted), never silently dropped.
        assert (m is not None and m.problem is not None) == unmapped, text


# --- sources and encodings ----------------------------------------------------------------------------------


def test_gz_is_excluded_from_live_following_but_replay_reads_it_as_utf8(settings):
    app_source, gateway_source = settings.sources
    gz = LOGS / "app.log.2.gz"
    assert not app_source.matches(gz)
    assert not any(s.matches(gz) for s in settings.sources)  # no live source follows a finished .gz
    assert source_for(settings.sources, gz) is app_source  # what `tailer replay` reads it with
    assert source_for(settings.sources, LOGS / "gateway.log") is gateway_source
    assert all(app_source.matches(LOGS / n) for n in ("app.log", "app.log.1"))


def test_gateway_log_is_gb18030_with_a_character_outside_gbk(settings):
    raw = (LOGS / "gateway.log").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")

    def in_gbk(ch: str) -> bool:
        try:
            ch.encode("gbk")
        except UnicodeEncodeError:
            return False
        return True

    outside = {ch for ch in text if not in_gbk(ch)}
    assert {"𠀀", "㐀"} <= outside
    assert source_for(settings.sources, LOGS / "gateway.log").encoding == "gb18030"


def test_make_samples_regenerates_the_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), "--out", str(tmp_path)], check=True, timeout=60
    )
    for name in ("app.log", "app.log.1", "gateway.log"):
        assert (tmp_path / "logs" / name).read_bytes() == (LOGS / name).read_bytes(), name
    # gzip bytes may differ across zlib versions: compare the content.
    assert gzip.decompress((tmp_path / "logs/app.log.2.gz").read_bytes()) == gzip.decompress(
        (LOGS / "app.log.2.gz").read_bytes()
    )
    assert (tmp_path / "expected.jsonl").read_bytes() == (SAMPLES / "expected.jsonl").read_bytes()
