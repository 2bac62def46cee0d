"""The registry of scenarios by name: `SCENARIOS[name](seed=..., start=..., days=...)` gives a Scenario."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from simulators.baseline import baseline
from simulators.beijiang import beijiang_2005
from simulators.longjiang import longjiang_2012
from simulators.scenario import Scenario

SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "longjiang-2012": longjiang_2012,
    "beijiang-2005": beijiang_2005,
    "baseline": baseline,
}


def make_scenario(
    name: str, seed: int | None = None, start: datetime | None = None, days: float | None = None
) -> Scenario:
    """A scenario by name. `seed` and `days` None mean the scenario's own, so `simulate` and `backtest` give
    the same readings for the same arguments. ValueError with a one-line message for a bad one."""
    factory = SCENARIOS.get(name)
    if factory is None:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})")
    if seed is not None and seed < 0:
        raise ValueError(f"--seed must be >= 0, not {seed}")
    if days is not None and not (math.isfinite(days) and days > 0):
        raise ValueError(f"--days must be a number of days > 0, not {days!r}")
    kwargs: dict[str, object] = {}
    if seed is not None:
        kwargs["seed"] = seed
    if start is not None:
        kwargs["start"] = start
    if days is not None:
        kwargs["days"] = days
    return factory(**kwargs)
