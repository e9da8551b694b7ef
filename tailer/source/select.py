"""Which lines of a chunk can match any rule, found in the raw bytes before any line is decoded.

Every rule knows a literal that each of its matches contains (rules/prefilter.py). Encoded in the file's
encoding, that literal is a byte string every matching line's bytes contain, so one ``bytes.find`` over a
whole chunk per literal finds the only lines worth decoding and matching; the thousands of lines between
them cost no Python call at all. This is what makes a months-long replay read at the disk's pace.

Exact by construction, never a false negative: it needs a stateless encoding (a line's bytes are the
concatenation of its characters' bytes, so "literal in text" implies "encoded literal in bytes"). For a
stateful one (ISO-2022, UTF-7, HZ), for a rule without a literal (IGNORECASE, or a pattern made only of
classes), or a literal that holds U+FFFD (which undecodable bytes turn into), every line is selected. A
literal that cannot be encoded at all cannot appear in a line of that encoding, so its rule never matches
there. False positives (the literal's bytes straddling two characters of a multi-byte encoding, or inside
a longer line that the regex then refuses) only cost the regex run the old way.
"""

from __future__ import annotations

import codecs
from bisect import bisect_right
from collections.abc import Iterable

# Stateless codecs in which a character's bytes never depend on the characters around it.
_STATEFUL = frozenset({"utf_7", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004",
                       "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr", "hz"})  # fmt: skip


SAMPLED = 6  # a rule's longest literals that are counted in the sample to choose its needle
CHECKS = 2  # literals besides the needle a hit line must hold before it is decoded
RESAMPLE_EVERY = 64  # chunks between two choices of needles: follows a log whose mix of lines drifts


class LineSelector:
    """The byte needles of one encoding; ``everything`` when no line can be ruled out.

    ``literal_sets`` has one entry per rule: the literals every match of that rule contains (any one of
    them is a necessary condition; an empty set means the rule can match without any). Which literal of a
    rule rules out the most lines depends on the log (``" channelId="`` may be on every access-log line,
    ``" voteId="`` only on votes), so the needles are chosen by counting each candidate in the data, at
    the first chunk and every RESAMPLE_EVERY chunks after: the rarest candidate of each rule.
    """

    __slots__ = ("everything", "_candidates", "needles", "_checks", "_chunks")

    def __init__(self, literal_sets: Iterable[Iterable[str]], encoding: str) -> None:
        name = codecs.lookup(encoding).name.replace("-", "_")
        self.everything = name in _STATEFUL
        self._candidates: list[tuple[bytes, ...]] = []
        for literals in literal_sets:
            if self.everything:
                break
            encoded: list[bytes] | None = []
            for literal in literals:
                if "\ufffd" in literal:
                    continue  # undecodable bytes become U+FFFD: its bytes are not a necessary condition
                try:
                    encoded.append(literal.encode(encoding))
                except UnicodeEncodeError:
                    encoded = None  # this text cannot be in a line of this encoding: the rule never matches
                    break
            if encoded is None:
                continue
            if not encoded:
                self.everything = True
            else:
                self._candidates.append(tuple(sorted(set(encoded), key=lambda c: (-len(c), c))))
        self.needles: tuple[bytes, ...] = ()
        # needle -> the literal sets (one per rule it stands for) a line holding it must contain in full
        self._checks: dict[bytes, tuple[tuple[bytes, ...], ...]] = {}
        self._chunks = 0
        if not self.everything:
            self._choose(b"")

    def _choose(self, sample: bytes) -> None:
        """Per rule the candidate found least often in ``sample`` (ties: the longest); a needle that
        contains another is dropped (every line it selects, the shorter one selects) and the shorter one
        checks that rule's literals too."""
        count = sample.count
        # Counting costs a pass over the sample per literal: only a rule's longest few are worth it
        # (one- and two-byte literals such as " " or "] " are on nearly every line anyway).
        picks = [
            (min(cands[:SAMPLED], key=lambda c: (count(c), -len(c))), cands) for cands in self._candidates
        ]
        kept = sorted({needle for needle, _ in picks}, key=len)
        needles = tuple(n for i, n in enumerate(kept) if not any(m in n for m in kept[:i]))
        checks: dict[bytes, list[tuple[bytes, ...]]] = {n: [] for n in needles}
        lines = sample.split(b"\n") if sample else []
        for pick, cands in picks:
            needle = next(n for n in needles if n in pick)
            # The literals that most often fail on the lines holding the needle (the near misses) are
            # the checks worth making; each costs about what it saves on a line that passes, so a few.
            held = [line for line in lines if needle in line]
            others = [c for c in cands[: SAMPLED * 2] if len(c) > 1 and c != needle]
            misses = {c: sum(1 for line in held if c not in line) for c in others}
            useful = sorted((c for c in others if misses[c] or not held), key=lambda c: (-misses[c], -len(c)))
            checks[needle].append(tuple(useful[:CHECKS]))
        self.needles, self._checks = needles, {n: tuple(v) for n, v in checks.items()}

    def wants(self, line: bytes) -> bool:
        """Can this one line's bytes match?"""
        return self.everything or any(needle in line for needle in self.needles)

    def select(self, data: bytes, start: int, ends: list[int], parts: list[bytes]) -> list[int]:
        """Indices of the lines of ``data[start:ends[-1]]`` that can match: ``parts[i]`` is line i's
        bytes and ``ends[i]`` the offset in ``data`` just past its newline (increasing). Sorted, once each.

        The needles are searched over the whole chunk (``bytes.find``: C, no Python code per line); only
        a line that holds one costs a few Python steps. (A ``needle in line`` per line, even through
        C-level map/compress, costs more than decoding the line: each ``in`` sets up its search again.)"""
        if self._chunks % RESAMPLE_EVERY == 0:
            self._choose(data)
        self._chunks += 1
        hits: set[int] = set()
        add = hits.add
        last = ends[-1]
        find = data.find
        for needle in self.needles:
            checks = self._checks[needle]
            single = checks[0] if len(checks) == 1 else None
            pos = find(needle, start, last)
            while pos >= 0:
                i = bisect_right(ends, pos)  # the line holding the needle's first byte
                line = parts[i]
                # A near miss (the rule's words without its whole shape) lacks one of its literals:
                # refused here, in bytes, before anything is decoded.
                if single is not None:
                    for lit in single:
                        if lit not in line:
                            break
                    else:
                        add(i)
                elif any(all(lit in line for lit in literals) for literals in checks):
                    add(i)
                pos = find(needle, ends[i], last)
        return sorted(hits)
