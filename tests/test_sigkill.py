"""``tailer run`` killed with SIGKILL again and again while an application writes and rotates its log
(Python's RotatingFileHandler, rename rotation): nothing is lost, and every resend is accounted for by the
checkpoint the killed process left behind (DESIGN.md "Delivery": a restart may resend at most the records
in flight plus those acknowledged since the last checkpoint write)."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter

import pytest
from helpers import delivered, settle, start_tailer, wait_until, write_config
from logdata import PacedWriter, lines_on_disk, rotating_handler

TOTAL = 6000  # lines, 10 every 15 ms: ~9 s of writing, rotated every ~40 KB (~630 lines)
KILLS = 6


@pytest.mark.slow
def test_sigkill_loop_while_writing_and_rotating_loses_nothing_and_resends_only_the_unsaved_tail(
    tmp_path, receiver
):
    """Each kill comes at a random moment once the new process is delivering. Right after each kill the
    checkpoint file is read: the records that run may have had acknowledged past the saved offsets are the
    only ones the next run may send again. With deterministic nonces the receiver counts every resend
    (``duplicates``), which must not exceed the sum of those sets over all kills."""
    rng = random.Random(20261129)
    cfg = write_config(tmp_path, receiver.url, concurrency=4)
    log = tmp_path / "logs" / "app.log"
    checkpoint = tmp_path / "state" / "checkpoint.json"
    writer = PacedWriter(log, TOTAL, pause=0.015, handler=rotating_handler(log, 40_000))
    kills: list[tuple[set[str], dict[str, int]]] = []  # (nonces stored before the kill, saved offsets)
    writer.start()
    try:
        for _ in range(KILLS):
            run = start_tailer("run", "-c", cfg)
            try:
                start = receiver.count()
                # Kill only a process that is delivering (a kill during start-up proves little).
                assert wait_until(lambda s=start: receiver.count() > s or not writer.is_alive(), 30), (
                    run.stderr()
                )
                time.sleep(rng.uniform(0.05, 1.5))  # a random moment (not an assertion)
            finally:
                code = run.stop(signal.SIGKILL)
            assert code == -signal.SIGKILL
            settle(receiver)  # requests whose bodies arrived before the kill are stored
            saved = {}
            if checkpoint.exists():
                saved = {e["key"]: e["offset"] for e in json.loads(checkpoint.read_text())["files"]}
            kills.append(({r["nonce"] for r in receiver.records()}, saved))
        writer.finish()
        final = start_tailer("run", "-c", cfg)
        try:
            # SIGTERM before the signal handlers are installed would kill it by default: wait for them.
            assert wait_until(lambda: "following 1 source" in final.stderr(), timeout=30), final.stderr()
            assert wait_until(lambda: receiver.count() >= TOTAL, timeout=90), final.stderr()
            settle(receiver)
        finally:
            code = final.stop()
        assert code == 0, final.stderr()
    finally:
        if writer.is_alive():
            writer.finish()
    lines = lines_on_disk(log.parent)
    assert sorted(line.number for line in lines) == list(range(TOTAL))  # nothing rotated away for good
    got = delivered(receiver)
    missing = set(range(TOTAL)) - set(got)
    assert not missing, f"{len(missing)} line(s) lost, e.g. {sorted(missing)[:10]}"
    assert got == Counter(range(TOTAL)), "a line was stored twice under different nonces"
    assert not (tmp_path / "state" / "dead-letter.jsonl").exists()
    assert {r["nonce"] for r in receiver.records()} == {line.nonce for line in lines}
    may_resend = 0
    for before, saved in kills:
        may_resend += sum(1 for ln in lines if ln.nonce in before and ln.end > saved.get(str(ln.key), 0))
    resent = receiver.duplicates
    print(f"\nSIGKILL loop: {TOTAL} lines, {KILLS} kills, 0 lost, {resent} resent "
          f"(bound from the checkpoints: {may_resend}), files {len({ln.path for ln in lines})}")  # fmt: skip
    assert resent <= may_resend
