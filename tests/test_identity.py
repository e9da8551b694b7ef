"""File identity from the open descriptor: content decides, (dev, ino) is the fallback for short files."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from tailer.source.identity import (
    FINGERPRINT_BYTES,
    FileIdentity,
    identify,
    identify_stream,
    offset_hash,
)
from tailer.source.reader import open_log


def log_text(seed: str, lines: int = 40) -> bytes:
    return "".join(
        f"2026-11-28 10:00:{i:02d},000 [{seed}] INFO VOTE_JOIN voteId={i} uid=42\n" for i in range(lines)
    ).encode()


def ident(path: Path) -> FileIdentity:
    fd = os.open(path, os.O_RDONLY)
    try:
        return identify(fd)
    finally:
        os.close(fd)


def test_renamed_file_keeps_its_key(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(log_text("a"))
    before = ident(path)
    path.rename(tmp_path / "app.log.1")
    after = ident(tmp_path / "app.log.1")
    assert before.fingerprint is not None
    assert after.key == before.key and after.ino == before.ino


def test_copy_has_the_same_key(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(log_text("a"))
    shutil.copyfile(path, tmp_path / "app.log.1")  # copytruncate's copy: another inode, same head
    original, copy = ident(path), ident(tmp_path / "app.log.1")
    assert copy.ino != original.ino
    assert copy.key == original.key


def test_new_content_at_a_reused_path_has_a_new_key(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(log_text("a"))
    first = ident(path)
    path.unlink()
    path.write_bytes(log_text("b"))
    assert ident(path).key != first.key


def test_short_file_is_keyed_by_dev_ino_until_it_grows(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(b"x" * (FINGERPRINT_BYTES - 1))
    fd = os.open(path, os.O_RDONLY)
    try:
        short = identify(fd)
        st = os.fstat(fd)
        assert short.fingerprint is None
        assert short.key == f"dev{st.st_dev}-ino{st.st_ino}"
        with open(path, "ab") as out:
            out.write(b"y")
        grown = identify(fd)  # same descriptor, now long enough
    finally:
        os.close(fd)
    assert grown.fingerprint is not None and grown.key == grown.fingerprint
    assert (grown.dev, grown.ino) == (short.dev, short.ino)


def test_bytes_after_the_head_do_not_change_the_key(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(log_text("a"))
    before = ident(path)
    with open(path, "ab") as out:
        out.write(b"more lines\n" * 100)
    assert ident(path).key == before.key


def test_identify_does_not_move_the_descriptor_position(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(log_text("a"))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 17, os.SEEK_SET)
        identify(fd)
        offset_hash(fd, 500)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 17
    finally:
        os.close(fd)


def test_identify_stream_is_the_same_for_plain_and_gzip_and_restores_position(tmp_path: Path):
    content = log_text("a")
    plain, packed = tmp_path / "app.log.1", tmp_path / "app.log.2.gz"
    plain.write_bytes(content)
    packed.write_bytes(gzip.compress(content))
    with open_log(plain) as a, open_log(packed) as b:
        a.seek(300)
        b.seek(300)
        fp_plain, fp_gzip = identify_stream(a), identify_stream(b)
        assert a.tell() == 300 and b.tell() == 300
        assert a.read(5) == b.read(5) == content[300:305]
    assert fp_plain is not None and fp_plain == fp_gzip
    assert fp_plain == ident(plain).fingerprint
    assert _fingerprint_of(packed) == fp_plain


def test_identify_stream_of_a_short_stream_is_none(tmp_path: Path):
    packed = tmp_path / "tiny.log.gz"
    packed.write_bytes(gzip.compress(b"short\n"))
    assert _fingerprint_of(packed) is None


def test_offset_hash_changes_when_bytes_before_offset_change(tmp_path: Path):
    path = tmp_path / "app.log"
    content = log_text("a")
    path.write_bytes(content)
    offset = 900
    fd = os.open(path, os.O_RDONLY)
    try:
        saved = offset_hash(fd, offset)
        assert saved is not None and offset_hash(fd, offset) == saved
        assert offset_hash(fd, 0) is None
        assert offset_hash(fd, len(content) + 1) is None  # the file no longer reaches the offset
    finally:
        os.close(fd)
    # Truncate and refill while "stopped": same head and size, other bytes just before the offset.
    refilled = content[: offset - 10] + b"Z" * 10 + content[offset:]
    path.write_bytes(refilled)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert offset_hash(fd, offset) != saved
        # Bytes before the span do not matter: only the span just before the offset is hashed.
        assert offset_hash(fd, offset - 10 - 256) == offset_hash_of(content, offset - 10 - 256)
    finally:
        os.close(fd)


def offset_hash_of(content: bytes, offset: int) -> str | None:
    """offset_hash of in-memory content, through a real descriptor of a temporary file."""
    with tempfile.TemporaryFile() as tmp:
        tmp.write(content)
        tmp.flush()
        return offset_hash(tmp.fileno(), offset)


def _fingerprint_of(path) -> str | None:
    with open_log(path) as stream:
        return identify_stream(stream)
