"""Pacing for the shipper: a token bucket for ``rate_limit`` and the retry delay (backoff, Retry-After).

Pure logic plus one ``asyncio.sleep``: the clock is injected, so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

#: First retry waits up to this long; each further failure doubles it, up to ``max_backoff``.
BACKOFF_BASE = 0.5


class TokenBucket:
    """``rate`` grants per second, holding at most ``burst`` unused grants (default: one second's worth,
    at least one), so an idle spell never buys more than about a second of full-speed sending.

    ``reserve()`` takes a grant at once and says how long the caller must wait before using it; the level
    may go below zero, which queues concurrent callers fairly in call order without a lock.
    """

    __slots__ = ("rate", "burst", "_clock", "_level", "_at")

    def __init__(
        self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self._clock = clock
        self._level = self.burst  # a fresh bucket is full: the first second may go at full speed
        self._at = clock()

    def reserve(self) -> float:
        """Take one grant; return the seconds to wait before sending (0.0 when one is available now)."""
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        self._level -= 1.0
        return 0.0 if self._level >= 0 else -self._level / self.rate

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


def backoff_delay(
    failures: int, *, cap: float, base: float = BACKOFF_BASE, rand: float | None = None
) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): uniform in [0, min(cap, base*2^(n-1))].
    ``failures`` counts consecutive failed attempts of one record (1 after the first failure)."""
    ceiling = min(cap, base * 2.0 ** max(0, min(failures - 1, 62)))
    return ceiling * (random.random() if rand is None else rand)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3). None when
    absent or unreadable (the caller then falls back to backoff); a date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP-date is always GMT; obsolete forms may parse naive
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN or inf from float("nan") / "inf"
        return None
    return max(0.0, seconds)


def retry_delay(
    failures: int,
    *,
    cap: float,
    retry_after: str | None = None,
    now: float | None = None,
    rand: float | None = None,
) -> float:
    """How long to wait before the next attempt: the server's Retry-After when it gave a readable one,
    else jittered backoff; either way never more than ``cap`` (max_backoff)."""
    asked = parse_retry_after(retry_after, now=now)
    if asked is not None:
        return min(cap, asked)
    return backoff_delay(failures, cap=cap, rand=rand)
