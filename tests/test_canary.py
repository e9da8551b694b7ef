"""The canary: every CLI path, at --log-level debug, with a token that must never show.

Each command runs as a real subprocess (``python -m tailer``) with a canary token, against a working
endpoint, a closed port (connection refused), a receiver that answers 401 (it expects another token), and
one that refuses every record with a 4xx that dead-letters. Then every byte the commands wrote, on stdout,
on stderr and in every file under the test's directory (state_dir, checkpoints, dead-letter file, replay
state, receiver databases), is searched for the canary. The test also proves each path ran (records stored,
401s answered, a dead-letter line written), so it cannot pass by doing nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from helpers import Done, run_tailer, start_tailer, wait_until, write_config

from tailer.cli.main import main as cli_main
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

ROOT = Path(__file__).resolve().parent.parent
CANARY = "canary-7f3a9c" + secrets.token_hex(8)

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    """A directory of logs and configs; every command run here is recorded with its output."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir()
        shutil.copy(ROOT / "samples" / "logs" / "app.log", self.logs / "app.log")
        self.outputs: list[tuple[str, str]] = []
        self.env = {**os.environ, "OPER_TOKEN": CANARY}
        self.env.pop("TAILER_CONFIG", None)

    def config(self, name: str, url: str, token_file: str | None = None) -> Path:
        rules = "rules:\n" + (ROOT / "rules.yaml").read_text(encoding="utf-8").split("\nrules:\n", 1)[1]
        return write_config(
            self.root, url, token=None if token_file else "${OPER_TOKEN}", paths=[f"{self.logs}/app.log"],
            exclude=(), concurrency=None, nonce=None, rate_limit=None, max_backoff=0.2, timeout=2,
            extra_endpoint=f"  token_file: {token_file}\n" if token_file else "", state_dir=f"state-{name}",
            rules=rules, name=f"{name}.yaml",
        )  # fmt: skip

    def cli(self, *args: str, timeout: float = 60) -> Done:
        done = run_tailer(*args, "--log-level", "debug", cwd=self.root, env=self.env, timeout=timeout)
        self.outputs.append((" ".join(args), done.stdout + done.stderr))
        return done

    def briefly(self, *args: str, seconds: float, until: Path | None = None) -> tuple[int | None, str]:
        """Start a long-running command, let it work (until ``until`` exists, at most ``seconds``), SIGTERM."""
        proc = start_tailer(*args, "--log-level", "debug", cwd=self.root, env=self.env)
        wait_until(lambda: proc.poll() is not None or (until is not None and until.exists()), seconds, step=0.1)
        time.sleep(0.5)  # a moment more of retries and debug logging
        try:
            code: int | None = proc.stop(signal.SIGTERM, timeout=30)
        except subprocess.TimeoutExpired:  # killed
            code = proc.poll()
        output = proc.stdout() + proc.stderr()
        self.outputs.append((" ".join(args), output))
        return code, output

    def leaks(self, exclude: set[Path]) -> list[str]:
        found = [f"output of `tailer {what}`" for what, data in self.outputs if CANARY in data]
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path not in exclude and CANARY.encode() in path.read_bytes():
                found.append(str(path.relative_to(self.root)))
        return found


def test_the_token_appears_in_no_output_and_no_file_on_any_cli_path(tmp_path):
    world = World(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(CANARY + "\n")
    token_file.chmod(0o600)
    assert world.leaks(set()) == ["token"]  # the search finds the canary where it is: it can fail

    ok = EmbeddedReceiver(ReceiverConfig(token=CANARY, db_path=tmp_path / "ok.sqlite3")).start()
    wrong = EmbeddedReceiver(ReceiverConfig(token="another-token", db_path=tmp_path / "401.sqlite3")).start()
    # Every sample record is years away from now: "ts outside window", a 400 that dead-letters.
    refusing = EmbeddedReceiver(
        ReceiverConfig(token=CANARY, db_path=tmp_path / "4xx.sqlite3", ts_window=1.0)
    ).start()
    try:
        embedded = world.config("embedded", "embedded")
        good = world.config("good", ok.url, token_file=str(token_file))
        refused = world.config("refused", f"http://127.0.0.1:{closed_port()}/api/v1/OperReport")
        unauthorized = world.config("unauthorized", wrong.url)
        dead = world.config("dead", refusing.url)

        # Rule authoring, on every config (the token is loaded each time).
        for config in (embedded, good, refused):
            assert world.cli("check", "-c", str(config)).code == 0
        assert world.cli("test", "-c", str(embedded)).code == 0
        line = next(t for t in (ROOT / "samples/logs/app.log").read_text().splitlines() if "INFO  c.a.vote.VoteService - VOTE_CREATE" in t)
        assert world.cli("match", "-c", str(embedded), line).code == 0
        assert world.cli("match", "-c", str(embedded), "--log-format", "json", "no such line").code == 1

        # Replay: dry run, a working endpoint, a dead-lettering one, the embedded receiver.
        dry = world.cli("replay", "-c", str(good), "--dry-run", str(world.logs))
        assert dry.code == 0 and dry.stdout.count('"nonce"') >= 1
        assert world.cli("replay", "-c", str(good), str(world.logs)).code == 0
        assert world.cli("replay", "-c", str(dead), str(world.logs)).code in (0, 3)  # 3: dead-lettered
        assert world.cli("replay", "-c", str(embedded), str(world.logs)).code == 0
        # Replay against a closed port and against a 401: retried and paused forever, so stopped by SIGTERM.
        world.briefly("replay", "-c", str(refused), str(world.logs), seconds=3)
        world.briefly("replay", "-c", str(unauthorized), "--restart", str(world.logs), seconds=3)

        # Live: each endpoint briefly, then SIGTERM; status reads what run left.
        for config in (good, refused, unauthorized, dead):
            state = tmp_path / f"state-{config.stem}"
            world.briefly("run", "-c", str(config), "--grace", "1", seconds=4, until=state / "checkpoint.json")
        world.briefly("run", "-c", str(embedded), "--log-format", "json", "--grace", "1", seconds=4)
        for config in (good, refused, embedded):
            assert world.cli("status", "-c", str(config)).code == 0
            assert world.cli("status", "-c", str(config), "--json").code == 0
        if "dlq" in cli_main.commands:  # `tailer dlq` (another change) reads the dead-letter file
            world.cli("dlq", "list", "-c", str(dead))

        # Errors print the config, never the token.
        broken = tmp_path / "broken.yaml"
        broken.write_text(embedded.read_text().replace("  timeout: 2", "  timeout: ${OPER_TOKEN}"))
        assert world.cli("check", "-c", str(broken)).code == 1

        # The reference receiver, with the canary as its token, asked with the right and a wrong one.
        port = closed_port()
        receiver = start_tailer("receiver", "--port", port, "--db", tmp_path / "r.db", cwd=tmp_path, env=world.env)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/OperReport"
            body = {"ts": 1, "nonce": "n1", "data": {"oper_id": "1"}}
            statuses = []
            for _ in range(100):  # until it listens (bounded)
                try:
                    for token in (CANARY, "wrong-" + CANARY[::-1]):
                        statuses.append(httpx.post(url, json=body, headers={"Authorization": token}).status_code)
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            assert statuses == [200, 401]
        finally:
            receiver.stop(signal.SIGTERM, timeout=30)
            world.outputs.append(("receiver", receiver.stdout() + receiver.stderr()))

        # Every path ran: records stored, 401s answered, a record dead-lettered, retries against the closed port.
        assert ok.count() > 0 and wrong.stats.get(401, 0) > 0 and refusing.stats.get(400, 0) > 0
        dead_letters = (tmp_path / "state-dead" / "dead-letter.jsonl").read_text().splitlines()
        assert dead_letters and json.loads(dead_letters[0])
    finally:
        for r in (ok, wrong, refusing):
            r.stop()

    assert world.leaks({token_file}) == []


def test_the_receiver_compares_tokens_with_compare_digest(monkeypatch):
    """Constant time cannot be measured reliably in a test; what can be checked is that every token check
    goes through hmac.compare_digest (on bytes, so any header is compared, never short-circuited by ==)."""
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = {"ts": 1, "nonce": "n", "data": {"oper_id": "1"}}
    with EmbeddedReceiver(ReceiverConfig(token=CANARY)) as receiver:
        for token, status in ((CANARY, 200), (CANARY[:-1] + "x", 401), ("short", 401), ("é" + CANARY, 401)):
            headers = {"Authorization": token.encode("utf-8")}
            assert httpx.post(receiver.url, json=body, headers=headers).status_code == status
    assert [a for a, _ in calls] == [t.encode() for t in (CANARY, CANARY[:-1] + "x", "short")] + [calls[3][0]]
    assert all(b == CANARY.encode() for _, b in calls)
