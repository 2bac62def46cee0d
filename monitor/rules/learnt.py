"""Rates learnt per series from its own readings: how often two readings in a row are equal (the analyser's
resolution against its noise), how often a reading is below the detection limit, and how often a below-DL
reading is followed by another. Sensor health asks these how improbable a run is for this series, so that a
noisy metals analyser is called stuck after three equal readings and a coarse sonde only after many more.

Why integer counts halved at a cap instead of an exponential average: the counts (and so every verdict) are
exactly the same whichever way the readings are cut into batches, and the memory is two integers per rate.
The cap keeps the last `LEARN_PAIRS` to 2 × `LEARN_PAIRS` events in the estimate, so a rate follows the season.
Time O(readings) numpy per batch (one segment per halving).
"""

from __future__ import annotations

import math

import numpy as np

LEARN_PAIRS = 500  # events the counts remember (halved when they reach twice this)
PRIOR_WEIGHT = 4.0  # a rate starts as its prior, worth this many events


def counts_before(
    hits: np.ndarray, events: np.ndarray, hit0: int, event0: int, cap: int = 2 * LEARN_PAIRS
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per position, the (hits, events) counted before it; then the counts after the last one. `events` says
    which positions count (0/1) and `hits` which of those are hits; both counts are halved (integer division)
    as soon as the events reach `cap`."""
    n = len(events)
    ev = events.astype(np.int64)
    hi = (hits & events).astype(np.int64)
    h_before = np.empty(n, dtype=np.int64)
    e_before = np.empty(n, dtype=np.int64)
    h, e = int(hit0), int(event0)
    i = 0
    while i < n:
        window = np.cumsum(ev[i : i + cap])
        k = int(np.searchsorted(window, cap - e))  # the first position at which the events reach the cap
        end = min(n, i + k + 1)
        seg_e = ev[i:end]
        seg_h = hi[i:end]
        ce, ch = np.cumsum(seg_e), np.cumsum(seg_h)
        e_before[i:end] = e + ce - seg_e
        h_before[i:end] = h + ch - seg_h
        e += int(ce[-1])
        h += int(ch[-1])
        if e >= cap:
            h, e = h // 2, e // 2
        i = end
    return h_before, e_before, h, e


def rate(hits: np.ndarray | int, events: np.ndarray | int, prior: float) -> np.ndarray:
    """The learnt rate: the counts shrunk towards `prior` by PRIOR_WEIGHT events."""
    return (np.asarray(hits, dtype=np.float64) + PRIOR_WEIGHT * prior) / (
        np.asarray(events, dtype=np.float64) + PRIOR_WEIGHT
    )


def prior_rate(run: int, probability: float) -> float:
    """The equal-readings rate under which a run of `run` equal readings has `probability`: the prior of a
    series whose instrument table sets `flatline = run` (what was configured, before anything is learnt)."""
    return probability ** (1.0 / max(run - 1, 1))


def at_run_start(values: np.ndarray, starts: np.ndarray, inside: np.ndarray, carried: float) -> np.ndarray:
    """`values` taken at the start of each run and held through it (runs are where `inside` is True, starting
    where `starts` is True); a run continuing from the last batch keeps `carried`. NaN outside runs."""
    n = len(values)
    idx = np.where(starts, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    held = np.where(last >= 0, values[np.maximum(last, 0)], carried)
    return np.where(inside, held, math.nan)
