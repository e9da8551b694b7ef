"""Event-time parsers for rules: a captured ``ts`` string -> epoch seconds (float).

``datetime.strptime`` costs ~10 µs a call, which dominates extraction on months of logs, and caching per
distinct string is pointless (every line has a new time). So the common formats get a fast path that slices
fixed positions, and anything the fast path does not recognise exactly falls back to strptime, so results
never differ from strptime's. Naive times are read in the rule's timezone; a ``%z`` offset wins over it.
``epoch`` / ``epoch_ms`` read numeric times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo

TsParser = Callable[[str], float]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def check_format(fmt: str) -> str | None:
    """None when ``fmt`` is usable by strptime (or is epoch/epoch_ms), else why not."""
    if fmt in ("epoch", "epoch_ms"):
        return None
    try:
        datetime.strptime("", fmt)
    except ValueError as exc:
        # "time data '' does not match" just means the probe string is wrong: the format itself is fine.
        if not str(exc).startswith("time data"):
            return str(exc)
    return None


def make_parser(fmt: str, tz: tzinfo) -> TsParser:
    """A function str -> epoch seconds for ``fmt``; it raises ValueError on a string that does not parse."""
    if fmt in ("epoch", "epoch_ms"):
        scale = 1000.0 if fmt == "epoch_ms" else 1.0

        def parse_epoch(s: str) -> float:
            value = float(s) / scale
            if not math.isfinite(value):
                raise ValueError(f"time {s!r} is not a finite number")
            return value

        return parse_epoch

    utc = tz is UTC

    # Local day -> its UTC offset in seconds, when the offset is the same at its midnight and the next
    # (no transition that day: then local time + offset is exact); None sends the day to zoneinfo.
    day_offsets: dict[int, float | None] = {}

    def from_fields(y: int, mo: int, d: int, h: int, mi: int, sec: int, us: int) -> float:
        ordinal = date(y, mo, d).toordinal()  # validates the day
        if h > 23 or mi > 59 or sec > 59:
            raise ValueError("time out of range")
        if utc:
            offset: float | None = 0.0
        elif (offset := day_offsets.get(ordinal, -1.0)) == -1.0:
            start = datetime.fromordinal(ordinal).replace(tzinfo=tz).utcoffset()
            end = datetime.fromordinal(ordinal + 1).replace(tzinfo=tz).utcoffset()
            offset = start.total_seconds() if start is not None and start == end else None
            if len(day_offsets) > 4096:  # logs are mostly chronological: a small cache is enough
                day_offsets.clear()
            day_offsets[ordinal] = offset
        if offset is None:
            return datetime(y, mo, d, h, mi, sec, us, tzinfo=tz).timestamp()
        return (ordinal - _EPOCH_ORDINAL) * 86400 + h * 3600 + mi * 60 + sec + us / 1e6 - offset

    def slow(s: str) -> float:
        parsed = datetime.strptime(s, fmt)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.timestamp()

    if fmt == "%Y-%m-%d %H:%M:%S" or fmt in ("%Y-%m-%d %H:%M:%S,%f", "%Y-%m-%d %H:%M:%S.%f"):
        frac_sep = fmt[17] if len(fmt) > 17 else None

        def parse_iso(s: str) -> float:
            n = len(s)
            if (
                n >= 19
                and s[4] == "-"
                and s[7] == "-"
                and s[10] == " "
                and s[13] == ":"
                and s[16] == ":"
                and _digits(s[0:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19])
            ):
                us = 0
                if frac_sep is None:
                    ok = n == 19
                else:
                    frac = s[20:]
                    ok = n > 20 and s[19] == frac_sep and len(frac) <= 6 and _digits(frac)
                    if ok:
                        us = int(frac.ljust(6, "0"))
                if ok:
                    return from_fields(
                        int(s[0:4]),
                        int(s[5:7]),
                        int(s[8:10]),
                        int(s[11:13]),
                        int(s[14:16]),
                        int(s[17:19]),
                        us,
                    )
            return slow(s)

        return parse_iso

    if fmt == "%d/%b/%Y:%H:%M:%S %z":

        def parse_clf(s: str) -> float:  # 28/Nov/2026:10:00:01 +0800
            if (
                len(s) == 26
                and s[2] == "/"
                and s[6] == "/"
                and s[11] == ":"
                and s[20] == " "
                and s[21] in "+-"
            ):
                month = _MONTHS.get(s[3:6].lower())
                nums = s[0:2] + s[7:11] + s[12:14] + s[15:17] + s[18:20] + s[22:26]
                if month and s[14] == ":" and s[17] == ":" and _digits(nums):
                    h, mi, sec = int(s[12:14]), int(s[15:17]), int(s[18:20])
                    if h < 24 and mi < 60 and sec < 60:
                        offset = int(s[22:24]) * 3600 + int(s[24:26]) * 60
                        if s[21] == "-":
                            offset = -offset
                        if int(s[24:26]) < 60 and abs(offset) < 86400:
                            days = date(int(s[7:11]), month, int(s[0:2])).toordinal() - _EPOCH_ORDINAL
                            return float(days * 86400 + h * 3600 + mi * 60 + sec - offset)
            return slow(s)

        return parse_clf

    return slow
