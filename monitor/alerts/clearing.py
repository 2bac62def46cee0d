"""Clearing that holds: which readings of a batch may resolve a confirmed alert.

A confirmed alert resolves only after `clear_readings` calm readings in a row that have also lasted the
hold (one analyser cycle by default), so one compliant reading inside a plume does not resolve it. A reading
inside the series' clear band (within its own noise of the limit, see monitor.alerts.trend) is not calm: a
plume's tail that hovers at the limit keeps its alert. Pure numpy over the batch; the run of calm readings
carries over from the last batch (`since`, `length`), so the result does not depend on batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Clearing:
    """Where each reading from `base` on stands towards clearing the alert open at `base`."""

    base: int
    clearable: np.ndarray
    since: np.ndarray  # start time of each calm reading's calm run
    length: np.ndarray  # calm readings in that run so far
    calm: np.ndarray


def clearing(
    ts: np.ndarray,
    calm: np.ndarray,
    base: int,
    carry_since: int | None,
    carry_n: int,
    hold: np.ndarray | np.int64,
    need: int,
) -> Clearing:
    """`ts`, `calm` from `base` on; `hold` per reading (or one); `need` calm readings in a row."""
    since = run_start(calm, ts, carry_since)
    idx = np.arange(len(calm))
    breaks = np.maximum.accumulate(np.where(~calm, idx, -1))
    length = np.where(calm, np.where(breaks >= 0, idx - breaks, carry_n + idx + 1), 0)
    clearable = calm & (length >= need) & (ts - since >= hold)
    return Clearing(base, clearable, since, length, calm)


def run_start(calm: np.ndarray, ts: np.ndarray, carry: int | None) -> np.ndarray:
    """The time each calm reading's run of calm readings began (a run may continue from the last batch)."""
    idx = np.arange(len(calm))
    prev = np.concatenate(([carry is not None], calm[:-1]))
    first = np.maximum.accumulate(np.where(calm & ~prev, idx, -1))
    return np.where(first >= 0, ts[np.maximum(first, 0)], np.int64(carry if carry is not None else 0))
