"""Fuzzing with Hypothesis (issue 7, item 3): the reader over random bytes, chunk sizes and encodings; the
config loader over mutated YAML, directly and through ``tailer check``; the receiver over malformed bodies.

What each proves: the reader never raises, every offset is a line end, nothing is read twice and the lines
put back together are the input; the loader only ever raises ConfigError with a message, and the CLI prints
one ``Error:`` line, never a traceback; the receiver answers a bad body with a 4xx and a reason, never a 5xx.
Example counts are modest so the file runs in well under a minute on a busy 2-core box.
"""

from __future__ import annotations

import codecs
import io
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailer.cli.main import main
from tailer.config.settings import Settings, load_settings
from tailer.errors import ConfigError
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig
from tailer.source.reader import LineReader

ROOT = Path(__file__).resolve().parent.parent


# --- the reader -------------------------------------------------------------------------------------------

ENCODINGS = ["utf-8", "gb18030", "latin-1", "big5", "shift_jis"]
# Bytes that stress the splitter and the decoders: newlines, CRs, ASCII, and pieces of multi-byte chars.
PIECES = [b"\n", b"\r\n", b"\r", b"a", b"VOTE ", b"\xe7\x94\xa8", b"\xe7", b"\x94", b"\x81\x30\x81\x30",
          b"\xa4\x40", b"\x82\xa0", b"\xff", b"\x00", b"\x80"]  # fmt: skip
data_strategy = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=120).map(b"".join),
)


class NoRead1(io.RawIOBase):
    """A stream with only read(), like a pipe or a socket file: the reader's other path."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


def read_all(reader: LineReader, sizes: list[int], limit: int) -> list:
    lines, i = [], 0
    while not reader.at_eof:
        assert i < limit, "the reader did not reach the end"
        lines += reader.read(sizes[i % len(sizes)])
        i += 1
    tail = reader.flush()
    return lines + ([tail] if tail is not None else [])


@settings(max_examples=250, deadline=None)
@given(
    data=data_strategy,
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=8),
    encoding=st.sampled_from(ENCODINGS),
    max_line=st.integers(1, 40),
    read1=st.booleans(),
    resume=st.integers(0, 5),
)
def test_reader_offsets_are_line_ends_nothing_twice_and_lines_rebuild_the_input(
    data, sizes, encoding, max_line, read1, resume
):
    stream = io.BytesIO(data) if read1 else NoRead1(data)
    reader = LineReader(stream, encoding=encoding, max_line_bytes=max_line)
    lines = read_all(reader, sizes, len(data) + 2)
    # Resuming from the offset after the first few lines (as a checkpoint would) gives exactly the rest.
    k = min(resume, len(lines))
    if k:
        at = lines[k - 1].end
        again = LineReader(io.BytesIO(data[at:]), offset=at, encoding=encoding, max_line_bytes=max_line)
        assert read_all(again, sizes, len(data) + 2) == lines[k:]

    position = 0
    for line in lines:
        assert line.start == position  # contiguous: nothing skipped, nothing read twice
        assert line.end > line.start or line.end == len(data)
        raw = data[line.start : line.end]
        if line.end < len(data) or data.endswith(b"\n"):
            assert raw.endswith(b"\n")  # every offset handed out is just past a newline...
        body = raw[:-1] if raw.endswith(b"\n") else raw  # ...except the flushed tail, at end of file
        assert b"\n" not in body
        assert line.cut == (len(body) > max_line)
        if line.cut:  # the first max_line bytes, cut back to a character boundary
            expected = codecs.getincrementaldecoder(encoding)("replace").decode(body[:max_line], final=False)
        else:
            expected = (body[:-1] if body.endswith(b"\r") else body).decode(encoding, "replace")
        assert line.text == expected  # the lines, put back together, are the input (cut lines: their head)
        position = line.end
    assert position == len(data) == reader.offset
    assert reader.stats.lines == len(lines) and reader.stats.cut_lines == sum(line.cut for line in lines)


# --- the config loader ------------------------------------------------------------------------------------

BASE = (ROOT / "rules.yaml").read_text(encoding="utf-8")
# No "*" or "/": a mutation must not turn a source glob into a walk of the whole file system.
INSERTS = st.sampled_from(list(":-[]{}'\"#&!|>%@`,?\n\t ${}") + ["  ", "\n  - ", ": ", "${X}", "${", "\\d",
                          "(?P<", ")", "(", "+", "[a", "~", "!!python/object:os.system", "*a", "&a", "null",
                          "1e9", "-1", "true", "\x00", "\ufeff", "é", "用", "? [a]"])  # fmt: skip
# Values a key may be given: wrong types, non-finite numbers, broken URLs, tags, lists and maps as keys.
VALUES = st.sampled_from([".inf", "-.inf", ".nan", "[1]", "{a: 1}", "{[1]: 2}", "{? [a] : 1}", "!!binary aGk=",
                          "'http://[::1'", "'https://h:99999/x'", "'http://10.0.0.1/x'", "2026-01-01", "~",
                          "0x1F", "1_000", '"\\ud800"', "'(?P<ts>'", "'(a+)+\\b'", "{from: [1], map: {}}",
                          "!!set {a}", "*alias", "&anchor x", "''", "'${NOPE}'", "'${'", "-1e999", "99999999999999999999"])  # fmt: skip


@st.composite
def mutated_yaml(draw) -> str:
    text = BASE
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "dup_line", "drop_line", "swap_lines", "value"]))
        at = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "insert":
            text = text[:at] + draw(INSERTS) + text[at:]
        elif kind == "value":  # the value of one "key: value" line
            lines = text.splitlines(keepends=True)
            keyed = [i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")]
            i = draw(st.sampled_from(keyed))
            key = lines[i].split(": ", 1)[0]
            lines[i] = f"{key}: {draw(VALUES)}\n"
            text = "".join(lines)
        else:
            lines = text.splitlines(keepends=True)
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(j, lines[i])
            elif kind == "drop_line":
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


def test_config_loader_over_mutated_yaml_raises_only_config_errors(fuzz_dir):
    path = fuzz_dir / "rules.yaml"

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_yaml())
    def check(text):
        path.write_text(text, encoding="utf-8")
        try:
            got = load_settings(path, environ={})
        except ConfigError as exc:  # a TailerError; anything else escapes and fails the test
            assert exc.message.strip() and str(exc).startswith(str(path))
        else:
            assert isinstance(got, Settings)

    check()


def test_tailer_check_over_mutated_yaml_prints_one_error_line_never_a_traceback(fuzz_dir):
    path = fuzz_dir / "cli.yaml"
    runner = CliRunner()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_yaml())
    def check(text):
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(main, ["check", "-c", str(path)], env={"OPER_TOKEN": None})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            assert f"{path}: OK" in result.output
        else:
            assert result.exit_code == 1
            assert result.output.count("Error: ") == 1 and result.output.startswith(f"Error: {path}")

    check()


# --- the receiver -----------------------------------------------------------------------------------------

VALID = {"ts": 1700000000, "nonce": "n", "data": {"oper_id": "1504000120618", "gid": 5, "uid": 7, "ext1": "9"}}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
PATHS = [("ts",), ("nonce",), ("data",), ("data", "oper_id"), ("data", "gid"), ("data", "uid"),
         ("data", "ext1"), ("data", "target_id"), ("extra",), ("data", "extra")]  # fmt: skip
NASTY = [b"[" * 60000, b"{" * 30000, b'{"a":' * 10000, b"\xff\xfe\x00", b"", b"null", b"[]", b'"x"',
         b"NaN", b'{"ts": Infinity}', b'{"ts": 1e400, "nonce": "n", "data": {"oper_id": "1"}}',
         b'{"ts": ' + b"9" * 5000 + b"}", b'{"ts":1,"ts":2}',
         b'{"ts":1,"nonce":"\\ud800","data":{"oper_id":"1"}}',
         b'{"ts":1,"nonce":"s","data":{"oper_id":"1","ext1":"\\udc00x"}}',
         b'{"ts":1,"nonce":"' + b"n" * 200 + b'","data":{"oper_id":"1"}}']  # fmt: skip


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "bytes", "nasty", "truncated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "nasty":
        return draw(st.sampled_from(NASTY))
    body = json.loads(json.dumps(VALID))
    body["nonce"] = draw(st.text(min_size=1, max_size=10))
    for _ in range(draw(st.integers(0 if kind == "truncated" else 1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = body if len(path) == 1 else body.get("data")
        if isinstance(node, dict):
            if draw(st.booleans()):
                node[path[-1]] = draw(json_values)
            else:
                node.pop(path[-1], None)
    raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8")
    if kind == "truncated":
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def test_receiver_answers_malformed_bodies_with_a_4xx_and_a_reason_never_a_5xx():
    with EmbeddedReceiver(ReceiverConfig(token="fuzz-token")) as receiver, httpx.Client(timeout=30) as client:

        @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            body=bodies(),
            content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                          "text/plain", "application/json; charset=zzz", ""]),  # fmt: skip
            token=st.sampled_from(["fuzz-token", "fuzz-token", "fuzz-tokeN", ""]),
        )
        def check(body, content_type, token):
            response = client.post(
                receiver.url, content=body, headers={"Authorization": token, "Content-Type": content_type}
            )
            assert response.status_code < 500, (body[:200], response.text[:200])
            answer = response.json()
            assert answer["ret"] == (0 if response.status_code == 200 else response.status_code)
            if response.status_code != 200:
                assert 400 <= response.status_code < 500 and answer["msg"]

        check()
        assert not [status for status in receiver.stats if status >= 500]
