"""Patterns on a linear-time engine (RE2), with Python's ``re`` only for what RE2 cannot express. Pure, no I/O.

Why: ``re`` backtracks. ``^(a+)+$`` held one 41-character line for over 20 s, and an unanchored ``\\d+x`` is
quadratic (seconds on a 64 KB line); in ``tailer run`` one such line freezes every file. RE2 runs in time
linear in the line (times the pattern's size), whatever the pattern.

How: the pattern is parsed by Python's own parser (so ``re`` syntax and semantics are the contract users
write against) and written back in RE2 syntax with Python's meanings made explicit: ``\\d`` is ``\\p{Nd}``,
``\\w`` is ``[\\p{L}\\p{N}_]``, ``\\s`` lists Python's Unicode whitespace (RE2's own classes are ASCII), every
literal is ``\\x{..}``. Group numbers and names are kept, so a rule's named groups work as before.

Limits, stated honestly:

- What RE2 cannot express runs on ``re``, and ``Compiled.note`` says why (the loader reports it): lookarounds,
  backreferences, conditional groups, atomic groups and possessive repeats, Unicode word boundaries ``\\b``
  (RE2's are ASCII-only), ``re.ASCII`` with ``IGNORECASE``, repeat counts over 1000. Such a pattern is
  refused when it holds the shapes that backtrack exponentially (a repeat inside a repeat, an alternation
  inside an unbounded repeat); other super-linear shapes are not detected there.
- ``$`` (without MULTILINE) is written as RE2's end of text; Python's also matches before a final ``\\n``,
  which a log line never has (the reader splits on it).
- RE2 is linear but not free: with captures it runs an NFA over the matched text, whose cost grows with the
  number of repeats alive at once (``(.*a){20}``: ~40 ms on a 64 KB line; the shipped rules: < 3 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from re2 import _re2

try:
    from re import _constants as _c  # Python >= 3.11
    from re import _parser as _sre
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]

Groups = tuple[str | None, ...]
#: line -> (None, group 1, group 2, ...) like ``(None, *m.groups())``, or None when the pattern does not match
Searcher = Callable[[str], Groups | None]

# Python's \s for str (str.isspace): checked against re over every code point in tests/test_redos.py.
_SPACE = r"\x{9}-\x{d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_WORD = r"\p{L}\p{N}_"  # Python's \w for str: str.isalnum() or "_"
_DIGIT = r"\p{Nd}"
_IGNORECASE, _MULTILINE, _DOTALL, _ASCII = (
    _c.SRE_FLAG_IGNORECASE, _c.SRE_FLAG_MULTILINE, _c.SRE_FLAG_DOTALL, _c.SRE_FLAG_ASCII,
)  # fmt: skip
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT)
_UNSUPPORTED = {
    _c.GROUPREF: "backreferences",
    _c.GROUPREF_EXISTS: "conditional groups",
    _c.ASSERT: "lookarounds",
    _c.ASSERT_NOT: "lookarounds",
    getattr(_c, "ATOMIC_GROUP", None): "atomic groups",
    getattr(_c, "POSSESSIVE_REPEAT", None): "possessive repeats",
}


class Unsupported(Exception):
    """RE2 cannot express this part of the pattern (the message names it)."""


class Hostile(ValueError):
    """The pattern must run on backtracking ``re`` and has a shape that backtracks exponentially."""


@dataclass(frozen=True, slots=True)
class Compiled:
    engine: str  # "re2" (linear time) or "re" (backtracking, only what RE2 cannot express)
    search: Searcher
    note: str | None = None  # why the pattern runs on re


def compile_linear(pattern: str, regex: Any) -> Compiled:
    """``regex`` is ``re.compile(pattern)`` (it already compiled). Hostile when the pattern must run on
    ``re`` and can backtrack exponentially."""
    parsed = _sre.parse(pattern)
    try:
        translated = to_re2(parsed)
        options = _re2.RE2.Options()
        options.log_errors = False  # RE2 would print to stderr
        compiled = _re2.RE2(translated.encode("utf-8"), options)
        if not compiled.ok():
            raise Unsupported(f"this pattern ({compiled.error()})")
        if compiled.NumberOfCapturingGroups() != regex.groups:  # pragma: no cover - a translation bug
            raise Unsupported("this pattern's groups")
    except Unsupported as exc:
        hazard = backtracking_hazard(parsed)
        if hazard is not None:
            raise Hostile(
                f"pattern can backtrack catastrophically ({hazard}) and cannot run on the linear-time engine, "
                f"which does not support {exc}; rewrite the repeat so only one way matches a given text"
            ) from None
        return Compiled("re", _re_searcher(regex), f"RE2 does not support {exc}")
    return Compiled("re2", _re2_searcher(compiled))


def _re_searcher(regex: Any) -> Searcher:
    search = regex.search

    def groups(line: str) -> Groups | None:
        m = search(line)
        return None if m is None else (None, *m.groups())

    return groups


def _re2_searcher(compiled: Any) -> Searcher:
    match, unanchored = compiled.Match, _re2.RE2.Anchor.UNANCHORED

    def groups(line: str) -> Groups | None:
        try:
            raw = line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (e.g. from argv): RE2 sees its bytes as invalid UTF-8
            raw = line.encode("utf-8", "surrogatepass")
        spans = match(unanchored, raw, 0, len(raw))
        if spans[0][0] < 0:
            return None
        return (None, *[None if a < 0 else raw[a:b].decode("utf-8", "replace") for a, b in spans[1:]])

    return groups


# --- the hazard check, for patterns left on re -----------------------------------------------------------


def backtracking_hazard(items: Any, outer: bool = False) -> str | None:
    """The first exponential-backtracking shape in a parsed pattern, described, or None. ``outer``: inside
    a repeat that may run more than once."""
    for op, av in items:
        if op in _REPEATS or op is getattr(_c, "POSSESSIVE_REPEAT", None):
            _, hi, body = av
            if outer and hi == _c.MAXREPEAT:
                return "a repeat inside a repeat, like (a+)+"
            if hi == _c.MAXREPEAT and _has_branch(body):
                return "an alternation inside an unbounded repeat, like (a|aa)+"
            children = [(body, outer or hi > 1)]
        elif op is _c.BRANCH:
            children = [(branch, outer) for branch in av[1]]
        elif op is _c.SUBPATTERN:
            children = [(av[3], outer)]
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            children = [(av[1], outer)]
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            children = [(av, outer)]
        else:
            continue
        for child, inside in children:
            if (why := backtracking_hazard(child, inside)) is not None:
                return why
    return None


def _has_branch(items: Any) -> bool:
    for op, av in items:
        if op is _c.BRANCH:
            return True
        if op is _c.SUBPATTERN and _has_branch(av[3]):
            return True
    return False


# --- Python's parse tree -> RE2 syntax --------------------------------------------------------------------


def to_re2(parsed: Any) -> str:
    """RE2 syntax for a pattern parsed by ``re._parser``; Unsupported for what RE2 cannot express."""
    flags = parsed.state.flags
    names = {index: name for name, index in parsed.state.groupdict.items()}
    return _seq(parsed, flags, names)


def _char(code: int) -> str:
    if 0xD800 <= code <= 0xDFFF:
        raise Unsupported("lone surrogates")
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{code:x}}}"


def _seq(items: Any, flags: int, names: dict[int, str]) -> str:
    return "".join(_item(op, av, flags, names) for op, av in items)


def _folded(text: str, flags: int) -> str:
    if flags & _IGNORECASE:
        if flags & _ASCII:
            raise Unsupported("ASCII-only case folding")
        return f"(?i:{text})"
    return text


def _item(op: Any, av: Any, flags: int, names: dict[int, str]) -> str:
    if op is _c.LITERAL:
        return _folded(_char(av), flags)
    if op is _c.NOT_LITERAL:
        return _folded(f"[^{_char(av)}]", flags)
    if op is _c.ANY:
        return "(?s:.)" if flags & _DOTALL else "."
    if op is _c.IN:
        return _folded(_charset(av, flags), flags)
    if op is _c.BRANCH:
        return "(?:" + "|".join(_seq(branch, flags, names) for branch in av[1]) + ")"
    if op is _c.SUBPATTERN:
        group, add, delete, body = av
        inner = _seq(body, (flags | add) & ~delete, names)
        if group is None:
            return f"(?:{inner})"
        return f"(?P<{names[group]}>{inner})" if group in names else f"({inner})"
    if op in _REPEATS:
        lo, hi, body = av
        if lo > 1000 or (hi != _c.MAXREPEAT and hi > 1000):
            raise Unsupported("repeat counts over 1000")
        bound = f"{{{lo},}}" if hi == _c.MAXREPEAT else f"{{{lo},{hi}}}"
        return f"(?:{_seq(body, flags, names)}){bound}{'?' if op is _c.MIN_REPEAT else ''}"
    if op is _c.AT:
        return _at(av, flags)
    raise Unsupported(_UNSUPPORTED.get(op, f"the {op} operator"))


def _at(code: Any, flags: int) -> str:
    if code is _c.AT_BEGINNING:
        return "(?m:^)" if flags & _MULTILINE else r"\A"
    if code is _c.AT_END:
        return "(?m:$)" if flags & _MULTILINE else r"\z"
    if code is _c.AT_BEGINNING_STRING:
        return r"\A"
    if code is _c.AT_END_STRING:
        return r"\z"
    if code in (_c.AT_BOUNDARY, _c.AT_NON_BOUNDARY) and flags & _ASCII:
        return r"\b" if code is _c.AT_BOUNDARY else r"\B"
    raise Unsupported(r"Unicode word boundaries (\b, \B)")


def _charset(items: Any, flags: int) -> str:
    """A class; Python's \\W and \\S inside a class with other items become an alternation."""
    ascii_only = bool(flags & _ASCII)
    negate, parts, extra = False, [], []
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            parts.append(_char(av))
        elif op is _c.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is _c.CATEGORY:
            if ascii_only:
                parts.append(_ASCII_CATEGORIES[av])
            elif av is _c.CATEGORY_DIGIT:
                parts.append(_DIGIT)
            elif av is _c.CATEGORY_NOT_DIGIT:
                parts.append(r"\P{Nd}")
            elif av is _c.CATEGORY_WORD:
                parts.append(_WORD)
            elif av is _c.CATEGORY_SPACE:
                parts.append(_SPACE)
            elif av is _c.CATEGORY_NOT_WORD:
                extra.append(f"[^{_WORD}]")
            elif av is _c.CATEGORY_NOT_SPACE:
                extra.append(f"[^{_SPACE}]")
            else:
                raise Unsupported(f"the class {av}")
        else:
            raise Unsupported(f"the class item {op}")
    if negate:
        if extra:
            raise Unsupported(r"a negated class holding \W or \S")
        return f"[^{''.join(parts)}]"
    alternatives = ([f"[{''.join(parts)}]"] if parts else []) + extra
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


_ASCII_CATEGORIES = {
    _c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D", _c.CATEGORY_WORD: r"\w",
    _c.CATEGORY_NOT_WORD: r"\W", _c.CATEGORY_SPACE: r"\x{9}-\x{d}\x{20}", _c.CATEGORY_NOT_SPACE: r"\x{0}-\x{8}\x{e}-\x{1f}\x{21}-\x{10ffff}",
}  # fmt: skip
