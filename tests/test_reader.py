"""LineReader on real files: complete lines only, byte-exact offsets, encodings, cut lines, gzip."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailer.source.reader import Line, LineReader, check_encoding, open_log


def read_all(reader: LineReader, max_bytes: int = 1 << 20, limit: int = 100_000) -> list[Line]:
    """Every complete line until end of stream (bounded), then the flushed partial line."""
    lines: list[Line] = []
    for _ in range(limit):
        lines.extend(reader.read(max_bytes))
        if reader.at_eof:
            break
    else:
        raise AssertionError("stream did not end")
    last = reader.flush()
    if last is not None:
        lines.append(last)
    return lines


def model(content: bytes, encoding: str = "utf-8") -> list[Line]:
    """What the reader must give for content: content.split(b"\\n") with offsets, CR stripped, decoded."""
    out, start = [], 0
    parts = content.split(b"\n")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and not part:
            break
        end = start + len(part) + (0 if last else 1)
        raw = part[:-1] if part.endswith(b"\r") else part
        out.append(Line(raw.decode(encoding, "replace"), start, end, False))
        start = end
    return out


def test_partial_line_is_held_until_its_newline_arrives(tmp_path: Path):
    path = tmp_path / "app.log"
    path.write_bytes(b"first\nsec")
    with open(path, "rb") as stream, open(path, "ab") as writer:
        reader = LineReader(stream)
        assert reader.read() == [Line("first", 0, 6, False)]
        assert reader.offset == 6 and reader.position == 9
        assert reader.read() == []
        writer.write(b"ond\nthi")
        writer.flush()
        assert reader.read() == [Line("second", 6, 13, False)]
        assert reader.offset == 13


def test_crlf_is_stripped_from_text_and_offsets_count_it(tmp_path: Path):
    path = tmp_path / "win.log"
    path.write_bytes(b"a\r\nbb\r\n\r\nc\n")
    with open(path, "rb") as stream:
        lines = read_all(LineReader(stream))
    assert lines == [Line("a", 0, 3), Line("bb", 3, 7), Line("", 7, 9), Line("c", 9, 11)]


def test_utf8_chinese_offsets_are_byte_exact(tmp_path: Path):
    content = "投票创建 voteId=9\n抽奖 开始\nascii\n".encode()
    path = tmp_path / "zh.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        lines = read_all(LineReader(stream), max_bytes=7)  # chunks split characters in the middle
    assert [x.text for x in lines] == ["投票创建 voteId=9", "抽奖 开始", "ascii"]
    for line in lines:
        assert content[line.start : line.end].decode().rstrip("\n") == line.text
    assert lines[-1].end == len(content)


def test_gb18030_lines_decode_and_offsets_are_byte_exact(tmp_path: Path):
    texts = ["用户 uid=42 创建投票", "频道 channelId=c1 加入", "€ 𠀀 four-byte gb18030"]
    content = b"".join(t.encode("gb18030") + b"\n" for t in texts)
    assert b"\x0a" not in texts[2].encode("gb18030")
    path = tmp_path / "gb.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        reader = LineReader(stream, encoding="gb18030")
        lines = read_all(reader, max_bytes=5)
    assert [x.text for x in lines] == texts
    assert [x.end for x in lines] == [
        len(b"".join(t.encode("gb18030") + b"\n" for t in texts[: i + 1])) for i in range(3)
    ]
    assert reader.stats.replaced == 0


def test_invalid_bytes_are_replaced_counted_and_the_file_goes_on(tmp_path: Path):
    path = tmp_path / "bad.log"
    path.write_bytes(b"ok one\nbad \xff\xfe here\nok two\n")
    with open(path, "rb") as stream:
        reader = LineReader(stream)
        lines = read_all(reader)
    assert [x.text for x in lines] == ["ok one", "bad \ufffd\ufffd here", "ok two"]
    assert reader.stats.replaced == 1 and reader.stats.lines == 3
    assert lines[-1].end == path.stat().st_size


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "cp037", "base64", "no-such-codec"])
def test_encodings_that_cannot_split_on_0x0a_are_refused_by_name(encoding: str):
    with pytest.raises(ValueError, match=encoding):
        check_encoding(encoding)


def test_gb18030_gbk_big5_shift_jis_are_accepted():
    assert [check_encoding(e) for e in ("gb18030", "GBK", "big5", "shift_jis")] == [
        "gb18030",
        "gbk",
        "big5",
        "shift_jis",
    ]


def test_over_long_line_is_cut_counted_and_next_line_is_intact(tmp_path: Path):
    long = "é" * 30  # 60 bytes; a cut at 15 bytes falls inside a character
    content = f"short\n{long}\nafter\n".encode()
    path = tmp_path / "long.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        reader = LineReader(stream, max_line_bytes=15)
        lines = read_all(reader)
    assert lines[0] == Line("short", 0, 6)
    assert lines[1] == Line("é" * 7, 6, 6 + 61, True)  # 7 whole characters, the split one withheld
    assert lines[2] == Line("after", 67, 73)
    assert reader.stats.cut_lines == 1 and reader.stats.replaced == 0


def test_over_long_partial_line_across_reads_is_cut_with_real_end(tmp_path: Path):
    content = b"x" * 100 + b"\nnext\n"
    path = tmp_path / "long.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        reader = LineReader(stream, max_line_bytes=10)
        lines = read_all(reader, max_bytes=7)
    assert lines == [Line("x" * 10, 0, 101, True), Line("next", 101, 106)]


def test_fifty_megabyte_line_keeps_memory_bounded(tmp_path: Path):
    path = tmp_path / "huge.log"
    block = b"y" * (1 << 20)
    with open(path, "wb") as out:
        out.write(b"before\n")
        for _ in range(50):
            out.write(block)
        out.write(b"\nafter\n")
    chunk, limit = 64 * 1024, 1024
    lines: list[Line] = []
    peak = 0
    with open(path, "rb") as stream:
        reader = LineReader(stream, max_line_bytes=limit)
        for _ in range(2000):  # 50 MB / 64 KiB = 800 reads, plus margin
            lines.extend(reader.read(chunk))
            peak = max(peak, reader.held_bytes)
            if reader.at_eof:
                break
    assert peak <= limit
    assert reader.held_bytes == 0
    assert [(x.text[:6], x.cut) for x in lines] == [("before", False), ("y" * 6, True), ("after", False)]
    assert len(lines[1].text) == limit
    assert lines[1].end == 7 + 50 * (1 << 20) + 1
    assert lines[2].end == path.stat().st_size
    assert reader.stats.cut_lines == 1


def test_gzip_gives_same_lines_and_offsets_as_plain(tmp_path: Path):
    content = "".join(f"2026-11-28 10:00:{i % 60:02d} VOTE_JOIN uid={i} 投票\n" for i in range(3000)).encode()
    plain, packed = tmp_path / "app.log.1", tmp_path / "app.log.2.gz"
    plain.write_bytes(content + b"tail without newline")
    packed.write_bytes(gzip.compress(content + b"tail without newline"))
    results = []
    for path in (plain, packed):
        with open_log(path) as stream:
            results.append(read_all(LineReader(stream), max_bytes=4096))
    assert results[0] == results[1]
    assert len(results[0]) == 3001 and results[0][-1].end == len(content) + 20


def test_open_log_seeks_to_an_uncompressed_offset_in_gzip(tmp_path: Path):
    content = b"".join(b"line %d\n" % i for i in range(1000))
    packed = tmp_path / "old.log.gz"
    packed.write_bytes(gzip.compress(content))
    offset = content.index(b"line 500\n")
    with open_log(packed, offset) as stream:
        first = LineReader(stream, offset=offset).read()[0]
    assert first == Line("line 500", offset, offset + 9)


def test_resume_at_an_offset_mid_file(tmp_path: Path):
    content = b"one\ntwo\nthree\n"
    path = tmp_path / "app.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        stream.seek(4)
        lines = read_all(LineReader(stream, offset=4))
    assert lines == [Line("two", 4, 8), Line("three", 8, 14)]


def test_flush_returns_final_partial_line_and_advances_offset(tmp_path: Path):
    path = tmp_path / "rotated.log.1"
    path.write_bytes(b"done\nno newline\r")
    with open(path, "rb") as stream:
        reader = LineReader(stream)
        assert reader.read() == [Line("done", 0, 5)]
        assert reader.at_eof
        assert reader.flush() == Line("no newline", 5, 16)
        assert reader.offset == 16 and reader.flush() is None


def test_empty_lines_and_empty_file(tmp_path: Path):
    path = tmp_path / "e.log"
    path.write_bytes(b"")
    with open(path, "rb") as stream:
        assert read_all(LineReader(stream)) == []
    path.write_bytes(b"\n\n")
    with open(path, "rb") as stream:
        assert read_all(LineReader(stream)) == [Line("", 0, 1), Line("", 1, 2)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.binary(max_size=600).map(lambda b: b.replace(b"\x00", b"\n"))
    | st.lists(st.sampled_from([b"a", b"\n", b"\r", "投".encode(), b"\xff", b"\xe6\x8a"]), max_size=200).map(
        b"".join
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
    read_sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8),
)
def test_appended_chunks_yield_exactly_the_lines_of_content(tmp_path: Path, content, cuts, read_sizes):
    """Random bytes, appended to a real file in random pieces between reads of random sizes, come out as
    exactly content.split(b"\\n") with byte-exact offsets."""
    path = tmp_path / "prop.log"
    path.write_bytes(b"")
    bounds = sorted({min(c, len(content)) for c in cuts} | {len(content)})
    lines: list[Line] = []
    with open(path, "rb") as stream, open(path, "ab") as writer:
        reader = LineReader(stream, max_line_bytes=1 << 16)
        done, turn = 0, 0
        for bound in bounds:
            writer.write(content[done:bound])
            writer.flush()
            done = bound
            for _ in range(len(content) + 2):  # each read consumes >= 1 byte until EOF
                lines.extend(reader.read(read_sizes[turn % len(read_sizes)]))
                turn += 1
                if reader.at_eof:
                    break
        last = reader.flush()
        if last is not None:
            lines.append(last)
    assert lines == model(content)
    assert reader.offset == len(content)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.lists(st.sampled_from([b"ab", b"\n", "投票".encode(), b"\xff", b"x" * 9]), max_size=80).map(
        b"".join
    ),
    limit=st.integers(min_value=1, max_value=20),
    read_size=st.integers(min_value=1, max_value=50),
)
def test_cut_lines_keep_offsets_and_a_decodable_prefix(tmp_path: Path, content, limit, read_size):
    """With cutting, offsets stay exact and a cut line's text is a prefix of its line, at most limit bytes."""
    path = tmp_path / "cut.log"
    path.write_bytes(content)
    with open(path, "rb") as stream:
        lines = read_all(LineReader(stream, max_line_bytes=limit), max_bytes=read_size)
    expected = model(content)
    assert [(x.start, x.end) for x in lines] == [(x.start, x.end) for x in expected]
    for got, want in zip(lines, expected, strict=True):
        raw = content[got.start : got.end].rstrip(b"\n")
        assert got.cut == (len(raw) > limit)
        if got.cut:
            assert raw[:limit].decode("utf-8", "replace").startswith(got.text)
            assert want.text.startswith(got.text)
        else:
            assert got == want


def test_truncated_gzip_gives_its_intact_lines_then_raises(tmp_path: Path):
    content = b"".join(
        b"2026-11-28 10:00:00 VOTE_JOIN voteId=%d uid=%d\n" % (i, i * 7919) for i in range(20000)
    )
    packed = gzip.compress(content)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(packed[: len(packed) // 2])
    lines: list[Line] = []
    with open_log(path) as stream:
        reader = LineReader(stream)
        with pytest.raises(EOFError):
            for _ in range(1000):
                lines.extend(reader.read(len(content)))  # one read asks for more than the file holds
                assert not reader.at_eof
    assert 0 < len(lines) < 20000
    assert lines == model(content)[: len(lines)]
