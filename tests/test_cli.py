"""The `tailer` command as users run it: real processes, the shipped rules.yaml and samples."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run_tailer, start_tailer, write_config
from logdata import vote_line, write_log

from tailer.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The shipped rules.yaml and samples/ in a scratch directory, so state is written there."""
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    return tmp_path


def expected_samples() -> list[dict]:
    return [
        json.loads(line) for line in (ROOT / "samples" / "expected.jsonl").read_text().splitlines() if line
    ]


def canonical(items) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True, ensure_ascii=False) for i in items)


@pytest.mark.slow
def test_readme_main_command_delivers_every_sample_operation_exactly_once(project_copy):
    """`tailer replay samples/logs` with the shipped rules.yaml into the embedded receiver."""
    result = run_tailer("replay", "samples/logs", cwd=project_copy)
    assert result.code == 0, result.stderr
    assert "receiver.sqlite3" in result.stdout
    db = project_copy / ".tailer" / "receiver.sqlite3"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT ts, data FROM records").fetchall()
    conn.close()
    got = [{"ts": ts, "data": json.loads(data)} for ts, data in rows]
    want = [{"ts": e["ts"], "data": e["data"]} for e in expected_samples()]
    assert canonical(got) == canonical(want)
    # Every operation of the spec is in the samples.
    assert {e["data"]["oper_id"] for e in want} == {
        "1504000120618",
        "1504000120678",
        "1504000120679",
        "1504000120617",
        "1505000120618",
        "1505000120678",
        "1505000120679",
        "1505000120617",
    }
    sent = re.search(r"^sent\s+([\d,]+)", result.stdout, re.M)
    assert sent and int(sent[1].replace(",", "")) == len(want)
    again = run_tailer("replay", "samples/logs", cwd=project_copy)
    assert again.code == 0 and re.search(r"^sent\s+0$", again.stdout, re.M), again.stdout


def test_shipped_rules_pass_their_own_tests():
    result = run_tailer("test", cwd=ROOT)
    assert result.code == 0, result.stdout + result.stderr
    assert re.search(r"^\d+ passed, 0 failed$", result.stdout, re.M)


def test_failing_rule_case_shows_a_diff_and_exits_1(tmp_path):
    cfg = tmp_path / "rules.yaml"
    cfg.write_text(
        """endpoint: {url: embedded, token: t}
rules:
  - name: vote
    pattern: 'VOTE_JOIN id=(?P<ext1>\\d+) uid=(?P<uid>\\d+)'
    oper_id: "1504000120679"
    tests:
      - line: "VOTE_JOIN id=9 uid=42"
        expect: {oper_id: "1504000120679", ext1: "9", uid: 43}
"""
    )
    result = run_tailer("test", "-c", str(cfg), cwd=tmp_path)
    assert result.code == 1
    assert "FAIL" in result.stdout and "vote" in result.stdout
    assert "43" in result.stdout and "42" in result.stdout  # the diff shows both sides
    assert "0 passed, 1 failed" in result.stdout


@pytest.mark.parametrize(
    "rules,message",
    [
        ("  - name: r\n    pattern: '(unclosed'\n    oper_id: '1'\n", r"rules.yaml:\d+: rule 'r'"),
        ("  - name: r\n    pattern: 'x'\n    oper_id: 'abc'\n", r"rules.yaml:\d+: rule 'r'.*digit"),
        (
            "  - name: r\n    pattern: 'x'\n    oper_id: '1'\n    colour: red\n",
            r"rules.yaml:6: rule 'r'.*colour",
        ),
        (
            "  - name: r\n    pattern: 'x'\n    oper_id: '1'\n  - name: r\n    pattern: 'y'\n    oper_id: '2'\n",
            r"rules.yaml:\d+: rule 'r'.*duplicate",
        ),
    ],
)
def test_bad_rules_give_one_error_line_with_file_line_and_rule(tmp_path, rules, message):
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("endpoint: {url: embedded, token: t}\nrules:\n" + rules)
    result = run_tailer("check", "-c", str(cfg), cwd=tmp_path)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"^Error: .*" + message, result.stderr, re.M | re.I), result.stderr


def test_check_summarises_the_shipped_config():
    result = run_tailer("check", cwd=ROOT)
    assert result.code == 0, result.stderr
    assert "OK" in result.stdout and "rules" in result.stdout


def test_match_shows_rule_and_payload_or_why_not(tmp_path):
    cfg = write_config(tmp_path, "http://127.0.0.1:9/api/v1/OperReport")
    hit, miss = vote_line(5, "VOTE_CREATE"), "2026-11-01 00:00:00 INFO nothing to see"
    result = run_tailer("match", "-c", str(cfg), "-", cwd=tmp_path, input=f"{hit}\n{miss}\n")
    assert result.code == 1  # one line gave no record
    first, second = result.stdout.splitlines()
    assert first.startswith("rule vote: ")
    payload = json.loads(first.split(": ", 1)[1])
    assert payload["data"] == {
        "oper_id": "1504000120618",
        "gid": 5,
        "target_id": "c2",
        "uid": 1005,
        "ext1": "5",
    }
    assert second.startswith("no rule matched") and "vote" in second


def test_missing_config_is_a_clean_error(tmp_path):
    result = run_tailer("check", "-c", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.code != 0 and "Traceback" not in result.stderr
    assert "nope.yaml" in result.stderr


def test_token_never_printed_by_any_command(tmp_path, receiver):
    secret = "s3cr3t-token-value"
    receiver.set_token("another-token")  # refused, so the shipper logs its auth warning
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(3)])
    cfg = write_config(tmp_path, receiver.url, token=secret)
    outputs = []
    for args in (["check"], ["test"], ["match", vote_line(1)], ["replay", "--dry-run", "logs"]):
        r = run_tailer(*args, "-c", str(cfg), cwd=tmp_path)
        outputs.append(r.stdout + r.stderr)
    proc = start_tailer("replay", "-c", cfg, "logs", cwd=tmp_path)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.stop(signal.SIGKILL, timeout=30)  # paused on 401 forever, as designed
    out = proc.stdout() + proc.stderr()
    outputs.append(out)
    assert "refuses the token" in out or "401" in out
    for text in outputs:
        assert secret not in text
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"`tailer {name}" in readme, f"`tailer {name}` is missing from README.md"


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output, f"`tailer {name} --help` has no example"


def test_log_format_json_gives_one_json_object_per_stderr_line(tmp_path, receiver):
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(3)])
    cfg = write_config(tmp_path, receiver.url)
    assert run_tailer("replay", "-c", str(cfg), "logs", cwd=tmp_path).code == 0
    result = run_tailer("replay", "--log-format", "json", "-c", str(cfg), "logs", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "already replayed" in result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)


@pytest.mark.parametrize("command", [["replay", "logs"], ["run"]])
def test_unusable_state_dir_is_one_clean_error_before_anything_is_sent(tmp_path, receiver, command):
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(3)])
    cfg = write_config(tmp_path, receiver.url, state_dir="blocker/state")
    (tmp_path / "blocker").write_text("a file where state_dir's parent should be")
    result = run_tailer(*command, "-c", str(cfg), cwd=tmp_path)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert re.search(r"^Error: state_dir .*blocker/state is not usable", result.stderr, re.M), result.stderr
    assert receiver.count() == 0
