"""What the rules hand to the alert lifecycle: one rule's verdicts for one series over one batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.thresholds import Limit

CATEGORIES = ("water", "sensor")
AlertKey = tuple[str, str, str]  # (station, parameter, rule key): the key of an alert in monitor.alerts.evaluator


@dataclass(slots=True)
class SeriesCheck:
    """One rule's verdicts for one series over one batch, in time order; what `AlertBook.update` consumes."""

    station: str
    parameter: str
    limit: Limit  # the limit of the last reading (the limit can change with a date step or a hardness band)
    ts_ns: np.ndarray  # int64
    values: np.ndarray  # float64: the reading, or the statistic compared (rolling mean)
    ratio: np.ndarray  # >= 1 where violated: C/S for a maximum, S/C for a minimum
    violated: np.ndarray  # bool: the rule's condition holds (the alert is, or becomes, active)
    rule: str = "instantaneous"
    key: str = ""  # the alert within the series: "" for the limit alert, else the rule's name
    calm: np.ndarray | None = None  # readings that count towards clearing; None: not violated and ratio <= 1
    severity: str = ""  # a fixed severity; "" = tiers by ratio
    clear_hold_ns: int | None = None  # None: the AlertBook's own
    limits: tuple[Limit, ...] = ()  # with limit_index: the limit per reading
    limit_index: np.ndarray | None = None
    detail: Callable[[int], str] | None = None  # the human reason at reading i ("rising 0.004 mg/L per hour")
    category: str = "water"  # "water": about the river; "sensor": about the instrument (stuck, gap, range, clock)
    confirm: int | None = None  # readings in a row that confirm an alert; None = [alerts].confirm; 1 = at once

    def limit_at(self, i: int) -> Limit:
        if self.limit_index is not None and self.limits:
            return self.limits[int(self.limit_index[i])]
        return self.limit

    def detail_at(self, i: int) -> str:
        return self.detail(i) if self.detail is not None else ""
