"""`tailer dlq`: list, resend and purge the dead-letter file, against the real receiver and real processes,
while other processes append to the same file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run_tailer, start_tailer, wait_until, write_config
from logdata import vote_line, write_log

from tailer.cli.main import main
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.dlq import DeadLetterBusy, DeadLetterFile, apply_journal, parse_letters

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path):
    """The click command in-process, with cwd set (rules.yaml is found relative to it)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def dead_letter_path(tmp: Path) -> Path:
    return tmp / "state" / "dead-letter.jsonl"


def listed(tmp: Path) -> list[dict]:
    result = cli("dlq", "list", "--json", cwd=tmp)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["records"]


def rejected_replay(tmp: Path, make_receiver, n: int, *, concurrency: int = 4):
    """A real `tailer replay` of n vote lines into a receiver that rejects every one (HTTP 400)."""
    receiver = make_receiver(fail_rate=1.0, fail_status=400)
    write_config(tmp, receiver.url, concurrency=concurrency)
    write_log(tmp / "logs" / "app.log", [vote_line(i) for i in range(n)])
    result = run_tailer("replay", "logs", cwd=tmp)
    assert result.code == 3, result.stderr  # finished, with records dead-lettered
    assert receiver.count() == 0
    return receiver


def nonces(items) -> list[str]:
    return sorted(item["payload"]["nonce"] if "payload" in item else item["nonce"] for item in items)


def test_rejected_records_are_listed_and_resend_delivers_them_once_the_platform_accepts(tmp_path, make_receiver):
    receiver = rejected_replay(tmp_path, make_receiver, 12)
    text = cli("dlq", "list", cwd=tmp_path).output.splitlines()
    assert text[0].split() == ["TIME", "RULE", "OPER_ID", "ANSWER", "ORIGIN"]
    assert len(text) == 1 + 12 + 1 and text[-1].startswith("12 record(s) in ")
    row = text[1].split()
    assert row[0].endswith("Z") and row[1:5] == ["vote", "1504000120679", "HTTP", "400"]
    assert row[-1].startswith(str(tmp_path / "logs" / "app.log") + ":")
    letters = listed(tmp_path)
    assert {e["status"] for e in letters} == {400} and all(e["origin"]["offset"] > 0 for e in letters)

    receiver.set_faults(fail_rate=0.0)
    result = cli("dlq", "resend", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "sent            12 (removed from the file)" in result.output
    # The payloads as they were dead-lettered: same nonce, same ts, same data.
    got = sorted(receiver.records(), key=lambda r: r["nonce"])
    want = sorted((e["payload"] for e in letters), key=lambda p: p["nonce"])
    assert got == want
    assert listed(tmp_path) == [] and dead_letter_path(tmp_path).read_bytes() == b""
    again = cli("dlq", "resend", cwd=tmp_path)
    assert again.exit_code == 0 and "nothing to resend" in again.output and receiver.count() == 12


def test_records_rejected_again_stay_with_their_new_answer_and_exit_3(tmp_path, make_receiver):
    receiver = rejected_replay(tmp_path, make_receiver, 6, concurrency=1)
    before = {e["payload"]["nonce"]: e for e in listed(tmp_path)}
    receiver.set_faults(fail_rate=0.0)
    receiver.fail_next(2, status=422)
    result = cli("dlq", "resend", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert "rejected again  2" in result.output and "sent            4" in result.output
    left = listed(tmp_path)
    assert len(left) == 2 and receiver.count() == 4
    for entry in left:
        old = before[entry["payload"]["nonce"]]
        assert entry["payload"] == old["payload"] and entry["origin"] == old["origin"]
        assert (entry["status"], entry["answer"]["ret"]) == (422, 422) and old["status"] == 400
        assert entry["attempts"] == old["attempts"] + 1 and entry["time"] >= old["time"]
    assert set(nonces(left)).isdisjoint(nonces(receiver.records()))


@pytest.mark.slow
def test_resend_killed_mid_way_loses_nothing_resends_at_most_its_window_and_a_rerun_completes(
    tmp_path, make_receiver
):
    total, window = 40, 4
    receiver = rejected_replay(tmp_path, make_receiver, total, concurrency=window)
    everything = nonces(listed(tmp_path))
    receiver.set_faults(fail_rate=0.0, latency=0.2)
    proc = start_tailer("dlq", "resend", cwd=tmp_path)
    try:
        assert wait_until(lambda: receiver.count() >= 8, step=0.02), "the resend delivered nothing"
    finally:
        code = proc.stop(signal.SIGKILL, timeout=30)
    assert code == -signal.SIGKILL
    received = nonces(receiver.records())
    assert len(received) < total, "the resend finished before it was killed: the test proved nothing"
    still = nonces(listed(tmp_path))  # the journal of the killed resend applied
    assert sorted(set(received) | set(still)) == everything  # nothing lost
    assert len(received) + len(still) <= total + window  # only the in-flight window is in both

    receiver.set_faults(latency=0.0)
    rerun = run_tailer("dlq", "resend", cwd=tmp_path)
    assert rerun.code == 0, rerun.stderr
    assert nonces(receiver.records()) == everything and listed(tmp_path) == []
    assert receiver.duplicates <= window  # exact resends the receiver acknowledged without storing
    assert not (tmp_path / "state" / "dead-letter.jsonl.resend").read_bytes()


def test_lines_appended_while_a_resend_runs_survive_it(tmp_path, make_receiver):
    receiver = rejected_replay(tmp_path, make_receiver, 10, concurrency=2)
    receiver.set_faults(fail_rate=0.0, latency=0.3)
    proc = start_tailer("dlq", "resend", cwd=tmp_path)
    writer = DeadLetterWriter(dead_letter_path(tmp_path))  # what `tailer run` appends with
    try:
        assert wait_until(lambda: receiver.count() >= 1, step=0.02), "the resend did not start"
        for i in range(20):
            payload = {"ts": 1, "nonce": f"appended-{i}", "data": {"oper_id": "1504000120618"}}
            writer.write(payload=payload, answer={"ret": 400}, status=400, attempts=1, origin=None,
                         rule="vote", reason="HTTP 400")  # fmt: skip
        assert proc.poll() is None, "the resend ended before the appends: the test proved nothing"
    finally:
        code = proc.wait(timeout=120)
    assert code == 0, proc.stderr()
    assert receiver.count() == 10
    assert nonces(listed(tmp_path)) == sorted(f"appended-{i}" for i in range(20))


def test_a_rewrite_never_loses_a_line_another_process_appends(tmp_path):
    """The lock: one process appends (as `tailer run` does) while this one rewrites the file over and over."""
    path = dead_letter_path(tmp_path)
    dlq = DeadLetterFile(path)
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"old": i}) + "\n" for i in range(150)))
    script = (
        "import sys\nfrom tailer.ship.deadletter import DeadLetterWriter\nw = DeadLetterWriter(sys.argv[1])\n"
        "for i in range(150):\n"
        "    w.write(payload={'nonce': f'new-{i}'}, answer=None, status=400, attempts=1, origin=None,"
        " rule='r', reason='x')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)])
    seen: list[int] = []

    def drop_one_old(letters):
        seen.append(sum(1 for x in letters if x.entry and "payload" in x.entry))
        olds = [x for x in letters if x.entry and "old" in x.entry]
        return [x for x in letters if not olds or x is not olds[0]]

    try:
        assert wait_until(lambda: b"new-" in path.read_bytes(), step=0.02), "the other process did not append"
        for _ in range(150):
            dlq.rewrite(drop_one_old)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert seen[0] < seen[-1], "no append landed between two rewrites: the test proved nothing"
    entries = [x.entry for x in dlq.letters()]
    assert sorted(e["payload"]["nonce"] for e in entries) == sorted(f"new-{i}" for i in range(150))


def test_the_writer_appends_to_the_new_file_after_a_rewrite(tmp_path):
    path = dead_letter_path(tmp_path)
    writer, dlq = DeadLetterWriter(path), DeadLetterFile(path)
    writer.write(payload={"nonce": "a"}, answer=None, status=400, attempts=1, origin=None, rule="r", reason="x")
    inode = os.stat(path).st_ino
    dlq.rewrite(lambda letters: [])
    assert os.stat(path).st_ino != inode
    writer.write(payload={"nonce": "b"}, answer=None, status=400, attempts=1, origin=None, rule="r", reason="x")
    assert [x.entry["payload"]["nonce"] for x in dlq.letters()] == ["b"]


def test_applying_a_journal_twice_is_applying_it_once():
    """A crash between the rewrite and emptying the journal makes the next resend apply it again."""
    lines = b'{"n": 1}\n{"n": 2}\nnot json\n{"n": 3}\n'
    letters = parse_letters(lines)
    journal = [
        {"keys": [letters[0].key], "entry": None},
        {"keys": [letters[1].key, letters[3].key], "entry": {"n": 2, "again": True}},
        {"keys": ["absent"], "entry": None},
    ]
    once = apply_journal(letters, journal)
    assert [x.entry for x in once] == [{"n": 2, "again": True}, None]
    assert [x.raw for x in apply_journal(once, journal)] == [x.raw for x in once]


def test_purge_removes_records_dead_lettered_before_a_time_and_keeps_the_rest(tmp_path):
    receiver_less = write_config(tmp_path, "http://127.0.0.1:9/api")
    assert receiver_less.exists()
    path = dead_letter_path(tmp_path)
    path.parent.mkdir(parents=True)
    times = ["2026-10-01T00:00:00.000Z", "2026-10-31T23:59:59.999Z", "2026-11-01T00:00:00.000Z"]
    path.write_text("".join(json.dumps({"time": t, "payload": {"nonce": t}}) + "\n" for t in times) + "torn{\n")
    result = cli("dlq", "purge", "--before", "2026-11-01T00:00:00+00:00", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("purged 2 record(s), 2 kept")
    assert path.read_text() == json.dumps({"time": times[2], "payload": {"nonce": times[2]}}) + "\ntorn{\n"


def test_a_second_resend_or_purge_is_refused_while_one_runs(tmp_path, receiver):
    write_config(tmp_path, receiver.url)
    dlq = DeadLetterFile(dead_letter_path(tmp_path))
    with dlq.operator():
        for args in (("dlq", "resend"), ("dlq", "purge", "--before", "0")):
            result = cli(*args, cwd=tmp_path)
            assert result.exit_code == 1 and "another `tailer dlq resend` or `purge`" in result.output
        with pytest.raises(DeadLetterBusy), dlq.operator():
            pass
