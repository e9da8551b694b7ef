"""config: rules.yaml -> Settings, with file:line on every error, interpolation, secrets and paths."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tailer.config.settings import load_settings
from tailer.config.yamlconf import load_yaml
from tailer.errors import ConfigError
from tailer.ship.settings import Secret
from tailer.source.settings import SourceSettings, source_for

RULE = """\
rules:
  - name: vote
    pattern: 'VOTE_CREATE voteId=(?P<ext1>\\d+)'
    oper_id: "1504000120618"
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    return load_settings(write(tmp_path, text), environ=env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    return info.value


def test_design_example_loads_with_defaults_and_types(tmp_path):
    s = load(
        tmp_path,
        textwrap.dedent("""\
        endpoint:
          url: https://api.example.com/api/v1/OperReport
          token: t0ken
          auth_scheme: Bearer
          concurrency: 4
          ts_unit: ms
        sources:
          - paths: [logs/*.log]
        metrics:
          listen: 127.0.0.1:9464
        """)
        + RULE,
    )
    assert s.endpoint.concurrency == 4 and s.endpoint.timeout == 10.0 and s.endpoint.ts_unit == "ms"
    assert s.endpoint.headers()["Authorization"] == "Bearer t0ken"
    assert s.metrics_listen == "127.0.0.1:9464"
    assert [r.name for r in s.rules.rules] == ["vote"]


def test_interpolation_set_unset_default_and_inside_lists(tmp_path):
    text = textwrap.dedent("""\
    endpoint:
      token: ${TOK}
      concurrency: ${C:-16}
      timeout: ${T:-2.5}
      auth_scheme: "${SCHEME:-}"
    sources:
      - paths: ["${LOGDIR}/*.log", "literal-$${HOME}"]
    """)
    s = load(tmp_path, text + RULE, {"TOK": "abc", "LOGDIR": "/var/log/app", "C": "3"})
    assert s.endpoint.token.reveal() == "abc"
    assert s.endpoint.concurrency == 3 and isinstance(s.endpoint.concurrency, int)
    assert s.endpoint.timeout == 2.5 and s.endpoint.auth_scheme == ""
    assert s.sources[0].paths == ("/var/log/app/*.log", str(tmp_path / "literal-${HOME}"))
    # unset with default: an int, converted after interpolation
    s = load(tmp_path, text + RULE, {"TOK": "abc", "LOGDIR": "/x"})
    assert s.endpoint.concurrency == 16
    # unset without default: names the variable and the line
    e = error(tmp_path, text + RULE, {"TOK": "abc"})
    assert e.line == 7 and "LOGDIR" in str(e) and str(e).startswith(f"{tmp_path / 'rules.yaml'}:7:")


def test_interpolated_value_is_still_validated(tmp_path):
    e = error(tmp_path, "endpoint:\n  concurrency: ${C:-zero}\n" + RULE)
    assert e.line == 2 and "concurrency" in str(e) and "integer" in str(e)


@pytest.mark.parametrize(
    ("text", "line", "key", "suggestion"),
    [
        ("endpoint:\n  token: x\nsoruces: []\n" + RULE, 3, "soruces", "sources"),
        ("endpoint:\n  token: x\n  concurency: 3\n" + RULE, 3, "concurency", "concurrency"),
        ("sources:\n  - paths: [a]\n  - paths: [b]\n    encodng: gbk\n" + RULE, 4, "encodng", "encoding"),
        ("metrics:\n  lisen: 1.2.3.4:9\n" + RULE, 2, "lisen", "listen"),
    ],
)
def test_unknown_key_names_its_line_and_the_closest_known_key(tmp_path, text, line, key, suggestion):
    e = error(tmp_path, text)
    assert e.line == line
    assert f"unknown key '{key}'" in str(e) and f"did you mean '{suggestion}'" in str(e)


def test_unknown_key_in_a_rule_names_line_and_rule(tmp_path):
    e = error(tmp_path, RULE + "  - name: second\n    pattern: x\n    oper_id: '1'\n    ts_fromat: '%Y'\n")
    assert (e.line, e.rule) == (8, "second")
    assert "ts_fromat" in str(e) and "ts_format" in str(e) and "rule 'second'" in str(e)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("concurrency: 0", "concurrency: must be >= 1"),
        ("concurrency: 2.5", "must be an integer"),
        ("concurrency: true", "must be an integer"),
        ("timeout: 0", "timeout: must be > 0"),
        ("timeout: fast", "must be a number"),
        ("ts_unit: h", "must be one of s, ms"),
        ("ts_source: file", "must be one of event, now"),
        ("nonce: uuid", "must be one of random, deterministic"),
        ("allow_insecure_http: maybe", "must be true or false"),
        ("url: ftp://example.com/x", "must be 'embedded' or an http(s) URL"),
        ("url: http://api.example.com/api/v1/OperReport", "non-loopback"),
    ],
)
def test_endpoint_values_are_checked(tmp_path, body, fragment):
    e = error(tmp_path, f"endpoint:\n  token: x\n  {body}\n" + RULE)
    assert e.line == 3 and fragment in str(e)


def test_plain_http_allowed_to_loopback_or_with_explicit_flag(tmp_path):
    s = load(tmp_path, "endpoint:\n  token: x\n  url: http://127.0.0.1:8080/api/v1/OperReport\n" + RULE)
    assert s.endpoint.url.startswith("http://127.0.0.1")
    s = load(
        tmp_path, "endpoint:\n  token: x\n  url: http://10.0.0.5/api\n  allow_insecure_http: true\n" + RULE
    )
    assert s.endpoint.allow_insecure_http is True


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("encoding: klingon", "unknown text encoding 'klingon'"),
        ("start_at: middle", "must be one of beginning, end"),
        ("max_line_bytes: 100", "max_line_bytes: must be >= 256"),
        ("poll: 3", "must be true or false"),
    ],
)
def test_source_values_are_checked(tmp_path, body, fragment):
    e = error(tmp_path, f"sources:\n  - paths: [a.log]\n    {body}\n" + RULE)
    assert e.line == 3 and fragment in str(e)


def test_real_url_without_token_is_refused(tmp_path):
    e = error(tmp_path, "endpoint:\n  url: https://api.example.com/x\n" + RULE)
    assert "no token" in str(e)


def test_token_file_must_not_be_readable_by_group_or_others(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-value\n")
    token.chmod(0o644)
    e = error(tmp_path, "endpoint:\n  token_file: token\n" + RULE)
    assert e.line == 2 and "readable by group or others" in str(e) and "chmod 600" in str(e)
    assert "s3cret-value" not in str(e)
    token.chmod(0o600)
    s = load(tmp_path, "endpoint:\n  token_file: token\n" + RULE)
    assert s.endpoint.token.reveal() == "s3cret-value"  # trailing newline stripped


def test_missing_token_file_and_both_token_forms_are_refused(tmp_path):
    e = error(tmp_path, "endpoint:\n  token_file: /nonexistent/token\n" + RULE)
    assert "cannot read /nonexistent/token" in str(e)
    e = error(tmp_path, "endpoint:\n  token: a\n  token_file: b\n" + RULE)
    assert "not both" in str(e)


def test_secret_never_appears_in_reprs_or_errors(tmp_path):
    s = load(tmp_path, "endpoint:\n  token: ${TOK}\n" + RULE, {"TOK": "hunter2-token"})
    for text in (repr(s), str(s), repr(s.endpoint), f"{s.endpoint.token}", str(s.endpoint.token)):
        assert "hunter2" not in text
    assert repr(Secret("x")) == "Secret('***')"
    assert s.endpoint.headers() == {"Content-Type": "application/json", "Authorization": "hunter2-token"}
    e = error(tmp_path, "endpoint:\n  token: [hunter2-token]\n" + RULE)
    assert "hunter2" not in str(e)


def test_relative_paths_and_state_dir_resolve_against_the_config_dir(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # the working directory must not matter
    path = write(
        conf_dir,
        textwrap.dedent("""\
        state_dir: state
        sources:
          - paths: [../logs/*.log]
            exclude: ["*-debug.log"]
            encoding: GBK
          - paths: [/abs/**]
        """)
        + RULE,
    )
    s = load_settings(path, environ={})
    assert s.state_dir == tmp_path / "etc" / "state"
    assert s.sources[0].paths == (str(tmp_path / "logs" / "*.log"),)
    assert s.sources[0].encoding == "gbk"
    assert source_for(s.sources, tmp_path / "logs" / "app.log") is s.sources[0]
    assert s.sources[0].matches(tmp_path / "logs" / "app.log")
    assert not s.sources[0].matches(tmp_path / "logs" / "app-debug.log")  # excluded from following...
    assert source_for(s.sources, tmp_path / "logs" / "app-debug.log") is s.sources[0]  # ...decoded as GBK
    assert source_for(s.sources, "/abs/deep/x.txt") is s.sources[1]
    assert source_for(s.sources, tmp_path / "logs" / "app.log.gz") is s.sources[0]  # rotated and packed
    assert source_for(s.sources, "app.log") == SourceSettings(paths=())  # relative to cwd (elsewhere/): no source


def test_yaml_syntax_error_reports_its_line(tmp_path):
    e = error(tmp_path, "endpoint:\n  token: x\n  url: [unclosed\nrules: []\n")
    assert e.line is not None and e.line >= 3 and "YAML syntax error" in str(e)


def test_duplicate_yaml_key_is_refused(tmp_path):
    e = error(tmp_path, "endpoint:\n  token: x\n  token: y\n" + RULE)
    assert e.line == 3 and "duplicate key 'token'" in str(e)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml")


def test_load_yaml_keeps_lines_of_mappings_and_keys():
    doc = load_yaml("a: 1\nb:\n  - c: 2\n    d: 3\n", "x.yaml")
    assert doc.line == 1 and doc.key_lines == {"a": 1, "b": 2}
    assert doc["b"][0].line == 3 and doc["b"][0].key_lines["d"] == 4


def test_rule_errors_come_through_with_the_config_file_name(tmp_path):
    e = error(tmp_path, "rules:\n  - name: r\n    pattern: '(unclosed'\n    oper_id: '1'\n")
    assert e.file == str(tmp_path / "rules.yaml") and e.line == 3 and e.rule == "r"


@pytest.mark.parametrize("encoding,why", [("utf-16", "0x0A"), ("no-such-codec", "unknown")])
def test_source_encoding_that_cannot_be_read_line_by_line_is_refused_with_its_line(tmp_path, encoding, why):
    cfg = tmp_path / "rules.yaml"
    cfg.write_text(f"sources:\n  - paths: [a.log]\n    encoding: {encoding}\n")
    with pytest.raises(ConfigError, match=rf"rules.yaml:3: .*{why}"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/api", True),
        ("http://127.9.9.9/api", True),
        ("http://localhost/api", True),
        ("http://[::1]:8080/api", True),
        ("http://10.0.0.5/api", False),
        ("http://localhost.example.com/api", False),
        ("http://[::ffff:10.0.0.5]/api", False),
        ("https://10.0.0.5/api", True),
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_without_the_flag(tmp_path, url, allowed):
    text = f"endpoint:\n  token: x\n  url: '{url}'\n" + RULE
    if allowed:
        assert load(tmp_path, text).endpoint.url == url
    else:
        e = error(tmp_path, text)
        assert e.line == 3 and "sends the token in clear" in str(e) and "allow_insecure_http: true" in str(e)
        assert load(tmp_path, text.replace("  url:", "  allow_insecure_http: true\n  url:")).endpoint.url == url


def test_token_file_readable_by_group_or_others_is_refused_not_warned(tmp_path):
    token = tmp_path / "token"
    token.write_text("canary-group-readable\n")
    for mode in (0o640, 0o604, 0o660, 0o444):
        token.chmod(mode)
        e = error(tmp_path, "endpoint:\n  url: https://api.example.com/x\n  token_file: token\n" + RULE)
        assert e.line == 3 and "token is refused" in str(e) and f"mode {mode:o}" in str(e)
        assert "canary-group-readable" not in str(e)
    token.chmod(0o400)
    s = load(tmp_path, "endpoint:\n  url: https://api.example.com/x\n  token_file: token\n" + RULE)
    assert s.endpoint.token.reveal() == "canary-group-readable"
    assert "canary" not in repr(s)


def test_ca_file_must_exist_and_hold_a_certificate_with_file_and_line(tmp_path):
    head = "endpoint:\n  url: https://api.example.com/x\n  token: x\n"
    e = error(tmp_path, head + "  ca_file: nope.pem\n" + RULE)
    assert e.line == 4 and e.file.endswith("rules.yaml") and "nope.pem is not a file" in str(e)
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    e = error(tmp_path, head + "  ca_file: bad.pem\n" + RULE)
    assert e.line == 4 and "holds no usable CA certificate" in str(e)
    assert load(tmp_path, head + RULE).endpoint.verify() is True  # default trust store, verification on


def test_an_environment_value_in_the_wrong_place_is_blanked_out_of_errors(tmp_path):
    env = {"OPER_TOKEN": "canary-in-the-wrong-field"}
    for body in ("  timeout: ${OPER_TOKEN}\n", "  ts_unit: ${OPER_TOKEN}\n", "  url: 'x${OPER_TOKEN}'\n"):
        e = error(tmp_path, "endpoint:\n  token: ${OPER_TOKEN}\n" + body + RULE, env)
        assert e.line == 3 and "canary" not in str(e) and "***" in str(e)
    e = error(tmp_path, "rules:\n  - name: ${OPER_TOKEN}\n    pattern: '('\n    oper_id: '1'\n", env)
    assert "canary" not in str(e) and "rule '***'" in str(e)
    e = error(tmp_path, "endpoint:\n  timeout: ${T}\n" + RULE, {"T": "x"})  # short values stay readable
    assert "got 'x'" in str(e)
