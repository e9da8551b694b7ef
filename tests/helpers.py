"""The test helpers, once: the config writer, the wait, the ``python -m tailer`` runner, and what the
receiver got. The logs and their expected record names and nonces are in tests/logdata.py.

(tests/ has no __init__.py; pytest's "prepend" import mode puts tests/ on sys.path, so this module imports
as ``helpers``.)

- ``write_config(tmp, url, ...)``: ``tmp/rules.yaml`` with the vote rule (tests/logdata.py ``vote_line``),
  sources ``logs/*.log*`` minus ``*.gz``, ``state_dir: state`` and deterministic nonces unless told
  otherwise; ``tmp/logs`` exists afterwards.
- ``wait_until(predicate, timeout, step) -> bool`` (and ``wait_until_async`` for code on an event loop,
  whose predicates must be looked at on the loop's own thread): bounded, never raises for a timeout;
  callers ``assert`` on the result with their own message. A predicate raising IndexError, KeyError or
  FileNotFoundError means "not yet" (the state it reads is not there yet).
- ``start_tailer(*args) -> Tailer`` (background: pid, poll, wait, send_signal, stop(sig), stdout(),
  stderr(); both streams go to files, so a full pipe never blocks the process) and
  ``run_tailer(*args) -> Done(code, stdout, stderr)`` (to completion, bounded by ``timeout``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tailer.receiver.embedded import EmbeddedReceiver

TOKEN = "test-token"  # the token of fixtures_receiver's receivers
VOTE_RULES = r"""rules:
  - name: vote
    pattern: '^(?P<ts>\S+ \S+) INFO (?P<act>VOTE_[A-Z]+) id=(?P<ext1>\d+) gid=(?P<gid>\d+) ch=(?P<target_id>\S+) uid=(?P<uid>\d+)$'
    oper_id: {from: act, map: {VOTE_CREATE: "1504000120618", VOTE_JOIN: "1504000120679", VOTE_DELETE: "1504000120617"}}
    ts_format: "%Y-%m-%d %H:%M:%S"
    timezone: UTC
"""

# -- the config ------------------------------------------------------------------------------------------


def write_config(
    tmp: Path,
    url: str,
    *,
    token: str | None = TOKEN,
    paths: Iterable[str] = ("logs/*.log*",),
    exclude: Iterable[str] = ("*.gz",),
    concurrency: int | None = 4,
    nonce: str | None = "deterministic",
    rate_limit: float | None = 0,
    max_backoff: float | None = 0.2,
    timeout: float | None = 5,
    extra_endpoint: str = "",
    state_dir: str | Path = "state",
    rules: str = VOTE_RULES,
    extra: str = "",
    name: str = "rules.yaml",
) -> Path:
    """Write ``tmp/name`` and return its path. An endpoint key given as None is left out (the tailer's
    default applies); ``extra_endpoint`` is more ``  key: value`` lines under ``endpoint:``; ``rules`` is
    the whole ``rules:`` section; ``extra`` more top-level sections (``metrics:``)."""
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    endpoint = {"url": url, "token": token, "concurrency": concurrency, "rate_limit": rate_limit,
                "nonce": nonce, "max_backoff": max_backoff, "timeout": timeout}  # fmt: skip
    exclude = list(exclude)
    text = (
        "endpoint:\n"
        + "".join(f"  {key}: {value}\n" for key, value in endpoint.items() if value is not None)
        + extra_endpoint
        + f"sources:\n  - paths: {json.dumps(list(paths))}\n"
        + (f"    exclude: {json.dumps(exclude)}\n" if exclude else "")
        + f"state_dir: {state_dir}\n"
        + rules
        + extra
    )
    cfg = tmp / name
    cfg.write_text(text, encoding="utf-8")
    return cfg


# -- waiting ---------------------------------------------------------------------------------------------

NOT_YET = (IndexError, KeyError, FileNotFoundError)  # what a predicate raises while its state is not there


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, step: float = 0.05) -> bool:
    """Look at ``predicate`` every ``step`` seconds until it is true (True) or ``timeout`` passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except NOT_YET:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


async def wait_until_async(predicate: Callable[[], Any], timeout: float = 60.0, step: float = 0.05) -> bool:
    """``wait_until`` on an event loop: the predicate is looked at on the loop's thread between its steps
    (as the loop's own state must be), and may return an awaitable (awaited, then judged)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return True
        except NOT_YET:
            pass
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)


# -- `python -m tailer` as a subprocess ------------------------------------------------------------------


def _command(args: Iterable[object]) -> list[str]:
    return [sys.executable, "-m", "tailer", *map(str, args)]


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    return {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}


@dataclass
class Tailer:
    """A ``python -m tailer`` running in the background; its stdout and stderr go to files."""

    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float = 60.0) -> int:
        """The exit code; subprocess.TimeoutExpired if it runs on (it is left running: stop() it)."""
        return self.proc.wait(timeout=timeout)

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` (unless it already exited) and wait, bounded, for the exit code; killed, and
        subprocess.TimeoutExpired raised, if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")


def start_tailer(
    *args: object, cwd: Path | None = None, env: Mapping[str, str] | None = None, out_dir: Path | None = None
) -> Tailer:
    """Start ``python -m tailer ARGS...`` (stdin /dev/null). Its output files go to ``out_dir``, else
    ``cwd``, else the directory of the ``-c`` config. ``env`` replaces the environment (default: ours)."""
    words = [str(a) for a in args]
    if out_dir is None:
        out_dir = cwd if cwd is not None else Path(words[words.index("-c") + 1]).parent if "-c" in words else None
    if out_dir is None:
        raise ValueError("start_tailer: say where its output goes (out_dir=, cwd= or a -c config)")
    stem = Path(out_dir) / f"{words[0] if words else 'tailer'}-{time.monotonic_ns()}"
    out_path, err_path = stem.with_suffix(".stdout"), stem.with_suffix(".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(_command(words), cwd=cwd, env=_environment(env),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)  # fmt: skip
    return Tailer(proc, out_path, err_path)


class Done(NamedTuple):
    """What ``run_tailer`` returns: the exit code and the decoded output."""

    code: int
    stdout: str
    stderr: str


def run_tailer(
    *args: object,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120.0,
) -> Done:
    """Run ``python -m tailer ARGS...`` to completion (stdin: ``input``, else /dev/null); killed and
    subprocess.TimeoutExpired raised after ``timeout`` seconds."""
    done = subprocess.run(
        _command(args), cwd=cwd, env=_environment(env), capture_output=True, timeout=timeout,
        **({"stdin": subprocess.DEVNULL} if input is None else {"input": input.encode("utf-8")}),
    )  # fmt: skip
    return Done(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


def status_json(cfg: Path) -> dict:
    """``tailer status --json -c cfg``, parsed (AssertionError if it fails)."""
    done = run_tailer("status", "--json", "-c", cfg, timeout=60)
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def rss_kb(pid: int) -> int:
    """VmRSS of a live process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# -- what arrived ----------------------------------------------------------------------------------------


def delivered(receiver: EmbeddedReceiver) -> Counter[int]:
    """How many times each ``data.ext1`` (the line number) is stored (exact resends are stored once)."""
    return Counter(int(r["data"]["ext1"]) for r in receiver.records())


def settle(receiver: EmbeddedReceiver, quiet: float = 0.3, timeout: float = 10.0) -> int:
    """Wait until the receiver's count stops moving for ``quiet`` seconds (requests whose bodies arrived
    before a kill are still being stored); bounded by ``timeout``. Returns the count."""
    deadline = time.monotonic() + timeout
    last = receiver.count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = receiver.count()
        if now == last:
            return now
        last = now
    return last
