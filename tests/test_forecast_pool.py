"""A plume in a slow, dispersive dam pool (Péclet number of a few, like the Longjiang's cascade): the station
below is told when its limit will be crossed, not days early, and a station the plume stays under is not told."""

from __future__ import annotations

import math

import numpy as np

from monitor.alerts.forecast import NS_PER_HOUR, Forecaster, StationForecast, Target
from monitor.alerts.forecast_notice import ForecastSettings, decide
from monitor.thresholds.rivers import Reach, RiverDescription, Tributary

V, D = 2.5, 16.0  # km/day, km2/day: a deep pool
MASS = 1.5  # mg/L·km: the release's excess integrated along the river
T0 = 1_700_000_000 * 10**9
BACKGROUND = 0.0005
LIMIT = 0.005
HOURS = np.arange(-48, 24 * 80)  # the stations' readings from two days before the release (their background)


def pool() -> RiverDescription:
    return RiverDescription(
        "Pool", 10.0, (Reach(0.0, 200.0, V, "pool", D),), tributaries=(Tributary(60.0, "Side", 40.0),)
    )


def truth(km: float, hours: np.ndarray) -> np.ndarray:
    """An instantaneous release at km 0, hour 0, in a uniform pool: advection and dispersion exactly; diluted
    five times below the tributary at km 60."""
    t = np.maximum(hours / 24.0, 1e-6)
    c = MASS / np.sqrt(4 * math.pi * D * t) * np.exp(-((km - V * t) ** 2) / (4 * D * t))
    return BACKGROUND + c / (5.0 if km > 60.0 else 1.0)


def first_over(km: float) -> int:
    return int(HOURS[np.argmax(truth(km, HOURS) > LIMIT)])


def forecast(now_h: int) -> dict[str, StationForecast]:
    f = Forecaster(
        pool(),
        "cd",
        [
            Target("a", 5.0, LIMIT, False),
            Target("b", 20.0, LIMIT, False),
            Target("c", 45.0, LIMIT, True),
            Target("far", 120.0, LIMIT, True),
        ],
    )
    for station, km in (("a", 5.0), ("b", 20.0)):
        hours = HOURS[: int(np.searchsorted(HOURS, now_h, side="right"))]
        f.observe(station, km, T0 + hours * NS_PER_HOUR, truth(km, hours))
        if first_over(km) <= now_h:
            f.hit(station, km, T0 + first_over(km) * NS_PER_HOUR)
    return {x.station: x for x in f.issue(T0 + now_h * NS_PER_HOUR)}


def test_the_crossing_below_a_pool_is_forecast_within_a_fifth_of_the_travel_time() -> None:
    now_h = first_over(20.0) + 12  # b has just crossed; neither a nor b has seen its peak
    c = forecast(now_h)["c"]
    true_cross = first_over(45.0)
    assert true_cross - now_h > 24  # told more than a day ahead
    assert c.exceeds and c.exceed_from_ns is not None
    error_h = (c.exceed_from_ns - T0) / NS_PER_HOUR - true_cross
    travel_h = true_cross - first_over(5.0)
    assert abs(error_h) < 0.2 * travel_h, (error_h, travel_h)
    assert c.peak_low < c.peak_value < c.peak_high


def test_a_station_the_plume_stays_under_gets_no_notice() -> None:
    assert 0.6 * LIMIT < truth(120.0, HOURS).max() < LIMIT  # the truth: diluted and dispersed just under it
    now_h = 24 * 30  # both upstream peaks have passed
    forecasts = forecast(now_h)
    assert not forecasts["far"].exceeds
    notes = decide({}, list(forecasts.values()), T0 + now_h * NS_PER_HOUR, ForecastSettings(), set())
    assert "far" not in {station for station, _ in notes}
