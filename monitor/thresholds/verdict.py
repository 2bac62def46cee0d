"""A value against a limit, vectorised: the one definition the rules engine and the simulators' ground truth share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from monitor.thresholds.model import Limit


def verdict(
    kind: str, low: np.ndarray | float, high: np.ndarray | float, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ratio, violated) of values against per-reading bounds; same numbers as `Limit.ratio`.

    max: (-inf, limit]; min: [limit, inf); range: [low, high]. Ratio is >= 1 where violated (C/S for a maximum,
    S/C for a minimum). O(n) time, no memory kept.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "max":
            ratio = np.where(high > 0, values / high, np.where(values > high, np.inf, 0.0))
        elif kind == "min":
            ratio = np.where(values > 0, low / values, np.inf)
        else:
            ratio = np.maximum(values / high, np.where(values > 0, low / values, np.inf))
    violated = (values > high) | (values < low)
    return np.asarray(ratio, dtype=np.float64), np.asarray(violated)


def limit_verdict(limit: Limit, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ratio, violated) of values against one limit: its bounds put into `verdict`."""
    low = (
        limit.low
        if limit.kind == "range" and limit.low is not None
        else (limit.value if limit.kind == "min" else -np.inf)
    )
    high = np.inf if limit.kind == "min" else limit.value
    return verdict(limit.kind, low, high, values)
