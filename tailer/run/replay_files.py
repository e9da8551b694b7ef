"""Which historical files a replay reads, and how: files and directories expanded and put in rotation
order, each file's source (for its encoding and line limit), and its content identity."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from tailer.run.replay_order import order_files
from tailer.source.identity import FINGERPRINT_BYTES, identify_stream

from tailer.errors import ReplayError


def collect_files(paths: list[Path]) -> list[Path]:
    """Files named, and the files directly inside directories named, oldest first per rotation set."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if c.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise ReplayError(f"{p}: no such file or directory")
    return order_files([p.resolve() for p in found])



def content_key(stream: BinaryIO) -> tuple[str, bytes]:
    """The file's identity for replay state (the head fingerprint the live follower uses too, or for a
    file too short to have one, a hash of its whole short content), and its head: records in the first
    FINGERPRINT_BYTES are named by a hash of the bytes before them, as live names them."""
    pos = stream.tell()
    stream.seek(0)
    head = stream.read(FINGERPRINT_BYTES)
    stream.seek(pos)
    key = identify_stream(stream)
    if key is None:
        key = "short-" + hashlib.sha256(head).hexdigest()[:32]
    return key, head
