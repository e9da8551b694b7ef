"""rules.yaml -> typed, validated Settings. Every error names file:line (and the rule, inside a rule).

Parsing with line numbers and ``${VAR}`` interpolation live in tailer/yamlconf.py; this module turns the
parsed tree into typed settings.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tailer.config.yamlconf import LineDict, interpolate_tree, load_yaml
from tailer.errors import ConfigError
from tailer.rules.compile import compile_rules, unknown_key_message
from tailer.rules.engine import RuleSet
from tailer.ship.settings import EndpointSettings, Secret
from tailer.source.reader import check_encoding
from tailer.source.settings import SourceSettings

log = logging.getLogger("tailer.config")

TOP_KEYS = ("endpoint", "sources", "state_dir", "metrics", "rules")
ENDPOINT_KEYS = ("url", "token", "token_file", "auth_scheme", "timeout", "concurrency", "rate_limit",
                 "ts_unit", "ts_source", "nonce", "max_backoff", "allow_insecure_http", "ca_file")  # fmt: skip
SOURCE_KEYS = ("paths", "exclude", "encoding", "start_at", "max_line_bytes", "poll")
METRICS_KEYS = ("listen",)
_TRUE = ("true", "yes", "on", "1")  # as strings: quoted, or from ${VAR}
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    endpoint: EndpointSettings
    sources: tuple[SourceSettings, ...]
    state_dir: Path
    metrics_listen: str | None
    rules: RuleSet = field(repr=False)



# --- typed fields ----------------------------------------------------------------------------------------


class _Section:
    """Reads typed values out of one mapping, refusing unknown keys; errors carry file:line."""

    def __init__(self, node: Any, name: str, known: tuple[str, ...], file: str, line: int | None) -> None:
        self.file, self.name = file, name
        if node is None:
            node = LineDict()
        if not isinstance(node, Mapping):
            raise ConfigError(f"'{name}' must be a mapping", file=file, line=line)
        self.node, self.line = node, getattr(node, "line", None) or line
        for key in node:
            if key not in known:
                raise self.error(unknown_key_message(key, known, name), key, named=False)

    def error(self, message: str, key: str | None = None, *, named: bool = True) -> ConfigError:
        line = getattr(self.node, "key_lines", {}).get(key) or self.line
        where = f"{self.name}.{key}" if self.name != "the top level" else str(key)
        return ConfigError(f"{where}: {message}" if key and named else message, file=self.file, line=line)

    def num(self, key: str, default: float, kind: type = float, *, min: float | None = None, gt: float | None = None) -> Any:  # fmt: skip
        raw = self.node.get(key, default)
        try:
            if isinstance(raw, bool) or raw is None:
                raise ValueError
            value = kind(raw.strip()) if isinstance(raw, str) else kind(raw)
            if kind is int and not isinstance(raw, (int, str)):
                raise ValueError
        except (ValueError, TypeError, OverflowError):  # OverflowError: int(.inf)
            raise self.error(
                f"must be {'an integer' if kind is int else 'a number'}, got {raw!r}", key
            ) from None
        if not math.isfinite(value):
            raise self.error(f"must be a finite number, got {raw!r}", key)
        if min is not None and value < min:
            raise self.error(f"must be >= {min}, got {value}", key)
        if gt is not None and not value > gt:
            raise self.error(f"must be > {gt}, got {value}", key)
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.node.get(key, default)
        if value not in choices:
            raise self.error(f"must be one of {', '.join(choices)}, got {value!r}", key)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.node.get(key, default)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, got {value!r}", key)
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.node.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(f"must be a string, got {value!r}", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.node.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error("must be a list of non-empty strings", key)
        return tuple(value)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(node: Any, file: str, base: Path) -> EndpointSettings:
    s = _Section(node, "endpoint", ENDPOINT_KEYS, file, None)
    url = s.text("url", "embedded") or ""
    insecure = s.flag("allow_insecure_http", False)
    if url != "embedded":
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a port out of range
        except ValueError as exc:  # "http://[::1": Invalid IPv6 URL
            raise s.error(f"not a valid URL ({exc}): {url!r}", "url") from None
        if parts.scheme not in ("http", "https") or not host:
            raise s.error(f"must be 'embedded' or an http(s) URL, got {url!r}", "url")
        if parts.scheme == "http" and not _is_loopback(host) and not insecure:
            raise s.error("http:// to a non-loopback host sends the token in clear; use https:// or set "
                          "allow_insecure_http: true", "url")  # fmt: skip
    if "token" in s.node and "token_file" in s.node:
        raise s.error("set token or token_file, not both", "token_file")
    if "token_file" in s.node:
        token = _read_token_file(s, base)
    else:
        token = s.node.get("token", "dev-token" if url == "embedded" else None)
        if isinstance(token, int) and not isinstance(token, bool):
            token = str(token)
        if token is None:
            raise s.error("no token: set endpoint.token or endpoint.token_file", None)
    if not isinstance(token, str):
        raise s.error("must be a string", "token")  # never echo the value: it may be the secret
    if not token:
        raise s.error("the token is empty", "token_file" if "token_file" in s.node else "token")
    return EndpointSettings(
        url=url,
        token=Secret(token),
        auth_scheme=s.text("auth_scheme", "") or "",
        timeout=s.num("timeout", 10.0, gt=0),
        concurrency=s.num("concurrency", 16, int, min=1),
        rate_limit=s.num("rate_limit", 0.0, min=0),
        ts_unit=s.choice("ts_unit", "s", ("s", "ms")),
        ts_source=s.choice("ts_source", "event", ("event", "now")),
        nonce=s.choice("nonce", "random", ("random", "deterministic")),
        max_backoff=s.num("max_backoff", 60.0, gt=0),
        allow_insecure_http=insecure,
        ca_file=_ca_file(s, base),
    )


def _ca_file(s: _Section, base: Path) -> str | None:
    """A CA bundle for a private CA: proven loadable now, so a typo fails ``tailer check``, not the first send."""
    raw = s.text("ca_file")
    if raw is None:
        return None
    path = base / os.path.expanduser(raw)
    if not path.is_file():
        raise s.error(f"{path} is not a file (a PEM bundle of CA certificates)", "ca_file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise s.error(f"{path} holds no usable CA certificate: {exc}", "ca_file") from None
    return str(path)


def _read_token_file(s: _Section, base: Path) -> str:
    """The token, from a file only its owner can read. A file readable by group or others is refused, not
    warned about: it is a token already shared with every account on the host (and a warning scrolls by in
    a service's log while the token keeps working). The check is on the file's own mode bits."""
    path = base / os.path.expanduser(s.text("token_file") or "")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            raise s.error(f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}), so the "
                          f"token is refused; run: chmod 600 {path}", "token_file")  # fmt: skip
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise s.error(f"cannot read {path}: {exc.strerror}", "token_file") from exc


def _source(node: Any, file: str, base: Path, line: int | None) -> SourceSettings:
    s = _Section(node, "sources", SOURCE_KEYS, file, line)
    paths = s.strings("paths")
    if not paths:
        raise s.error("a source needs at least one glob in 'paths'", "paths" if "paths" in s.node else None)
    encoding = s.text("encoding", "utf-8") or ""
    try:
        encoding = check_encoding(encoding)  # known, and splits lines on the byte 0x0A
    except ValueError as exc:
        raise s.error(str(exc), "encoding") from exc
    return SourceSettings(
        paths=tuple(os.path.normpath(base / os.path.expanduser(p)) for p in paths),
        exclude=s.strings("exclude"),
        encoding=encoding,
        start_at=s.choice("start_at", "beginning", ("beginning", "end")),
        max_line_bytes=s.num("max_line_bytes", 65536, int, min=256),
        poll=s.flag("poll", False),
    )


def load_settings(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate, validate and compile ``path``. ConfigError (file:line: why) on any problem."""
    path = Path(path).absolute()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("no such file", file=file) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from exc
    root = load_yaml(text, file)
    top = _Section(root, "the top level", TOP_KEYS, file, 1)
    from_env: set[str] = set()
    interpolate_tree(top.node, os.environ if environ is None else environ, file, from_env)
    try:
        return _build(path, top, file)
    except ConfigError as exc:
        # A value from the environment may be the token (`timeout: ${OPER_TOKEN}` by mistake): errors echo
        # values ("must be a number, got '...'"), so every one substituted is blanked out of the message.
        secrets = sorted((v for v in from_env if len(v) >= _SECRET_MIN), key=len, reverse=True)
        if not any(v in exc.message or v in (exc.rule or "") for v in secrets):
            raise
        message, rule = exc.message, exc.rule
        for value in secrets:
            message = message.replace(value, "***")
            rule = rule.replace(value, "***") if rule else rule
        raise ConfigError(message, file=exc.file, line=exc.line, rule=rule) from None


_SECRET_MIN = 6  # shorter substituted values (a port, a count) are left in messages: blanking "16" would garble


def _build(path: Path, top: _Section, file: str) -> Settings:
    base = path.parent
    sources = top.node.get("sources") or []
    if not isinstance(sources, list):
        raise top.error("must be a list of sources", "sources")
    lines = getattr(sources, "item_lines", [None] * len(sources))
    metrics = _Section(
        top.node.get("metrics"), "metrics", METRICS_KEYS, file, top.node.key_lines.get("metrics")
    )
    listen = metrics.text("listen")
    if listen is not None and not (
        re.fullmatch(r"\[?[\w.:-]*\]?:\d{1,5}", listen) and 0 < int(listen.rsplit(":", 1)[1]) < 65536
    ):
        raise metrics.error(f"must be host:port with a port from 1 to 65535, got {listen!r}", "listen")
    rules = top.node.get("rules") or []
    if not isinstance(rules, list):
        raise top.error("must be a list of rules", "rules")
    settings = Settings(
        path=path,
        endpoint=_endpoint(top.node.get("endpoint"), file, base),
        sources=tuple(_source(n, file, base, line) for n, line in zip(sources, lines, strict=True)),
        state_dir=Path(
            os.path.normpath(base / os.path.expanduser(top.text("state_dir", ".tailer") or ".tailer"))
        ),
        metrics_listen=listen,
        rules=compile_rules(rules, file=file),
    )
    for rule in settings.rules.rules:
        if rule.engine != "re2":  # said at every load: this rule has no linear-time guarantee
            log.warning("%s:%s: rule '%s' runs on Python's backtracking re, not the linear-time engine: %s",
                        file, rule.line, rule.name, rule.engine_note)  # fmt: skip
    return settings
