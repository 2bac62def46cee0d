"""The registry of scenarios by name: `SCENARIOS[name](seed=..., start=...)` gives a Scenario."""

from __future__ import annotations

from collections.abc import Callable

from simulators.baseline import baseline
from simulators.beijiang import beijiang_2005
from simulators.longjiang import longjiang_2012
from simulators.scenario import Scenario

SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "longjiang-2012": longjiang_2012,
    "beijiang-2005": beijiang_2005,
    "baseline": baseline,
}
