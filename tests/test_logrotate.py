"""Rotation by the real tools while a writer appends and a ``tailer run`` subprocess follows: the real
``logrotate`` binary (create, create + compress + delaycompress, copytruncate with the copy inside and
outside the globs) and Python's RotatingFileHandler / TimedRotatingFileHandler rotating from the writer's
thread. The writer appends numbered vote lines at a steady pace; rotations are triggered by the writer's
progress (not by the clock). Nonces are deterministic, so any resend is counted by the receiver.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from helpers import delivered, settle, start_tailer, wait_until, write_config
from logdata import PacedWriter, lines_on_disk, rotating_handler, timed_handler

TOTAL = 3000  # lines, 10 every 10 ms: a little over 3 s of writing
ROTATIONS = 4


def logrotate_binary() -> str:
    found = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("logrotate is not installed (.ci/run installs it with apt)")
        pytest.skip("logrotate is not installed")
    return found


def logrotate(binary: str, tmp: Path, log: Path, directives: str) -> None:
    conf = tmp / "logrotate.conf"
    conf.write_text(f"{log} {{\n  rotate 5\n  missingok\n{directives}}}\n")
    conf.chmod(0o644)  # logrotate refuses a config others may write
    done = subprocess.run([binary, "-s", str(tmp / "logrotate.state"), "-f", str(conf)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


def follow_while_writing(
    tmp: Path, receiver, writer: PacedWriter, rotate=None, *, expect=None, **config
) -> tuple[str, int]:
    """Start ``tailer run``, let ``writer`` write (calling ``rotate()`` ROTATIONS times, evenly through
    the writing), then wait (bounded) until every line on disk has arrived, and stop it with SIGTERM.
    ``expect(line)`` picks the lines to wait for (default: all). Returns (stderr, exit code)."""
    config.setdefault("concurrency", 8)
    cfg = write_config(tmp, receiver.url, **config)
    run = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: "following 1 source" in run.stderr(), timeout=30), run.stderr()
        writer.start()
        # The first rotation only once the tailer follows the file: one it never saw is not a rotation.
        assert wait_until(lambda: receiver.count() > 0, timeout=30), run.stderr()
        for k in range(1, ROTATIONS + 1 if rotate else 1):
            writer.wait_written(TOTAL * k // (ROTATIONS + 1))
            rotate()
        writer.finish()
        on_disk = {line.number for line in lines_on_disk(tmp / "logs") if expect is None or expect(line)}
        wait_until(lambda: on_disk <= set(delivered(receiver)), timeout=60)
        settle(receiver)
    finally:
        if writer.is_alive():
            writer.finish()
        code = run.stop()
    return run.stderr(), code


def assert_every_line_on_disk_arrived_once(tmp: Path, receiver) -> set[int]:
    on_disk = Counter(line.number for line in lines_on_disk(tmp / "logs"))
    assert max(on_disk.values()) == 1
    got = delivered(receiver)
    missing = set(on_disk) - set(got)
    assert not missing, f"{len(missing)} line(s) on disk never arrived, e.g. {sorted(missing)[:10]}"
    assert max(got.values()) == 1, "a line was stored twice under different nonces"
    assert set(got) <= set(range(TOTAL))
    assert receiver.duplicates == 0  # nothing was even resent
    assert not (tmp / "state" / "dead-letter.jsonl").exists()  # nor refused (e.g. 409 for a reused nonce)
    return set(on_disk)


@pytest.mark.slow
@pytest.mark.parametrize("compress", [False, True], ids=["create", "create-compress-delaycompress"])
def test_logrotate_create_while_writing_loses_and_resends_nothing(tmp_path, receiver, compress):
    """logrotate renames app.log and creates a new one; the writer keeps writing to the renamed file until
    its postrotate reopen. With compress + delaycompress the previous copy is gzipped and deleted while
    the tailer still holds it open: it is drained through its descriptor."""
    binary = logrotate_binary()
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    writer = PacedWriter(log, TOTAL)
    directives = "  create 0644\n" + ("  compress\n  delaycompress\n" if compress else "")

    def rotate() -> None:
        logrotate(binary, tmp_path, log, directives)
        writer.reopen()

    err, code = follow_while_writing(tmp_path, receiver, writer, rotate)
    assert code == 0, err
    names = sorted(p.name for p in log.parent.iterdir())
    assert len(names) == ROTATIONS + 1 and any(n.endswith(".gz") for n in names) == compress, names
    on_disk = assert_every_line_on_disk_arrived_once(tmp_path, receiver)
    assert on_disk == set(range(TOTAL))  # rename rotation itself loses nothing either
    print(f"\nlogrotate create{' compress' if compress else ''}: {TOTAL} written, 0 lost, "
          f"{receiver.duplicates} resent, files {names}")  # fmt: skip


@pytest.mark.slow
def test_logrotate_copytruncate_with_the_copy_in_the_globs_loses_and_resends_nothing(tmp_path, receiver):
    """logrotate copies app.log to app.log.1 and truncates app.log. Lines the tailer had not read yet when
    the file was truncated are recovered from the copy (same head, same identity), and lines it had read
    are not sent again. (Lines the writer appends between logrotate's copy and its truncate are in no file
    at all: that is logrotate's own window, counted here, not the tailer's.)"""
    binary = logrotate_binary()
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    writer = PacedWriter(log, TOTAL)
    err, code = follow_while_writing(
        tmp_path, receiver, writer, lambda: logrotate(binary, tmp_path, log, "  copytruncate\n")
    )
    assert code == 0, err
    on_disk = assert_every_line_on_disk_arrived_once(tmp_path, receiver)
    assert len(list(log.parent.iterdir())) == ROTATIONS + 1
    assert err.count("was truncated") + err.count("was rewritten before offset") == ROTATIONS, err
    print(f"\nlogrotate copytruncate (copy followed): {TOTAL} written, {TOTAL - len(on_disk)} lost by "
          f"logrotate between copy and truncate, 0 lost by the tailer, {receiver.duplicates} resent")  # fmt: skip


TRUNCATION = re.compile(
    r"(?P<path>\S+) was (?:truncated \(size \d+, read up to (?P<at>\d+); (?P<known>\d+) unread byte\(s\) known"
    r"|rewritten before offset (?P<at2>\d+) \((?P<known2>\d+) unread byte\(s\) known)"
)


@pytest.mark.slow
def test_logrotate_copytruncate_with_the_copy_excluded_loses_only_the_unread_tail_and_says_so(
    tmp_path, receiver
):
    """The residual window of copytruncate when the globs exclude the copy (``paths: [logs/app.log]``):
    the tailer cannot read the copy, so the lines it had not read when logrotate truncated app.log are
    lost. They are exactly the copy's lines past the position the tailer reports in its truncation
    WARNING ("read up to N"): every line before it arrived, none after it did, and with a paced writer
    that tail is small (whatever was written since the tailer's last wake-up). Each truncation is logged
    with the file name and the unread bytes the tailer knew of, and counted."""
    binary = logrotate_binary()
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    writer = PacedWriter(log, TOTAL)
    err, code = follow_while_writing(
        tmp_path, receiver, writer, lambda: logrotate(binary, tmp_path, log, "  copytruncate\n"),
        paths=[f"{tmp_path}/logs/app.log"], expect=lambda line: line.path == log,
    )  # fmt: skip
    assert code == 0, err
    got = delivered(receiver)
    assert max(got.values()) == 1 and receiver.duplicates == 0
    assert not (tmp_path / "state" / "dead-letter.jsonl").exists()
    found = [m for m in TRUNCATION.finditer(err) if m["path"] == str(log)]
    assert len(found) == ROTATIONS, err  # every truncation was noticed and named
    positions = [int(m["at"] or m["at2"]) for m in found]
    known = [int(m["known"] or m["known2"]) for m in found]
    lines = lines_on_disk(log.parent)
    current = [line.number for line in lines if line.path == log]
    assert set(current) <= set(got)  # the live file: everything
    lost = 0
    for k, at in enumerate(positions):  # the k-th truncation made the copy now named app.log.<R-k>
        copy = log.with_name(f"app.log.{ROTATIONS - k}")
        in_copy = [line for line in lines if line.path == copy]
        before = {line.number for line in in_copy if line.end <= at}
        after = {line.number for line in in_copy if line.end > at}
        assert before <= set(got), f"{copy.name}: lines before the reported position are missing"
        assert not after & set(got), f"{copy.name}: lines past the reported position arrived: not lost"
        lost_bytes = copy.stat().st_size - at if after else 0
        assert known[k] <= lost_bytes  # what the tailer counts is a lower bound of the loss, never more
        lost += len(after)
    on_disk = {line.number for line in lines}
    assert lost <= TOTAL // 4, f"{lost} lines lost: the tailer was not keeping up at all"
    print(f"\nlogrotate copytruncate (copy excluded): {TOTAL} written, {lost} lost in the residual window "
          f"over {ROTATIONS} truncations ({sum(known)} unread bytes known and counted), {TOTAL - len(on_disk)} lost by logrotate itself")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["RotatingFileHandler", "TimedRotatingFileHandler"])
def test_python_rotating_handlers_under_a_running_tailer_lose_and_resend_nothing(tmp_path, receiver, kind):
    """The application's own logging rotates (rename, then a new file) from the writer's thread while
    ``tailer run`` follows: maxBytes every ~40 KB, or every second for the timed handler (the writer
    sleeps for over 3 s in total, so it rotates at least twice)."""
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    handler = rotating_handler(log, 40_000) if kind == "RotatingFileHandler" else timed_handler(log)
    writer = PacedWriter(log, TOTAL, handler=handler)
    err, code = follow_while_writing(tmp_path, receiver, writer)
    assert code == 0, err
    names = sorted(p.name for p in log.parent.iterdir())
    assert len(names) >= 3, names
    on_disk = assert_every_line_on_disk_arrived_once(tmp_path, receiver)
    assert on_disk == set(range(TOTAL))
    print(f"\n{kind}: {TOTAL} written over {len(names)} files, 0 lost, {receiver.duplicates} resent")
