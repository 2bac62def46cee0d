"""The Beijiang cadmium spill from the Shaoguan smelter, Guangdong, December 2005.

Cadmium-bearing waste water ran into the Beijiang from 15 Dec until the drain was shut on the 18th. The slick
crept down a river of navigation and hydropower pools at about 4.5 km/day; the Gaoqiao section had about ten
times the limit on 20 Dec; coagulant dosed at the Baishiyao dam from 22 Dec protected Yingde, where the
water peaked at 0.012 mg/L; the whole river was back within the standard of the day (0.01 mg/L, then the
drinking-water limit) by 10 Jan 2006. river_km is downstream of the outfall and approximate; the released
mass (2.8 t) is what the record's concentrations need at a dry-season flow of 150 m3/s, not a reported figure.
"""

from __future__ import annotations

from datetime import datetime

from simulators.faults import FaultRates
from simulators.messages import CST
from simulators.river import Dam, Dosing, Reach, Release, River
from simulators.scenario import Scenario, Setting, SimStation, Spill, after, start_ns
from simulators.sensors import ANALYSERS

STATIONS: tuple[SimStation, ...] = (
    SimStation("gaoqiao", "Gaoqiao section, Shaoguan", 20.0),
    SimStation("wushi", "Wushi", 45.0),
    SimStation("baishiyao", "Baishiyao hydropower station", 68.0),
    SimStation("yingde", "Yingde waterworks intake", 90.0),
)

DEFAULT_START_NS = int(datetime(2005, 12, 13, tzinfo=CST).timestamp()) * 1_000_000_000
DAYS = 32.0  # to 14 Jan 2006
DEFAULT_SEED = 2005

RELEASED_KG = 2_800.0
FLOW_M3S = 150.0


def river(start: int) -> River:
    """The Beijiang from Shaoguan to the Feilaixia pool; times are days after the scenario's start."""
    reaches = (
        Reach("Shaoguan", -0.5, 5.5, 10.0, 5.0, 0.02),
        Reach("Mengzhouba to Baishiyao", 5.5, 70.5, 4.2, 3.5, 0.02),
        Reach("Baishiyao to Yingde", 70.5, 95.0, 5.4, 3.5, 0.02),
        Reach("Yingde to Feilaixia", 95.0, 150.0, 5.4, 3.5, 0.02),
    )
    dams = (Dam("Mengzhouba dam", 5.5), Dam("Baishiyao dam", 70.5))
    dosing = (Dosing("Baishiyao", 71.0, 0.50, after(start, 9.0)),)  # 22 Dec
    return River("Beijiang", FLOW_M3S, reaches, (), dams, dosing)


def release(start: int) -> Release:
    """The smelter's discharge: from 15 Dec, most on the 16th, stopped on the 18th."""
    return Release(0.0, RELEASED_KG, after(start, 2.0), after(start, 3.1), after(start, 5.8))


def setting(start: int, days: float = DAYS) -> Setting:
    """Cadmium every two hours, the sonde every 30 minutes, ammonia hourly; a few gaps and flagged checks."""
    if days <= 0:
        raise ValueError("days must be positive")
    analysers = (
        ANALYSERS["cd"],
        ANALYSERS["nh3n"],
        *(ANALYSERS[p].every(30) for p in ("cond", "do", "ph", "temp", "turb")),
    )
    return Setting(
        name="beijiang-2005",
        stations=STATIONS,
        start_ns=start,
        end_ns=after(start, days),
        analysers=analysers,
        levels={
            "cd": (0.0003, 0.0006),
            "nh3n": (0.10, 0.25),
            "cond": (180.0, 240.0),
            "do": (0.88, 0.94),
            "ph": (7.3, 7.7),
            "temp": (0.5, 1.5),
            "turb": (5.0, 15.0),
        },
        rain_per_week=0.3,
        spill=Spill("cd", river(start), (release(start),)),
        faults=FaultRates({"gap": 0.5, "calibration": 2.0, "maintenance": 0.5}),
    )


def beijiang_2005(seed: int = DEFAULT_SEED, start: datetime | None = None, days: float = DAYS) -> Scenario:
    """The Beijiang cadmium scenario from 13 Dec 2005 00:00 +08:00 (or `start`), for `days` days (32: to
    14 Jan 2006); same seed, same readings."""
    return Scenario.of(setting(start_ns(start, DEFAULT_START_NS), days), seed)
