"""The Longjiang River cadmium spill of January 2012 as a deterministic scenario.

A first, calibrated model rather than a physical one: each station sees a smooth, skewed pulse whose peak time
follows the river's travel time and whose height is tuned to the reported record. That is enough to drive
the service end to end (threshold crossings, escalation, resolution, the arrival order down the river) and to
keep the demo reproducible; a transport model with dilution and dosing chemistry can replace `_cadmium` later
without changing the Scenario interface.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import groupby

import numpy as np

from monitor.params import PARAMETERS
from monitor.reading import Reading

CST = timezone(timedelta(hours=8))  # China Standard Time: the record and the bureaus use +08:00
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S


@dataclass(frozen=True)
class SimStation:
    """A monitoring station on the simulated river; river_km is the distance downstream of Lalang."""

    id: str
    name: str
    river_km: float


@dataclass(frozen=True)
class Scenario:
    """A named, reproducible set of readings; `source` makes them, so a Scenario stays cheap to build and pass."""

    name: str
    stations: tuple[SimStation, ...]
    start_ns: int
    end_ns: int
    source: Callable[[], Iterable[Reading]] = field(repr=False, compare=False)

    def readings(self) -> list[Reading]:
        """All readings, sorted by ts_ns, station, parameter: the order publishers and CSV writers expect."""
        return sorted(self.source(), key=lambda r: (r.ts_ns, r.station, r.parameter))


STATIONS: tuple[SimStation, ...] = (
    SimStation("lalang", "Lalang (拉浪)", 0.0),
    SimStation("yemao", "Yemao hydropower station", 25.0),
    SimStation("luodong", "Luodong (洛东)", 57.0),
    SimStation("sancha", "Sancha (三岔)", 80.0),
    SimStation("nuomitan", "Nuomitan (糯米滩)", 100.0),
    SimStation("liuzhou-hexi", "Liuzhou Hexi water intake (柳州河西水厂)", 160.0),
)

START_NS = int(datetime(2012, 1, 13, tzinfo=CST).timestamp()) * _NS_PER_S

# Plume calibration (days since START; concentrations in mg/L above background). Peaks travel ~12 km/day in
# the free-flowing reaches; the Luodong-Sancha-Nuomitan reservoirs slow them to ~4.6 km/day, which is what
# puts the Nuomitan peak near 29 Jan. Peak heights follow the reported record, not a mass balance.
_LALANG_PEAK_DAY = 2.0  # 15 Jan 00:00, ~0.41 mg/L (80.5 times over the 0.005 limit)
_REACHES: tuple[tuple[float, float, float], ...] = ((0.0, 57.0, 12.0), (57.0, 100.0, 4.65), (100.0, 1e9, 12.0))
# station: (undosed peak height, rise sigma days, fall sigma days)
_PULSE: dict[str, tuple[float, float, float]] = {
    "lalang": (0.41, 0.8, 4.5),
    "yemao": (0.10, 1.0, 4.5),
    "luodong": (0.026, 1.5, 4.5),
    "sancha": (0.08, 2.5, 4.0),
    "nuomitan": (0.082, 3.0, 3.5),
    "liuzhou-hexi": (0.003, 3.0, 3.5),
}
# Flocculant dosing below Luodong from 22 Jan removes ~45 % of the cadmium passing downstream stations.
_DOSING_KM = 57.0
_DOSING_START_DAY = 9.0  # 22 Jan 00:00
_DOSING_RAMP_DAYS = 2.0
_DOSING_REMOVAL = 0.45


def _travel_days(km: float) -> float:
    """Days for the peak to travel from Lalang to `km`, reach by reach."""
    days = 0.0
    for lo, hi, velocity in _REACHES:
        if km > lo:
            days += (min(km, hi) - lo) / velocity
    return days


def _cadmium(station: SimStation, t_days: np.ndarray) -> np.ndarray:
    """Plume concentration above background: a skewed Gaussian, reduced by dosing below Luodong."""
    height, rise, fall = _PULSE[station.id]
    peak = _LALANG_PEAK_DAY + _travel_days(station.river_km)
    dt = t_days - peak
    sigma = np.where(dt < 0.0, rise, fall)
    pulse = height * np.exp(-0.5 * (dt / sigma) ** 2)
    if station.river_km > _DOSING_KM:
        ramp = np.clip((t_days - _DOSING_START_DAY) / _DOSING_RAMP_DAYS, 0.0, 1.0)
        pulse = pulse * (1.0 - _DOSING_REMOVAL * ramp)
    return pulse


def _generate(seed: int, start_ns: int, end_ns: int, interval_ns: int) -> list[Reading]:
    """Every reading of the scenario; all randomness comes from one default_rng(seed) in a fixed draw order."""
    rng = np.random.default_rng(seed)
    ts = np.arange(start_ns, end_ns, interval_ns, dtype=np.int64)
    t_days = (ts - start_ns) / _NS_PER_DAY
    local_hour = ((ts // _NS_PER_S + 8 * 3600) % 86_400) / 3600.0
    diurnal = np.cos(2.0 * np.pi * (local_hour - 15.0) / 24.0)  # +1 at 15:00 local, -1 at 03:00
    n = len(ts)
    columns: dict[tuple[str, str], list[float]] = {}
    for station in STATIONS:
        background = rng.uniform(0.0005, 0.001)
        ph_base = rng.uniform(7.45, 7.65)
        do_base = rng.uniform(7.8, 8.3)
        temp_base = 13.2 + 0.004 * station.river_km + rng.uniform(-0.2, 0.2)
        bg_noise, plume_noise, ph_noise, do_noise, temp_noise = rng.standard_normal((5, n))
        cd = background + 0.00005 * bg_noise + _cadmium(station, t_days) * np.exp(0.03 * plume_noise)
        cd = np.maximum(cd, 0.0001)
        ph = np.clip(ph_base + 0.08 * diurnal + 0.03 * ph_noise, 7.2, 7.9)
        do = np.clip(do_base + 0.3 * diurnal + 0.08 * do_noise, 7.0, 9.0)
        temp = np.clip(temp_base + 0.6 * diurnal + 0.1 * temp_noise, 12.0, 15.0)
        columns[(station.id, "cd")] = np.round(cd, 5).tolist()
        columns[(station.id, "do")] = np.round(do, 2).tolist()
        columns[(station.id, "ph")] = np.round(ph, 2).tolist()
        columns[(station.id, "temp")] = np.round(temp, 2).tolist()
    stamps = ts.tolist()
    keys = sorted(columns)
    return [Reading(station, parameter, stamp, columns[(station, parameter)][i])
            for i, stamp in enumerate(stamps) for station, parameter in keys]


def longjiang_2012(seed: int = 2012, days: float = 26.0, metal_interval_h: float = 2.0) -> Scenario:
    """The Longjiang cadmium scenario from 13 Jan 2012 00:00 +08:00; same seed, bit-identical readings."""
    if days <= 0 or metal_interval_h <= 0:
        raise ValueError("days and metal_interval_h must be positive")
    end_ns = START_NS + round(days * _NS_PER_DAY)
    interval_ns = round(metal_interval_h * 3600 * _NS_PER_S)
    return Scenario("longjiang-2012", STATIONS, START_NS, end_ns,
                    lambda: _generate(seed, START_NS, end_ns, interval_ns))


SCENARIOS: dict[str, Callable[..., Scenario]] = {"longjiang-2012": longjiang_2012}


def rfc3339(ts_ns: int, tz: timezone = CST) -> str:
    """RFC 3339 with an explicit offset (microseconds at most): what the MQTT and CSV interfaces accept."""
    dt = (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(tz)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def _unit(parameter: str) -> str:
    """The catalogue unit of a reading's parameter; a Reading must carry a catalogue id."""
    p = PARAMETERS.get(parameter)
    if p is None:
        raise ValueError(f"unknown parameter id {parameter!r}")
    return p.unit


def single_payload(ts_ns: int, value: float, unit: str | None, flag: str | None = None) -> bytes:
    """A one-reading message body; the unit is omitted when empty (pH), which the service reads as standard."""
    body: dict[str, object] = {"ts": rfc3339(ts_ns), "value": value}
    if unit:
        body["unit"] = unit
    if flag:
        body["flag"] = flag
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def senml_packs(readings: Iterable[Reading], root: str = "river") -> Iterator[tuple[int, str, bytes]]:
    """One SenML pack per (station, ts) on `<root>/<station>`: a quarter of the messages of single readings.

    bt is on the first record only (RFC 8428 base time); each record carries its unit, except pH (unitless).
    A reading's flag, where set, travels as a "flag" extension field on its record.
    """
    ordered = sorted(readings, key=lambda r: (r.ts_ns, r.station, r.parameter))
    for (ts_ns, station), group in groupby(ordered, key=lambda r: (r.ts_ns, r.station)):
        bt: int | float = ts_ns // _NS_PER_S if ts_ns % _NS_PER_S == 0 else ts_ns / _NS_PER_S
        pack: list[dict[str, object]] = []
        for r in group:
            record: dict[str, object] = {"bn": "", "bt": bt} if not pack else {}
            record["n"] = r.parameter
            unit = _unit(r.parameter)
            if unit:
                record["u"] = unit
            record["v"] = r.value
            if r.flag:
                record["flag"] = r.flag
            pack.append(record)
        yield ts_ns, f"{root}/{station}", json.dumps(pack, ensure_ascii=False, separators=(",", ":")).encode()


def single_messages(readings: Iterable[Reading], root: str = "river") -> Iterator[tuple[int, str, bytes]]:
    """One message per reading on `<root>/<station>/<parameter>`, in the input's order."""
    for r in readings:
        yield r.ts_ns, f"{root}/{r.station}/{r.parameter}", single_payload(r.ts_ns, r.value, _unit(r.parameter),
                                                                            r.flag)
