"""Limits that depend on another parameter (hardness bands): that parameter's latest readings per station."""

from __future__ import annotations

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.ring import Ring
from monitor.rules.screen import NOT_EVALUATED_FLAGS
from monitor.thresholds import LimitSpec


class Dependencies:
    """The latest readings of each (station, parameter) that limits depend on. Memory: 256 per station."""

    __slots__ = ("rings",)

    def __init__(self) -> None:
        self.rings: dict[tuple[str, str], Ring] = {}

    def record(self, key: tuple[str, str], rows: list[Reading]) -> None:
        """Keep a batch of the dependency's readings: unflagged, newer than the last kept, one per time."""
        ok = sorted((r.ts_ns, r.value) for r in rows if not (r.flag and r.flag.lower() in NOT_EVALUATED_FLAGS))
        ring = self.rings.setdefault(key, Ring(64, sums=False))
        last = int(ring.ts[-1]) if len(ring) else None
        fresh = [(t, v) for t, v in ok if last is None or t > last]
        fresh = [x for i, x in enumerate(fresh) if i == 0 or x[0] != fresh[i - 1][0]]
        if fresh:
            ring.extend(np.array([t for t, _ in fresh], dtype=np.int64), np.array([v for _, v in fresh]))
            ring.keep_last(256)

    def as_of(self, station: str, spec: LimitSpec, ts: np.ndarray) -> np.ndarray | None:
        """As-of values of the dependency at each reading's time; NaN (→ the default band) when unknown.
        None when the limits depend on nothing."""
        if not spec.depends_on:
            return None
        fallback = np.nan if spec.assumed is None else spec.assumed
        ring = self.rings.get((station, spec.depends_on))
        if ring is None or not len(ring):
            return np.full(len(ts), fallback)
        pos = np.searchsorted(ring.ts, ts, side="right") - 1
        return np.where(pos >= 0, ring.values[np.maximum(pos, 0)], fallback)
