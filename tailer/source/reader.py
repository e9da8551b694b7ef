"""Bytes -> complete lines with byte offsets, from any binary stream (a live file, a rotated one, a .gz).

One reader serves ``run`` and ``replay``. Limits, stated honestly:

- Only complete lines come out of :meth:`LineReader.read`; a partial tail is held until its newline arrives
  (a later ``read()`` continues it). At the end of a finished file :meth:`LineReader.flush` gives it.
- Lines are split on ``b"\\n"``; a trailing ``b"\\r"`` is removed from the text, offsets stay byte-exact.
  So the encoding must write ``"\\n"`` as the single byte 0x0A and never use that byte inside a character:
  UTF-8, Latin-1, GB18030, GBK, Big5, Shift-JIS are fine; UTF-16/UTF-32 (and EBCDIC) are refused with
  ValueError.
- Each line is decoded alone with ``errors="replace"``: invalid bytes become U+FFFD, the line is counted in
  ``stats.replaced``, and the file goes on.
- A line over ``max_line_bytes`` (its bytes without the newline) is cut: its first ``max_line_bytes`` bytes
  (cut back to a character boundary) come out with ``cut=True``, the rest up to the newline is skipped
  without being held, so memory stays bounded even for a 1 GB line with no newline yet. It is counted in
  ``stats.cut_lines``; its ``end`` is past its real newline.
- Offsets of a gzip stream are offsets in the uncompressed data.
- With a ``select`` (tailer/source/select.py), ``read()`` decodes and returns only the complete lines that
  can match a rule (plus the one completing a held partial line); ``last_count`` and ``last_cut`` say how
  many complete lines, and cut lines, the read passed in all. ``stats.replaced`` then counts the decoded
  lines only.
"""

from __future__ import annotations

import codecs
import gzip
import os
from dataclasses import dataclass
from itertools import accumulate, count, repeat
from operator import add
from typing import BinaryIO, NamedTuple

from tailer.source.select import LineSelector

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_CHUNK = 1 << 20
_new_tuple = tuple.__new__  # builds a Line from a ready tuple in C, skipping the Python-level __new__


class Line(NamedTuple):
    """One line: its text (no newline, no trailing CR) and its byte span; ``end`` is just past the newline.

    A NamedTuple rather than the house's frozen dataclass, on purpose: this is the one value made per log
    line, and a frozen slots dataclass's ``__init__`` (four ``object.__setattr__`` calls) cost ~0.8 us per
    line against ~0.25 us here, most of the reader's time (benchmarks/bench_reader.py). It is just as
    immutable, and read the same way (``line.text``, ``line.end``).
    """

    text: str
    start: int
    end: int
    cut: bool = False


@dataclass(slots=True)
class ReaderStats:
    """Counters of one reader (mutable: they accumulate)."""

    lines: int = 0  # lines emitted, cut ones included
    cut_lines: int = 0  # lines longer than max_line_bytes, emitted cut
    replaced: int = 0  # lines that had undecodable bytes (replaced by U+FFFD)
    bytes: int = 0  # bytes read from the stream


def check_encoding(encoding: str) -> str:
    """The codec's canonical name, or ValueError when lines of that encoding cannot be split on 0x0A."""
    try:
        info = codecs.lookup(encoding)
        newline = "\n".encode(info.name)
    except LookupError as exc:  # unknown, or not a text encoding (base64, rot13...)
        raise ValueError(f"unknown text encoding {encoding!r}") from exc
    if newline != b"\n":
        raise ValueError(
            f"encoding {encoding!r} is not supported: lines are split on the byte 0x0A, "
            f"which {info.name} does not use as its newline (use an ASCII-compatible encoding such as "
            "utf-8, gb18030, gbk, big5 or shift_jis)"
        )
    return info.name


class LineReader:
    """Complete lines from ``stream``, which is already positioned at ``offset``.

    ``offset`` is the start of the next complete line (everything before it went out as lines);
    ``position`` is how far the stream has been read (``offset`` plus the held partial line).
    ``read()`` reads at most ``max_bytes`` per call so one huge file never starves the others; it returns
    ``[]`` both at end of stream and when a chunk held no newline: ``at_eof`` tells them apart.
    Errors of the stream itself (OSError, EOFError of a truncated .gz) propagate, after the lines read
    before them: a damaged .gz gives its intact prefix, then raises on the following ``read()``.
    """

    def __init__(
        self, stream: BinaryIO, *, offset: int = 0, encoding: str = "utf-8", max_line_bytes: int = 65536
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.encoding = check_encoding(encoding)
        self.max_line_bytes = max_line_bytes
        self.offset = offset
        self.stats = ReaderStats()
        self.at_eof = False
        self._stream = stream
        # The held partial line: its real length, and its first bytes (never more than max_line_bytes:
        # past that we only count, which is what keeps memory bounded on a line with no end).
        self._held_len = 0
        self._held: list[bytes] = []
        self._held_kept = 0
        self._error: Exception | None = None  # a stream error deferred until the lines before it are out
        self.last_count = 0  # complete lines the last read() passed, returned or not
        self.last_cut = 0  # of which cut (longer than max_line_bytes)

    @property
    def position(self) -> int:
        """Bytes consumed from the stream so far (offset + the held partial line)."""
        return self.offset + self._held_len

    @property
    def held_bytes(self) -> int:
        """Bytes of the partial line kept in memory (at most max_line_bytes)."""
        return self._held_kept

    def read(self, max_bytes: int = DEFAULT_CHUNK, select: LineSelector | None = None) -> list[Line]:
        """Read up to ``max_bytes`` and return the lines they complete (maybe none); with ``select``, only
        those that can match (see the module docstring)."""
        self.last_count = self.last_cut = 0
        data = self._read_chunk(max_bytes)
        # _read_chunk is short only at end of stream, or before an error it defers to the next call.
        self.at_eof = len(data) < max_bytes and self._error is None
        if not data:
            return []
        self.stats.bytes += len(data)
        cut_before = self.stats.cut_lines
        parts = data.split(b"\n")
        tail = parts.pop()
        if not parts:  # no newline in this chunk: it all continues the partial line
            self._hold(tail)
            return []
        self.last_count = len(parts)
        out: list[Line] = []
        start = self.offset
        base = 0  # where in data the parts still to turn into lines begin
        if self._held_len:  # the first part completes the held line
            base = len(parts[0]) + 1
            self._hold(parts[0])
            raw, length = self._take_held()
            end = start + length + 1
            if select is None or select.wants(raw):
                out.append(self._make(raw, start, end, length > self.max_line_bytes))
            else:
                self.stats.lines += 1
                self.stats.cut_lines += length > self.max_line_bytes
            start = end
            del parts[0]
        if parts:
            if select is None or select.everything:
                start = self._bulk(parts, start, out, b"\r" in data)
            else:
                start = self._selected(data, base, parts, start, out, select)
        self.offset = start
        if tail:
            self._hold(tail)
        self.last_cut = self.stats.cut_lines - cut_before
        return out

    def flush(self) -> Line | None:
        """At the end of a finished file (after ``read()`` reported ``at_eof``): the held partial line as
        a Line ending at end of file, or None. The offset moves past it."""
        if not self._held_len:
            return None
        raw, length = self._take_held()
        start = self.offset
        self.offset = start + length
        return self._make(raw, start, self.offset, length > self.max_line_bytes)

    # -- internals ---------------------------------------------------------------------------------

    def _read_chunk(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes``, short only at end of stream.

        Read piecewise with read1 where the stream has it: ``read(n)`` of a truncated or corrupt .gz raises
        and drops everything it had decompressed in that call, so the intact lines before the damage would
        be lost. Here the pieces read before an error are returned, and the error is raised by the next
        call (``at_eof`` stays False so the caller makes it)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        read1 = getattr(self._stream, "read1", None)
        if read1 is None:
            return self._stream.read(max_bytes)
        pieces: list[bytes] = []
        got = 0
        while got < max_bytes:
            try:
                piece = read1(max_bytes - got)
            except Exception as exc:  # EOFError, zlib.error, BadGzipFile, OSError: raised once lines are out
                if not pieces:
                    raise
                self._error = exc
                break
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def _hold(self, piece: bytes) -> None:
        self._held_len += len(piece)
        room = self.max_line_bytes - self._held_kept
        if room <= 0:
            return
        if len(piece) > room:
            piece = piece[:room]  # a copy: the big chunk it came from is not kept alive
        self._held.append(piece)
        self._held_kept += len(piece)

    def _take_held(self) -> tuple[bytes, int]:
        raw = b"".join(self._held)
        length = self._held_len
        self._held = []
        self._held_len = self._held_kept = 0
        return raw, length

    def _bulk(self, parts: list[bytes], start: int, out: list[Line], has_cr: bool) -> int:
        """Lines of a chunk's complete parts: the hot path (one C-level pass per step where possible)."""
        limit = self.max_line_bytes
        if max(map(len, parts)) > limit:  # rare: go line by line so cut lines get their special care
            for part in parts:
                end = start + len(part) + 1
                cut = len(part) > limit
                out.append(self._make(part[:limit] if cut else part, start, end, cut))
                start = end
            return start
        # end_i = start + (bytes of parts 0..i) + (i + 1 newlines), computed by C iterators.
        ends = list(map(add, accumulate(map(len, parts)), count(start + 1)))
        if has_cr:
            parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
        try:
            texts = list(map(bytes.decode, parts, repeat(self.encoding)))
        except UnicodeDecodeError:
            texts = list(map(self._decode, parts))
        starts = [start, *ends]
        out.extend(map(_new_tuple, repeat(Line), zip(texts, starts, ends, repeat(False))))
        self.stats.lines += len(parts)
        return ends[-1]

    def _selected(
        self, data: bytes, base: int, parts: list[bytes], start: int, out: list[Line], select: LineSelector
    ) -> int:
        """Only the parts that can match become lines; the others are counted, never decoded."""
        ends = list(map(add, accumulate(map(len, parts)), count(base + 1)))  # in data, past each newline
        shift = start - base  # data position -> file offset
        limit = self.max_line_bytes
        chosen = select.select(data, base, ends, parts)
        self.stats.lines += len(parts)
        if max(map(len, parts)) > limit:
            self.stats.cut_lines += sum(1 for n in map(len, parts) if n > limit)
        if not chosen:
            return ends[-1] + shift
        picked = [parts[i] for i in chosen]
        line_ends = [ends[i] + shift for i in chosen]
        line_starts = [(ends[i - 1] if i else base) + shift for i in chosen]
        if max(map(len, picked)) > limit:  # rare: cut lines one by one (_make counts them: undo ours)
            self.stats.lines -= len(picked)
            self.stats.cut_lines -= sum(1 for p in picked if len(p) > limit)
            for part, s, e in zip(picked, line_starts, line_ends, strict=True):
                cut = len(part) > limit
                out.append(self._make(part[:limit] if cut else part, s, e, cut))
            return ends[-1] + shift
        if b"\r" in data:
            picked = [p[:-1] if p.endswith(b"\r") else p for p in picked]
        try:
            texts = list(map(bytes.decode, picked, repeat(self.encoding)))
        except UnicodeDecodeError:
            texts = list(map(self._decode, picked))
        out.extend(map(_new_tuple, repeat(Line), zip(texts, line_starts, line_ends, repeat(False))))
        return ends[-1] + shift

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError:
            self.stats.replaced += 1
            return raw.decode(self.encoding, "replace")

    def _make(self, raw: bytes, start: int, end: int, cut: bool) -> Line:
        self.stats.lines += 1
        if not cut:
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            return Line(self._decode(raw), start, end, False)
        self.stats.cut_lines += 1
        raw = raw[: self.max_line_bytes]
        # An incremental decoder withholds a character split by the cut instead of replacing it.
        try:
            text = codecs.getincrementaldecoder(self.encoding)("strict").decode(raw, final=False)
        except UnicodeDecodeError:
            self.stats.replaced += 1
            text = codecs.getincrementaldecoder(self.encoding)("replace").decode(raw, final=False)
        return Line(text, start, end, True)


def open_log(path: str | os.PathLike[str], offset: int = 0) -> BinaryIO:
    """A binary stream of the file's content: gzip (magic 1f 8b) is decompressed transparently, and its
    offsets are offsets in the uncompressed data. ``offset`` seeks there (in a .gz that means decompress and
    skip, which costs time proportional to the offset). The caller closes the stream."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    stream: BinaryIO = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")  # noqa: SIM115
    if offset:
        try:
            stream.seek(offset)
        except BaseException:
            stream.close()
            raise
    return stream
