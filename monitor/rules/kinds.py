"""The rule kinds: each turns a series' accepted readings into a SeriesCheck (a verdict per reading).

The limit rule (instantaneous, or persistence when one is configured), rolling mean and rate of change.
Every reading is judged when it arrives, never on the next one. Each rule states what it adds per series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from monitor.rules.checks import SeriesCheck
from monitor.rules.dependencies import Dependencies
from monitor.rules.event import EventBook
from monitor.rules.plan import Plan, SeriesState
from monitor.rules.ring import Ring, window_bounds
from monitor.rules.runs import run_lengths, run_starts
from monitor.rules.screen import BELOW_DL, OK
from monitor.rules.wording import number, unit_suffix
from monitor.thresholds import Limit, RuleSpec, format_duration
from monitor.thresholds.verdict import verdict

log = logging.getLogger("riverwatch.rules")


def clear_ratio(plan: Plan, rule: RuleSpec | None) -> float:
    return rule.clear_ratio if rule is not None and rule.clear_ratio is not None else plan.clear_ratio


def clear_hold(plan: Plan, rule: RuleSpec | None) -> int:
    return rule.clear_hold_ns if rule is not None and rule.clear_hold_ns is not None else plan.clear_hold_ns


class Judge:
    """Applies a series' rules to its screened readings. Holds what the rules read or report beyond the series:
    the dependency readings (hardness) and `pending`, why a mean rule cannot alert yet."""

    __slots__ = ("deps", "events", "pending")

    def __init__(
        self, deps: Dependencies, pending: dict[tuple[str, str, str], str], events: EventBook | None = None
    ) -> None:
        self.deps = deps
        self.pending = pending
        self.events = events if events is not None else EventBook()  # the event rules' stations (rules.event)

    def judge(
        self,
        plan: Plan,
        station: str,
        st: SeriesState | None,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray,
        dl: np.ndarray,
    ) -> list[SeriesCheck]:
        """The SeriesChecks of one series over one batch: its limit rule, then its mean and rate rules in order.
        Only OK and below-DL readings are judged; the rings of the mean and rate rules move here."""
        ev = (quality == OK) | (quality == BELOW_DL)
        if not ev.any():
            return []
        ets, ev_v = ts[ev], values[ev]
        below = quality[ev] == BELOW_DL
        edl = dl[ev]
        shown = np.where(below, edl, ev_v)  # a below-DL reading is reported as "< DL"
        checks: list[SeriesCheck] = []
        spec = plan.spec
        idx = ratio = viol = calm = None
        if spec is not None:
            idx = spec.index(ets, self.deps.as_of(station, spec, ets))
            ratio, viol = verdict(spec.kind, spec.lows[idx], spec.highs[idx], shown)
            if below.any():  # the true value is somewhere in [0, DL): "unknown below DL", never a violation
                viol = viol & ~below  # (of a minimum such as DO either: a blank reads so; sensor health says it)
            calm = ~viol & (ratio <= clear_ratio(plan, plan.limit_rule))
            if below.any() and spec.kind != "max":
                calm &= ~below
            checks.append(self._limit_check(plan, station, st, ets, shown, ratio, viol, calm, idx, below))
        for rule in plan.extra:  # event rules: station-wide, fed series by series (monitor.rules.event)
            if rule.kind == "event":
                stat = np.where(below, edl / 2, ev_v)
                checks += self.events.feed(rule, station, plan.parameter, ets, stat, plan.lowest)
        if any(r.kind != "event" for r in plan.extra):
            assert st is not None  # a plan with extra rules is stateful
            stat = np.where(below, edl / 2, ev_v)  # means and slopes use half the detection limit
            ring = st.values
            if ring is None:
                ring = st.values = Ring(64, moments=any(r.kind == "rate" for r in plan.extra))
            start = ring.extend(ets, stat)
            pos = np.arange(start, start + len(ets))
            for rule in plan.extra:
                if rule.kind == "mean" and spec is not None:
                    checks.append(self._mean_check(plan, station, rule, ring, ets, pos))
                elif rule.kind == "rate":
                    checks.append(self._rate_check(plan, station, rule, ring, ets, shown, pos, ratio, viol, idx))
            if plan.window_ns:
                ring.trim_before(int(ets[-1]) - plan.window_ns)
        return checks

    def _limit_check(
        self,
        plan: Plan,
        station: str,
        st: SeriesState | None,
        ts: np.ndarray,
        shown: np.ndarray,
        ratio: np.ndarray,
        viol: np.ndarray,
        calm: np.ndarray,
        idx: np.ndarray,
        below: np.ndarray,
    ) -> SeriesCheck:
        """Instantaneous: each reading against its limit. Memory O(1) per series, time O(readings).

        Persistence (when a rule says so): the alert only once the limit is exceeded for `readings` readings
        in a row and/or for `duration`; a compliant reading ends the run, screened readings neither end nor
        extend it. Memory O(1) per series: the run's start and length.
        """
        rule = plan.limit_rule
        spec = plan.spec
        assert spec is not None
        condition = viol
        detail: Callable[[int], str] | None = None
        if below.any():
            unit = unit_suffix(plan.parameter)

            def detail(i: int) -> str:
                return f"below the detection limit {number(float(shown[i]))}{unit}" if below[i] else ""

        if rule is not None and rule.kind == "persistence":
            assert st is not None  # a persistence plan is stateful
            persist = st.persist if st.persist is not None else {}
            carry = persist.get(rule.name)
            starts = run_starts(viol, ts, carry[0] if carry else None)
            length = run_lengths(viol, carry[1] if carry else 0)
            condition = viol.copy()
            if rule.readings:
                condition &= length >= rule.readings
            if rule.duration_ns:
                condition &= ts - starts >= rule.duration_ns
            if viol[-1]:
                persist[rule.name] = (int(starts[-1]), int(length[-1]))
                st.persist = persist
            else:
                persist.pop(rule.name, None)

            def detail(i: int) -> str:
                return (
                    f"above the limit for {int(length[i])} readings over {format_duration(int(ts[i] - starts[i]))}"
                    if viol[i]
                    else ""
                )

        return SeriesCheck(
            station,
            plan.parameter,
            spec.limits[int(idx[-1])],
            ts,
            shown,
            ratio,
            condition,
            rule=rule.kind if rule is not None else "instantaneous",
            key="",
            calm=calm,
            severity=rule.severity if rule is not None else "",
            clear_hold_ns=clear_hold(plan, rule),
            limits=spec.limits,
            limit_index=idx,
            detail=detail,
        )

    def _mean_check(
        self, plan: Plan, station: str, rule: RuleSpec, ring: Ring, ts: np.ndarray, pos: np.ndarray
    ) -> SeriesCheck:
        """Rolling mean over (t − window, t] against the standard's mean limit (AA-EQS), else its limit.
        No alert before the window has filled (data since at least t − window); the reason is kept in
        `pending` and logged once.
        Memory: the readings of one window per series (shared ring); time O(1) per reading."""
        spec = plan.spec
        assert spec is not None
        mspec = spec.mean if spec.mean is not None else spec  # a mean is held to the standard's mean limit
        window = rule.window_ns
        left = window_bounds(ring.ts, ts, window)
        n, total = ring.window_sums(left, pos + 1)[:2]
        mean = total / n
        since = ring.since if ring.since is not None else int(ts[0])
        filled = ts - window >= since
        enough = filled & (n >= max(rule.min_readings, 1))
        midx = mspec.index(ts, self.deps.as_of(station, mspec, ts))
        ratio, viol = verdict(mspec.kind, mspec.lows[midx], mspec.highs[midx], mean)
        viol &= enough
        calm = enough & ~viol & (ratio <= clear_ratio(plan, rule))
        self._pending(plan, station, rule, ts, filled, since, window)

        def detail(i: int) -> str:
            return (
                f"rolling {format_duration(window)} mean {number(float(mean[i]))}{unit_suffix(plan.parameter)} over "
                f"{int(n[i])} readings"
            )

        return SeriesCheck(
            station,
            plan.parameter,
            mspec.limits[int(midx[-1])],
            ts,
            mean,
            ratio,
            viol,
            rule="mean",
            key=rule.name,
            calm=calm,
            severity=rule.severity,
            clear_hold_ns=clear_hold(plan, rule),
            limits=mspec.limits,
            limit_index=midx,
            detail=detail,
        )

    def _pending(
        self, plan: Plan, station: str, rule: RuleSpec, ts: np.ndarray, filled: np.ndarray, since: int, window: int
    ) -> None:
        key = (station, plan.parameter, rule.name)
        if not filled[-1]:
            have = format_duration(int(ts[-1]) - since)
            reason = (
                f"rolling {format_duration(window)} mean: no alert until the window has filled "
                f"({have} of {format_duration(window)} of data so far)"
            )
            if key not in self.pending:
                log.info("%s/%s: %s", station, plan.parameter, reason)
            self.pending[key] = reason
        elif self.pending.pop(key, None) is not None:
            log.info(
                "%s/%s: rolling %s mean window filled; it is evaluated from now on",
                station,
                plan.parameter,
                format_duration(window),
            )

    def _rate_check(
        self,
        plan: Plan,
        station: str,
        rule: RuleSpec,
        ring: Ring,
        ts: np.ndarray,
        shown: np.ndarray,
        pos: np.ndarray,
        ratio: np.ndarray | None,
        viol: np.ndarray | None,
        idx: np.ndarray | None,
    ) -> SeriesCheck:
        """Rate of change, an early warning before the limit: fires when the least-squares slope over
        (t − window, t] is at least rise_per_hour while the reading is between `above` × the limit and the
        limit. It stays open through an exceedance (the limit alert speaks then) and clears only once the
        series has enough readings to show it is no longer rising (slope ≤ 0) and is back under the warning
        level (`above` × limit, or limit × clear_ratio without `above`), held for one window unless the rule
        sets clear_hold: noise on a plateau or a gap in the data does not make it flap. Without a limit it
        works on the slope alone. Memory: the readings of one window per series (shared ring, with prefix sums
        of t, t², t·v); time O(1) per reading."""
        left = window_bounds(ring.ts, ts, rule.window_ns)
        n, sv, st_, stt, stv = ring.window_sums(left, pos + 1)
        denom = n * stt - st_ * st_
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(denom > 0, (n * stv - st_ * sv) / denom, np.nan)
        rise = plan.rates[rule.name]
        ok = (n >= rule.min_readings) & (denom > 0)
        rising = ok & (slope >= rise)
        settled = ok & (slope <= 0)
        spec = plan.spec
        if spec is not None and ratio is not None and viol is not None and idx is not None:
            condition = rising & ~viol & (ratio >= rule.above)
            level = ratio < rule.above if rule.above else ratio <= clear_ratio(plan, rule)
            calm = settled & ~viol & level
            limits, limit_index, shown_ratio = spec.limits, idx, ratio
            limit = spec.limits[int(idx[-1])]
        else:
            condition, calm = rising, settled
            unit = unit_suffix(plan.parameter).strip()
            limit = Limit(
                plan.parameter,
                "rate",
                rise,
                None,
                f"{unit}/h" if unit else "/h",
                "rate rule",
                "",
                rule.origin,
                origin=rule.origin,
                text=f"a rise of {number(rise)} {unit} per hour over {format_duration(rule.window_ns)}",
            )
            limits, limit_index = (limit,), np.zeros(len(ts), dtype=np.int64)
            with np.errstate(invalid="ignore"):
                shown_ratio = np.where(ok, slope / rise, 0.0)

        def detail(i: int) -> str:
            label = format_duration(rule.window_ns)
            if not ok[i]:
                return f"too few readings in the last {label} for a trend"
            verb = "rising" if slope[i] > 0 else "falling" if slope[i] < 0 else "flat,"
            return f"{verb} {number(abs(float(slope[i])))}{unit_suffix(plan.parameter)} per hour over the last {label}"

        hold = rule.clear_hold_ns if rule.clear_hold_ns is not None else rule.window_ns
        return SeriesCheck(
            station,
            plan.parameter,
            limit,
            ts,
            shown,
            shown_ratio,
            condition,
            rule="rate",
            key=rule.name,
            calm=calm,
            severity=rule.severity or plan.lowest,
            clear_hold_ns=hold,
            limits=limits,
            limit_index=limit_index,
            detail=detail,
        )
