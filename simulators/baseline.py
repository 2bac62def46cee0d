"""A clean river with every kind of instrument fault: the false-alarm baseline (30 days unless asked).

Nothing is spilled, and the clean levels stay inside every station's class (Liuzhou's intake is Class II)
in any season, so the ground truth has no episode at those classes: every alert raised on this scenario is a
false alarm, and the injected faults in the ground truth say which instrument caused it. A quarter of the
calibration checks go out unflagged, as from a misconfigured data logger.
"""

from __future__ import annotations

from datetime import datetime

from simulators.faults import FaultRates
from simulators.longjiang import STATIONS
from simulators.messages import CST
from simulators.scenario import Scenario, Setting, after, start_ns
from simulators.sensors import ANALYSERS

DEFAULT_START_NS = int(datetime(2024, 3, 1, tzinfo=CST).timestamp()) * 1_000_000_000
DEFAULT_DAYS = 30.0  # a month: a week holds too few faults of each kind to judge a false-alarm rate
DEFAULT_SEED = 1

# Events per analyser per 30 days; every kind strikes somewhere at least once (Setting.every_kind).
RATES = FaultRates(
    {
        "drift": 1.0,
        "stuck": 1.0,
        "gap": 2.0,
        "calibration": 4.0,
        "below_dl": 1.0,
        "maintenance": 1.0,
        "spike": 1.0,
        "out_of_range": 0.5,
    },
    unflagged_calibration=0.25,
)


def setting(start: int, n_days: float = DEFAULT_DAYS) -> Setting:
    """The Longjiang stations with a full station's instruments: metals every 2 and 4 hours, ammonia hourly,
    the sonde every 10 minutes."""
    if n_days <= 0:
        raise ValueError("days must be positive")
    analysers = tuple(ANALYSERS[p] for p in ("cd", "pb", "nh3n", "cond", "do", "ph", "temp", "turb"))
    return Setting(
        name="baseline",
        stations=STATIONS,
        start_ns=start,
        end_ns=after(start, n_days),
        analysers=analysers,
        levels={
            "cd": (0.0003, 0.0008),
            "pb": (0.001, 0.003),
            "nh3n": (0.08, 0.18),
            "cond": (250.0, 320.0),
            "do": (0.90, 0.95),
            "ph": (7.4, 7.7),
            "temp": (-0.5, 0.5),
            "turb": (4.0, 10.0),
        },
        rain_per_week=1.0,
        faults=RATES,
        every_kind=True,
    )


def baseline(seed: int = DEFAULT_SEED, start: datetime | None = None, days: float = DEFAULT_DAYS) -> Scenario:
    """A clean month from 1 Mar 2024 00:00 +08:00 (or `start`, for `days` days) with every fault kind."""
    return Scenario.of(setting(start_ns(start, DEFAULT_START_NS), days), seed)
