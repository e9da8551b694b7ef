"""A fixed-bucket histogram of acknowledgement latency (submit -> settle), kept by the Shipper.

Not a prometheus_client Histogram on purpose: ship/ stays free of the metrics library, and one
``observe`` is a bisect and three additions, once per settled record (never per line). The metrics
module (tailer.run.metrics) turns it into Prometheus' cumulative ``le`` buckets at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left

# Seconds: a healthy endpoint answers in milliseconds; retries and outages push records to minutes.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)  # fmt: skip


class LatencyHistogram:
    """``counts[i]`` holds observations ``<= bounds[i]`` and ``> bounds[i-1]``; the last, those above all."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0  # sum of observed seconds
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` per bucket, ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), list(self.counts), strict=True):
            running += n
            out.append((bound, running))
        return out
