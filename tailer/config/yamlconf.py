"""YAML that remembers where things are, and ``${VAR}`` interpolation: the text layer under config.

``load_yaml`` returns mappings as LineDict and sequences as LineList, so every later error can name
file:line. Duplicate keys are refused (PyYAML would keep the last one silently).

Interpolation: after YAML parsing and before type conversion, every scalar string has ``${VAR}`` replaced
by the environment's value and ``${VAR:-default}`` by the value or, when VAR is unset or empty, the default
(so ``concurrency: ${C:-16}`` gives the int 16). An unset ``${VAR}`` without default is an error. ``$${``
writes a literal ``${`` (a log line in a rule test may need one). There is no nesting and no other syntax.
Only values are interpolated, never keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from tailer.errors import ConfigError

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
        if not isinstance(key, (str, int, float, bool)) and key is not None:  # "? [a]": a list as a key
            kind = "a list" if isinstance(key, list) else "a mapping" if isinstance(key, dict) else "a value"
            raise ConfigError(f"a key must be a plain word, not {kind}", line=line)
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


def interpolate(
    value: str, environ: Mapping[str, str], *, file: str, line: int | None, used: set[str] | None = None
) -> str:
    """``used`` collects the environment values substituted (they may be secrets: see load_settings)."""
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
            if used is not None:
                used.add(got)
            return got
        if m.group(2) is not None:
            return m.group(2)
        if got is None:
            raise ConfigError(
                f"environment variable {name} is not set (use ${{{name}:-default}})", file=file, line=line
            )
        return got

    return _VAR.sub(sub, value) if "$" in value else value


def interpolate_tree(node: Any, environ: Mapping[str, str], file: str, used: set[str] | None = None) -> None:
    """In place: every string value (not key) in mappings and sequences; ``used`` as in interpolate."""
    if isinstance(node, LineDict):
        for key, value in node.items():
            if isinstance(value, str):
                node[key] = interpolate(value, environ, file=file, line=node.key_lines.get(key), used=used)
            else:
                interpolate_tree(value, environ, file, used)
    elif isinstance(node, LineList):
        for i, value in enumerate(node):
            if isinstance(value, str):
                node[i] = interpolate(value, environ, file=file, line=node.item_lines[i], used=used)
            else:
                interpolate_tree(value, environ, file, used)
