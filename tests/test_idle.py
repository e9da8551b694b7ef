"""The cheap idle path of the follower: unchanged files are not read, and the glob is not rerun while its
directories are unchanged; neither may delay a change. poll(now) takes the time, so nothing sleeps."""

from __future__ import annotations

import os

from tailer.source.fileset import FULL_RESCAN_EVERY, Follower
from tailer.source.settings import SourceSettings


def lines_of(batches) -> list[str]:
    return [line.text for b in batches for line in b.lines]


def test_new_appended_and_renamed_in_files_are_seen_at_the_next_due_poll(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("a1\n")
    f = Follower([SourceSettings(paths=(str(logs / "*.log"),))])
    try:
        assert lines_of(f.poll(0.0)) == ["a1"]
        assert lines_of(f.poll(1.0)) == []
        assert lines_of(f.poll(1.05)) == []  # unchanged since the last look: not even read
        assert f.open_files()[0].quiet
        with (logs / "a.log").open("a") as out:
            out.write("a2\n")
        assert lines_of(f.poll(1.1)) == ["a2"]  # a quiet file that grows is read at once
        (logs / "b.log").write_text("b1\n")  # a new name: the directory's mtime moves
        assert lines_of(f.poll(2.0)) == ["b1"]
        (tmp_path / "c.tmp").write_text("c1\n")
        (tmp_path / "c.tmp").rename(logs / "c.log")  # renamed into the directory
        assert lines_of(f.poll(3.0)) == ["c1"]
    finally:
        f.stop()


def test_a_recursive_glob_is_rescanned_whatever_its_top_directory_says(tmp_path):
    (tmp_path / "app" / "x").mkdir(parents=True)
    f = Follower([SourceSettings(paths=(str(tmp_path / "app" / "*" / "*.log"),))])
    try:
        assert f.poll(0.0) == []
        (tmp_path / "app" / "x" / "in.log").write_text("deep\n")  # the top directory's mtime stays
        assert lines_of(f.poll(1.0)) == ["deep"]
    finally:
        f.stop()


def test_the_full_rescan_still_runs_when_the_directory_looks_unchanged(tmp_path):
    """A file system whose directory mtime did not move (coarse timestamps, a clock step) still gets a
    full glob at least every FULL_RESCAN_EVERY seconds."""
    logs = tmp_path / "logs"
    logs.mkdir()
    f = Follower([SourceSettings(paths=(str(logs / "*.log"),))])
    try:
        assert f.poll(0.0) == []
        before = logs.stat()
        (logs / "late.log").write_text("late\n")
        os.utime(logs, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if the mtime had not moved
        assert f.poll(1.0) == []  # skipped: looks unchanged
        assert lines_of(f.poll(FULL_RESCAN_EVERY + 0.5)) == ["late"]
    finally:
        f.stop()
