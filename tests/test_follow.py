"""The follower on real files in temp directories: discovery, wake-ups, every rotation style, restarts.

A test drives ``Follower.poll(now)`` with a fake clock (no sleeping) and plays the consumer: every line is
``skip()``ed on its file's watermark, which also proves offsets only ever increase within a logical file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import threading
from pathlib import Path

import pytest

from tailer.source.fileset import Follower
from tailer.source.identity import FINGERPRINT_BYTES
from tailer.source.settings import SourceSettings


def line(i: int, tag: str = "a") -> str:
    return f"2026-11-28 10:00:{i % 60:02d},000 INFO {tag} VOTE_JOIN voteId={i:06d} uid=42 padding"


class Harness:
    """Polls a follower with a fake monotonic clock and collects the lines it hands out."""

    def __init__(self, tmp_path: Path, *patterns: str, checkpoints=None, wake=None, **kw) -> None:
        source_kw = {k: kw.pop(k) for k in ("start_at", "exclude", "poll", "max_line_bytes") if k in kw}
        self.source = SourceSettings(paths=tuple(str(tmp_path / p) for p in patterns), **source_kw)
        kw.setdefault("rotate_wait", 2.0)
        self.follower = Follower([self.source], checkpoints=checkpoints, wake=wake, **kw)
        self.now = 0.0
        self.got: list[str] = []
        self.origins: list[tuple[str, int]] = []

    def turn(self, step: float = 1.0) -> int:
        self.now += step
        before = len(self.got)
        for batch in self.follower.poll(self.now):
            for ln in batch.lines:
                batch.file.watermark.skip(ln.end)
                self.got.append(ln.text)
                self.origins.append((batch.file.key, ln.end))
        return len(self.got) - before

    def settle(self, max_turns: int = 60) -> None:
        """Poll until four quiet turns in a row (long enough for rotate_wait), at most ``max_turns``."""
        quiet = 0
        for _ in range(max_turns):
            quiet = 0 if self.turn() or self.follower.more else quiet + 1
            if quiet >= 4:
                return
        raise AssertionError("follower never went quiet")

    def snapshot(self):
        return self.follower.snapshot(1000.0)


@pytest.fixture
def harness(tmp_path):
    made: list[Harness] = []

    def make(*patterns: str, **kw) -> Harness:
        h = Harness(tmp_path, *patterns, **kw)
        made.append(h)
        h.follower.start()
        return h

    yield make
    for h in made:
        h.follower.stop()


def write(path: Path, lines, mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as f:
        f.writelines(f"{text}\n" for text in lines)


def open_fd_targets() -> list[str]:
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue
    return out


def test_new_file_is_picked_up_on_a_watchdog_wakeup(tmp_path, harness):
    woke = threading.Event()
    h = harness("*.log", wake=woke.set, rescan_interval=1e9)  # no periodic rescan: only events find it
    h.turn(step=0)
    assert h.got == []
    woke.clear()
    write(tmp_path / "new.log", [line(1), line(2)])
    assert woke.wait(10), "no wake-up from watchdog"
    h.turn(step=0)
    assert h.got == [line(1), line(2)]


def test_appended_lines_are_read_and_a_partial_line_waits_for_its_newline(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(1)])
    h = harness("*.log")
    h.settle()
    with open(log, "a") as f:
        f.write(line(2)[:20])
    h.settle()
    assert h.got == [line(1)]
    with open(log, "a") as f:
        f.write(line(2)[20:] + "\n" + line(3) + "\n")
    h.settle()
    assert h.got == [line(1), line(2), line(3)]


def test_read_budget_bounds_each_poll_per_file(tmp_path, harness):
    write(tmp_path / "a.log", [line(i) for i in range(100)])
    h = harness("*.log", read_budget=1000)
    assert 0 < h.turn() <= 1000 // len(line(0)) + 1
    assert h.follower.more
    h.settle()
    assert h.got == [line(i) for i in range(100)]


def _rotating_handler_case(tmp_path, harness, pattern: str, handler: logging.Handler) -> None:
    logger = logging.getLogger(f"test.rotation.{pattern}.{type(handler).__name__}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    expected = []
    try:
        h = harness(pattern)
        n = 0
        for rnd in range(4):
            for _ in range(30):
                expected.append(line(n))
                logger.info(line(n))
                n += 1
            if rnd % 2 or not pattern.endswith("*"):
                # Seen before the rollover, or not: a file renamed out of the globs before it was ever
                # opened cannot be followed, so only when the globs include the backups may we skip a look.
                h.turn()
            handler.doRollover()
            for _ in range(5):
                expected.append(line(n))
                logger.info(line(n))
                n += 1
            h.turn()
        h.settle()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert sorted(h.got) == sorted(expected)
    assert len(h.got) == len(set(h.got)), "a line was read twice"


@pytest.mark.parametrize("pattern", ["app.log*", "app.log"], ids=["backups-in-globs", "only-the-live-name"])
def test_rotating_file_handler_rename_rotation_loses_and_duplicates_nothing(tmp_path, harness, pattern):
    handler = logging.handlers.RotatingFileHandler(tmp_path / "app.log", maxBytes=10**9, backupCount=2)
    _rotating_handler_case(tmp_path, harness, pattern, handler)


@pytest.mark.parametrize("pattern", ["app.log*", "app.log"], ids=["backups-in-globs", "only-the-live-name"])
def test_timed_rotating_file_handler_rollover_loses_and_duplicates_nothing(tmp_path, harness, pattern):
    handler = logging.handlers.TimedRotatingFileHandler(tmp_path / "app.log", when="midnight", backupCount=2)
    _rotating_handler_case(tmp_path, harness, pattern, handler)


def test_rotated_away_file_is_drained_and_closed_and_the_new_one_read_from_zero(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(30)])
    h = harness("app.log")
    h.settle()
    with open(log, "a") as writer:  # the app keeps its descriptor across the rename, as loggers do
        os.rename(log, tmp_path / "app.log.1")
        writer.write(line(30) + "\n" + "partial last line")
    write(log, [line(100)])
    h.settle()
    assert h.got == [line(i) for i in range(31)] + ["partial last line", line(100)] or sorted(
        h.got
    ) == sorted([line(i) for i in range(31)] + ["partial last line", line(100)])
    assert h.follower.stats.rotations == 1
    assert not any(t.endswith("app.log.1") for t in open_fd_targets())


def _copytruncate(log: Path, copy: Path) -> None:
    shutil.copyfile(log, copy)
    os.truncate(log, 0)


def test_copytruncate_copy_in_globs_recovers_unread_lines_and_resends_nothing(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("app.log*")
    h.settle()
    write(log, [line(i) for i in range(40, 50)])  # written, not yet read when logrotate strikes
    _copytruncate(log, tmp_path / "app.log.1")
    write(log, [line(i, "b") for i in range(5)])
    h.settle()
    assert sorted(h.got) == sorted([line(i) for i in range(50)] + [line(i, "b") for i in range(5)])
    assert len(h.got) == len(set(h.got))
    assert h.follower.stats.truncations == 1
    assert h.follower.stats.copies_recognised == 1


def test_copytruncate_copy_seen_before_the_truncation_is_not_read_twice(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("app.log*")
    h.settle()
    write(log, [line(i) for i in range(40, 45)])
    shutil.copyfile(log, tmp_path / "app.log.1")
    h.settle()  # the copy is deferred while the original (same head) is open; the 5 lines come from it
    write(log, [line(45)])  # after the copy, before the truncation, unread: copytruncate's own loss window
    os.truncate(log, 0)
    write(log, [line(i, "b") for i in range(3)])
    h.settle()
    assert sorted(h.got) == sorted([line(i) for i in range(45)] + [line(i, "b") for i in range(3)])
    assert len(h.got) == len(set(h.got))


def test_copytruncate_excluded_copy_restarts_the_original_at_zero(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("app.log")
    h.settle()
    _copytruncate(log, tmp_path / "app.log.1")
    write(log, [line(i, "b") for i in range(3)])
    h.settle()
    assert h.got == [line(i) for i in range(40)] + [line(i, "b") for i in range(3)]


def test_truncation_in_place_restarts_at_zero_as_a_new_file(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("*.log")
    h.settle()
    old_key = h.follower.open_files()[0].key
    write(log, [line(i, "b") for i in range(2)], mode="w")  # O_TRUNC: same inode, shorter content
    h.settle()
    assert h.got == [line(i) for i in range(40)] + [line(i, "b") for i in range(2)]
    assert h.follower.stats.truncations == 1
    assert h.follower.open_files()[0].key != old_key


def test_deleted_file_is_drained_through_its_descriptor_then_closed(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(50)])
    h = harness("*.log", read_budget=512)
    h.turn()
    assert 0 < len(h.got) < 50
    with open(log, "a") as writer:
        os.unlink(log)
        writer.write(line(50) + "\n" + "no newline at the end")
    h.settle()
    assert h.got == [line(i) for i in range(51)] + ["no newline at the end"]
    assert h.follower.stats.deletions == 1
    assert h.follower.open_files() == []
    assert not any("app.log" in t for t in open_fd_targets())


def test_inode_reuse_with_new_content_is_a_new_file(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, ["short old content"])  # short: known by dev/ino only
    h = harness("*.log")
    h.settle()
    ino = log.stat().st_ino
    log.unlink()
    h.settle()  # drained and closed: the inode is free
    for attempt in range(20):
        write(log, [f"brand new {attempt}"], mode="w")
        if log.stat().st_ino == ino:
            break
        log.unlink()
    else:
        pytest.skip("the file system did not reuse the inode")
    h.settle()
    assert h.got[0] == "short old content"
    assert h.got[-1].startswith("brand new")


def test_truncate_and_refill_while_stopped_is_caught_by_the_offset_hash(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("*.log")
    h.settle()
    saved = h.snapshot()
    h.follower.stop()
    # Same head (so same fingerprint key), different bytes before the saved offset, and longer.
    write(log, [line(i) for i in range(20)] + [line(i, "refill") for i in range(30)], mode="w")
    assert log.stat().st_size >= next(iter(saved.values())).offset
    h2 = harness("*.log", checkpoints=saved)
    h2.settle()
    assert h2.got == [line(i) for i in range(20)] + [line(i, "refill") for i in range(30)]
    assert h2.follower.stats.refills == 1


def test_restart_from_checkpoint_reads_only_new_lines(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(40)])
    h = harness("*.log")
    h.settle()
    saved = h.snapshot()
    h.follower.stop()
    write(log, [line(i) for i in range(40, 45)])
    h2 = harness("*.log", checkpoints=saved)
    h2.settle()
    assert h2.got == [line(i) for i in range(40, 45)]


def test_short_file_is_read_and_keeps_its_position_when_it_grows(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, ["one", "two"])
    h = harness("*.log")
    h.settle()
    (tf,) = h.follower.open_files()
    assert tf.key.startswith("dev") and tf.fingerprint is None
    short_saved = h.snapshot()
    write(log, [line(i) for i in range(30)])
    assert log.stat().st_size > FINGERPRINT_BYTES
    h.settle()
    assert h.got == ["one", "two"] + [line(i) for i in range(30)]
    assert tf.fingerprint is not None and tf.key == tf.fingerprint
    assert list(h.follower.files) == [tf.key]
    saved = h.snapshot()
    h.follower.stop()
    h2 = harness("*.log", checkpoints=saved)
    h2.settle()
    assert h2.got == []
    h2.follower.stop()
    # A checkpoint written while the file was short (dev/ino key) still resumes it once it has grown.
    h3 = harness("*.log", checkpoints=short_saved)
    h3.settle()
    assert h3.got == [line(i) for i in range(30)]


def test_start_at_end_skips_existing_content_but_reads_later_files_from_their_start(tmp_path, harness):
    write(tmp_path / "old.log", [line(i) for i in range(5)])
    h = harness("*.log", start_at="end")
    h.settle()
    write(tmp_path / "old.log", [line(5)])
    write(tmp_path / "later.log", [line(i, "later") for i in range(3)])
    h.settle()
    assert sorted(h.got) == sorted([line(5)] + [line(i, "later") for i in range(3)])
    saved = h.snapshot()
    h.follower.stop()
    h2 = harness("*.log", start_at="end", checkpoints=saved)
    write(tmp_path / "old.log", [line(6)])
    h2.settle()
    assert h2.got == [line(6)]


def test_exclude_patterns_and_recursive_globs(tmp_path, harness):
    (tmp_path / "a" / "b").mkdir(parents=True)
    write(tmp_path / "a" / "b" / "deep.log", ["deep"])
    write(tmp_path / "a" / "top.log", ["top"])
    write(tmp_path / "a" / "old.log.gz", ["zipped"])
    h = harness("a/**/*.log*", exclude=("*.gz",))
    h.settle()
    assert sorted(h.got) == ["deep", "top"]


def test_dead_observer_thread_is_restarted_and_wakes_again(tmp_path, harness):
    woke = threading.Event()
    h = harness("*.log", wake=woke.set, rescan_interval=1e9)
    h.turn(step=0)
    watcher = h.follower.watcher
    for observer in list(watcher._observers.values()):  # simulate a thread killed by a bad event
        observer.stop()
        observer.join(10)
    h.turn(step=0)
    assert h.follower.stats.observer_restarts == 1
    woke.clear()
    write(tmp_path / "after.log", ["after restart"])
    assert woke.wait(10), "the restarted observer does not wake us"
    h.turn(step=0)
    assert h.got == ["after restart"]


def test_polling_source_is_followed_without_inotify(tmp_path, harness):
    woke = threading.Event()
    h = harness("*.log", wake=woke.set, poll=True, rescan_interval=1e9)
    h.turn(step=0)
    woke.clear()
    write(tmp_path / "p.log", ["polled"])
    assert woke.wait(10)
    h.turn(step=0)
    assert h.got == ["polled"]


def test_checkpoint_entry_holds_identity_offset_and_hash_together(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(30)])
    h = harness("*.log")
    h.settle()
    (entry,) = h.snapshot().values()
    st = log.stat()
    assert (entry.path, entry.offset, entry.size) == (str(log), st.st_size, st.st_size)
    assert (entry.dev, entry.ino) == (st.st_dev, st.st_ino)
    assert entry.key == entry.fingerprint and entry.offset_hash is not None


def test_entry_of_a_deleted_and_settled_file_is_forgotten_after_forget_after(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(30)])
    h = harness("*.log", forget_after=10.0)
    h.settle()
    key = h.follower.open_files()[0].key
    log.unlink()
    h.settle()
    assert h.follower.files[key].done and key in h.snapshot()
    for _ in range(12):
        h.turn()
    assert key not in h.snapshot()


def test_start_at_end_still_reads_a_file_rotated_in_while_stopped_whole(tmp_path, harness):
    log = tmp_path / "app.log"
    write(log, [line(i) for i in range(30)])
    h = harness("app.log", start_at="end")
    h.settle()
    saved = h.snapshot()
    h.follower.stop()
    os.rename(log, tmp_path / "app.log.1")
    write(log, [line(i, "new") for i in range(3)])
    h2 = harness("app.log", start_at="end", checkpoints=saved)
    h2.settle()
    assert h2.got == [line(i, "new") for i in range(3)]


def test_a_matching_file_that_cannot_be_opened_is_warned_about_once_and_read_once_it_can(
    tmp_path, caplog, monkeypatch
):
    """Permission denied cannot be staged for real here (the tests run as root, who may open anything), so
    open() is made to refuse that one path; everything else is real."""
    import builtins
    import logging

    from tailer.source.fileset import Follower
    from tailer.source.settings import SourceSettings

    logs = tmp_path / "logs"
    logs.mkdir()
    locked = logs / "app.log"
    locked.write_text("VOTE_JOIN voteId=1 uid=2\n")
    real_open, refused = builtins.open, {"on": True}

    def guarded_open(file, *args, **kwargs):
        if refused["on"] and str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    follower = Follower([SourceSettings(paths=(str(logs / "*.log"),))], rescan_interval=0.0)
    try:
        with caplog.at_level(logging.WARNING, logger="tailer.follow"):
            assert follower.poll(1.0) == [] and follower.poll(2.0) == []
        warnings = [r.getMessage() for r in caplog.records if "cannot be opened" in r.getMessage()]
        assert len(warnings) == 1 and str(locked) in warnings[0] and "Permission denied" in warnings[0]
        assert follower.stats.read_errors == 1
        refused["on"] = False
        batches = follower.poll(3.0)
        assert [line.text for b in batches for line in b.lines] == ["VOTE_JOIN voteId=1 uid=2"]
    finally:
        follower.stop()
