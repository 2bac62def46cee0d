"""The Longjiang River cadmium spill, Hechi and Yizhou, Guangxi, January 2012.

About 20 t of cadmium from a mining company's waste reached the Longjiang upstream of Lalang. Stations sit
at dam heads of the hydropower cascade; river_km is measured downstream from Lalang and is approximate
(thresholds/longjiang-stations.toml). The model is one release and one set of reach hydraulics, calibrated
to the record (tests/test_simulators.py checks each figure, README.md has the table):

- the plume is held in the deep Lalang, Yemao and Luodong pools (2.7 km/day), which is why Luodong had only
  0.0247 mg/L on 19 Jan while Lalang had 0.41 on 15 Jan; below Luodong the front runs at about 12 km/day;
- from 22 Jan coagulant (polyaluminium chloride, lime) was dosed below the five dams, and from 30 Jan at two
  more points (6 km below Luodong, near Sancha); each removes 40 % of the load that passes it;
- the Rongjiang joins above Liuzhou and dilutes the Longjiang water 11 times once fully mixed; from the
  confluence the water needs about 70 hours to Liuzhou's Hexi intake, which stayed within its Class II limit.
  The two rivers do not mix at the confluence: the record has 0.0107 mg/L 3 km below it on 26 Jan (the
  Longjiang bank, barely diluted) and 0.0041 16 km above Hexi on 29 Jan. A wide, slow dry-season river
  needs tens of km to mix a tributary across its channel (0.4 u W^2 / e_t: u 0.19 m/s, W about 300 m,
  e_t = 0.6 h u* about 0.05 m2/s gives about 130 km for a bank inflow), so the Rongjiang's water joins over
  a mixing zone of 65 km, in equal shares per km. Mixed at the confluence, the model ran 55-83 % low at
  both points; a zone of 65 km balances them against the Hexi figure of 6 Feb (a longer one holds km 144
  better and Hexi worse: README.md has the errors).
"""

from __future__ import annotations

from datetime import datetime

from simulators.faults import FaultRates
from simulators.messages import CST, rfc3339, senml_packs, single_messages, single_payload
from simulators.river import Dam, Dosing, Reach, Release, River, Tributary
from simulators.scenario import Scenario, Setting, SimStation, Spill, after, start_ns
from simulators.sensors import ANALYSERS

__all__ = [
    "CST",
    "DEFAULT_START_NS",
    "STATIONS",
    "Scenario",
    "SimStation",
    "longjiang_2012",
    "rfc3339",
    "senml_packs",
    "single_messages",
    "single_payload",
]

STATIONS: tuple[SimStation, ...] = (
    SimStation("lalang", "Lalang hydropower station", 0.0),
    SimStation("yemao", "Yemao hydropower station", 25.0),
    SimStation("luodong", "Luodong hydropower station", 57.0),
    SimStation("sancha", "Sancha", 80.0),
    SimStation("nuomitan", "Nuomitan hydropower station", 100.0),
    SimStation("liuzhou-hexi", "Liuzhou Hexi waterworks intake", 160.0),
)

DEFAULT_START_NS = int(datetime(2012, 1, 3, tzinfo=CST).timestamp()) * 1_000_000_000
DAYS = 36.0  # to 8 Feb: past the Hexi intake figure of 6 Feb
DEFAULT_SEED = 2012

RELEASED_KG = 20_000.0
FLOW_M3S = 42.0  # the Longjiang in a dry January
REMOVAL = 0.40  # per dosing point; the record says 40-60 %
RONGJIANG_DILUTION = 11.0
RONGJIANG_MIXING_KM = 65.0  # lateral mixing below the confluence (see the module docstring)


def river(start: int) -> River:
    """The Longjiang from Jinchengjiang to below Liuzhou; times are days after the scenario's start."""
    pools, free = (2.7, 16.0, 0.01), (12.0, 16.0, 0.01)  # velocity km/day, dispersion km2/day, loss 1/day
    reaches = (
        Reach("Jinchengjiang to Lalang", -25.5, 0.5, 20.0, 5.0, 0.01),
        Reach("Lalang pool to Yemao", 0.5, 25.5, *pools),
        Reach("Yemao pool to Luodong", 25.5, 57.5, *pools),
        Reach("Luodong to Sancha", 57.5, 80.5, *free),
        Reach("Sancha to Nuomitan", 80.5, 100.5, *free),
        Reach("Nuomitan to the Rongjiang", 100.5, 112.0, 15.0, 10.0, 0.01),
        Reach("Liujiang to Liuzhou", 112.0, 190.0, 16.0, 10.0, 0.01),
    )
    dams = tuple(
        Dam(name, km)
        for name, km in (
            ("Lalang dam", 0.5),
            ("Yemao dam", 25.5),
            ("Luodong dam", 57.5),
            ("Sancha dam", 80.5),
            ("Nuomitan dam", 100.5),
        )
    )
    first, second = after(start, 19.0), after(start, 27.0)  # 22 Jan, 30 Jan
    dosing = (
        Dosing("below Lalang dam", 1.0, REMOVAL, first),
        Dosing("below Yemao dam", 26.0, REMOVAL, first),
        Dosing("below Luodong dam", 58.0, REMOVAL, first),
        Dosing("below Sancha dam", 81.0, REMOVAL, first),
        Dosing("below Nuomitan dam", 101.0, REMOVAL, first),
        Dosing("6 km below Luodong", 63.0, REMOVAL, second),
        Dosing("above Sancha", 78.0, REMOVAL, second),
    )
    rongjiang = Tributary("Rongjiang", 112.0, RONGJIANG_DILUTION, RONGJIANG_MIXING_KM)
    return River("Longjiang", FLOW_M3S, reaches, (rongjiang,), dams, dosing)


def release(start: int) -> Release:
    """The cadmium reaching the river 20 km above Lalang: rising from 4 Jan, most on 13 Jan, over by 28 Jan."""
    return Release(-20.0, RELEASED_KG, after(start, 1.5), after(start, 10.5), after(start, 25.5))


def setting(start: int, days: float = DAYS) -> Setting:
    """Cadmium on a two-hour cycle and the sonde hourly at six stations; a few gaps and flagged checks."""
    if days <= 0:
        raise ValueError("days must be positive")
    analysers = (ANALYSERS["cd"], *(ANALYSERS[p].every(60) for p in ("cond", "do", "ph", "temp", "turb")))
    return Setting(
        name="longjiang-2012",
        stations=STATIONS,
        start_ns=start,
        end_ns=after(start, days),
        analysers=analysers,
        levels={
            "cd": (0.0004, 0.0008),
            "cond": (260.0, 320.0),
            "do": (0.90, 0.95),
            "ph": (7.5, 7.8),
            "temp": (-0.5, 0.5),
            "turb": (4.0, 10.0),
        },
        rain_per_week=0.3,  # a dry winter
        spill=Spill("cd", river(start), (release(start),)),
        faults=FaultRates({"gap": 0.5, "calibration": 2.0, "maintenance": 0.5}),
    )


def longjiang_2012(seed: int = DEFAULT_SEED, start: datetime | None = None, days: float = DAYS) -> Scenario:
    """The Longjiang cadmium scenario from 3 Jan 2012 00:00 +08:00 (or `start`, the whole incident shifted),
    for `days` days (36: to 8 Feb); same seed, same readings."""
    return Scenario.of(setting(start_ns(start, DEFAULT_START_NS), days), seed)
