"""The dead-letter file: one durable JSON line per rejected record, readable back by tooling."""

from __future__ import annotations

import json
import os

from tailer.record import Origin
from tailer.ship import deadletter
from tailer.ship.deadletter import MAX_ANSWER_CHARS, DeadLetterWriter, read_dead_letters

PAYLOAD = {"ts": 1700000000, "nonce": "n1", "data": {"oper_id": "1504000120618", "gid": 5, "ext2": "网页"}}


def write(writer: DeadLetterWriter, **kw) -> None:
    args = {
        "payload": PAYLOAD,
        "answer": {"ret": 400, "msg": "bad gid"},
        "status": 400,
        "attempts": 1,
        "origin": Origin(file_id="fp-1", path="/logs/app.log", offset=123),
        "rule": "vote",
        "reason": "HTTP 400",
    }
    args.update(kw)
    writer.write(**args)


def test_write_creates_parent_dirs_and_appends_one_json_line_per_record(tmp_path):
    path = tmp_path / "state" / "deep" / "dead-letter.jsonl"
    writer = DeadLetterWriter(path)
    write(writer)
    write(writer, origin=None, status=None, answer=None, reason="x", attempts=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) == {"time", "reason", "rule", "origin", "attempts", "status", "answer", "payload"}
    assert first["origin"] == {"file_id": "fp-1", "path": "/logs/app.log", "offset": 123}
    assert first["payload"] == PAYLOAD and first["answer"] == {"ret": 400, "msg": "bad gid"}
    assert first["time"].endswith("Z")
    assert json.loads(lines[1])["origin"] is None
    assert writer.written == 2
    assert os.stat(path).st_mode & 0o077 == 0  # not readable by others: it holds user data


def test_write_fsyncs_before_returning(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(deadletter.os, "fsync", spy)
    write(DeadLetterWriter(tmp_path / "dl.jsonl"))
    assert len(synced) >= 1


def test_long_answers_are_truncated(tmp_path):
    path = tmp_path / "dl.jsonl"
    writer = DeadLetterWriter(path)
    write(writer, answer="x" * 10_000)
    write(writer, answer={"msg": "y" * 10_000})
    text_answer, json_answer = (e["answer"] for e in read_dead_letters(path))
    assert len(text_answer) == MAX_ANSWER_CHARS + len(deadletter.TRUNCATED_MARK)
    assert text_answer.endswith(deadletter.TRUNCATED_MARK)
    assert isinstance(json_answer, str) and json_answer.startswith('{"msg": "yyy')
    assert len(json_answer) <= MAX_ANSWER_CHARS + len(deadletter.TRUNCATED_MARK)


def test_reader_skips_and_counts_corrupt_lines_and_a_torn_tail_does_not_swallow_the_next_line(tmp_path):
    path = tmp_path / "dl.jsonl"
    writer = DeadLetterWriter(path)
    write(writer)
    with path.open("ab") as f:
        f.write(b"not json\n[1, 2]\n\xff\xfe\n\n")
        f.write(b'{"time": "2026-01-0')  # a write torn by a crash: no newline
    write(writer, rule="lottery")
    letters = read_dead_letters(path)
    assert [e["rule"] for e in letters] == ["vote", "lottery"]
    assert letters.corrupt == 4


def test_reading_a_missing_file_yields_nothing(tmp_path):
    letters = read_dead_letters(tmp_path / "absent.jsonl")
    assert list(letters) == [] and letters.corrupt == 0
