"""Which historical files a replay reads, and how: files and directories expanded and put in rotation
order, each file's source (for its encoding and line limit), and its content identity."""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import BinaryIO

from .config import Settings, SourceSettings
from .errors import ReplayError
from .identity import FINGERPRINT_BYTES, identify_stream
from .rotation import order_files


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


def replay_source(settings: Settings, path: Path) -> SourceSettings:
    """The first source whose globs match the file, or the name without ``.gz`` (a rotated, compressed
    file keeps its source's encoding). ``exclude`` is about live following and is not applied here."""
    full = str(path)
    names = (full, full[:-3]) if full.endswith(".gz") else (full,)
    for source in settings.sources:
        if any(fnmatch.fnmatchcase(name, glob) for name in names for glob in source.paths):
            return source
    return SourceSettings(paths=())


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
