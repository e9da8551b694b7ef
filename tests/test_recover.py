"""What rotation compressed while `tailer run` was stopped is read at the next start (run/recover.py): the
unread end of a followed file, and whole files rolled meanwhile; old archives and a first start are left to
`tailer replay`; a finished archive is never read again."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import time

from helpers import delivered, start_tailer, status_json, wait_until, write_config
from logdata import vote_line, write_log


def _gzip_away(path, gz_path) -> None:
    with open(path, "rb") as src, gzip.open(gz_path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)


def test_archives_rotated_while_stopped_are_read_at_the_next_start_and_only_once(tmp_path, receiver):
    cfg = write_config(tmp_path, receiver.url, paths=["logs/app*.log*"])
    logs = tmp_path / "logs"
    app = logs / "app.log"
    write_log(app, [vote_line(i) for i in range(40)])
    old = write_log(logs / "app-0.log.gz", [vote_line(i) for i in range(1000, 1010)], gz=True)
    os.utime(old, (time.time() - 86400, time.time() - 86400))  # an old archive: replay's business
    run = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 40)
        assert wait_until(lambda: [f["offset"] for f in status_json(cfg)["files"]] == [app.stat().st_size])
    finally:
        run.stop(signal.SIGKILL)
    # While stopped: the app writes on, log4j2 rolls app.log into app-1.log.gz, writes a whole new
    # file and rolls that too, then starts a third one.
    with open(app, "a", encoding="utf-8") as f:
        f.writelines(vote_line(i) + "\n" for i in range(40, 60))
    os.rename(app, logs / "app-1.log")
    _gzip_away(logs / "app-1.log", logs / "app-1.log.gz")
    write_log(app, [vote_line(i) for i in range(60, 90)])
    os.rename(app, logs / "app-2.log")
    _gzip_away(logs / "app-2.log", logs / "app-2.log.gz")
    write_log(app, [vote_line(i) for i in range(90, 100)])

    again = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: set(delivered(receiver)) >= set(range(100))), again.stderr()
    finally:
        assert again.stop() == 0, again.stderr()
    got = delivered(receiver)
    assert set(got) == set(range(100))  # nothing of the old archive
    assert max(got.values()) == 1 and receiver.duplicates == 0  # the end of app-1 was not sent twice
    assert "app-1.log.gz holds the rest of a file" in again.stderr()
    assert "app-2.log.gz holds a file rotated" in again.stderr()

    third = start_tailer("run", "-c", cfg)  # done archives stay done
    try:
        assert wait_until(lambda: "following" in third.stderr())
        time.sleep(0.5)
    finally:
        assert third.stop() == 0, third.stderr()
    assert "holds" not in third.stderr() and receiver.duplicates == 0 and receiver.count() == 100


def test_a_first_start_leaves_existing_archives_to_replay(tmp_path, receiver):
    cfg = write_config(tmp_path, receiver.url, paths=["logs/app*.log*"])
    write_log(tmp_path / "logs" / "app-1.log.gz", [vote_line(i) for i in range(10)], gz=True)
    write_log(tmp_path / "logs" / "app.log", [vote_line(i) for i in range(10, 15)])
    run = start_tailer("run", "-c", cfg)
    try:
        assert wait_until(lambda: receiver.count() == 5)
        time.sleep(0.5)
    finally:
        assert run.stop() == 0, run.stderr()
    assert set(delivered(receiver)) == set(range(10, 15))
