"""Admission: readings of stations no station file declares do not get to create series.

A cardinality bomb (a gateway inventing ids, a fuzzer, a typo in a loop) would otherwise write one new series
per id until the database refuses new tag values, and then a real new station is refused with them. Declared
stations always pass. Undeclared ones are refused (`unknown_station`) or, when accepted, admitted at most
`new_series_per_hour` new series an hour (a token bucket holding at most one hour's worth); the rest are
refused as `admission`. A series once admitted stays admitted for the life of the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from monitor.config import AdmissionConfig
from monitor.domain.reading import Reading
from monitor.domain.rejection import Rejection

log = logging.getLogger("riverwatch.ingest")


class Admission:
    """`admit(readings)` splits a batch into the admitted readings and the refused ones, by series."""

    def __init__(
        self,
        cfg: AdmissionConfig,
        stations: Callable[[], Collection[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg, self.stations, self.clock = cfg, stations, clock
        self.admitted: set[tuple[str, str]] = set()  # undeclared series let in (bounded by the budget)
        self._tokens = float(cfg.new_series_per_hour)
        self._at = clock()
        self._open_warned = False

    def _open(self, declared: Collection[str]) -> bool:
        """Undeclared stations are accepted (within the budget): by configuration, or for want of station files."""
        if self.cfg.unknown_stations == "accept":
            return True
        if not declared:
            if not self._open_warned:
                self._open_warned = True
                log.warning(
                    "no station file declares any station: readings of every station are accepted, at most %d new "
                    "series an hour ([admission].new_series_per_hour)",
                    self.cfg.new_series_per_hour,
                )
            return True
        return False

    def _take(self) -> bool:
        rate = self.cfg.new_series_per_hour
        now = self.clock()
        self._tokens = min(float(rate), self._tokens + (now - self._at) * rate / 3600.0)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def admit(self, readings: list[Reading]) -> tuple[list[Reading], list[Rejection]]:
        declared = self.stations()
        if all(r.station in declared for r in readings):
            return readings, []
        is_open = self._open(declared)
        kept: list[Reading] = []
        refused: list[Rejection] = []
        verdict: dict[tuple[str, str], str | None] = {}  # per series in this batch: None admitted, else the reason
        for r in readings:
            if r.station in declared:
                kept.append(r)
                continue
            key = (r.station, r.parameter)
            if key not in verdict:
                if key in self.admitted:
                    verdict[key] = None
                elif not is_open:
                    verdict[key] = "unknown_station"
                elif self._take():
                    self.admitted.add(key)
                    verdict[key] = None
                else:
                    verdict[key] = "admission"
            reason = verdict[key]
            if reason is None:
                kept.append(r)
            elif reason == "unknown_station":
                refused.append(Rejection(reason, f"no station file declares station {r.station[:64]!r}", *key, r.ts_ns))
            else:
                refused.append(
                    Rejection(
                        reason,
                        f"{r.parameter} at undeclared station {r.station[:64]!r} would be a new series over "
                        f"[admission].new_series_per_hour = {self.cfg.new_series_per_hour}",
                        *key,
                        r.ts_ns,
                    )
                )
        return kept, refused
