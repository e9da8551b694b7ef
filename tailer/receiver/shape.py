"""What an OperReport request body must look like (spec: shared/spec/OperReport.md). Pure, no I/O.

``parse_body`` turns the raw bytes into a JSON object and ``check_body`` names the first way it differs from
the spec's shape; both raise ValueError, whose text the receiver sends back as the 400 answer's ``msg``.
"""

from __future__ import annotations

import json
from typing import Any

from tailer.record import EXT_FIELDS, INT_FIELDS

MAX_NONCE = 128
_STR_FIELDS = frozenset({"target_id", *EXT_FIELDS})
_TOP_FIELDS = ("ts", "nonce", "data")
_MAX_INT64 = 2**63 - 1  # SQLite's INTEGER range


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"body is not valid JSON: {name} is not allowed")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; ValueError with the reason otherwise (duplicate keys and NaN refused)."""
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 64 KB of "[": json's C scanner recurses once per level
        raise ValueError("body is not valid JSON: nested too deeply") from exc
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _check_text(value: str, where: str) -> None:
    """JSON's "\\ud800" escapes decode to lone surrogates, which UTF-8 (and so SQLite) cannot hold; left in,
    they failed the INSERT with a 500."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where} holds a lone surrogate (\\ud800-\\udfff), not valid Unicode") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an integer


def check_body(body: dict[str, Any]) -> None:
    """ValueError naming the first way ``body`` differs from the spec's shape (no unknown keys anywhere)."""
    for key in body:
        if key not in _TOP_FIELDS:
            raise ValueError(f"unknown key {key!r}")
    for key in _TOP_FIELDS:
        if key not in body:
            raise ValueError(f"{key} is required")
    if not _is_int(body["ts"]):
        raise ValueError("ts must be an integer")
    if not 0 <= body["ts"] <= _MAX_INT64:
        raise ValueError("ts out of range")
    nonce = body["nonce"]
    if not isinstance(nonce, str) or not nonce:
        raise ValueError("nonce must be a non-empty string")
    _check_text(nonce, "nonce")
    if len(nonce) > MAX_NONCE:
        raise ValueError(f"nonce longer than {MAX_NONCE} characters")
    data = body["data"]
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    if "oper_id" not in data:
        raise ValueError("data.oper_id is required")
    for key, value in data.items():
        if key == "oper_id":
            # isascii: str.isdigit alone accepts other scripts' digits and superscripts
            if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
                raise ValueError("data.oper_id must be a string of digits")
        elif key in INT_FIELDS:
            if not _is_int(value):
                raise ValueError(f"data.{key} must be an integer")
        elif key in _STR_FIELDS:
            if not isinstance(value, str):
                raise ValueError(f"data.{key} must be a string")
            _check_text(value, f"data.{key}")
        else:
            raise ValueError(f"data has unknown key {key!r}")
