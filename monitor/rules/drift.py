"""Drift against a neighbour or a co-located parameter: a sensor that creeps away from the river it measures.

A drifting sensor (a fouled oxygen membrane, an ageing reagent) reads a few per cent further off every day,
until a clean river crosses a limit on paper. Alone, a series cannot tell that from the river changing; next
to a reference it can: the same parameter at a neighbour station (the river carries its level along), or a
co-located parameter that moves with it (oxygen follows its saturation at the measured water temperature).

Per reading, against each reference: the median of the series' own accepted readings over `window`, divided
by the median of the reference over the same window, is compared with the ratio learnt over `learn` (an
exponential mean, frozen while the two disagree by more than half the tolerance). The series drifts when the
ratio has moved beyond `tolerance` against every reference with data, in the same direction.

What is never taken for drift, so a pollution front is not screened away:
- a step: a reading that leaves its own window median by more than twice the tolerance, or a reference that
  does, and diverges from the references as far; two in a row in one direction mark the series "stepped" (a
  front), and no drift is judged until it agrees with its references again (the front reached the neighbour,
  or passed);
- a change the references share (a plume that moves co-located parameters together, rain, the season).
A reading further than twice the tolerance from its own window median is judged as water even inside a drift
(a spike screen or the confirmation step handles a lone one). A smaller step than twice the tolerance that the
references never share is judged as water for the first half window, which confirms its alert; after that its
readings are set aside as drift, which neither raises nor clears a water alert.

Memory O(window) per series with drift (its accepted readings over the window, a few scalars per
reference) and per reference series (its unflagged readings over the longest window). Time per batch
O(readings × window) numpy medians, only for the series with drift.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.plan import DriftState, Plan, SeriesState
from monitor.rules.ring import Ring
from monitor.rules.screen import DRIFT, OK, QUALITY, Suspect
from monitor.rules.sensors import _BIT, _MEANS, parameter_name, sensor_check, sensor_key
from monitor.rules.timeofday import local_time
from monitor.thresholds import ThresholdSet
from monitor.thresholds.model import DriftSpec

MIN_READINGS = 3  # readings of a window (own and reference) before it is compared
# A step is a reading this many tolerances away from its window's median: a drift never moves that fast (it
# lags its median by half a window of creep, plus the daily cycle), a front that matters does.
STEP_TOLERANCES = 2.0


def oxygen_saturation(temp_c: float) -> float:
    """Dissolved oxygen at saturation in fresh water at sea level, mg/L (APHA / Benson-Krause)."""
    t = temp_c
    return 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3


# Co-located references with a known relation: the reference's value is turned into what the series
# should follow. Any other pair is compared as it is (a ratio that stays put, e.g. conductivity and TDS).
RELATIONS: dict[tuple[str, str], Callable[[float], float]] = {("do", "temp"): oxygen_saturation}


def resolve(thresholds: ThresholdSet, station: str, parameter: str, ref: str) -> tuple[str, str]:
    """The series a reference name stands for: a station id is the same parameter there, else a parameter
    at the same station (the threshold checks make sure it is one of the two)."""
    return (ref, parameter) if ref in thresholds.stations else (station, ref)


class DriftRefs:
    """The unflagged readings of every series some drift screen compares with, over the longest window:
    recorded from each batch before any series is judged, so a reference's readings of the same batch count."""

    __slots__ = ("_want", "colocated", "explicit", "keep_ns", "rings", "thresholds")

    def __init__(self, thresholds: ThresholdSet) -> None:
        self.rings: dict[tuple[str, str], Ring] = {}
        self.reload(thresholds)

    def reload(self, thresholds: ThresholdSet) -> None:
        self.thresholds = thresholds
        self.explicit: set[tuple[str, str]] = set()
        self.colocated: set[str] = set()
        keep = 0
        for sid, st in thresholds.stations.items():
            for pid, inst in st.instruments.items():
                if inst.drift is not None:
                    keep = max(keep, inst.drift.window_ns)
                    self.explicit |= {resolve(thresholds, sid, pid, r) for r in inst.drift.against}
        tops = [thresholds.instruments]
        if thresholds.screen.instrument_defaults:
            tops.append(thresholds.shipped_instruments)
        for table in tops:
            for inst in table.values():
                if inst.drift is not None:
                    keep = max(keep, inst.drift.window_ns)
                    self.colocated |= set(inst.drift.against)
        self.keep_ns = keep
        self._want: dict[tuple[str, str], bool] = {}
        self.rings = {k: v for k, v in self.rings.items() if self.wants(*k)}

    @property
    def active(self) -> bool:
        return bool(self.explicit or self.colocated)

    def wants(self, station: str, parameter: str) -> bool:
        return (station, parameter) in self.explicit or parameter in self.colocated

    def record(self, readings: Sequence[Reading]) -> None:
        """Keep the batch's unflagged readings of reference series. O(batch) dictionary look-ups."""
        want = self._want
        rows: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for r in readings:
            key = (r.station, r.parameter)
            w = want.get(key)
            if w is None:
                w = want[key] = self.wants(*key)
            if w and r.flag is None and math.isfinite(r.value):
                rows.setdefault(key, []).append((r.ts_ns, r.value))
        for key, got in rows.items():
            got.sort()
            ring = self.rings.get(key)
            if ring is None:
                ring = self.rings[key] = Ring(sums=False)
            ts = np.fromiter((t for t, _ in got), dtype=np.int64, count=len(got))
            vs = np.fromiter((v for _, v in got), dtype=np.float64, count=len(got))
            last = int(ring.ts[-1]) if len(ring) else None
            keep = np.ones(len(ts), dtype=bool)
            keep[1:] = ts[1:] != ts[:-1]
            if last is not None:
                keep &= ts > last
            ring.extend(ts[keep], vs[keep])
            # what the batch's first readings still compare with stays (the whole batch, until the next one)
            ring.trim_before(int(ts[0]) - self.keep_ns - 3600 * 1_000_000_000)


class DriftScreen:
    """Marks drifting readings DRIFT and raises the sensor alert "drift" naming what the series drifted
    against; `names` gives a station's human name."""

    __slots__ = ("names", "refs")

    def __init__(self, refs: DriftRefs, names: Callable[[str], str]) -> None:
        self.refs = refs
        self.names = names

    def _describe(self, station: str, parameter: str, ref: tuple[str, str]) -> str:
        if ref[0] != station:
            return self.names(ref[0])
        if (parameter, ref[1]) in RELATIONS:
            return f"its saturation at the measured {parameter_name(ref[1])}"
        return f"{parameter_name(ref[1])} at the same station"

    def screen(
        self,
        plan: Plan,
        station: str,
        st: SeriesState,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray,
        suspects: list[Suspect],
        screened: Counter[str],
        severity: str,
        opened: Collection[AlertKey],
    ) -> SeriesCheck | None:
        """Screen one series' batch in place (quality OK -> DRIFT) and return its drift sensor check, if any."""
        spec = plan.screen.drift
        assert spec is not None
        p = plan.parameter
        ok = np.flatnonzero(quality == OK)
        refs = [resolve(self.refs.thresholds, station, p, r) for r in spec.against]
        ds = st.drift
        if ds is None or len(ds.base) != len(refs):
            ds = st.drift = DriftState(Ring(sums=False), [math.nan] * len(refs), [0] * len(refs))
        if not ok.size:
            return None
        own = ds.own
        last = int(own.ts[-1]) if len(own) else None
        add = ok if last is None else ok[ts[ok] > last]
        own.extend(ts[add], values[add])
        cond, shown = self._verdicts(spec, ds, refs, p, ts[ok], values[ok])
        own.trim_before(int(ts[ok[-1]]) - spec.window_ns)
        screened_now = cond & ~shown[2]
        for k in ok[screened_now]:
            quality[k] = DRIFT
            suspects.append((station, p, int(ts[k]), float(values[k]), QUALITY[DRIFT]))
            screened[QUALITY[DRIFT]] += 1
        was = bool(st.sensor_active & _BIT["drift"]) or (station, p, sensor_key("drift")) in opened
        if not (cond.any() or was):
            return None
        st.sensor_active = (st.sensor_active | _BIT["drift"]) if cond[-1] else (st.sensor_active & ~_BIT["drift"])
        since = shown[1]
        dev, who = shown[0], shown[3]
        tz = plan.screen.timezone
        tol = spec.tolerance
        v = values[ok]
        unit_name = parameter_name(p)
        against = " and ".join(self._describe(station, p, r) for r in refs)

        def detail(i: int) -> str:
            if not cond[i]:
                return f"agrees with {against} again"
            way = "above" if dev[i] > 0 else "below"
            names = " and ".join(self._describe(station, p, refs[j]) for j in who[i])
            return (
                f"{unit_name} at {self.names(station)} reads {abs(dev[i]) * 100:.0f} % {way} {names} "
                f"(from the ratio learnt before; tolerance {tol * 100:.0f} %) since "
                f"{local_time(int(since[i]), tz)}: {_MEANS['drift']}"
            )

        return sensor_check(
            station,
            p,
            "drift",
            ts[ok],
            v,
            cond,
            severity,
            f"within {tol * 100:.0f} % of {against}",
            detail,
        )

    def _verdicts(
        self, spec: DriftSpec, ds: DriftState, refs: list[tuple[str, str]], p: str, ts: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]]:
        """Per accepted reading: drifting (the alert's condition), and (deviation shown, run start, fast,
        the references it drifted against)."""
        m = len(ts)
        w, tol = spec.window_ns, spec.tolerance
        own = ds.own
        ots, ov = own.ts, own.values
        oa = np.searchsorted(ots, ts - w, side="right")
        ob = np.searchsorted(ots, ts, side="right")
        cond = np.zeros(m, dtype=bool)
        fast = np.zeros(m, dtype=bool)
        dev_shown = np.zeros(m)
        since = np.zeros(m, dtype=np.int64)
        who: list[list[int]] = [[] for _ in range(m)]
        rings = [self.refs.rings.get(r) for r in refs]
        relations = [RELATIONS.get((p, r[1])) if r[1] != p else None for r in refs]
        bounds: list[tuple[np.ndarray, np.ndarray] | None] = []
        for ring in rings:
            if ring is None or not len(ring):
                bounds.append(None)
            else:
                rts = ring.ts
                bounds.append((np.searchsorted(rts, ts - w, side="right"), np.searchsorted(rts, ts, side="right")))
        since_ns = own.since
        for i in range(m):
            t = int(ts[i])
            n_own = int(ob[i] - oa[i])
            if n_own < MIN_READINGS or since_ns is None or t - since_ns < w // 2:
                continue
            own_med = float(np.median(ov[oa[i] : ob[i]]))
            x = float(values[i])
            big = fast[i] = own_med > 0 and abs(x / own_med - 1.0) > STEP_TOLERANCES * tol
            devs: list[tuple[int, float, float, bool]] = []  # (ref, window deviation, reading deviation, ref step)
            for j, ring in enumerate(rings):
                b = bounds[j]
                if ring is None or b is None:
                    continue
                ra, rb = int(b[0][i]), int(b[1][i])
                if rb - ra < MIN_READINGS or int(ring.ts[rb - 1]) < t - w // 4:
                    continue
                window = ring.values[ra:rb]
                ref_raw = float(np.median(window))
                ref_last = float(window[-1])
                rel = relations[j]
                ref_med = rel(ref_raw) if rel is not None else ref_raw
                ref_now = rel(ref_last) if rel is not None else ref_last
                if own_med <= 0 or ref_med <= 0 or ref_now <= 0:
                    continue
                level = math.log(own_med / ref_med)
                if ds.base[j] != ds.base[j]:
                    ds.base[j], ds.learnt_at[j] = level, t
                dev = math.exp(level - ds.base[j]) - 1.0
                if abs(dev) <= tol / 2:
                    alpha = 1.0 - math.exp(-max(t - ds.learnt_at[j], 0) / spec.learn_ns)
                    ds.base[j] += alpha * (level - ds.base[j])
                ds.learnt_at[j] = t
                expected = math.exp(ds.base[j]) * ref_med
                reading_dev = x / expected - 1.0 if expected > 0 else 0.0
                ref_step = abs(ref_now / ref_med - 1.0) > STEP_TOLERANCES * tol
                devs.append((j, dev, reading_dev, ref_step))
            if not devs:
                ds.step_dir = 0
                continue
            signs = {1 if d > 0 else -1 for _, d, _, _ in devs}
            beyond = all(abs(d) > tol for _, d, _, _ in devs) and len(signs) == 1
            if all(abs(d) <= tol / 2 for _, d, _, _ in devs):
                ds.stepped = False
            step = [r for _, _, r, s in devs if (big or s) and abs(r) > STEP_TOLERANCES * tol]
            step_dir = (1 if step[0] > 0 else -1) if step and len(step) == len(devs) else 0
            if step_dir and step_dir == ds.step_dir:
                ds.stepped = True
            ds.step_dir = step_dir
            cond[i] = beyond and not ds.stepped
            if cond[i]:
                if ds.since is None:
                    ds.since = t
                dev_shown[i] = min((d for _, d, _, _ in devs), key=abs)
                who[i] = [j for j, _, _, _ in devs]
            else:
                ds.since = None
            since[i] = ds.since if ds.since is not None else t
        return cond, (dev_shown, since, fast, who)
