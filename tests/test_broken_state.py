"""The golden folder of broken state files (tests/data/broken-state/, see its README) under the real CLI:
each is put in place as the live checkpoint of a ``tailer run`` and as the replay state of a ``tailer
replay``, and each must start cleanly (exit 0 after SIGTERM or at the end, no traceback) and skip nothing
(every record of the log arrives). DESIGN.md: "a crash at any instant loses nothing"; a state file the
tailer cannot trust means reading again (resends), never skipping.
"""

from __future__ import annotations

import hashlib
import signal
from collections import Counter
from pathlib import Path

import pytest
from helpers import delivered, start_tailer, wait_until, write_config
from logdata import content, fingerprint, vote_line, write_log

GOLDEN = Path(__file__).parent / "data" / "broken-state"
CASES = sorted(p.name for p in GOLDEN.glob("*.json"))
LINES = 60  # ~3.6 KB: past the 1 KiB fingerprint, so the entries can name the file by its head
# Well-formed documents naming the real file: nothing to set aside, the offset is what is wrong.
WELL_FORMED = {"offset-past-eof.json", "offset-past-eof-no-hash.json"}
# The replay state of a replay without window or shard (tailer/run/replay.py state_path); the test checks
# below that this is the one file replay uses, so a renamed state file cannot make this test pass untested.
REPLAY_STATE = "replay-" + hashlib.sha256(b"None|None|-").hexdigest()[:12] + ".json"


def test_the_golden_folder_holds_every_kind_of_broken_state():
    names = set(CASES)
    for kind in ("empty", "truncated", "nul-bytes", "wrong-shape", "unknown-version", "offset-past-eof"):
        assert any(n.startswith(kind) for n in names), kind
    readme = (GOLDEN / "README.md").read_text(encoding="utf-8")
    assert all(f"`{n}`" in readme for n in names), "every golden file is described in its README"


def _setup(tmp_path: Path, url: str, case: str, state_name: str) -> tuple[Path, Path]:
    cfg = write_config(tmp_path, url)
    log = write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(LINES)])
    key = fingerprint(content(log))
    assert key is not None
    text = (GOLDEN / case).read_bytes().replace(b"@KEY@", key.encode()).replace(b"@LOG@", str(log).encode())
    state = tmp_path / "state"
    state.mkdir()
    (state / state_name).write_bytes(text)
    return cfg, state


def _assert_noticed(case: str, state: Path, name: str, err: str) -> None:
    assert "Traceback" not in err, err
    if case in WELL_FORMED:
        return
    assert "unusable" in err, err  # said, with the reason
    assert list(state.glob(f"{name}.corrupt-*")), "the broken file is kept aside, not destroyed"


@pytest.mark.parametrize("case", CASES)
def test_tailer_run_starts_cleanly_on_a_broken_checkpoint_and_skips_nothing(tmp_path, receiver, case):
    cfg, state = _setup(tmp_path, receiver.url, case, "checkpoint.json")
    run = start_tailer("run", "-c", cfg)
    try:
        arrived = wait_until(lambda: len(delivered(receiver)) >= LINES or run.poll() is not None, 60)
    finally:
        code = run.stop(signal.SIGTERM)
    err = run.stderr()
    assert arrived and code == 0, err
    assert delivered(receiver) == Counter(range(LINES)), err
    _assert_noticed(case, state, "checkpoint.json", err)
    assert (state / "checkpoint.json").read_text().startswith("{"), "a good checkpoint replaced it"


@pytest.mark.parametrize("case", CASES)
def test_tailer_replay_starts_cleanly_on_a_broken_replay_state_and_skips_nothing(tmp_path, receiver, case):
    cfg, state = _setup(tmp_path, receiver.url, case, REPLAY_STATE)
    replay = start_tailer("replay", "-c", cfg, tmp_path / "logs")
    try:
        code = replay.wait(timeout=60)
    finally:
        replay.stop(signal.SIGKILL)  # only if still running: bounded
    err = replay.stderr()
    assert code == 0, err
    assert sorted(p.name for p in state.glob("replay-*.json")) == [REPLAY_STATE], "replay used this state file"
    assert delivered(receiver) == Counter(range(LINES)), err
    _assert_noticed(case, state, REPLAY_STATE, err)


@pytest.mark.parametrize("case", sorted(WELL_FORMED))
def test_tailer_replay_of_a_gz_archive_with_an_offset_past_its_end_skips_nothing(tmp_path, receiver, case):
    """The same for a .gz: seeking a gzip stream past its end does not fail, it just reads nothing, so an
    offset past the uncompressed end must be noticed some other way than by an error."""
    cfg = write_config(tmp_path, receiver.url)
    log = write_log(tmp_path / "logs" / "app.log.1.gz", [vote_line(i) for i in range(LINES)], gz=True)
    key = fingerprint(content(log))
    assert key is not None
    text = (GOLDEN / case).read_bytes().replace(b"@KEY@", key.encode()).replace(b"@LOG@", str(log).encode())
    state = tmp_path / "state"
    state.mkdir()
    (state / REPLAY_STATE).write_bytes(text)
    replay = start_tailer("replay", "-c", cfg, log)
    try:
        code = replay.wait(timeout=60)
    finally:
        replay.stop(signal.SIGKILL)
    err = replay.stderr()
    assert code == 0 and "Traceback" not in err, err
    assert sorted(p.name for p in state.glob("replay-*.json")) == [REPLAY_STATE]
    assert delivered(receiver) == Counter(range(LINES)), err
