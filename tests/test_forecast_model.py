"""The plume forecast against an analytic plume: advection-dispersion with a tributary that halves it."""

from __future__ import annotations

import math

import numpy as np

from monitor.alerts.forecast import NS_PER_HOUR, Forecaster, Target
from monitor.thresholds.rivers import Reach, RiverDescription, Tributary

V, D = 10.0, 4.0  # km/day, km2/day
T0 = 1_700_000_000 * 10**9
BACKGROUND = 0.0005
LIMIT = 0.005


def river() -> RiverDescription:
    return RiverDescription(
        "Test",
        50.0,
        (Reach(0.0, 100.0, V, "free", D),),
        (),
        (Tributary(45.0, "Side", 50.0),),
        name_zh="测试河",
    )


def truth(km: float, hours: np.ndarray) -> np.ndarray:
    """A unit release at km 0, hour 0; halved below the tributary at km 45."""
    t = np.maximum(hours / 24.0, 1e-6)
    c = 0.5 / np.sqrt(4 * math.pi * D * t) * np.exp(-((km - V * t) ** 2) / (4 * D * t))
    return BACKGROUND + c * (0.5 if km > 45.0 else 1.0)


def first_over(km: float, limit: float) -> int:
    hours = np.arange(0, 24 * 20)
    return int(hours[np.argmax(truth(km, hours) > limit)])


def fed(now_h: int) -> Forecaster:
    f = Forecaster(
        river(),
        "cd",
        [
            Target("a", 10.0, LIMIT, False),
            Target("b", 30.0, LIMIT, False),
            Target("c", 60.0, LIMIT, True),
            Target("d", 95.0, LIMIT, True),
        ],
    )
    for station, km in (("a", 10.0), ("b", 30.0)):
        hours = np.arange(0, now_h + 1, 2)
        f.observe(station, km, T0 + hours * NS_PER_HOUR, truth(km, hours))
        cross = first_over(km, LIMIT)
        if cross <= now_h:
            f.hit(station, km, T0 + cross * NS_PER_HOUR)
    return f


def test_the_station_ahead_is_forecast_in_time_with_its_peak_and_dilution() -> None:
    now_h = 24 * 5  # both upstream stations have seen the peak pass
    [c, d] = fed(now_h).issue(T0 + now_h * NS_PER_HOUR)
    assert (c.station, d.station) == ("c", "d")
    hours = np.arange(0, 24 * 20)
    true_c = truth(60.0, hours)
    peak_h = int(hours[np.argmax(true_c)])
    travel_h = peak_h - int(hours[np.argmax(truth(30.0, hours))])
    predicted_peak_h = (c.peak_ns - T0) / NS_PER_HOUR
    assert abs(predicted_peak_h - peak_h) < 0.2 * travel_h
    assert 1 / 1.5 < c.peak_value / true_c.max() < 1.5  # the tributary halves it: ignoring it would be 2x
    assert c.peak_low < c.peak_value < c.peak_high
    assert c.exceeds == bool(true_c.max() > LIMIT)
    if c.exceeds:
        assert c.exceed_from_ns is not None and c.exceed_until_ns is not None
        assert abs((c.exceed_from_ns - T0) / NS_PER_HOUR - first_over(60.0, LIMIT)) < 0.25 * travel_h


def test_a_station_that_stays_under_its_limit_is_not_warned() -> None:
    now_h = 24 * 5
    forecasts = {f.station: f for f in fed(now_h).issue(T0 + now_h * NS_PER_HOUR)}
    far = truth(95.0, np.arange(0, 24 * 30)).max()
    assert forecasts["d"].exceeds == bool(far > LIMIT)
    assert forecasts["d"].peak_value < forecasts["c"].peak_value  # dispersion lowers the peak downstream


def test_only_what_was_seen_by_then_counts_and_the_state_round_trips() -> None:
    f = fed(24 * 5)
    early = f.issue(T0 + 24 * NS_PER_HOUR)  # before b was hit: only a counts, and a was hit then
    assert [x.station for x in early] == ["b", "c", "d"]
    again = Forecaster.from_json(f.to_json(), river(), f.targets)
    now = T0 + 24 * 5 * NS_PER_HOUR
    assert again.issue(now) == f.issue(now)


def test_no_forecast_before_any_crossing() -> None:
    f = Forecaster(river(), "cd", [Target("c", 60.0, LIMIT, True)])
    f.observe("a", 10.0, np.array([T0]), np.array([0.001]))
    assert f.issue(T0) == []
