"""Pytest fixtures around the embedded receiver; tests/conftest.py imports them for every test module.

(tests/ has no __init__.py; pytest's default "prepend" import mode puts tests/ on sys.path, so this module
imports as ``fixtures_receiver``.)

- ``receiver``: a started EmbeddedReceiver with token ``"test-token"`` and a SQLite db in tmp_path.
- ``make_receiver(**cfg_fields)``: starts more (or differently configured) receivers; all stop at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

TEST_TOKEN = "test-token"


@pytest.fixture
def make_receiver(tmp_path: Path) -> Iterator[Callable[..., EmbeddedReceiver]]:
    started: list[EmbeddedReceiver] = []

    def make(**fields: Any) -> EmbeddedReceiver:
        fields.setdefault("token", TEST_TOKEN)
        fields.setdefault("db_path", tmp_path / "receiver.db")
        receiver = EmbeddedReceiver(ReceiverConfig(**fields))
        started.append(receiver)
        return receiver.start()

    yield make
    for receiver in reversed(started):
        receiver.stop()


@pytest.fixture
def receiver(make_receiver: Callable[..., EmbeddedReceiver]) -> EmbeddedReceiver:
    return make_receiver()
