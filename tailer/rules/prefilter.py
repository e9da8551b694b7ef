"""The prefilter: the literal text every match of a regex must contain, so ``literal in line`` can skip it.

Matching is the hot path (months of logs in a replay), and a C-speed substring scan rejects most lines
before the regex engine runs. The literal is only a necessary condition, so results are exactly those of the
regex alone. A pattern with IGNORECASE (global) gets no literal; an inline ``(?i:...)`` group only stops the
literal at that group. Pure, no I/O.
"""

from __future__ import annotations

from typing import Any

try:
    from re import _constants as _c  # Python >= 3.11
    from re import _parser as _sre
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]


def required_literal(pattern: str) -> str | None:
    """The longest literal text that every match of ``pattern`` contains, or None.

    Walks the parsed regex: runs of LITERAL ops at the top level, continued through capturing and
    non-capturing groups and atomic groups (their text is contiguous with what surrounds them) and across
    zero-width anchors and lookarounds; anything else (classes, repeats, alternations) ends a run. The body
    of a repeat with min >= 1 is searched on its own. Case-insensitive parts yield nothing.
    """
    parsed = _sre.parse(pattern)
    if parsed.state.flags & _c.SRE_FLAG_IGNORECASE:
        return None
    runs: list[str] = []
    tail = _walk(parsed, [], runs)
    runs.append("".join(tail))
    best = max(runs, key=len)
    return best or None


def required_literals(pattern: str) -> tuple[str, ...]:
    """Every literal run that every match of ``pattern`` contains (the longest first), or () when none is
    known (IGNORECASE). Each alone is a necessary condition; which one rules out the most lines depends on
    the log, so the chunk selector (source/select.py) picks among them by counting them in the data."""
    parsed = _sre.parse(pattern)
    if parsed.state.flags & _c.SRE_FLAG_IGNORECASE:
        return ()
    runs: list[str] = []
    runs.append("".join(_walk(parsed, [], runs)))
    return tuple(sorted({r for r in runs if r}, key=lambda r: (-len(r), r)))


def _walk(items: Any, run: list[str], runs: list[str]) -> list[str]:
    """Extend ``run`` with the items' literal text; finished runs go to ``runs``; returns the open run."""
    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
        elif op is _c.SUBPATTERN and not av[1] & _c.SRE_FLAG_IGNORECASE:
            run = _walk(av[3], run, runs)
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            run = _walk(av, run, runs)
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero-width: the text on both sides is contiguous
        else:
            runs.append("".join(run))
            run = []
            if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)) and av[0] >= 1:
                runs.append("".join(_walk(av[2], [], runs)))
    return run
