"""``tailer status`` from a literal checkpoint file and real files: size, offset, bytes behind, gone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import write_config

from tailer.config.settings import load_settings
from tailer.run.status import render_status


def settings_for(tmp_path: Path):
    rules = "rules:\n  - name: r\n    pattern: 'X(?P<uid>\\d+)'\n    oper_id: '1'\n"
    return load_settings(write_config(tmp_path, "embedded", token="t", paths=[f"{tmp_path}/*.log"], exclude=(),
                                      state_dir=tmp_path / "state", rules=rules))  # fmt: skip


def write_checkpoint(tmp_path: Path, live: Path) -> None:
    st = live.stat()
    (tmp_path / "state").mkdir(exist_ok=True)
    # A literal version-1 document, as `tailer run` writes it (format changes must be deliberate).
    (tmp_path / "state" / "checkpoint.json").write_text(f"""{{
  "version": 1,
  "written_at": 1700000000.0,
  "files": [
    {{"key": "abc123", "path": "{live}", "offset": 100, "fingerprint": "abc123", "dev": {st.st_dev}, "ino": {st.st_ino}, "offset_hash": "h", "size": 100, "updated_at": 1700000000.0, "last_ack_at": 1700000000.0, "done": false}},
    {{"key": "dev1-ino2", "path": "{tmp_path}/rotated.log", "offset": 50, "fingerprint": null, "dev": 1, "ino": 2, "offset_hash": null, "size": 50, "updated_at": 1700000000.0, "last_ack_at": null, "done": true}}
  ]
}}
""")


def test_status_json_shows_size_offset_and_bytes_behind_per_file(tmp_path):
    live = tmp_path / "app.log"
    live.write_bytes(b"x" * 250)
    write_checkpoint(tmp_path, live)
    doc = json.loads(render_status(settings_for(tmp_path), as_json=True))
    by_key = {f["key"]: f for f in doc["files"]}
    assert by_key["abc123"] == {
        "path": str(live), "key": "abc123", "size": 250, "offset": 100, "behind": 150,
        "last_ack_at": 1700000000.0, "updated_at": 1700000000.0, "done": False,
    }  # fmt: skip
    assert by_key["dev1-ino2"]["size"] is None and by_key["dev1-ino2"]["behind"] is None
    assert doc["behind_total"] == 150 and doc["problem"] is None


def test_status_text_table_names_each_file_and_marks_gone_ones(tmp_path):
    live = tmp_path / "app.log"
    live.write_bytes(b"x" * 250)
    write_checkpoint(tmp_path, live)
    text = render_status(settings_for(tmp_path), as_json=False, now=1700000010.0)
    app_row = next(row for row in text.splitlines() if row.startswith(str(live)))
    assert app_row.split()[1:5] == ["250", "100", "150", "10s"]
    gone_row = next(row for row in text.splitlines() if "rotated.log" in row)
    assert "gone" in gone_row and "(done)" in gone_row and "never" in gone_row
    assert text.splitlines()[-1].startswith("2 file(s), 150 byte(s) behind")


def test_status_calls_a_path_that_names_another_file_now_gone(tmp_path):
    live = tmp_path / "app.log"
    live.write_bytes(b"x" * 250)
    write_checkpoint(tmp_path, live)
    os.rename(live, tmp_path / "app.log.1")
    live.write_bytes(b"new")
    doc = json.loads(render_status(settings_for(tmp_path), as_json=True))
    assert {f["key"]: f["size"] for f in doc["files"]}["abc123"] is None


def test_status_without_checkpoint_or_with_a_bad_one_says_so_and_touches_nothing(tmp_path):
    settings = settings_for(tmp_path)
    assert render_status(settings, as_json=False).startswith("no checkpoint yet at ")
    (tmp_path / "state").mkdir()
    bad = tmp_path / "state" / "checkpoint.json"
    bad.write_text("{half")
    assert "unusable" in render_status(settings, as_json=False)
    assert bad.read_text() == "{half"  # status never moves run's file aside
