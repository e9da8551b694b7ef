"""The lifecycle of one logical file (tailer.source.lifecycle, TailedFile) on real files in a temp directory.

Every (state, transition) pair is tried against the table below, written out here on its own rather than
read from ``TRANSITIONS``, so a change to the production table has to be made twice, on purpose: a legal
transition lands in the state it names and takes or gives the descriptor as it says; an illegal one raises
LifecycleError and changes nothing. Then the follower is shown calling the transitions for real rotations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from tailer.source.fileset import Follower
from tailer.source.identity import identify
from tailer.source.lifecycle import OPEN_STATES, State
from tailer.source.settings import SourceSettings
from tailer.source.tailfile import LifecycleError, TailedFile

S = State
OPEN = {S.FOLLOWING, S.MOVED, S.DRAINING, S.DELETED, S.FINISHED}
CLOSED = {S.DETACHED, S.TRUNCATED_AWAY, S.DONE}

# transition -> (states it may start from, state it leads to)
LEGAL: dict[str, tuple[set[State], State]] = {
    "attach": (CLOSED, S.FOLLOWING),
    "mark_moved": ({S.FOLLOWING, S.MOVED}, S.MOVED),
    "renamed_to": ({S.MOVED, S.DRAINING}, S.FOLLOWING),
    "rotated_away": ({S.FOLLOWING, S.MOVED}, S.DRAINING),
    "deleted": ({S.FOLLOWING, S.MOVED, S.DRAINING}, S.DELETED),
    "finish": ({S.DRAINING, S.DELETED}, S.FINISHED),
    "retire": ({S.FINISHED}, S.DONE),
    "truncated_away": (OPEN, S.TRUNCATED_AWAY),
    "detach": (OPEN, S.DETACHED),
    "close": (OPEN, S.DETACHED),
}


def test_open_states_are_the_ones_with_a_descriptor():
    assert OPEN_STATES == OPEN and set(State) == OPEN | CLOSED


class Files:
    """Real TailedFiles over one real log, brought into any state by legal transitions only."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "app.log"
        self.log.write_bytes(b"one\ntwo\nthree")  # a partial last line, for finish() to flush
        self.streams: list[BinaryIO] = []

    def open(self) -> BinaryIO:
        stream = open(self.log, "rb")  # noqa: SIM115 - closed in close_all
        self.streams.append(stream)
        return stream

    def attach(self, tf: TailedFile) -> None:
        stream = self.open()
        tf.attach(stream, identify(stream.fileno()), 0, encoding="utf-8", max_line_bytes=65536)

    def make(self, state: State) -> TailedFile:
        tf = TailedFile("k", str(self.log), done=state is S.DONE)
        if state in (S.DETACHED, S.DONE):
            return tf
        self.attach(tf)
        assert [ln.text for ln in tf.read(1 << 20)] == ["one", "two"]
        if state is S.MOVED:
            tf.mark_moved()
        elif state in (S.DRAINING, S.FINISHED):
            tf.rotated_away()
            if state is S.FINISHED:
                tf.finish()
        elif state is S.DELETED:
            tf.deleted()
        elif state is S.TRUNCATED_AWAY:
            tf.truncated_away()
        assert tf.state is state
        return tf

    def apply(self, tf: TailedFile, transition: str) -> object:
        if transition == "attach":
            stream = self.open()
            return tf.attach(stream, identify(stream.fileno()), 0, encoding="utf-8", max_line_bytes=65536)
        if transition == "renamed_to":
            return tf.renamed_to(str(self.log) + ".1")
        return getattr(tf, transition)()

    def close_all(self) -> None:
        for stream in self.streams:
            stream.close()


@pytest.fixture
def files(tmp_path):
    f = Files(tmp_path)
    yield f
    f.close_all()


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("start", list(State), ids=lambda s: s.name)
@pytest.mark.parametrize("transition", list(LEGAL))
def test_every_transition_from_every_state(files, start, transition):
    tf = files.make(start)
    allowed, target = LEGAL[transition]
    fd = tf._stream.fileno() if tf.attached else None
    if start not in allowed:
        with pytest.raises(LifecycleError, match=f"{transition}: .* is {start.name}, not "):
            files.apply(tf, transition)
        assert tf.state is start and tf.attached == (start in OPEN)
        return
    out = files.apply(tf, transition)
    assert tf.state is target
    assert tf.attached == (target in OPEN) and tf.done == (target is S.DONE)
    if transition in ("detach", "truncated_away"):  # the descriptor is handed back, still open
        assert out is not None and out.fileno() == fd and _fd_open(fd)
    elif transition in ("close", "retire"):
        assert not _fd_open(fd)
    if transition == "renamed_to":
        assert tf.path == str(files.log) + ".1"


def test_finishing_a_file_that_is_not_draining_raises_and_flushes_nothing(files):
    tf = files.make(S.FOLLOWING)
    with pytest.raises(LifecycleError, match="finish: .* is FOLLOWING, not DELETED, DRAINING"):
        tf.finish()
    assert tf.state is S.FOLLOWING
    with open(files.log, "a") as f:
        f.write(" and more\n")
    assert [ln.text for ln in tf.read(1 << 20)] == ["three and more"]  # the partial line was still held


def test_finish_hands_out_the_partial_last_line_once(files):
    tf = files.make(S.DRAINING)
    last = tf.finish()
    assert last is not None and (last.text, last.end) == ("three", files.log.stat().st_size)
    assert tf.read(1 << 20) == [] and tf.flush() is None


def test_attaching_twice_raises_and_keeps_the_first_descriptor(files):
    tf = files.make(S.FOLLOWING)
    first = tf._stream
    second = files.open()
    with pytest.raises(LifecycleError, match="attach: .* is FOLLOWING"):
        tf.attach(second, identify(second.fileno()), 0, encoding="utf-8", max_line_bytes=65536)
    assert tf._stream is first and tf.state is S.FOLLOWING


def test_a_failed_attach_leaves_the_file_without_descriptor(files):
    tf = files.make(S.DETACHED)
    stream = files.open()
    ident = identify(stream.fileno())
    stream.close()
    with pytest.raises(ValueError):  # seek on a closed file
        tf.attach(stream, ident, 0, encoding="utf-8", max_line_bytes=65536)
    assert tf.state is S.DETACHED and not tf.attached and tf._stream is None
    files.attach(tf)
    assert tf.state is S.FOLLOWING


def test_retire_refuses_while_lines_are_in_flight(files):
    tf = files.make(S.DRAINING)
    tf.watermark.track(4)  # "one\n" sent, not yet acknowledged
    tf.finish()
    with pytest.raises(LifecycleError, match="in flight"):
        tf.retire()
    assert tf.state is S.FINISHED and tf.attached
    tf.watermark.settle(4)
    tf.retire()
    assert tf.done and not tf.attached


def test_done_is_what_the_checkpoint_keeps(files):
    retired = files.make(S.FINISHED)
    retired.retire()
    entry = retired.checkpoint(1000.0)
    assert entry.done is True
    assert TailedFile.from_checkpoint(entry).state is S.DONE
    stopped = files.make(S.FOLLOWING)
    stopped.close()
    entry = stopped.checkpoint(1000.0)
    assert entry.done is False
    assert TailedFile.from_checkpoint(entry).state is S.DETACHED


def test_idle_clock_of_a_draining_file(files):
    tf = files.make(S.DRAINING)
    assert tf.idle_for(10.0) == 0.0
    assert tf.idle_for(13.0) == 3.0
    tf.busy()  # it read lines: counted again from the next look
    assert tf.idle_for(20.0) == 0.0
    assert tf.idle_for(21.5) == 1.5
    tf.deleted()  # a transition stops the clock
    with pytest.raises(LifecycleError, match="idle_for: .* is DELETED, not DRAINING"):
        tf.idle_for(22.0)
    tf.busy()  # a deleted file may be busy too (it is still read to its end)
    with pytest.raises(LifecycleError, match="busy: .* is FOLLOWING"):
        files.make(S.FOLLOWING).busy()


def test_gone_clock_runs_only_without_a_descriptor_and_restarts_after_an_attach(files):
    tf = files.make(S.FOLLOWING)
    with pytest.raises(LifecycleError, match="gone_for: .* is FOLLOWING"):
        tf.gone_for(1.0)
    tf.close()
    assert tf.gone_for(5.0) == 0.0
    assert tf.gone_for(9.0) == 4.0
    files.attach(tf)
    tf.close()
    assert tf.gone_for(30.0) == 0.0


# -- the follower calls the transitions --------------------------------------------------------------


def _follower(tmp_path: Path, pattern: str = "*.log") -> Follower:
    return Follower([SourceSettings(paths=(str(tmp_path / pattern),))], rescan_interval=0.0, rotate_wait=2.0)


def _turn(follower: Follower, now: float) -> list[str]:
    out = []
    for batch in follower.poll(now):
        for ln in batch.lines:
            batch.file.watermark.skip(ln.end)
            out.append(ln.text)
    return out


def test_rename_out_of_the_globs_drains_waits_finishes_and_retires(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("a\nb")
    f = _follower(tmp_path)
    try:
        assert _turn(f, 1.0) == ["a"]
        (tf,) = f.open_files()
        log.rename(tmp_path / "app.log.1")
        assert _turn(f, 2.0) == [] and tf.state is S.DRAINING  # idle at its end from now on
        assert _turn(f, 3.0) == [] and tf.state is S.DRAINING  # rotate_wait not over: the writer may add
        assert _turn(f, 4.0) == ["b"] and tf.state is S.FINISHED
        assert _turn(f, 5.0) == [] and tf.state is S.DONE and not tf.attached
        assert f.stats.rotations == 1 and f.stats.files_closed == 1
    finally:
        f.stop()


def test_a_deleted_file_is_finished_without_the_rotation_wait(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("a\nb")
    f = _follower(tmp_path)
    try:
        assert _turn(f, 1.0) == ["a"]
        (tf,) = f.open_files()
        log.unlink()
        assert _turn(f, 2.0) == ["b"] and tf.state is S.FINISHED
        assert _turn(f, 3.0) == [] and tf.state is S.DONE
        assert f.stats.deletions == 1
    finally:
        f.stop()


def test_truncation_leaves_the_old_file_truncated_away_and_follows_the_descriptor_as_new(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i:04d} {'x' * 60}\n" for i in range(40)))  # past the fingerprint
    f = _follower(tmp_path)
    try:
        assert len(_turn(f, 1.0)) == 40
        (old,) = f.open_files()
        log.write_text("fresh\n")
        assert _turn(f, 2.0) == ["fresh"]
        (new,) = f.open_files()
        assert new is not old and new.state is S.FOLLOWING and old.state is S.TRUNCATED_AWAY
        assert f.stats.truncations == 1
    finally:
        f.stop()


def test_a_rotated_away_file_the_globs_match_again_is_followed_not_drained(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("a\npartial")
    source = SourceSettings(paths=(str(tmp_path / "*.log"),))
    f = _follower(tmp_path)
    try:
        assert _turn(f, 1.0) == ["a"]
        (tf,) = f.open_files()
        f.update_sources([SourceSettings(paths=(str(tmp_path / "*.txt"),))])  # SIGHUP: no longer matched
        assert _turn(f, 2.0) == [] and tf.state is S.DRAINING
        f.update_sources([source])  # matched again before it was finished
        assert _turn(f, 3.0) == [] and tf.state is S.FOLLOWING and tf.attached
        for now in (10.0, 20.0):  # long past rotate_wait: the partial line still waits for its newline
            assert _turn(f, now) == []
        with open(log, "a") as out:
            out.write(" line\n")
        assert _turn(f, 21.0) == ["partial line"] and f.stats.files_closed == 0
    finally:
        f.stop()
