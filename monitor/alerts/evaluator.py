"""Alerts: turn per-reading verdicts into a lifecycle per (station, parameter, rule): firing, escalated, resolved.

An alert notifies on transitions only, never once per reading. Transitions are found with numpy (the
places where the verdict, the severity tier or the right to clear changes), so a long exceedance costs
O(readings) array work and O(transitions) Python. State is one small record per alert that is open.

Hysteresis: an open alert clears only at a reading that is "calm" (below limit × clear_ratio) when the calm
readings have lasted `clear_hold` without a break; with the defaults (1.0, 0 s) the first compliant reading
clears it, as before.

`Evaluator` puts rules and alerts together for the service: `process` per journal batch, `tick` for the
no-data rule, `reload` for a new ThresholdSet. It tells the rules which alerts are open, so that compliant
series on the rules' fast path need no SeriesCheck at all (see monitor.rules).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules import AlertKey, QuietChecks, Rules, SeriesCheck
from monitor.thresholds import DEFAULT_TIERS, Limit, Problem, ThresholdError, ThresholdSet, load

log = logging.getLogger("riverwatch.alerts")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: str
    state: str  # "firing" | "escalated" | "resolved"
    station: str
    parameter: str  # "*" for a station-wide no-data alert
    ts_ns: int  # the time of the reading that caused the transition (no data: when the series became overdue)
    value: float
    ratio: float
    severity: str
    limit: Limit
    started_ns: int
    peak_value: float
    peak_ratio: float
    rule: str = "instantaneous"  # instantaneous | persistence | mean | rate | no_data
    detail: str = ""  # the human reason: "rising 0.004 mg/L per hour over the last 6 h", "rolling 24 h mean ..."


@dataclass(slots=True)
class _Open:
    alert_id: str
    started_ns: int
    tier: int
    peak_value: float
    peak_ratio: float
    rule: str = "instantaneous"
    calm_since: int | None = None  # start of the current run of calm readings (hysteresis hold)
    last_ts: int = 0
    last_value: float = math.nan
    limit: Limit | None = None

    def note_peak(self, value: float, ratio: float) -> None:
        if ratio > self.peak_ratio:
            self.peak_value, self.peak_ratio = value, ratio


@dataclass
class AlertBook:
    tiers: tuple[tuple[float, str], ...] = DEFAULT_TIERS
    open: dict[AlertKey, _Open] = field(default_factory=dict)
    clear_hold_ns: int = 0  # for checks that do not carry their own

    def __post_init__(self) -> None:
        self._bounds = np.array([t for t, _ in self.tiers], dtype=np.float64)

    def set_tiers(self, tiers: tuple[tuple[float, str], ...]) -> None:
        """New tiers (reload): open alerts keep their tier, capped at the new top tier."""
        self.tiers = tiers
        self._bounds = np.array([t for t, _ in tiers], dtype=np.float64)
        for a in self.open.values():
            a.tier = min(a.tier, len(tiers))

    def severity(self, tier: int) -> str:
        return self.tiers[min(max(tier, 1), len(self.tiers)) - 1][1]

    def update(self, check: SeriesCheck | QuietChecks) -> list[AlertEvent]:
        """Advance one series-rule through a batch; returns its transitions in time order.

        A QuietChecks (compliant series of the rules' fast path) can only resolve open limit alerts: only the
        series with one are expanded, found by a scan of the open alerts, O(open alerts).

        Severity tiers: the tier of a violating reading is how many tier bounds its ratio reaches (C/S, S/C for
        a minimum), at least the first; a rule with a fixed severity uses that tier. Hysteresis: see the module.
        Time O(readings) numpy + O(transitions) Python; memory: one small record per open alert (the calm run's
        start for the hold), nothing for a series in compliance.
        """
        if isinstance(check, QuietChecks):
            wanted = [(s, p) for s, p, k in self.open if not k and (s, p) in check]
            return [e for c in check.expand(wanted) for e in self.update(c)] if wanted else []
        key = (check.station, check.parameter, check.key)
        n = len(check.ts_ns)
        if n == 0:
            return []
        violated = check.violated
        if key not in self.open and not violated.any():
            return []  # the common case: a compliant series without an alert
        if check.severity:
            fixed = next((i + 1 for i, (_, name) in enumerate(self.tiers) if name == check.severity), 1)
            tier = np.where(violated, fixed, 0)
        else:
            tier = np.where(violated, np.searchsorted(self._bounds, check.ratio, side="right"), 0)
            tier = np.maximum(tier, violated.astype(np.int64))  # a violation is at least the first tier
        calm = check.calm if check.calm is not None else ~violated & (check.ratio <= 1.0)
        hold = check.clear_hold_ns if check.clear_hold_ns is not None else self.clear_hold_ns
        current = self.open.get(key)
        since = _run_start(calm, check.ts_ns, current.calm_since if current is not None else None)
        clearable = calm & (check.ts_ns - since >= hold)
        code = tier * 2 + clearable
        # Candidate indices: the first reading and every change of tier or of the right to clear.
        marks = np.concatenate(([0], np.flatnonzero(np.diff(code)) + 1, [n]))
        events: list[AlertEvent] = []
        for start, end in itertools.pairwise(marks):
            t = int(tier[start])
            current = self.open.get(key)
            if t > 0:
                if current is None:
                    current = _Open(
                        _alert_id(check.station, check.parameter, int(check.ts_ns[start]), check.key),
                        int(check.ts_ns[start]),
                        t,
                        float(check.values[start]),
                        float(check.ratio[start]),
                        check.rule,
                    )
                    self.open[key] = current
                    events.append(self._event(current, "firing", check, start))
                elif t > current.tier:
                    current.tier = t
                    current.note_peak(float(check.values[start]), float(check.ratio[start]))
                    events.append(self._event(current, "escalated", check, start))
                peak_i = start + int(np.argmax(np.where(violated[start:end], check.ratio[start:end], -np.inf)))
                current.note_peak(float(check.values[peak_i]), float(check.ratio[peak_i]))
            elif clearable[start] and current is not None:
                del self.open[key]
                events.append(self._event(current, "resolved", check, start))
        current = self.open.get(key)
        if current is not None:
            current.calm_since = int(since[-1]) if calm[-1] else None
            current.last_ts, current.last_value = int(check.ts_ns[-1]), float(check.values[-1])
            current.limit = check.limit
        return events

    def _event(self, a: _Open, state: str, check: SeriesCheck, i: int) -> AlertEvent:
        return AlertEvent(
            a.alert_id,
            state,
            check.station,
            check.parameter,
            int(check.ts_ns[i]),
            float(check.values[i]),
            float(check.ratio[i]),
            self.severity(a.tier),
            check.limit_at(i),
            a.started_ns,
            a.peak_value,
            a.peak_ratio,
            check.rule,
            check.detail_at(i),
        )

    def restore(
        self,
        alert_id: str,
        station: str,
        parameter: str,
        rule: str,
        severity: str,
        started_ns: int,
        peak_value: float,
        peak_ratio: float,
        last_ts: int,
        last_value: float,
    ) -> None:
        """An alert still open at the last stop (from the ledger) continues instead of firing again."""
        parts = alert_id.split("/")
        key = parts[2] if len(parts) == 4 else ""  # see _alert_id: station/parameter[/rule key]/time
        tier = next((i + 1 for i, (_, name) in enumerate(self.tiers) if name == severity), 1)
        self.open[(station, parameter, key)] = _Open(
            alert_id, started_ns, tier, peak_value, peak_ratio, rule, last_ts=last_ts, last_value=last_value
        )

    def close(self, key: AlertKey, detail: str) -> AlertEvent | None:
        """Resolve an open alert whose rule no longer exists (after a reload), so that none is left hanging."""
        a = self.open.pop(key, None)
        if a is None:
            return None
        limit = a.limit or Limit(key[1], "max", math.nan, None, "", "", "", "")
        return AlertEvent(
            a.alert_id,
            "resolved",
            key[0],
            key[1],
            a.last_ts or a.started_ns,
            a.last_value,
            0.0,
            self.severity(a.tier),
            limit,
            a.started_ns,
            a.peak_value,
            a.peak_ratio,
            a.rule,
            detail,
        )


def _run_start(calm: np.ndarray, ts: np.ndarray, carry: int | None) -> np.ndarray:
    """The time each calm reading's run of calm readings began (a run may continue from the last batch)."""
    idx = np.arange(len(calm))
    prev = np.concatenate(([carry is not None], calm[:-1]))
    first = np.maximum.accumulate(np.where(calm & ~prev, idx, -1))
    return np.where(first >= 0, ts[np.maximum(first, 0)], np.int64(carry if carry is not None else 0))


def _alert_id(station: str, parameter: str, ts_ns: int, key: str = "") -> str:
    """Readable and stable: the same data always opens the same id (`lalang/cd/20120115T0000Z`, and
    `lalang/cd/rate/20120114T2200Z` for a rule other than the limit)."""
    when = datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y%m%dT%H%MZ")
    return f"{station}/{parameter}/{key}/{when}" if key else f"{station}/{parameter}/{when}"


class Evaluator:
    """Rules, alert state and the no-data clock in one object: what the service calls.

    - `process(readings)` per journal batch: every rule, every transition, in time order;
    - `tick(now_ns)` every few seconds: no-data alerts fire without any reading arriving;
    - `reload(thresholds)` swaps in a validated ThresholdSet at once: rolling windows and open alerts of the
      series and rules that still exist are kept; alerts whose rule is gone are resolved (and returned).
    Call all three from one thread (the service's event loop): they are not meant to run concurrently.
    """

    def __init__(self, thresholds: ThresholdSet, default_class: str = "III", fast: bool = True) -> None:
        self.rules = Rules(thresholds, default_class, fast)
        self.book = AlertBook(thresholds.alerts.tiers, clear_hold_ns=thresholds.alerts.clear_hold_ns)

    @property
    def thresholds(self) -> ThresholdSet:
        return self.rules.thresholds

    def process(self, readings: Sequence[Reading], now_ns: int | None = None) -> list[AlertEvent]:
        """Evaluate one batch; the alert transitions it causes, in time order, and of equal times in the order
        of the readings that caused them, so that a stream gives the same sequence however it is batched."""
        checks = self.rules.evaluate(readings, now_ns, open_alerts=self.book.open)
        events = [e for c in checks for e in self.book.update(c)]
        events.sort(key=lambda e: e.ts_ns)
        if len(events) > 1 and any(a.ts_ns == b.ts_ns for a, b in itertools.pairwise(events)):
            first: dict[tuple[str, str, int], int] = {}
            for i, r in enumerate(readings):
                first.setdefault((r.station, r.parameter, r.ts_ns), i)
            events.sort(key=lambda e: (e.ts_ns, first.get((e.station, e.parameter, e.ts_ns), -1)))
        return events

    def tick(self, now_ns: int | None = None) -> list[AlertEvent]:
        """No-data alerts due at `now_ns` (wall clock, ns; now when None), in time order."""
        events = [
            e for c in self.rules.silent(time.time_ns() if now_ns is None else now_ns) for e in self.book.update(c)
        ]
        events.sort(key=lambda e: e.ts_ns)
        return events

    def reload(self, thresholds: ThresholdSet, default_class: str | None = None) -> list[AlertEvent]:
        """Swap in new thresholds. Returns the "resolved" events of alerts whose rule no longer applies."""
        self.rules.reload(thresholds, default_class)
        self.book.set_tiers(thresholds.alerts.tiers)
        self.book.clear_hold_ns = thresholds.alerts.clear_hold_ns
        events: list[AlertEvent] = []
        for key in list(self.book.open):
            if key[2] not in self.rules.alert_keys(key[0], key[1]):
                e = self.book.close(key, "resolved because the reloaded thresholds no longer have this rule")
                if e is not None:
                    events.append(e)
        log.info(
            "thresholds reloaded: %d standard(s), %d station(s), %d rule(s); %d open alert(s) kept, %d closed",
            len(thresholds.standards),
            len(thresholds.stations),
            len(thresholds.rules),
            len(self.book.open),
            len(events),
        )
        return events

    def reload_files(
        self, paths: Sequence[str | Path], default_class: str | None = None
    ) -> tuple[list[AlertEvent], list[Problem]]:
        """Validate first: with any problem the old thresholds stay (and the problems say why); else reload."""
        try:
            thresholds = load(paths)
        except ThresholdError as e:
            log.error(
                "thresholds not reloaded, the files have %d problem(s); the rules in force stay:\n%s",
                len(e.problems),
                e,
            )
            return [], e.problems
        return self.reload(thresholds, default_class), []

    def pending(self) -> dict[str, str]:
        """Why some rules cannot alert yet ("station/parameter/rule" -> reason), e.g. a rolling mean window
        that has not filled."""
        return {f"{s}/{p}/{r}": why for (s, p, r), why in self.rules.pending.items()}
