"""The chunk-level prefilter changes no result: a selecting read gives exactly the lines of a plain read
that hold a rule's literal (and maybe a few more), byte-exact, whatever the chunk boundaries, partial lines,
over-long lines, CRs, undecodable bytes and multi-byte encodings; and the pipeline's records and counters
are the same either way."""

from __future__ import annotations

import asyncio
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailer.rules.compile import compile_rules
from tailer.run.pipeline import FileLane, Pipeline
from tailer.source.reader import LineReader
from tailer.source.select import LineSelector

LITERALS = ["VOTE_JOIN", "抽奖", "id="]
PIECES = [
    "VOTE_JOIN",
    "VOTE_JO",
    "IN",
    "抽奖",
    "抽",
    "奖",
    "id=",
    "i",
    "d=",
    "x",
    " ",
    "\r",
    "\n",
    "\n",
    "é",
    "𠀀",
]


def read_all(data: bytes, encoding: str, sizes: list[int], limit: int, select: LineSelector | None):
    reader = LineReader(io.BytesIO(data), encoding=encoding, max_line_bytes=limit)
    out, total, i = [], 0, 0
    while True:
        lines = reader.read(sizes[i % len(sizes)], select=select)
        i += 1
        out.extend(lines)
        total += reader.last_count
        if reader.at_eof:
            last = reader.flush()
            if last is not None:
                out.append(last)
                total += 1
            return out, total, reader


texts = st.lists(st.sampled_from(PIECES), max_size=300).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    junk=st.binary(max_size=8),
    encoding=st.sampled_from(["utf-8", "gb18030", "big5", "latin-1"]),
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=5),
    limit=st.integers(1, 40),
)
def test_selecting_read_keeps_every_line_that_holds_a_literal_byte_exact(text, junk, encoding, sizes, limit):
    data = text.encode(encoding, errors="replace") + junk + b"\n" + text[::-1].encode(encoding, "replace")
    plain, plain_total, plain_reader = read_all(data, encoding, sizes, limit, None)
    select = LineSelector([[lit] for lit in LITERALS], encoding)
    chosen, total, reader = read_all(data, encoding, sizes, limit, select)
    assert total == plain_total == len(plain)
    assert reader.offset == plain_reader.offset == len(data)
    assert (reader.stats.lines, reader.stats.cut_lines) == (
        plain_reader.stats.lines,
        plain_reader.stats.cut_lines,
    )
    by_end = {line.end: line for line in plain}
    assert all(by_end[line.end] == line for line in chosen)  # same text, span and cut flag
    must = {line.end for line in plain if any(lit in line.text for lit in LITERALS)}
    assert must <= {line.end for line in chosen}


def test_stateful_encodings_and_rules_without_a_literal_select_everything():
    assert LineSelector([["VOTE"]], "utf-7").everything
    assert LineSelector([["VOTE"], []], "utf-8").everything  # a rule that needs no literal
    assert not LineSelector([["VOTE_JOIN"], ["VOTE"]], "utf-8").everything
    assert LineSelector([["VOTE_JOIN"], ["VOTE"]], "utf-8").needles == (b"VOTE",)  # the longer adds nothing
    assert LineSelector([["抽奖"]], "latin-1").needles == ()  # cannot occur in a latin-1 file


def test_the_rarest_required_literal_of_each_rule_is_the_needle():
    data = b"".join(b"GET /x channelId=c1 uid=1\n" for _ in range(50)) + b"VOTE_JOIN voteId=1 channelId=c1\n"
    sel = LineSelector([[" channelId=", " voteId=", "VOTE_"]], "utf-8")
    parts = data.split(b"\n")[:-1]
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    assert sel.select(data, 0, ends, parts) == [50]
    assert sel.needles in ((b" voteId=",), (b"VOTE_",))


RULES = compile_rules(
    [
        {"name": "vote", "pattern": r"(?P<act>VOTE_JOIN) id=(?P<ext1>\d+)", "oper_id": "1504000120679"},
        {"name": "lottery", "pattern": r"抽奖 id=(?P<ext1>\d+) uid=(?P<uid>\w+)", "oper_id": "1505000120679"},
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.lists(
        st.one_of(
            st.integers(0, 99).map(lambda i: f"t VOTE_JOIN id={i}"),
            st.integers(0, 99).map(lambda i: f"抽奖 id={i} uid=u{i}"),
            st.integers(0, 99).map(lambda i: f"抽奖 id={i} uid=bad!"),
            st.text(alphabet="VOTE_JIN抽奖 id=0123456789\r", max_size=30),
        ),
        max_size=60,
    ),
    encoding=st.sampled_from(["utf-8", "gb18030"]),
    size=st.integers(1, 200),
)
def test_pipeline_gives_the_same_records_and_counters_with_and_without_selection(body, encoding, size):
    data = "\n".join(body).encode(encoding) + b"\n"

    def run(selecting: bool):
        emitted = []
        pipe = Pipeline(RULES, emit=emitted.append)
        lane = FileLane("app.log", "k" * 32, data[:1024], 0, None)
        reader = LineReader(io.BytesIO(data), encoding=encoding, max_line_bytes=25)
        select = pipe.selector(encoding) if selecting else None

        async def go():
            while True:
                lines = reader.read(size, select=select)
                if reader.last_count:
                    await pipe.feed(
                        lane, lines, end=reader.offset, count=reader.last_count, cut=reader.last_cut
                    )
                if reader.at_eof:
                    return

        asyncio.run(go())
        return emitted, pipe.counters, lane.watermark.offset

    assert run(True) == run(False)
