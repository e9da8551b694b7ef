"""`tailer dlq resend` with `url: embedded` sends to the in-process receiver storing into
state_dir/receiver.sqlite3, as `tailer run` and `tailer replay` do."""

from __future__ import annotations

import contextlib
import sqlite3

from helpers import run_tailer

from tailer.ship.deadletter import DeadLetterWriter
from tailer.state.statedir import StateDir


def test_dlq_resend_to_the_embedded_receiver_stores_into_the_state_dir(tmp_path):
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("endpoint:\n  url: embedded\n  token: t0k3n\nstate_dir: state\nrules: []\n", encoding="utf-8")
    state = StateDir(tmp_path / "state")
    payload = {"ts": 1764000000, "nonce": "n" * 32, "data": {"oper_id": "1504000120679", "ext1": "7"}}
    DeadLetterWriter(state.dead_letter).write(
        payload=payload, answer={"ret": 1, "msg": "later"}, status=200, attempts=1, origin=None,
        rule="vote", reason="rejected",
    )  # fmt: skip
    done = run_tailer("dlq", "resend", "-c", cfg)
    assert done.code == 0, done.stderr
    with contextlib.closing(sqlite3.connect(state.receiver_db)) as db:
        assert db.execute("select count(*) from records").fetchone() == (1,)
    assert state.dead_letter.read_text(encoding="utf-8") == ""
