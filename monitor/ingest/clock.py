"""Receipt times that never collide, and the readings whose own clock is ahead of ours.

A reading without a time is stamped with the time it arrived. Two such readings of one series in the same
burst would get the same stamp (or one a clock step back would give an older one), and the journal's key
(station, parameter, ts) would take the second as a redelivery of the first: an accepted reading lost. So
the stamp is strictly increasing per series, one nanosecond past the last when the clock has not moved.
"""

from __future__ import annotations

from typing import NamedTuple


class ReceiptClock:
    """Per series, the last receipt stamp given out; `stamp` is a `decode(stamp=...)`."""

    # Entries older than the clock are of no use (the clock alone is then later); pruned past this many.
    PRUNE_AT = 100_000

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def stamp(self, station: str, parameter: str, now_ns: int) -> int:
        key = (station, parameter)
        last = self._last.get(key)
        ts = now_ns if last is None or last < now_ns else last + 1
        if last is None and len(self._last) >= self.PRUNE_AT:
            self._last = {k: v for k, v in self._last.items() if v >= now_ns}
        self._last[key] = ts
        return ts


class ClockFault(NamedTuple):
    """A series' reading refused as future_timestamp: what `Rules.clock_fault` takes."""

    station: str
    parameter: str
    ts_ns: int  # the (latest) time the logger claimed
    now_ns: int  # the receiving clock then
