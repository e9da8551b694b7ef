"""Small builders shared by the replay and CLI tests: a rules file pointing at a receiver, and logs."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

from tailer.record import Origin, deterministic_nonce
from tailer.source.identity import identify_stream, record_file_id
from tailer.source.reader import open_log

VOTE_IDS = {"VOTE_CREATE": "1504000120618", "VOTE_JOIN": "1504000120679", "VOTE_DELETE": "1504000120617"}
BASE_TS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


def write_config(
    tmp: Path,
    url: str,
    *,
    token: str = "test-token",
    concurrency: int = 4,
    rate_limit: float = 0,
    nonce: str = "deterministic",
    extra_endpoint: str = "",
) -> Path:
    cfg = tmp / "rules.yaml"
    cfg.write_text(
        f"""
endpoint:
  url: {url}
  token: {token}
  concurrency: {concurrency}
  rate_limit: {rate_limit}
  nonce: {nonce}
  max_backoff: 0.2
  timeout: 5
{extra_endpoint}
sources:
  - paths: ["logs/*.log*"]
    exclude: ["*.gz"]
    encoding: utf-8
state_dir: state
rules:
  - name: vote
    pattern: '^(?P<ts>\\S+ \\S+) INFO (?P<act>VOTE_[A-Z]+) id=(?P<ext1>\\d+) gid=(?P<gid>\\d+) ch=(?P<target_id>\\S+) uid=(?P<uid>\\d+)$'
    oper_id: {{from: act, map: {{VOTE_CREATE: "1504000120618", VOTE_JOIN: "1504000120679", VOTE_DELETE: "1504000120617"}}}}
    ts_format: "%Y-%m-%d %H:%M:%S"
    timezone: UTC
""",
        encoding="utf-8",
    )
    return cfg


def vote_line(i: int, act: str = "VOTE_JOIN", ts: int | None = None) -> str:
    when = datetime.fromtimestamp(BASE_TS + i if ts is None else ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} INFO {act} id={i} gid={i % 7} ch=c{i % 3} uid={1000 + i}"


def write_log(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def expected_data(i: int, act: str = "VOTE_JOIN") -> dict:
    return {"oper_id": VOTE_IDS[act], "gid": i % 7, "target_id": f"c{i % 3}", "uid": 1000 + i, "ext1": str(i)}


def record_nonces(path: Path) -> list[tuple[int, str]]:
    """(end offset, deterministic nonce) of every vote line of a file, as replay computes them."""
    with open_log(path) as stream:
        key = identify_stream(stream)
        data = stream.read()
    out, end = [], 0
    for raw in data.split(b"\n")[:-1]:
        end += len(raw) + 1
        if b" VOTE_" in raw:
            out.append((end, deterministic_nonce(Origin(record_file_id(key, data, end), str(path), end))))
    return out
