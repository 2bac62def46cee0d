"""Alerts: turn per-reading verdicts into a lifecycle per (station, parameter, rule), in two steps as stations
work: unconfirmed (the first exceedance: "re-check at 10:00"), then firing (confirmed by the next reading) or
withdrawn (the next reading is not over); a confirmed alert can escalate and resolve.

An alert notifies on transitions only, never once per reading. A confirmed alert's escalations and its
resolve are found with numpy (the first reading whose tier rises or that may clear), so a long exceedance
costs O(readings) array work and O(transitions) Python. State is one small record per alert that is open.

Clearing that holds: a confirmed alert resolves only after `clear_readings` calm readings in a row (below
limit × clear_ratio) that have also lasted `clear_hold` (default: one analyser cycle of the series, learnt
from its readings, see monitor.alerts.cadence), so a single 0.0 inside a plume does not resolve it. No
transition ever comes from a reading at or before the newest one evaluated for that alert; that time is
kept in the ledger, so a late reading after a restart neither resolves nor re-opens.

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

from monitor.alerts.cadence import Cadence
from monitor.alerts.clearing import Clearing, clearing
from monitor.alerts.trend import Trend, TrendSettings, TrendView
from monitor.domain.params import PARAMETERS
from monitor.domain.reading import Reading
from monitor.rules import AlertKey, QuietChecks, Rules, SeriesCheck
from monitor.thresholds import Limit, Problem, ThresholdError, ThresholdSet, load
from monitor.thresholds.model import AlertPolicy

log = logging.getLogger("riverwatch.alerts")

STATES = ("unconfirmed", "firing", "escalated", "withdrawn", "resolved")
CYCLE_SLACK = 0.9  # "one cycle of calm" allows analysers' jitter: 90 % of the median interval


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: str
    state: str  # "unconfirmed" | "firing" | "escalated" | "withdrawn" | "resolved"
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
    rule: str = "instantaneous"  # instantaneous | persistence | mean | rate | no_data | event | sensor kinds
    detail: str = ""  # the human reason: "rising 0.004 mg/L per hour over the last 6 h", "rolling 24 h mean ..."
    category: str = "water"  # "water" (about the river) or "sensor" (about the instrument), from the check
    cycle_ns: int = 0  # the series' analyser cycle when the event was made; 0 = unknown ("re-check at" = ts + it)
    near: bool = False  # an unconfirmed notice from a reading under the limit, within its noise and rising toward it
    to_confirm: int = 0  # unconfirmed: readings over the limit still needed to confirm (0 = unknown, e.g. restored)

    @property
    def confirmed(self) -> bool:
        """The alert a bureau acts on (firing, escalated, resolved), not a first notice or its withdrawal."""
        return self.state not in ("unconfirmed", "withdrawn")


@dataclass(slots=True)
class _Open:
    alert_id: str
    started_ns: int
    tier: int
    peak_value: float
    peak_ratio: float
    rule: str = "instantaneous"
    category: str = "water"
    confirmed: bool = True
    run: int = 1  # unconfirmed: steps so far (readings over the limit, or the near-and-rising one it opened with)
    need: int = 2  # unconfirmed: steps that confirm ([alerts].confirm, one more after a sudden jump)
    near: bool = False  # unconfirmed: opened by a near-and-rising reading under the limit
    calm_since: int | None = None  # start of the current run of calm readings (hysteresis hold)
    calm_n: int = 0  # calm readings in that run
    last_ts: int = 0  # the newest reading evaluated for this alert: no transition from one at or before it
    last_value: float = math.nan
    limit: Limit | None = None

    def note_peak(self, value: float, ratio: float) -> None:
        if ratio > self.peak_ratio:
            self.peak_value, self.peak_ratio = value, ratio


_POLICY = AlertPolicy()  # the one source of the book's defaults: a bare AlertBook() acts as an empty [alerts]


@dataclass
class AlertBook:
    """Open alerts and their lifecycle. Its settings are an `[alerts]` table's (`AlertBook.of(policy)`, `use`);
    the keyword fields are for tests that vary one of them."""

    tiers: tuple[tuple[float, str], ...] = _POLICY.tiers
    open: dict[AlertKey, _Open] = field(default_factory=dict)
    clear_hold_ns: int = _POLICY.clear_hold_ns  # for checks that do not carry their own; CLEAR_HOLD_CYCLE = 1 cycle
    confirm: int = _POLICY.confirm  # readings over the limit in a row that confirm an alert, for checks without one
    clear_readings: int = _POLICY.clear_readings  # calm readings in a row that clear a confirmed water alert
    cadence: Cadence = field(default_factory=Cadence)
    # noise and trend of limit series (the near step, clear band, jumps), with the policy's settings
    trend: Trend = field(default_factory=lambda: Trend(TrendSettings.of(_POLICY)))
    moved: set[AlertKey] = field(default_factory=set)  # open alerts whose newest evaluated reading moved

    def __post_init__(self) -> None:
        self._bounds = np.array([t for t, _ in self.tiers], dtype=np.float64)
        self._policy = _POLICY  # the [alerts] table in use: its per station, parameter, standard tiers
        self._bounds_by: dict[tuple[str, str, str], np.ndarray] = {}

    @classmethod
    def of(cls, policy: AlertPolicy) -> AlertBook:
        """A book that follows a loaded `[alerts]` table in every setting."""
        book = cls()
        book.use(policy)
        return book

    def use(self, policy: AlertPolicy) -> None:
        """Every setting from `policy` (load and reload): tiers, the two steps, clearing and the trend."""
        self.set_tiers(policy.tiers)
        self._policy = policy
        self._bounds_by.clear()
        self.clear_hold_ns, self.confirm, self.clear_readings = (
            policy.clear_hold_ns,
            policy.confirm,
            policy.clear_readings,
        )
        self.trend.settings = TrendSettings.of(policy)

    def set_tiers(self, tiers: tuple[tuple[float, str], ...]) -> None:
        """New tiers (reload): open alerts keep their tier, capped at the new top tier."""
        self.tiers = tiers
        self._bounds = np.array([t for t, _ in tiers], dtype=np.float64)
        for a in self.open.values():
            a.tier = min(a.tier, len(tiers))

    def _bounds_of(self, check: SeriesCheck) -> np.ndarray:
        """The tier ratios of the check's series (`[alerts.severity_by]`), one array per scope in use."""
        if not self._policy.tiers_by:
            return self._bounds
        key = (check.station, check.parameter, check.limit.standard)
        got = self._bounds_by.get(key)
        if got is None:
            got = self._bounds_by[key] = np.array(self._policy.bounds_for(*key), dtype=np.float64)
        return got

    def severity(self, tier: int) -> str:
        return self.tiers[min(max(tier, 1), len(self.tiers)) - 1][1]

    def update(self, check: SeriesCheck | QuietChecks) -> list[AlertEvent]:
        """Advance one series-rule through a batch; returns its transitions in time order.

        A QuietChecks (compliant series of the rules' fast path) can only resolve or withdraw open limit alerts:
        only the series with one are expanded, found by a scan of the open alerts, O(open alerts).

        Severity tiers: the tier of a violating reading is how many tier bounds its ratio reaches (C/S, S/C for
        a minimum), at least the first; a rule with a fixed severity uses that tier. An unconfirmed alert takes
        the highest tier of its run when it is confirmed. Time O(readings) numpy + O(transitions + confirm)
        Python; memory: one small record per open alert, nothing for a series in compliance.
        """
        if isinstance(check, QuietChecks):
            wanted = [(s, p) for s, p, k in self.open if not k and (s, p) in check]
            return [e for c in check.expand(wanted) for e in self.update(c)] if wanted else []
        key = (check.station, check.parameter, check.key)
        n = len(check.ts_ns)
        if n == 0:
            return []
        ts = check.ts_ns
        series = (check.station, check.parameter)
        water = check.category == "water" and check.rule != "no_data"  # no-data and gap times are not readings
        # A sensor alert needs no cycle (it confirms and clears at once); a water alert's cycle at each reading
        # comes from the readings up to it, so its events are the same however the readings were batched.
        cycles = self.cadence.cycles(series, ts) if water else np.zeros(n, dtype=np.int64)
        if water:
            self.cadence.observe(series, ts)
        violated = check.violated
        current = self.open.get(key)
        trend = self._trend(check, current is not None) if water else None
        near = trend.near if trend is not None else np.zeros(n, dtype=bool)
        inband = trend.inband if trend is not None else near
        i = 0
        if current is not None and int(ts[0]) <= current.last_ts:
            i = int(np.searchsorted(ts, current.last_ts, side="right"))  # late or repeated for this alert
            if i >= n:
                return []
        if current is None and not violated.any() and not near.any():
            return []  # the common case: a compliant series without an alert
        if check.severity:
            fixed = next((k + 1 for k, (_, name) in enumerate(self.tiers) if name == check.severity), 1)
            tier = np.where(violated, fixed, 0)
        else:
            tier = np.where(violated, np.searchsorted(self._bounds_of(check), check.ratio, side="right"), 0)
            tier = np.maximum(tier, violated.astype(np.int64))  # a violation is at least the first tier
        confirm = check.confirm if check.confirm is not None else 1 if check.rule == "no_data" else self.confirm
        if confirm <= 1:  # no unconfirmed step at all: neither a near notice nor a jump held for one more reading
            near = np.zeros(n, dtype=bool)
        clear = self._clearing(check, i, current, cycles, trend)
        events: list[AlertEvent] = []
        while i < n:
            current = self.open.get(key)
            if current is None:
                later = np.flatnonzero(violated[i:] | near[i:])
                if not len(later):
                    break
                j = i + int(later[0])
                sudden = confirm > 1 and trend is not None and bool(trend.sudden[j])
                first_near = not violated[j]  # near and rising: a first step under the limit, never confirms
                current = _Open(
                    _alert_id(check.station, check.parameter, int(ts[j]), check.key),
                    int(ts[j]),
                    int(tier[j]),
                    float(check.values[j]),
                    float(check.ratio[j]),
                    check.rule,
                    check.category,
                    confirmed=confirm <= 1 and not first_near and not sudden,
                    need=confirm + 1 if sudden else max(confirm, 2 if first_near else 1),
                    near=first_near,
                )
                self.open[key] = current
                state = "firing" if current.confirmed else "unconfirmed"
                events.append(self._event(current, state, check, j, int(cycles[j]), trend if first_near else None))
                i = j + 1
                clear = self._clearing(check, i, None, cycles, trend)
            elif not current.confirmed:
                if violated[i]:
                    current.run += 1
                    current.tier = max(current.tier, int(tier[i]))
                    current.note_peak(float(check.values[i]), float(check.ratio[i]))
                    if current.run >= current.need:
                        current.confirmed = True
                        events.append(self._event(current, "firing", check, i, int(cycles[i])))
                elif near[i] or (current.near and inband[i]):
                    pass  # still near the limit (and rising, for a first exceedance): the notice stands
                else:
                    del self.open[key]
                    events.append(self._event(current, "withdrawn", check, i, int(cycles[i])))
                i += 1
            else:
                rel = clear.base
                stop = (tier[i:] > current.tier) | clear.clearable[i - rel :]
                hits = np.flatnonzero(stop)
                k = n if not len(hits) else i + int(hits[0])
                if k > i and violated[i:k].any():
                    peak_i = i + int(np.argmax(np.where(violated[i:k], check.ratio[i:k], -np.inf)))
                    current.note_peak(float(check.values[peak_i]), float(check.ratio[peak_i]))
                if k >= n:
                    break
                if tier[k] > current.tier:
                    current.tier = int(tier[k])
                    current.note_peak(float(check.values[k]), float(check.ratio[k]))
                    events.append(self._event(current, "escalated", check, k, int(cycles[k])))
                else:
                    del self.open[key]
                    events.append(self._event(current, "resolved", check, k, int(cycles[k])))
                i = k + 1
        current = self.open.get(key)
        if current is not None:
            last = n - 1 - clear.base
            if last >= 0 and clear.calm[last]:
                current.calm_since, current.calm_n = int(clear.since[last]), int(clear.length[last])
            elif last >= 0:
                current.calm_since, current.calm_n = None, 0
            current.last_ts, current.last_value = int(ts[-1]), float(check.values[-1])
            current.limit = check.limit
            self.moved.add(key)
        return events

    def _trend(self, check: SeriesCheck, watching: bool) -> TrendView | None:
        """The trend of a limit alert's series (the near step, the clear band, sudden jumps); None for other rules,
        whose readings are statistics or runs, not single measurements."""
        if check.key or check.rule != "instantaneous" or check.confirm is not None:
            return None
        return self.trend.assess(
            (check.station, check.parameter), check.ts_ns, check.ratio, check.values, check.violated, watching
        )

    def _clearing(
        self, check: SeriesCheck, base: int, current: _Open | None, cycles: np.ndarray, trend: TrendView | None
    ) -> Clearing:
        """Which readings from `base` on may clear: calm for `clear_readings` in a row (water alerts; one for
        no-data and sensor alerts, whose next good reading shows the instrument sees again) and for the hold; a
        reading within the series' clear band under the limit is not calm."""
        ts = check.ts_ns[base:]
        calm = check.calm[base:] if check.calm is not None else ~check.violated[base:] & (check.ratio[base:] <= 1.0)
        if trend is not None:
            calm = calm & (check.ratio[base:] <= 1.0 - trend.band[base:])
        carry_since = current.calm_since if current is not None else None
        carry_n = current.calm_n if current is not None and current.calm_since is not None else 0
        set_hold = check.clear_hold_ns if check.clear_hold_ns is not None else self.clear_hold_ns
        # CLEAR_HOLD_CYCLE (< 0): one analyser cycle, as known at each reading, less the analysers' jitter
        hold = (cycles[base:] * CYCLE_SLACK).astype(np.int64) if set_hold < 0 else np.int64(set_hold)
        need = self.clear_readings if check.category == "water" and check.rule != "no_data" else 1
        return clearing(ts, calm, base, carry_since, carry_n, hold, need)

    def _event(
        self, a: _Open, state: str, check: SeriesCheck, i: int, cycle: int, trend: TrendView | None = None
    ) -> AlertEvent:
        """`trend`: the reading is a near-and-rising first step, and the trend says why."""
        detail = check.detail_at(i)
        if trend is not None:
            p = PARAMETERS.get(check.parameter)
            why = trend.detail(i, f" {p.unit}" if p is not None and p.unit else "", self.trend.settings.trend_readings)
            detail = f"{why}; {detail}" if detail else why
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
            detail,
            check.category,
            cycle,
            near=a.near and state in ("unconfirmed", "withdrawn"),
            to_confirm=max(a.need - a.run, 1) if state == "unconfirmed" else 0,
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
        *,
        state: str = "firing",
        category: str = "water",
    ) -> None:
        """An alert still open at the last stop (from the ledger) continues instead of opening again.

        `last_ts` is the newest reading evaluated for it (the ledger's `evaluated_ns`): nothing at or before it
        moves the alert. An unconfirmed one continues as unconfirmed, with a run of one reading."""
        parts = alert_id.split("/")
        key = parts[2] if len(parts) == 4 else ""  # see _alert_id: station/parameter[/rule key]/time
        tier = next((i + 1 for i, (_, name) in enumerate(self.tiers) if name == severity), 1)
        self.open[(station, parameter, key)] = _Open(
            alert_id,
            started_ns,
            tier,
            peak_value,
            peak_ratio,
            rule,
            category,
            confirmed=state != "unconfirmed",
            need=max(self.confirm, 2),
            last_ts=last_ts,
            last_value=last_value,
        )

    def evaluated(self) -> dict[str, int]:
        """alert id -> newest reading evaluated, for the open alerts whose time moved since the last call (what
        the ledger keeps so that a restart does not let a late reading move them)."""
        out = {a.alert_id: a.last_ts for k in self.moved if (a := self.open.get(k)) is not None}
        self.moved.clear()
        return out

    def close(self, key: AlertKey, detail: str) -> AlertEvent | None:
        """End an open alert whose rule no longer exists (after a reload), so that none is left hanging: a
        confirmed one resolves, an unconfirmed one is withdrawn."""
        a = self.open.pop(key, None)
        if a is None:
            return None
        limit = a.limit or Limit(key[1], "max", math.nan, None, "", "", "", "")
        return AlertEvent(
            a.alert_id,
            "resolved" if a.confirmed else "withdrawn",
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
            a.category,
            self.cadence.cycle((key[0], key[1])),
        )


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
      series and rules that still exist are kept; alerts whose rule is gone are resolved or withdrawn (and
      returned).
    Call all three from one thread (the service's event loop): they are not meant to run concurrently.
    """

    def __init__(self, thresholds: ThresholdSet, default_class: str = "III", fast: bool = True) -> None:
        self.rules = Rules(thresholds, default_class, fast)
        self.book = AlertBook.of(thresholds.alerts)
        self._policy(thresholds)

    def _policy(self, thresholds: ThresholdSet) -> None:
        """The `[alerts]` settings and the expected intervals of the station files, into the book."""
        self.book.use(thresholds.alerts)
        self.book.cadence.fallback = {
            (sid, pid): every for sid, st in thresholds.stations.items() for pid, every in st.expect.items()
        }

    def evaluated(self) -> dict[str, int]:
        """See AlertBook.evaluated: what the ledger keeps after each batch (`Ledger.evaluated`)."""
        return self.book.evaluated()

    def clock_fault(self, station: str, parameter: str, ts_ns: int, now_ns: int) -> list[AlertEvent]:
        """A reading ingest refused as dated in the future: the series' "clock" sensor alert (see
        Rules.clock_fault); it clears at the series' next accepted reading."""
        return self.book.update(self.rules.clock_fault(station, parameter, ts_ns, now_ns))

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
        """Swap in new thresholds. Returns the "resolved" (or "withdrawn") events of alerts whose rule no longer
        applies."""
        self.rules.reload(thresholds, default_class)
        self._policy(thresholds)
        events: list[AlertEvent] = []
        for key in list(self.book.open):
            if key[2] not in self.rules.alert_keys(key[0], key[1]):
                confirmed = self.book.open[key].confirmed
                ended = "resolved" if confirmed else "withdrawn"
                e = self.book.close(key, f"{ended} because the reloaded thresholds no longer have this rule")
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
