"""Sensor-fault screening: which readings are measurements of the river, before any rule judges them.

Instrument flags (maintenance and calibration are ignored; suspect, fault and invalid are suspect), outside
the instrument's range, flatline, spike against a rolling median/MAD. Below the detection limit ("0.00005L")
is a valid reading whose true value lies in [0, DL): it can prove compliance with a maximum but never a
violation of one. Screened readings neither raise nor clear an alert.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from monitor.rules.plan import Plan, SeriesState
from monitor.rules.ring import Ring
from monitor.rules.runs import run_lengths
from monitor.thresholds import DEFAULT_IGNORE_FLAGS, DEFAULT_SUSPECT_FLAGS

# Instrument flags that mean "this value is not a measurement of the river" by default: never alarm on them,
# and never let them resolve an alert either. [screen] in a threshold file can change the sets.
NOT_EVALUATED_FLAGS = DEFAULT_IGNORE_FLAGS | DEFAULT_SUSPECT_FLAGS

# Reading quality after screening.
OK, BELOW_DL, IGNORED, SUSPECT, RANGE, FLATLINE, SPIKE = range(7)
QUALITY = (
    "ok",
    "below detection limit",
    "ignored (flag)",
    "suspect (flag)",
    "outside the instrument range",
    "flatline",
    "spike",
)
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation

Suspect = tuple[str, str, int, float, str]  # (station, parameter, ts_ns, value, reason)


def screen(
    plan: Plan,
    station: str,
    st: SeriesState | None,
    ts: np.ndarray,
    values: np.ndarray,
    flags: list[str | None] | None,
    suspects: list[Suspect],
    screened: Counter[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Quality per reading (OK, BELOW_DL, IGNORED, SUSPECT, RANGE, FLATLINE, SPIKE) and detection limits;
    what screening set aside goes to `suspects` and is counted by reason in `screened`.

    Flatline: O(1) memory (last value, run length). Spike: the last spike_window screened values.
    Range and detection limit: O(1). Time O(n) per batch, O(n · spike_window) for the spike medians.
    """
    n = len(ts)
    q = np.zeros(n, dtype=np.int8)
    dl = np.full(n, np.nan)
    cfg = plan.screen
    config_dl = cfg.detection_limit
    if flags is not None:
        low = [f.lower() if f else "" for f in flags]
        q[np.fromiter((f in plan.ignore for f in low), dtype=bool, count=n)] = IGNORED
        sus = np.fromiter((f in plan.suspect for f in low), dtype=bool, count=n)
        q[sus & (q == OK)] = SUSPECT
        below = np.fromiter((f in plan.dl_flags for f in low), dtype=bool, count=n) & (q == OK)
        q[below] = BELOW_DL
        fallback = config_dl if config_dl is not None else 0.0
        dl[below] = np.where(values[below] > 0, values[below], fallback)
    rng = cfg.range
    if rng is not None:
        q[(q == OK) & ((values < rng[0]) | (values > rng[1]))] = RANGE
    if config_dl is not None:
        below = (q == OK) & (values < config_dl)
        q[below] = BELOW_DL
        dl[below] = config_dl
    flat_n = cfg.flatline
    spike_w = cfg.spike_window
    seq = np.flatnonzero(q == OK)
    if seq.size and (flat_n or spike_w):
        assert st is not None  # a plan that screens this way is stateful
        sv = values[seq]
        if flat_n:
            same = np.empty(len(sv), dtype=bool)
            same[0] = sv[0] == st.flat_value
            same[1:] = sv[1:] == sv[:-1]
            run = run_lengths(same, max(st.flat_run - 1, 0)) + 1
            st.flat_value, st.flat_run = float(sv[-1]), int(run[-1])
            q[seq[run >= flat_n]] = FLATLINE
        if spike_w:
            found = spikes(plan, st, sv, spike_w)
            q[seq[found & (q[seq] == OK)]] = SPIKE
    bad = (q == SUSPECT) | (q >= RANGE)
    if bad.any():
        for i in np.flatnonzero(bad):
            reason = QUALITY[q[i]]
            suspects.append((station, plan.parameter, int(ts[i]), float(values[i]), reason))
            screened[reason] += 1
    return q, dl


def spikes(plan: Plan, st: SeriesState, sv: np.ndarray, window: int) -> np.ndarray:
    """A value further than spike_mads × max(1.4826·MAD, spike_floor) from the median of the previous
    `window` screened values is a spike, unless the previous value was a spike in the same direction
    (then it is a level shift, and real: a pollution front must not be screened away)."""
    if st.screen is None:
        st.screen = Ring(2 * window + 16, sums=False)
    hist = st.screen.values
    allv = np.concatenate((hist, sv))
    h, m = len(hist), len(sv)
    raw = np.zeros(m, dtype=np.int8)
    js = np.arange(m)[h + np.arange(m) >= window]
    if js.size:
        rows = sliding_window_view(allv[:-1], window)[h + js - window]
        med = np.median(rows, axis=1)
        mad = np.median(np.abs(rows - med[:, None]), axis=1)
        mads = plan.screen.spike_mads
        floor = plan.screen.spike_floor
        thr = mads * np.maximum(MAD_TO_SIGMA * mad, floor)
        dev = sv[js] - med
        raw[js] = np.where(dev > thr, 1, np.where(-dev > thr, -1, 0))
    prev = np.concatenate(([st.spike_dir], raw[:-1]))
    st.spike_dir = int(raw[-1])
    st.screen.extend(np.zeros(m, dtype=np.int64), sv)
    st.screen.keep_last(window)
    return (raw != 0) & (prev != raw)
