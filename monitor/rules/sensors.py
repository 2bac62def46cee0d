"""Sensor health: a station that cannot see says so, as its own alert category ("sensor"), never as pollution.

Per series, from the screened readings of a batch: stuck (a flatline run), out of the instrument's range, a
below-detection-limit run the series does not make (after a long run above the DL, or improbable at its learnt
rate: a blank), maintenance longer than planned, and silence beyond the interval learnt from the series' own
cadence (when no station file or rule sets one). Each alert names the station, the parameter, since when and
what it means, and clears at the first reading that shows the instrument sees again.

Memory O(1) per series (a few scalars in its SeriesState: each run's start and length, the learnt interval);
time O(readings) numpy per batch, plus one SeriesCheck per kind only when the kind is, or was, active.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import numpy as np

from monitor.domain.params import PARAMETERS
from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.learnt import at_run_start, counts_before, rate
from monitor.rules.plan import Plan, SeriesState
from monitor.rules.runs import run_lengths, run_starts
from monitor.rules.screen import BELOW_DL, FLATLINE, IGNORED, OK, RANGE, SUSPECT
from monitor.rules.timeofday import local_time
from monitor.rules.wording import number, unit_suffix
from monitor.thresholds import Limit, format_duration

ABOVE_BEFORE = 12  # readings above the DL in a row before a below-DL run that make "normally reads above"
DL_PRIOR = 0.5  # the rate a below-DL reading follows another before the series has taught any (worth 4 events)
KINDS = ("range", "stuck", "below_dl", "maintenance", "gap", "clock", "drift")
_BIT = {k: 1 << i for i, k in enumerate(KINDS)}
_MEANS = {
    "range": "a sensor fault, or a level beyond what the instrument can measure",
    "stuck": "a plume would not be seen",
    "below_dl": "a blank (reagent out, sample line blocked) reads the same whatever the river",
    "maintenance": "a plume would not be seen",
    "gap": "a plume would not be seen",
    "clock": "readings dated in the future are refused",
    "drift": "a drifting sensor (fouled electrode, ageing reagent); its readings are set aside until it agrees again",
}


def sensor_key(kind: str) -> str:
    """The alert key of a sensor alert within its series (alert ids use it)."""
    return f"sensor.{kind}"


def parameter_name(pid: str) -> str:
    p = PARAMETERS.get(pid)
    return p.name if p is not None else pid


def sensor_limit(parameter: str, kind: str, text: str, origin: str = "") -> Limit:
    return Limit(parameter, kind, 1.0, None, "", "sensor health", "", origin, origin=origin, text=text)


def sensor_check(
    station: str,
    parameter: str,
    kind: str,
    ts: np.ndarray,
    values: np.ndarray,
    violated: np.ndarray,
    severity: str,
    text: str,
    detail: Callable[[int], str],
) -> SeriesCheck:
    """A sensor-category check: fixed severity, clears at the first reading without the fault, no confirmation
    step (the fault was already judged over a run)."""
    return SeriesCheck(
        station,
        parameter,
        sensor_limit(parameter, kind, text),
        ts,
        values,
        violated.astype(np.float64),
        violated,
        rule=kind,
        key=sensor_key(kind),
        calm=~violated,
        severity=severity,
        clear_hold_ns=0,
        detail=detail,
        category="sensor",
        confirm=1,
    )


class SensorHealth:
    """Turns one series' screened batch into its sensor checks; `names` gives a station's human name."""

    __slots__ = ("names", "open", "severity")

    def __init__(self, names: Callable[[str], str], severity: str) -> None:
        self.names = names
        self.severity = severity
        self.open: Collection[AlertKey] = ()  # the alerts open now (restored ones too), when the caller says

    def _says(self, station: str, parameter: str, what: str, since: int, tz: str, kind: str) -> str:
        return (
            f"{parameter_name(parameter)} at {self.names(station)} {what} since {local_time(since, tz)}: {_MEANS[kind]}"
        )

    def checks(
        self,
        plan: Plan,
        station: str,
        st: SeriesState,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray,
        dl: np.ndarray,
    ) -> list[SeriesCheck]:
        """The sensor checks of one series over a batch (ts in time order, quality from monitor.rules.screen)."""
        sc = plan.screen
        tz = sc.timezone
        p = plan.parameter
        unit = unit_suffix(p)
        out: list[SeriesCheck] = []
        opened = self.open
        seen = (quality != IGNORED) & (quality != SUSPECT)  # flagged readings neither raise nor clear these

        # Each block names its own arrays: the details are rendered later, after every block has run.
        def emit(kind: str, pts: np.ndarray, cond: np.ndarray, text: str, detail: Callable[[int], str]) -> None:
            was = bool(st.sensor_active & _BIT[kind]) or (station, p, sensor_key(kind)) in opened
            if not (cond.any() or was) or not pts.size:
                return
            st.sensor_active = (st.sensor_active | _BIT[kind]) if cond[-1] else (st.sensor_active & ~_BIT[kind])
            out.append(sensor_check(station, p, kind, ts[pts], values[pts], cond, self.severity, text, detail))

        pts = np.flatnonzero(seen)
        if sc.range is not None and pts.size:
            lo, hi = sc.range
            bad = quality[pts] == RANGE
            r_since = run_starts(bad, ts[pts], st.range_since)
            st.range_since = int(r_since[-1]) if bad[-1] else None
            r_v = values[pts]
            emit(
                "range",
                pts,
                bad,
                f"readings within the instrument range {number(lo)}–{number(hi)}{unit}",
                lambda i: (
                    self._says(
                        station,
                        p,
                        f"reads {number(float(r_v[i]))}{unit}, outside the instrument range "
                        f"{number(lo)}–{number(hi)}{unit},",
                        int(r_since[i]),
                        tz,
                        "range",
                    )
                    if bad[i]
                    else "the instrument reads within its range again"
                ),
            )
        if sc.flatline and pts.size:
            stuck = quality[pts] == FLATLINE
            s_since = run_starts(stuck, ts[pts], st.stuck_since)
            st.stuck_since = int(s_since[-1]) if stuck[-1] else None
            s_v = values[pts]
            emit(
                "stuck",
                pts,
                stuck,
                f"readings that change ({sc.flatline} equal in a row is a stuck analyser)",
                lambda i: (
                    self._says(station, p, f"stuck at {number(float(s_v[i]))}{unit}", int(s_since[i]), tz, "stuck")
                    if stuck[i]
                    else "the analyser's readings change again"
                ),
            )
        judged = np.flatnonzero((quality == OK) | (quality == BELOW_DL))
        if sc.below_dl_run and judged.size:
            out_dl = self._below_dl(plan, station, st, ts, values, quality, dl, judged, opened)
            if out_dl is not None:
                out.append(out_dl)
        if sc.maintenance_max_ns:
            every = np.arange(len(ts))
            inside = quality == IGNORED
            m_since = run_starts(inside, ts, st.maint_since)
            st.maint_since = int(m_since[-1]) if inside[-1] else None
            long = inside & (ts - m_since >= sc.maintenance_max_ns)
            emit(
                "maintenance",
                every,
                long,
                f"maintenance of at most {format_duration(sc.maintenance_max_ns)}",
                lambda i: (
                    self._says(
                        station,
                        p,
                        f"in maintenance, longer than the planned {format_duration(sc.maintenance_max_ns)},",
                        int(m_since[i]),
                        tz,
                        "maintenance",
                    )
                    if long[i]
                    else "readings again after maintenance"
                ),
            )
        return out

    def _below_dl(
        self,
        plan: Plan,
        station: str,
        st: SeriesState,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray,
        dl: np.ndarray,
        judged: np.ndarray,
        opened: Collection[AlertKey],
    ) -> SeriesCheck | None:
        """A run of below-DL readings that this series does not make: either the run of readings above the DL
        just before it was long (a series that normally reads above), or the run is improbable at the rate,
        learnt from this series, at which a below-DL reading follows another (a series near its DL that reads
        below it now and then). Either way the analyser reads a blank. The rate a run is judged by is the one
        learnt before it began, and only the start of a run teaches (up to `below_dl_run` readings: a blank
        must not teach that blanks are normal, and the next blank after one must still be seen)."""
        b = quality[judged] == BELOW_DL
        below_len = run_lengths(b, st.dl_run)
        above_len = run_lengths(~b, st.above_run)
        prev_below = np.concatenate(([st.dl_run], below_len[:-1]))
        prev_above = np.concatenate(([st.above_run], above_len[:-1]))
        starts = b & (prev_below == 0)
        armed_at = np.where(starts, prev_above >= ABOVE_BEFORE, False)
        # forward-fill "armed" within each below run (a run continuing from the last batch keeps its own)
        idx = np.where(starts, np.arange(len(b)), -1)
        last_start = np.maximum.accumulate(idx)
        armed = np.where(last_start >= 0, armed_at[np.maximum(last_start, 0)], st.dl_armed) & b
        since = run_starts(b, ts[judged], st.dl_since)
        alpha = plan.screen.run_probability
        if alpha > 0 and (st.dl_run > 0 or b.any()):  # else nothing to learn or judge: no below-DL reading near
            learn = (prev_below > 0) & (prev_below < max(2, plan.screen.below_dl_run))
            hits, pairs, st.dl_hits, st.dl_pairs = counts_before(b, learn, st.dl_hits, st.dl_pairs)
            q = at_run_start(rate(hits, pairs, DL_PRIOR), starts, b, st.dl_rate)
            with np.errstate(divide="ignore", invalid="ignore"):
                improbable = b & ((below_len - 1) * np.log(q) < math.log(alpha))
            st.dl_rate = float(q[-1]) if b[-1] else math.nan
            armed = armed | improbable
        cond = armed & (below_len >= plan.screen.below_dl_run)
        st.dl_run, st.above_run = int(below_len[-1]), int(above_len[-1])
        st.dl_armed = bool(armed[-1]) if b[-1] else False
        st.dl_since = int(since[-1]) if b[-1] else None
        was = bool(st.sensor_active & _BIT["below_dl"]) or (station, plan.parameter, sensor_key("below_dl")) in opened
        if not (cond.any() or was):
            return None
        tz = plan.screen.timezone
        st.sensor_active = (st.sensor_active | _BIT["below_dl"]) if cond[-1] else (st.sensor_active & ~_BIT["below_dl"])
        unit = unit_suffix(plan.parameter)
        shown = dl[judged]

        def detail(i: int) -> str:
            if not cond[i]:
                return "readings above the detection limit again" if not b[i] else ""
            what = f"reads below its detection limit {number(float(shown[i]))}{unit} where it normally reads above,"
            return self._says(station, plan.parameter, what, int(since[i]), tz, "below_dl")

        return sensor_check(
            station,
            plan.parameter,
            "below_dl",
            ts[judged],
            np.where(b, shown, values[judged]),
            cond,
            self.severity,
            "readings above the detection limit, where the series normally has them",
            detail,
        )


def learnt_gaps(
    plan: Plan,
    station: str,
    st: SeriesState,
    prev: int | None,
    ts: np.ndarray,
    values: np.ndarray,
    severity: str,
    names: Callable[[str], str],
    opened: Collection[AlertKey] = (),
) -> SeriesCheck | None:
    """Silence beyond gap_factor × the interval learnt from the series' cadence: an interval is learnt once two
    gaps in a row agree within 10 % (a regular analyser locks on after three readings; an outage, one long gap,
    never teaches a longer interval). Fires at the moment the series became overdue, clears with the reading
    that ends the gap. O(1) per series: the learnt interval and the last gap."""
    factor = plan.screen.gap_factor
    times = np.concatenate(([prev], ts)) if prev is not None else ts
    vals = np.concatenate(([np.nan], values)) if prev is not None else values
    if len(times) < 2:
        return None
    gaps = np.diff(times)
    before = np.concatenate(([st.last_gap], gaps[:-1]))
    agree = (before > 0) & (np.abs(gaps - before) <= gaps // 10)
    learnt = np.where(agree, gaps, 0)
    pos = np.maximum.accumulate(np.where(agree, np.arange(len(gaps)), -1))
    interval_after = np.where(pos >= 0, learnt[np.maximum(pos, 0)], st.interval)
    interval_before = np.concatenate(([st.interval], interval_after[:-1]))
    st.interval, st.last_gap = int(interval_after[-1]), int(gaps[-1])
    over = np.flatnonzero((interval_before > 0) & (gaps > factor * interval_before))
    if not over.size and (station, plan.parameter, sensor_key("gap")) not in opened:
        return None
    limit_ns = (factor * interval_before[over]).astype(np.int64)
    if not over.size:
        pts_ts, pts_v, viol = ts[:1], values[:1], np.zeros(1, dtype=bool)
        since_of: dict[int, int] = {}
    else:
        pts_ts = np.empty(2 * over.size, dtype=np.int64)
        pts_ts[0::2] = times[over] + limit_ns
        pts_ts[1::2] = times[over + 1]
        pts_v = np.empty(2 * over.size)
        pts_v[0::2] = np.nan  # no reading: the gap's alert carries no value, as when the clock finds it
        pts_v[1::2] = vals[over + 1]
        viol = np.zeros(2 * over.size, dtype=bool)
        viol[0::2] = True
        since_of = {2 * k: int(times[o]) for k, o in enumerate(over)}
    tz = plan.screen.timezone
    every = int(st.interval)
    p = plan.parameter

    def detail(i: int) -> str:
        if viol[i]:
            return (
                f"{parameter_name(p)} at {names(station)} unobserved since {local_time(since_of[i], tz)} "
                f"(a reading every {format_duration(every)} learnt from its cadence): {_MEANS['gap']}"
            )
        return "readings again"

    return sensor_check(
        station,
        p,
        "gap",
        pts_ts,
        pts_v,
        viol,
        severity,
        f"a reading every {format_duration(every)} (learnt), alarm after {format_duration(int(factor * every))}",
        detail,
    )
