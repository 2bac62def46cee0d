"""Sensor-fault screening: which readings are measurements of the river, before any rule judges them.

Instrument flags (maintenance and calibration are ignored; suspect, fault and invalid are suspect), outside
the instrument's range, flatline, spike against a rolling median/MAD, and unflagged check standards (the
configured standard value, at the configured check times). Below the detection limit ("0.00005L") is a valid
reading whose true value lies in [0, DL): it can prove compliance with a maximum but never a violation of a
maximum or a minimum. Screened readings neither raise nor clear an alert.

Confirmation: a spike, or a jump to the check standard's value outside the check times, is held back until the
next reading; if that one agrees (a spike in the same direction, a value that stays up), the held reading is
released and judged at its own time, else it is set aside with its reason. "Next" is the next judged reading:
a below-DL one counts too (as going down), so the outcome never depends on where the batches are cut. A plume
front is never screened away: at worst its first reading is judged one reading later.

Memory per series: O(1) (flatline run, the held reading, the last accepted value) plus the last spike_window
values when the spike screen is on. Time O(n) per batch, O(n · spike_window) for the spike medians.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from monitor.rules.learnt import at_run_start, counts_before, prior_rate, rate
from monitor.rules.plan import Plan, SeriesState
from monitor.rules.ring import Ring
from monitor.rules.runs import run_lengths
from monitor.rules.timeofday import minutes_of_day
from monitor.thresholds import DEFAULT_IGNORE_FLAGS, DEFAULT_SUSPECT_FLAGS, Screening

# Instrument flags that mean "this value is not a measurement of the river" by default: never alarm on them,
# and never let them resolve an alert either. [screen] in a threshold file can change the sets.
NOT_EVALUATED_FLAGS = DEFAULT_IGNORE_FLAGS | DEFAULT_SUSPECT_FLAGS

# Reading quality after screening.
OK, BELOW_DL, IGNORED, SUSPECT, RANGE, FLATLINE, SPIKE, CHECK, HELD, DRIFT = range(10)
QUALITY = (
    "ok",
    "below detection limit",
    "ignored (flag)",
    "suspect (flag)",
    "outside the instrument range",
    "flatline",
    "spike",
    "check standard (unflagged)",
    "held for confirmation",
    "drift",  # set by monitor.rules.drift, after the screens here
)
MIN_STUCK_RUN = 3  # equal values in a row that may be a stuck analyser, however unlikely the series repeats one
SPIKE_WARMUP = 6  # readings a series needs before its spikes are judged (against all it has, until spike_window)
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ts, values, quality, detection limits) per reading: quality is OK, BELOW_DL, IGNORED, SUSPECT, RANGE,
    FLATLINE, SPIKE, CHECK or HELD; a reading held back by the last batch and confirmed now comes first. What
    screening set aside goes to `suspects` and is counted by reason in `screened`."""
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
    released: tuple[int, float] | None = None
    if st is not None and (seq.size or st.held is not None):
        if seq.size and flat_n:
            q[seq[stuck_run(cfg, st, values[seq])]] = FLATLINE
            seq = np.flatnonzero(q == OK)
        released = _confirm(plan, st, ts, values, q, seq, spike_w, suspects, screened, station)
    bad = (q == SUSPECT) | ((q >= RANGE) & (q != HELD))
    if bad.any():
        for i in np.flatnonzero(bad):
            reason = QUALITY[q[i]]
            suspects.append((station, plan.parameter, int(ts[i]), float(values[i]), reason))
            screened[reason] += 1
    if released is not None:
        ts = np.concatenate(([released[0]], ts))
        values = np.concatenate(([released[1]], values))
        q = np.concatenate(([OK], q)).astype(np.int8)
        dl = np.concatenate(([np.nan], dl))
    return ts, values, q, dl


def stuck_run(cfg: Screening, st: SeriesState, sv: np.ndarray) -> np.ndarray:
    """Which of a series' accepted values `sv` are stuck: the `flatline`th equal value in a row, or earlier,
    once a run of equal values is less probable than `run_probability` at the rate of equal successive values
    learnt from this series (at least 3 equal values). The rate a run is judged by is the one learnt before it
    began; runs of `flatline` or more teach nothing (a stuck analyser must not teach that stuck is normal)."""
    flat_n = cfg.flatline
    same = np.empty(len(sv), dtype=bool)
    same[0] = sv[0] == st.flat_value
    same[1:] = sv[1:] == sv[:-1]
    run = run_lengths(same, max(st.flat_run - 1, 0)) + 1
    stuck = run >= flat_n
    alpha = cfg.run_probability
    if alpha > 0:
        paired = np.ones(len(sv), dtype=bool)
        paired[0] = st.flat_value == st.flat_value  # NaN: the series' first value pairs with nothing
        learn = paired & ~stuck
        eq, pairs, st.eq_hits, st.eq_pairs = counts_before(same, learn, st.eq_hits, st.eq_pairs)
        p = rate(eq, pairs, prior_rate(flat_n, alpha))
        at_start = at_run_start(p, same & (run == 2), same, st.stuck_rate)
        with np.errstate(divide="ignore", invalid="ignore"):
            improbable = (run - 1) * np.log(at_start) < math.log(alpha)
        stuck |= same & (run >= MIN_STUCK_RUN) & improbable
        st.stuck_rate = float(at_start[-1]) if same[-1] else math.nan
    st.flat_value, st.flat_run = float(sv[-1]), int(run[-1])
    return stuck


def _confirm(
    plan: Plan,
    st: SeriesState,
    ts: np.ndarray,
    values: np.ndarray,
    q: np.ndarray,
    seq: np.ndarray,
    spike_w: int,
    suspects: list[Suspect],
    screened: Counter[str],
    station: str,
) -> tuple[int, float] | None:
    """Spikes and check standards among the accepted readings `seq`: marked CHECK or SPIKE, or held (HELD, kept
    in `st.held`) until the next accepted reading says; a reading held by the last batch that this batch
    confirms is returned (ts, value) to be judged first."""
    sv = values[seq]
    m = len(seq)
    raw = spikes(plan, st, sv, spike_w) if spike_w and m else np.zeros(m, dtype=np.int8)
    first_spike = (raw != 0) & (np.concatenate(([st.spike_dir_before], raw[:-1])) != raw) if m else raw.astype(bool)
    if m:
        st.spike_dir_before = int(raw[-1])
    chk = plan.screen.check
    cand = np.zeros(m, dtype=np.int8)  # 0: none, SPIKE or CHECK (held), or CHECK at a check time (set at once)
    # The reading before each, skipping a possible spike: a check standard read right after a spike must stand
    # out from the river's level, not from the spike (else spike and check confirm each other as a plume).
    spiky = first_spike & (q[seq] == OK)
    last = np.maximum.accumulate(np.where(~spiky, np.arange(m), -1)) if m else np.zeros(0, dtype=np.int64)
    before_last = np.concatenate(([-1], last[:-1])) if m else last
    prev_ok = np.where(before_last >= 0, sv[np.maximum(before_last, 0)], st.last_ok) if m else sv
    if chk is not None and m:
        cv, tol = chk.value, chk.tolerance
        near = np.abs(sv - cv) <= tol * abs(cv) if cv else sv == 0.0
        if near.any():
            if chk.at:
                mins = minutes_of_day(ts[seq], plan.screen.timezone)
                win = chk.window_ns // 60_000_000_000
                dist = np.min(np.abs(((mins[:, None] - np.array(chk.at)[None, :]) + 720) % 1440 - 720), axis=1)
                timed = near & (dist <= win)
                q[seq[timed]] = CHECK
                near &= ~timed
            jump = np.abs(sv - prev_ok) > 2 * tol * abs(cv) if cv else sv != prev_ok
            cand[near & jump] = CHECK
    cand[(cand == 0) & first_spike & (q[seq] == OK)] = SPIKE
    released: tuple[int, float] | None = None
    held = st.held
    out: list[tuple[int, int]] = []  # (index into seq of a held reading resolved in this batch, verdict)
    pending: int | None = None  # index into seq
    # The next judged reading decides a held one: an accepted reading, or a below-DL one (low: direction -1),
    # which is judged too and must not be judged before the held reading is (else the outcome would depend on
    # where the batches are cut).
    at_seq = np.full(len(ts), -1, dtype=np.int64)
    at_seq[seq] = np.arange(m)
    for i in np.flatnonzero((q == OK) | (q == BELOW_DL)).tolist():
        k = int(at_seq[i])
        if k < 0:  # below the detection limit
            if held is None and pending is None:
                continue
            nxt, nxt_dir = float(values[i]), -1
        else:
            nxt, nxt_dir = float(sv[k]), int(raw[k])
        if held is not None or pending is not None:
            if held is not None:
                h_ts, h_v, h_kind, h_prev = held
            else:
                assert pending is not None
                h_ts, h_v, h_kind, h_prev = (
                    int(ts[seq[pending]]),
                    float(sv[pending]),
                    int(cand[pending]),
                    float(prev_ok[pending]),
                )
            back = _back(plan, h_kind, h_v, h_prev, nxt, nxt_dir, st.held_dir if held else 0, raw, pending)
            if held is not None:
                if back:
                    reason = QUALITY[h_kind]
                    suspects.append((station, plan.parameter, h_ts, h_v, reason))
                    screened[reason] += 1
                else:
                    released = (h_ts, h_v)
                held = None
            else:
                assert pending is not None
                out.append((pending, h_kind if back else OK))
                pending = None
        if k >= 0 and cand[k]:
            pending = k
    for k, verdict in out:
        q[seq[k]] = verdict
    if held is not None:
        st.held = held  # still waiting (no accepted reading in this batch)
    elif pending is not None:
        q[seq[pending]] = HELD
        st.held = (int(ts[seq[pending]]), float(sv[pending]), int(cand[pending]), float(prev_ok[pending]))
        st.held_dir = int(raw[pending])
    else:
        st.held = None
    ok_now = np.flatnonzero((q[seq] == OK) & (cand == 0))
    if ok_now.size:
        st.last_ok = float(sv[ok_now[-1]])
    return released


def _back(
    plan: Plan,
    kind: int,
    value: float,
    before: float,
    nxt: float,
    nxt_dir: int,
    held_dir: int,
    raw: np.ndarray,
    pending: int | None,
) -> bool:
    """Whether the reading after a held one goes back (the held one was not the river) or agrees."""
    chk = plan.screen.check
    near = chk is not None and (abs(nxt - chk.value) <= chk.tolerance * abs(chk.value) if chk.value else nxt == 0.0)
    if kind == SPIKE:
        if near:  # a check standard after a spike shows no level shift: the spike goes, the check is held in turn
            return True
        direction = held_dir if pending is None else int(raw[pending])
        return nxt_dir != direction
    assert chk is not None
    if near:
        return False
    if before != before:  # NaN: nothing before to go back to
        return False
    return abs(nxt - before) <= abs(nxt - value)


def spikes(plan: Plan, st: SeriesState, sv: np.ndarray, window: int) -> np.ndarray:
    """Per value, +1 / -1 where it is further than spike_mads × max(1.4826·MAD, spike_floor) above / below the
    median of the previous `window` screened values, else 0. The caller holds a first one back; a second one in
    the same direction confirms it (a level shift, and real: a pollution front must not be screened away)."""
    if st.screen is None:
        st.screen = Ring(2 * window + 16, sums=False)
    hist = st.screen.values
    allv = np.concatenate((hist, sv))
    h, m = len(hist), len(sv)
    raw = np.zeros(m, dtype=np.int8)
    mads = plan.screen.spike_mads
    floor = plan.screen.spike_floor
    js = np.arange(m)[h + np.arange(m) >= window]
    if js.size:
        rows = sliding_window_view(allv[:-1], window)[h + js - window]
        med = np.median(rows, axis=1)
        mad = np.median(np.abs(rows - med[:, None]), axis=1)
        thr = mads * np.maximum(MAD_TO_SIGMA * mad, floor)
        dev = sv[js] - med
        raw[js] = np.where(dev > thr, 1, np.where(-dev > thr, -1, 0))
    # A young series (a new station, a first start) is judged against the readings it has, once it has
    # SPIKE_WARMUP: at most window - SPIKE_WARMUP readings per series ever take this loop.
    for j in range(max(0, SPIKE_WARMUP - h), min(m, window - h)):
        past = allv[: h + j]
        med_j = float(np.median(past))
        thr_j = mads * max(MAD_TO_SIGMA * float(np.median(np.abs(past - med_j))), floor)
        dev_j = float(sv[j]) - med_j
        if thr_j > 0:  # a few readings with no spread yet (repeats, or two levels) say nothing about spikes
            raw[j] = 1 if dev_j > thr_j else -1 if -dev_j > thr_j else 0
    st.screen.extend(np.zeros(m, dtype=np.int64), sv)
    st.screen.keep_last(window)
    return raw
