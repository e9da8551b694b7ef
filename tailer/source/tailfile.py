"""One followed file identity (Vector's ``file_watcher``): its ack watermark, where reading stands, and at
most one open descriptor.

A TailedFile outlives its descriptor on purpose. When a file is truncated under us, the old logical file
keeps its key, read position and watermark *without* a descriptor, and a rotated copy with the same head
(copytruncate's ``app.log.1``) is attached to it later and continues from that position: the bytes written
before the truncation that we had not read yet are recovered from the copy, and nothing is resent.

Its life is the explicit state machine of ``tailer.source.lifecycle`` (FOLLOWING, MOVED, DRAINING,
DELETED, FINISHED with a descriptor; DETACHED, TRUNCATED_AWAY, DONE without): the follower calls the
transitions, and one called from a state that does not allow it raises ``LifecycleError``. The transitions
that take or give the descriptor are here (``attach``, ``finish``, ``retire``, ``truncated_away``,
``detach``, ``close``), the others there.

Identity and offset are always taken together from the open descriptor (``identify(fd)``, ``os.fstat``,
``os.pread``), never from a path that may name another file by now (pygtail's lesson). No clock, no
watchdog, no HTTP here: the follower decides when, this class answers what.
"""

from __future__ import annotations

import enum
import os
from typing import BinaryIO

from tailer.source.identity import FINGERPRINT_BYTES, FileIdentity, identify, offset_hash, record_file_id
from tailer.source.lifecycle import Lifecycle, LifecycleError
from tailer.source.reader import Line, LineReader
from tailer.source.select import LineSelector
from tailer.source.settings import SourceSettings
from tailer.state.checkpoint import FileCheckpoint
from tailer.state.watermark import Watermark


class Change(enum.Enum):
    """What fstat of the open descriptor and stat of its path say happened since the last look."""

    NONE = "none"
    TRUNCATED = "truncated"  # size below what we read: copytruncate or truncation in place
    REFILLED = "refilled"  # the bytes before our offset changed: truncated and rewritten past it
    DELETED = "deleted"  # st_nlink == 0: only our descriptor still reaches it
    MOVED = "moved"  # the path names another inode, or nothing: renamed (rotation) or unlinked


class TailedFile(Lifecycle):
    """One logical file. ``key`` is its identity key (fingerprint, or dev/ino while too short)."""

    def __init__(
        self,
        key: str,
        path: str,
        *,
        offset: int = 0,
        offset_hash: str | None = None,
        fingerprint: str | None = None,
        dev: int = 0,
        ino: int = 0,
        size: int = 0,
        last_ack_at: float | None = None,
        done: bool = False,
    ) -> None:
        self.key = key
        self.path = path
        self.fingerprint = fingerprint
        self.dev, self.ino = dev, ino
        self.size = size
        self.watermark = Watermark(offset)
        self.last_ack_at = last_ack_at
        super().__init__(done=done)
        self.more = False  # the last read stopped at the budget, not at end of file
        self.last_count = self.last_cut = 0  # complete (and cut) lines the last read passed
        self.quiet = False  # the last reconcile found it unchanged and read to its end: no read needed
        self._last_sig: tuple[int, int] | None = None  # (size, mtime_ns) at the last reconcile
        self.unread_at_change = 0  # bytes known to be there and not read when it was truncated/rewritten
        self.updated_at = 0.0
        self.source: SourceSettings | None = None  # set by the follower: encoding, max_line_bytes
        self._stream: BinaryIO | None = None
        self._reader: LineReader | None = None
        self._resume_at, self._resume_hash = offset, offset_hash  # read position and the hash before it
        self._ck_offset, self._ck_hash = offset, offset_hash  # last watermark offset we could hash
        self._saved_offset = -1  # offset of the last checkpoint entry made (updated_at moves with it)
        self._emitted = offset  # end of the last line handed out: nothing at or before it comes out twice
        # Hash of the bytes before the reader's position while it holds a partial line: the resume hash
        # cannot see those bytes change (and there is none at offset 0).
        self._held_hash: str | None = None
        self._head = b""  # its first bytes as read, up to the last line end inside them: see record_key

    @classmethod
    def from_checkpoint(cls, cp: FileCheckpoint) -> TailedFile:
        tf = cls(cp.key, cp.path, offset=cp.offset, offset_hash=cp.offset_hash, fingerprint=cp.fingerprint,
                 dev=cp.dev, ino=cp.ino, size=cp.size, last_ack_at=cp.last_ack_at, done=cp.done)  # fmt: skip
        tf.updated_at, tf._saved_offset = cp.updated_at, cp.offset
        return tf

    def __repr__(self) -> str:
        state = self._state.value
        return f"TailedFile({self.path!r}, key={self.key[:12]!r}, {state}, read={self.read_offset})"

    # -- transitions that take or give the descriptor (the others: lifecycle.Lifecycle) ----------------

    def finish(self) -> Line | None:
        """Drained: flush the held partial last line (returned, if any); closed once everything settles."""
        self._enter("finish")
        return self.flush()

    def retire(self) -> None:
        """Finished and settled: close the descriptor; ``done`` from here on, in the checkpoint too."""
        self._check("retire")
        if not self.settled:
            raise LifecycleError(f"retire: {self!r} has {self.watermark.in_flight} line(s) in flight")
        self._enter("retire")
        self._release().close()

    def truncated_away(self) -> BinaryIO:
        """Truncated or rewritten under us: the descriptor is handed back (to read as a new logical file
        from 0) and this one keeps its key, read position and watermark for a copy to continue."""
        self._enter("truncated_away")
        return self._release()

    def detach(self) -> BinaryIO:
        """Give up the descriptor (kept open, for the caller to reuse); reading position is remembered."""
        self._enter("detach")
        return self._release()

    def close(self) -> None:
        """Close the descriptor (stopping, a read error): found again, it resumes where it stood."""
        self._enter("close")
        self._release().close()

    # -- descriptor --------------------------------------------------------------------------------

    @property
    def read_offset(self) -> int:
        """Start of the next complete line to read (everything before it was handed out)."""
        return self._reader.offset if self._reader is not None else self._resume_at

    @property
    def encoding(self) -> str:
        return self._reader.encoding if self._reader is not None else "utf-8"

    @property
    def resume_at(self) -> int:
        return self._resume_at

    def attach(
        self, stream: BinaryIO, ident: FileIdentity, offset: int, *, encoding: str, max_line_bytes: int
    ) -> None:
        """Read ``stream`` (the open file ``ident``) from ``offset`` on, as this logical file."""
        self._check("attach")
        stream.seek(offset)
        reader = LineReader(stream, offset=offset, encoding=encoding, max_line_bytes=max_line_bytes)
        self.fingerprint, self.dev, self.ino = ident.fingerprint, ident.dev, ident.ino
        self._resume_at, self._resume_hash = offset, offset_hash(stream.fileno(), offset)
        if self.watermark.offset == offset:
            self._ck_offset, self._ck_hash = offset, self._resume_hash
        self._held_hash = None
        self.size = os.fstat(stream.fileno()).st_size
        self._stream, self._reader = stream, reader  # last: a failed attach leaves no descriptor behind
        self._enter("attach")

    def _release(self) -> BinaryIO:
        """The descriptor, given up by a transition; the reading position is remembered."""
        stream, self._stream = self._stream, None
        assert stream is not None, "an open state without a descriptor"
        self.remember_checkpoint_hash(stream.fileno())
        self._reader = None
        self.more = False
        self._held_hash = None
        return stream

    def accepts(self, fd: int, size: int) -> bool:
        """Is the file open on ``fd`` this logical file, so reading may continue at our read position?"""
        at = self._resume_at
        if at == 0:
            return True
        if size < at:
            return False
        return offset_hash(fd, at) == self._resume_hash

    # -- reconcile, read ---------------------------------------------------------------------------

    def reconcile(self) -> Change:
        """fstat the descriptor, stat the path: the truth, whatever watchdog said or did not say."""
        assert self._stream is not None and self._reader is not None
        fd = self._stream.fileno()
        st = os.fstat(fd)
        # The last size we saw beyond what we read was there and unread: if the file was truncated (or
        # rewritten) since, those bytes are lost unless a copy continues it. A lower bound: what was
        # written after that look is unknowable.
        known, self.size = self.size, st.st_size
        if st.st_size < self._reader.position:
            self.unread_at_change = max(0, known - self._reader.position)
            return Change.TRUNCATED
        # Same size and modification time as at the last look: the bytes checked then are still there
        # (no hash to take), and when everything was read there is nothing to read (``quiet``). This
        # is what keeps a thousand idle files cheap.
        sig = (st.st_size, st.st_mtime_ns)
        unchanged = sig == self._last_sig
        self._last_sig = sig
        self.quiet = unchanged and self._reader.position >= st.st_size and not self.more
        if not unchanged and (
            (self._resume_at > 0 and offset_hash(fd, self._resume_at) != self._resume_hash)
            or (self._held_hash is not None and offset_hash(fd, self._reader.position) != self._held_hash)
        ):  # truncated and rewritten past what we read (or past the held partial line: never glue them)
            self.unread_at_change = max(0, known - self._reader.position)
            return Change.REFILLED
        if st.st_nlink == 0:
            return Change.DELETED
        try:
            at_path = os.stat(self.path)
        except OSError:
            return Change.MOVED
        if (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino):
            return Change.MOVED
        return Change.NONE

    def read(self, budget: int, select: LineSelector | None = None) -> list[Line]:
        """Complete lines from at most ``budget`` bytes (lines already handed out are never repeated);
        with ``select`` only those that can match, ``last_count`` saying how many the read passed."""
        assert self._stream is not None and self._reader is not None
        reader = self._reader
        lines = reader.read(budget, select)
        self.more = not reader.at_eof
        self.last_count, self.last_cut = reader.last_count, reader.last_cut
        position = reader.position
        held = position > reader.offset
        self._held_hash = offset_hash(self._stream.fileno(), position) if held else None
        if reader.last_count:
            fd = self._stream.fileno()
            # What we just read is there: a file that grew past the fingerprint size is re-keyed by the
            # follower right after this read, before any of these lines becomes a record.
            self.size = max(self.size, position)
            if lines and lines[0].end < FINGERPRINT_BYTES:
                self._remember_head(fd, lines[-1].end)
            self._resume_at, self._resume_hash = reader.offset, offset_hash(fd, reader.offset)
            if lines and lines[0].end <= self._emitted:  # continued from a copy we had partly read already
                lines = [line for line in lines if line.end > self._emitted]
            self._emitted = max(self._emitted, reader.offset)
        return lines

    def record_key(self, end: int) -> str:
        """What the record of the line ending at ``end`` is known by (``Origin.file_id``, hence its
        deterministic nonce). Past the first FINGERPRINT_BYTES: the file's key (its fingerprint). Inside
        them: a hash of the file's bytes up to ``end``, which never change in an appended file. Why not
        the key there: a file that short is keyed by (device, inode), which copytruncate keeps for every
        new generation of the file (and a deleted file's inode is reused), so two different records would
        share a nonce (the server refuses the second: 409); and a line first sent while the file was short
        would be resent after a crash under the fingerprint key (a new nonce: stored twice)."""
        if end < FINGERPRINT_BYTES and end > len(self._head):  # shrank before we could read its head
            return self.key
        return record_file_id(self.key, self._head, end)

    def _remember_head(self, fd: int, upto: int) -> None:
        """Keep the file's bytes up to ``upto`` (at most FINGERPRINT_BYTES), read when its lines are."""
        if upto > len(self._head) and len(self._head) < FINGERPRINT_BYTES:
            self._head = os.pread(fd, min(upto, FINGERPRINT_BYTES), 0)

    def at_end(self) -> bool:
        """Everything the file holds now was read (a partial last line may be held)."""
        assert self._stream is not None and self._reader is not None
        return not self.more and self._reader.position >= os.fstat(self._stream.fileno()).st_size

    def flush(self) -> Line | None:
        """The held partial last line of a finished file, as a line ending at end of file."""
        assert self._reader is not None
        line = self._reader.flush()
        if line is None or line.end <= self._emitted:
            return None
        self._emitted = line.end
        if self._stream is not None and line.end < FINGERPRINT_BYTES:
            self._remember_head(self._stream.fileno(), line.end)
        self._resume_at = self._reader.offset
        self._resume_hash = offset_hash(self._stream.fileno(), self._resume_at) if self._stream else None
        return line

    def new_identity(self) -> FileIdentity | None:
        """A short file that has grown past the fingerprint size: its identity by content, to re-key."""
        if self.fingerprint is not None or self._stream is None or self.size < FINGERPRINT_BYTES:
            return None
        ident = identify(self._stream.fileno())
        return ident if ident.fingerprint is not None else None

    @property
    def settled(self) -> bool:
        """Every line handed out has settled (nothing tracked is in flight)."""
        return self.watermark.in_flight == 0

    # -- checkpoint --------------------------------------------------------------------------------

    def remember_checkpoint_hash(self, fd: int) -> None:
        off = self.watermark.offset
        if off == self._ck_offset:
            return
        if off == self._resume_at:  # hashed when those bytes were read: true even if truncated since
            self._ck_offset, self._ck_hash = off, self._resume_hash
        elif off < self._resume_at and offset_hash(fd, self._resume_at) == self._resume_hash:
            # The descriptor still holds what we read (not truncated or rewritten since the last look):
            # its bytes before ``off`` are the ones read. Otherwise keep the older hashed offset (it lags,
            # safely): a hash of the truncated file would make the copy look rewritten and resent whole.
            self._ck_offset, self._ck_hash = off, offset_hash(fd, off)

    def checkpoint(self, wall_now: float) -> FileCheckpoint:
        """This file's entry: the settled offset and the hash of the bytes before it, taken together."""
        if self._stream is not None:
            self.remember_checkpoint_hash(self._stream.fileno())
        elif self.watermark.offset == self._resume_at:
            self._ck_offset, self._ck_hash = self._resume_at, self._resume_hash
        # Without a descriptor a newer offset cannot be hashed: the last hashed one is kept (it lags, safely).
        if self._ck_offset != self._saved_offset:
            self._saved_offset, self.updated_at = self._ck_offset, wall_now
        return FileCheckpoint(
            key=self.key, path=self.path, offset=self._ck_offset, fingerprint=self.fingerprint, dev=self.dev,
            ino=self.ino, offset_hash=self._ck_hash, size=self.size, updated_at=self.updated_at,
            last_ack_at=self.last_ack_at, done=self.done,
        )  # fmt: skip
