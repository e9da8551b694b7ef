"""The checkpoint file: atomic replace, versioned format pinned by a literal file, corrupt files survived."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tailer.errors import CheckpointError
from tailer.state.checkpoint import CheckpointStore, FileCheckpoint, render

DATA = Path(__file__).parent / "data" / "checkpoint-v1.json"

EXPECTED_V1 = {
    "3f2a9c0d5e6b7a8190a1b2c3d4e5f601": FileCheckpoint(
        key="3f2a9c0d5e6b7a8190a1b2c3d4e5f601",
        path="/var/log/app/app.log",
        offset=123456,
        fingerprint="3f2a9c0d5e6b7a8190a1b2c3d4e5f601",
        dev=2049,
        ino=131090,
        offset_hash="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        size=130000,
        updated_at=1764324001.25,
        last_ack_at=1764324000.75,
        done=False,
    ),
    "dev2049-ino131091": FileCheckpoint(
        key="dev2049-ino131091",
        path="/var/log/app/new.log",
        offset=0,
        fingerprint=None,
        dev=2049,
        ino=131091,
        offset_hash=None,
        size=512,
        updated_at=1764324001.25,
        last_ack_at=None,
        done=False,
    ),
    "9e8d7c6b5a4938271605f4e3d2c1b0a9": FileCheckpoint(
        key="9e8d7c6b5a4938271605f4e3d2c1b0a9",
        path="/var/log/app/app.log.2.gz",
        offset=987654321,
        fingerprint="9e8d7c6b5a4938271605f4e3d2c1b0a9",
        dev=2049,
        ino=131001,
        offset_hash="ffeeddccbbaa99887766554433221100",
        size=24000000,
        updated_at=1764300000.0,
        last_ack_at=1764299999.0,
        done=True,
    ),
}


def entries(*offsets: int) -> dict[str, FileCheckpoint]:
    out = {}
    for i, offset in enumerate(offsets):
        cp = FileCheckpoint(
            key=f"k{i}", path=f"/logs/投票-{i}.log", offset=offset, fingerprint=f"k{i}", dev=1, ino=i
        )
        out[cp.key] = cp
    return out


def corrupt_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def test_round_trip(tmp_path: Path):
    store = CheckpointStore(tmp_path / "state" / "checkpoint.json")  # the directory is created
    saved = entries(10, 0, 2**40)
    saved["k1"].last_ack_at = 12.5
    saved["k2"].done = True
    store.save(saved)
    assert store.load() == saved
    assert CheckpointStore(store.path).load() == saved


def test_missing_file_loads_empty_without_warning(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="tailer.checkpoint"):
        assert CheckpointStore(tmp_path / "none.json").load() == {}
    assert caplog.records == []


def test_literal_v1_file_loads_to_expected_values(tmp_path: Path):
    target = tmp_path / "checkpoint.json"
    target.write_bytes(DATA.read_bytes())
    assert CheckpointStore(target).load() == EXPECTED_V1
    assert corrupt_copies(target) == []


def test_saving_the_v1_entries_gives_the_literal_structure(tmp_path: Path):
    store = CheckpointStore(tmp_path / "checkpoint.json")
    store.save(EXPECTED_V1)
    written, literal = json.loads(store.path.read_text("utf-8")), json.loads(DATA.read_text("utf-8"))
    assert isinstance(written.pop("written_at"), float)
    literal.pop("written_at")
    assert written == literal
    assert list(written["files"][0]) == list(literal["files"][0])  # field order too
    # The renderer's exact text is the literal file's: a format change shows up here as a diff.
    assert render(EXPECTED_V1, written_at=1764324001.5) == DATA.read_text("utf-8")


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path: Path):
    store = CheckpointStore(tmp_path / "checkpoint.json")
    store.save(entries(1))
    store.save(entries(2, 3))
    assert store.load() == entries(2, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


def test_crash_before_rename_leaves_old_checkpoint_and_a_harmless_temp(tmp_path: Path):
    store = CheckpointStore(tmp_path / "checkpoint.json")
    store.save(entries(100))
    # A crash between writing the temp file and the rename: the temp is half-written garbage.
    stale = tmp_path / ".checkpoint.json.tmp-deadbeef"
    stale.write_text('{"version": 1, "files": [{"key": "k0", "pa')
    assert store.load() == entries(100)
    store.save(entries(200))
    assert store.load() == entries(200)
    assert not stale.exists()


def test_failed_write_keeps_old_checkpoint_and_raises_checkpoint_error(tmp_path: Path, monkeypatch):
    store = CheckpointStore(tmp_path / "checkpoint.json")
    store.save(entries(100))

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="No space left") as info:
        store.save(entries(200))
    monkeypatch.undo()
    assert isinstance(info.value.__cause__, OSError)
    assert store.load() == entries(100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


def test_save_into_a_path_that_is_a_file_raises_checkpoint_error(tmp_path: Path):
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError):
        CheckpointStore(blocker / "checkpoint.json").save(entries(1))


VALID = json.dumps({"version": 1, "written_at": 1.0, "files": [{"key": "a", "path": "/a", "offset": 5}]})


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty", b"", "empty"),
        ("whitespace", b"  \n", "empty"),
        ("half_written", VALID[: len(VALID) // 2].encode(), "not valid JSON"),
        ("not_json", b"offset=5\n", "not valid JSON"),
        ("not_utf8", b"\xff\xfe{}", "not UTF-8"),
        ("unknown_version", json.dumps({"version": 2, "files": []}).encode(), "version 2"),
        ("no_version", json.dumps({"files": []}).encode(), "version None"),
        ("not_an_object", b"[1, 2]", "not a JSON object"),
        ("files_not_list", json.dumps({"version": 1, "files": {}}).encode(), "'files' is not a list"),
        (
            "entry_without_offset",
            json.dumps({"version": 1, "files": [{"key": "a", "path": "/a"}]}).encode(),
            "offset",
        ),
        (
            "offset_is_text",
            json.dumps({"version": 1, "files": [{"key": "a", "path": "/a", "offset": "5"}]}).encode(),
            "offset",
        ),
        (
            "offset_is_bool",
            json.dumps({"version": 1, "files": [{"key": "a", "path": "/a", "offset": True}]}).encode(),
            "offset",
        ),
        (
            "negative_offset",
            json.dumps({"version": 1, "files": [{"key": "a", "path": "/a", "offset": -1}]}).encode(),
            "negative",
        ),
    ],
)
def test_unusable_file_loads_empty_warns_and_is_kept_aside(tmp_path: Path, caplog, name, content, why):
    path = tmp_path / "checkpoint.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="tailer.checkpoint"):
        assert CheckpointStore(path).load() == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "tailer.checkpoint"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "unusable" in message and "read again" in message and why in message
    kept = corrupt_copies(path)
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert not path.exists()
    # The next save starts a fresh checkpoint and leaves the corrupt copy alone.
    CheckpointStore(path).save(entries(7))
    assert CheckpointStore(path).load() == entries(7)
    assert corrupt_copies(path) == kept


def test_two_corrupt_files_in_the_same_second_are_both_kept(tmp_path: Path):
    path = tmp_path / "checkpoint.json"
    for content in (b"{", b"}"):
        path.write_bytes(content)
        assert CheckpointStore(path).load() == {}
    assert sorted(p.read_bytes() for p in corrupt_copies(path)) == [b"{", b"}"]


def test_unknown_entry_fields_are_ignored(tmp_path: Path):
    path = tmp_path / "checkpoint.json"
    doc = {
        "version": 1,
        "written_at": 1.0,
        "extra_top": True,
        "files": [{"key": "a", "path": "/a", "offset": 5, "future": [1]}],
    }
    path.write_text(json.dumps(doc))
    assert CheckpointStore(path).load() == {"a": FileCheckpoint(key="a", path="/a", offset=5)}


def test_unreadable_checkpoint_is_an_error_not_corruption(tmp_path: Path):
    path = tmp_path / "checkpoint.json"
    path.mkdir()  # reading a directory fails with an OSError that is not "missing"
    with pytest.raises(CheckpointError, match="cannot read"):
        CheckpointStore(path).load()
    assert path.is_dir() and corrupt_copies(path) == []
