"""rules.yaml -> typed, validated Settings. Every error names file:line (and the rule, inside a rule).

Interpolation: after YAML parsing and before type conversion, every scalar string has ``${VAR}`` replaced
by the environment's value and ``${VAR:-default}`` by the value or, when VAR is unset or empty, the default
(so ``concurrency: ${C:-16}`` gives the int 16). An unset ``${VAR}`` without default is an error. ``$${``
writes a literal ``${`` (a log line in a rule test may need one). There is no nesting and no other syntax.
"""

from __future__ import annotations

import codecs
import fnmatch
import ipaddress
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tailer.errors import ConfigError
from tailer.rules import RuleSet, compile_rules, unknown_key_message

TOP_KEYS = ("endpoint", "sources", "state_dir", "metrics", "rules")
ENDPOINT_KEYS = ("url", "token", "token_file", "auth_scheme", "timeout", "concurrency", "rate_limit",
                 "ts_unit", "ts_source", "nonce", "max_backoff", "allow_insecure_http")  # fmt: skip
SOURCE_KEYS = ("paths", "exclude", "encoding", "start_at", "max_line_bytes", "poll")
METRICS_KEYS = ("listen",)


class Secret:
    """A value that never shows itself: repr and str are ``Secret('***')``; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling/copying must not go through __setattr__
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    url: str
    token: Secret
    auth_scheme: str = ""
    timeout: float = 10.0
    concurrency: int = 16
    rate_limit: float = 0.0
    ts_unit: str = "s"
    ts_source: str = "event"
    nonce: str = "random"
    max_backoff: float = 60.0
    allow_insecure_http: bool = False

    def headers(self) -> dict[str, str]:
        """Content-Type and Authorization. Never log these: they carry the token."""
        token = self.token.reveal()
        return {
            "Content-Type": "application/json",
            "Authorization": f"{self.auth_scheme} {token}" if self.auth_scheme else token,
        }


@dataclass(frozen=True, slots=True)
class SourceSettings:
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    encoding: str = "utf-8"
    start_at: str = "beginning"
    max_line_bytes: int = 65536
    poll: bool = False

    def matches(self, path: str | Path) -> bool:
        """The absolute path matches a glob (fnmatch: ``*`` also crosses ``/``) and no exclude pattern
        matches its name or its full path."""
        full = os.path.abspath(os.fspath(path))
        if not any(fnmatch.fnmatchcase(full, g) for g in self.paths):
            return False
        name = os.path.basename(full)
        return not any(fnmatch.fnmatchcase(name, x) or fnmatch.fnmatchcase(full, x) for x in self.exclude)


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    endpoint: EndpointSettings
    sources: tuple[SourceSettings, ...]
    state_dir: Path
    metrics_listen: str | None
    rules: RuleSet = field(repr=False)

    def source_for(self, path: str | Path) -> SourceSettings:
        for source in self.sources:
            if source.matches(path):
                return source
        return SourceSettings(paths=())


# --- YAML with line numbers ------------------------------------------------------------------------------


class LineDict(dict):
    """A YAML mapping that remembers its line and each key's line (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LineList(list):
    """A YAML sequence that remembers its line and each item's line."""

    line: int | None = None
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out:
            raise ConfigError(f"duplicate key '{key}' (first at line {out.key_lines[key]})", line=line)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML; mappings come back as LineDict, sequences as LineList. ConfigError with file:line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(exc.message, file=file, line=exc.line) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            f"YAML syntax error: {why}", file=file, line=mark.line + 1 if mark else None
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=file) from exc


# --- ${VAR} interpolation --------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def interpolate(value: str, environ: Mapping[str, str], *, file: str, line: int | None) -> str:
    def sub(m: re.Match[str]) -> str:
        text = m.group(0)
        if text == "$${":
            return "${"
        name = m.group(1)
        if name is None:
            raise ConfigError("malformed ${...}: use ${VAR} or ${VAR:-default} ($${ for a literal ${)",
                              file=file, line=line)  # fmt: skip
        got = environ.get(name)
        if got:
            return got
        if m.group(2) is not None:
            return m.group(2)
        if got is None:
            raise ConfigError(
                f"environment variable {name} is not set (use ${{{name}:-default}})", file=file, line=line
            )
        return got

    return _VAR.sub(sub, value) if "$" in value else value


def _interpolate_tree(node: Any, environ: Mapping[str, str], file: str) -> None:
    """In place: every string value (not key) in mappings and sequences."""
    if isinstance(node, LineDict):
        for key, value in node.items():
            if isinstance(value, str):
                node[key] = interpolate(value, environ, file=file, line=node.key_lines.get(key))
            else:
                _interpolate_tree(value, environ, file)
    elif isinstance(node, LineList):
        for i, value in enumerate(node):
            if isinstance(value, str):
                node[i] = interpolate(value, environ, file=file, line=node.item_lines[i])
            else:
                _interpolate_tree(value, environ, file)


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
        except (ValueError, TypeError):
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
        if isinstance(value, str) and value.strip().lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            return value.strip().lower() in ("true", "yes", "on", "1")
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
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise s.error(f"must be 'embedded' or an http(s) URL, got {url!r}", "url")
        if parts.scheme == "http" and not _is_loopback(parts.hostname) and not insecure:
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
    )


def _read_token_file(s: _Section, base: Path) -> str:
    path = base / os.path.expanduser(s.text("token_file") or "")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            raise s.error(f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
                          f"run: chmod 600 {path}", "token_file")  # fmt: skip
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
        encoding = codecs.lookup(encoding).name
    except LookupError as exc:
        raise s.error(f"unknown encoding {encoding!r}", "encoding") from exc
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
    _interpolate_tree(top.node, os.environ if environ is None else environ, file)
    base = path.parent
    sources = top.node.get("sources") or []
    if not isinstance(sources, list):
        raise top.error("must be a list of sources", "sources")
    lines = getattr(sources, "item_lines", [None] * len(sources))
    metrics = _Section(
        top.node.get("metrics"), "metrics", METRICS_KEYS, file, top.node.key_lines.get("metrics")
    )
    listen = metrics.text("listen")
    if listen is not None and not re.fullmatch(r"\[?[\w.:-]*\]?:\d{1,5}", listen):
        raise metrics.error(f"must be host:port, got {listen!r}", "listen")
    rules = top.node.get("rules") or []
    if not isinstance(rules, list):
        raise top.error("must be a list of rules", "rules")
    return Settings(
        path=path,
        endpoint=_endpoint(top.node.get("endpoint"), file, base),
        sources=tuple(_source(n, file, base, line) for n, line in zip(sources, lines, strict=True)),
        state_dir=Path(
            os.path.normpath(base / os.path.expanduser(top.text("state_dir", ".tailer") or ".tailer"))
        ),
        metrics_listen=listen,
        rules=compile_rules(rules, file=file),
    )
