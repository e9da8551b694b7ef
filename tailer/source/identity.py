"""Which file is which: a checksum of the file's head, taken from the open descriptor, with (device, inode)
as a hint (the way Filebeat's and Vector's fingerprinters do it).

Why content and not the inode: a renamed file (rotation) and a copytruncate copy keep their first bytes, so
they keep their key and are known as already read; an inode reused for a new file has a new head, so it gets
a new key. Why the descriptor and not the path: the path can name another file between a stat and a read
(pygtail's bug catalogue); an open descriptor always names the same file.

Limits, stated honestly:

- The fingerprint covers the first ``FINGERPRINT_BYTES`` = 1024 bytes, Filebeat's default: a handful of
  timestamped lines, which makes two different logs with the same head unlikely, while a new file becomes
  fingerprintable after a few lines. Two files whose first 1 KiB are equal ARE the same file to us.
- A file shorter than that has no fingerprint yet (``fingerprint is None``): its key falls back to
  ``dev{dev}-ino{ino}`` so it is still read; once it grows its key becomes the fingerprint (the follower
  moves its state over).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO

FINGERPRINT_BYTES = 1024
OFFSET_HASH_SPAN = 256
_DIGEST_SIZE = 16  # bytes: 32 hex digits, plenty against accidental collisions among a host's log files


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def head_key(prefix: bytes) -> str:
    """What a record whose line ends inside the first FINGERPRINT_BYTES is known by: a hash of the file's
    bytes up to the line's end. Those bytes never change in an appended file, so the record gets the same
    name (and deterministic nonce) in every read, run and rotation generation, live or replayed, while a
    short file's (device, inode) key is shared by copytruncate generations."""
    return "head-" + _digest(prefix)


def record_file_id(file_key: str, head: bytes, end: int) -> str:
    """``Origin.file_id`` of the line ending at ``end``: ``head_key`` inside the first FINGERPRINT_BYTES
    (``head`` holds at least the file's first ``end`` bytes), the file's key after them."""
    return head_key(head[:end]) if end < FINGERPRINT_BYTES else file_key


@dataclass(slots=True, frozen=True)
class FileIdentity:
    """A file as the tailer knows it: the head checksum (None while too short) and the (dev, ino) hint."""

    fingerprint: str | None
    dev: int
    ino: int

    @property
    def key(self) -> str:
        """The fingerprint when known, else a key from (device, inode)."""
        return self.fingerprint if self.fingerprint is not None else f"dev{self.dev}-ino{self.ino}"


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes at ``offset``; short only at end of file (pread may return less, so loop)."""
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = os.pread(fd, size - got, offset + got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def identify(fd: int) -> FileIdentity:
    """The identity of the file open on ``fd`` (read with pread: the descriptor's position is untouched)."""
    st = os.fstat(fd)
    head = _pread_exact(fd, FINGERPRINT_BYTES, 0)
    fingerprint = _digest(head) if len(head) == FINGERPRINT_BYTES else None
    return FileIdentity(fingerprint=fingerprint, dev=st.st_dev, ino=st.st_ino)


def identify_stream(stream: BinaryIO) -> str | None:
    """The fingerprint of a stream's head, or None when it is shorter than FINGERPRINT_BYTES.

    For a gzip stream (reader.open_log) this is the head of the *uncompressed* content, so ``app.log.1``
    and the later ``app.log.2.gz`` holding the same bytes get the same key, and it equals
    ``identify(fd).fingerprint`` of the plain file. The stream's position is restored (in a .gz, restoring
    a position far from the start means decompressing up to it again).
    """
    position = stream.tell()
    try:
        stream.seek(0)
        chunks: list[bytes] = []
        got = 0
        while got < FINGERPRINT_BYTES:
            chunk = stream.read(FINGERPRINT_BYTES - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        stream.seek(position)
    head = b"".join(chunks)
    return _digest(head) if len(head) == FINGERPRINT_BYTES else None


def offset_hash(fd: int, offset: int, span: int = OFFSET_HASH_SPAN) -> str | None:
    """A hash of the ``span`` bytes just before ``offset`` (fewer when offset < span).

    Saved with a checkpoint, it catches a file truncated and refilled past the saved offset while the
    tailer was stopped (same head, same size or more, different bytes before the offset). None at offset 0
    and when the file no longer holds all those bytes (it is shorter than ``offset``).
    """
    if offset <= 0:
        return None
    size = min(span, offset)
    data = _pread_exact(fd, size, offset - size)
    if len(data) < size:
        return None
    return _digest(data)
