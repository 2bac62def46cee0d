"""Runs of consecutive violations or equal values, carried across batches: persistence and flatline count them."""

from __future__ import annotations

import numpy as np


def run_lengths(flags: np.ndarray, carry: int) -> np.ndarray:
    """For each position, how many consecutive True end there (0 where False), continuing a run of `carry`."""
    n = len(flags)
    idx = np.arange(n)
    breaks = np.maximum.accumulate(np.where(~flags, idx, -1))
    return np.where(flags, np.where(breaks >= 0, idx - breaks, carry + idx + 1), 0)


def run_starts(flags: np.ndarray, ts: np.ndarray, carry_ts: int | None) -> np.ndarray:
    """For each True position, the time its run of consecutive Trues began (a run may continue `carry_ts`)."""
    n = len(flags)
    idx = np.arange(n)
    prev = np.concatenate(([carry_ts is not None], flags[:-1]))
    first = np.maximum.accumulate(np.where(flags & ~prev, idx, -1))
    carried = np.int64(carry_ts if carry_ts is not None else 0)
    return np.where(first >= 0, ts[np.maximum(first, 0)], carried)
