"""What a bureau must be able to trust, measured on a scored run: notices per station and week, resolves inside
a plume, which injected fault caused each false alarm, and whether each blinding fault was announced.

Why apart from scoring: these figures need what only a scenario knows (its injected faults) or judge the
lifecycle rather than single alerts. Times are counted in analyser cycles of the series (the median interval
of its readings), because "within one cycle" is what a station can promise whatever its cadence.

Definitions (issue 13, "Done means"):
- a notice is a water alert's first message while unconfirmed; per station, notices are counted per 7 days from
  the start of the data;
- a resolve inside a plume is a confirmed water alert resolved while the truth of its series still violated the
  station's class limit (between the crossing and the first compliant time);
- a blinding fault (stuck, gap, below-DL run) is announced when a sensor alert of its station (the parameter's,
  or station-wide) is open at some time between the fault's start and two cycles after it; a fault over within
  two cycles hides nothing that the next reading does not show, and is counted apart as "short";
- a false alert's cause is the injected fault of its series whose time (widened by two cycles after its end,
  the time a confirmation takes) holds the alert's first notice; none: the river's own noise near the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.offline.dataset import NS_PER_HOUR, Dataset
from monitor.offline.scoring import AlertSpan, Detection, Score
from simulators.faults import BLINDING, Fault

NS_PER_WEEK = 7 * 24 * NS_PER_HOUR
ANNOUNCE_CYCLES = 2  # a blinding fault must raise a sensor alert within this many cycles of its start
NOTICE_CYCLES = 1  # the first notice within one cycle of the true crossing
CONFIRM_CYCLES = 2  # the confirmed alert within two


@dataclass(frozen=True)
class Blinding:
    """One blinding fault and the sensor alert that announced it (None: none did in time)."""

    fault: Fault
    cycle_ns: int
    alert: AlertSpan | None
    delay_ns: int | None  # the alert's first message after the fault's start (0: already open)

    @property
    def short(self) -> bool:
        """Over within ANNOUNCE_CYCLES cycles: the next reading shows the river again."""
        return self.cycle_ns > 0 and self.fault.end_ns - self.fault.start_ns <= ANNOUNCE_CYCLES * self.cycle_ns


@dataclass
class Evidence:
    """The figures of one scored run."""

    score: Score
    notices_per_week: dict[str, list[int]]  # station -> notices in each 7 days from the start
    plume_resolves: list[tuple[AlertSpan, Detection]]
    causes: list[tuple[AlertSpan, Fault | None]]  # every false water alert and false notice, with its cause
    blinding: list[Blinding] = field(default_factory=list)

    @property
    def max_notices_per_week(self) -> int:
        return max((max(w) for w in self.notices_per_week.values() if w), default=0)

    @property
    def blinding_due(self) -> list[Blinding]:
        """The blinding faults that had to be announced (not short)."""
        return [b for b in self.blinding if not b.short]

    @property
    def blinding_announced(self) -> list[Blinding]:
        return [b for b in self.blinding_due if b.alert is not None]

    def on_time(self) -> tuple[int, int, int]:
        """(first notices within NOTICE_CYCLES, confirmed alerts within CONFIRM_CYCLES, exceedances judged)."""
        first = self.score.first_latency().values()
        notice = sum(1 for d in first if _within(d, d.notice_latency_ns, NOTICE_CYCLES))
        confirm = sum(1 for d in first if _within(d, d.latency_ns, CONFIRM_CYCLES))
        return notice, confirm, len(first)


def _within(d: Detection, ns: int | None, cycles: int) -> bool:
    c = d.cycles(ns)
    return c is not None and c <= cycles


def evidence(sc: Score, ds: Dataset) -> Evidence:
    """Every figure of the module docstring for one scored run over `ds`."""
    return Evidence(
        sc,
        notices_per_week(sc, ds),
        plume_resolves(sc, ds),
        causes(sc, ds.faults or []),
        blinding(sc, ds.faults or [], ds),
    )


def notices_per_week(sc: Score, ds: Dataset) -> dict[str, list[int]]:
    """Per station: the water notices in each 7 days from the start of the data (every station, zeros too)."""
    weeks = max(1, -(-(ds.end_ns - ds.start_ns) // NS_PER_WEEK))
    counts: Counter[tuple[str, int]] = Counter(
        (a.station, min(weeks - 1, max(0, (a.notice_ns - ds.start_ns) // NS_PER_WEEK))) for a in sc.notices
    )
    return {st: [counts[(st, w)] for w in range(weeks)] for st in ds.stations}


def plume_resolves(sc: Score, ds: Dataset) -> list[tuple[AlertSpan, Detection]]:
    """Confirmed water alerts resolved while the truth of their series still violated the class limit."""
    out = []
    for d in sc.detections:
        e = d.exceedance
        for a in sc.water:
            if (a.station, a.parameter) != (e.station, e.parameter) or a.withdrawn or a.resolved_ns is None:
                continue
            if e.start_ns <= a.resolved_ns < e.end(ds.end_ns):
                out.append((a, d))
    return sorted(out, key=lambda x: (x[0].resolved_ns or 0, x[0].alert_id))


def causes(sc: Score, faults: Sequence[Fault]) -> list[tuple[AlertSpan, Fault | None]]:
    """Each false water alert and each false notice with the fault of its series that explains it."""
    out = []
    for a in sc.alerts:
        if not a.water or a.verdict != "false" or not (a.confirmed or a.noticed):
            continue
        slack = ANNOUNCE_CYCLES * a.cycle_ns
        mine = [
            f
            for f in faults
            if (f.station, f.parameter) == (a.station, a.parameter) and f.start_ns <= a.notice_ns <= f.end_ns + slack
        ]
        out.append((a, max(mine, key=lambda f: f.start_ns) if mine else None))
    return out


def blinding(sc: Score, faults: Sequence[Fault], ds: Dataset) -> list[Blinding]:
    """Each stuck, gap and below-DL fault, with the first sensor alert of its station open within two cycles."""
    cycles = ds.cadences()
    sensors: dict[str, list[AlertSpan]] = {}
    for a in sc.sensor:
        sensors.setdefault(a.station, []).append(a)
    out = []
    for f in sorted((f for f in faults if f.kind in BLINDING), key=lambda f: (f.start_ns, f.station, f.parameter)):
        cycle = cycles.get((f.station, f.parameter), 0)
        deadline = f.start_ns + ANNOUNCE_CYCLES * cycle
        best: AlertSpan | None = None
        for a in sensors.get(f.station, []):
            open_in_time = a.notice_ns <= deadline and (a.resolved_ns is None or a.resolved_ns > f.start_ns)
            if a.parameter in (f.parameter, "*") and open_in_time and (best is None or a.notice_ns < best.notice_ns):
                best = a
        delay = None if best is None else max(0, best.notice_ns - f.start_ns)
        out.append(Blinding(f, cycle, best, delay))
    return out
