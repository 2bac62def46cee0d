"""Incidents and arrival estimates, on the shipped Longjiang stations."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import NS_PER_DAY, Incidents
from monitor.thresholds import ThresholdSet, load, shipped_path

T0 = 1326585600 * 10**9


@pytest.fixture(scope="module")
def stations(thresholds: ThresholdSet):  # type: ignore[no-untyped-def]
    return thresholds.stations


def event(stations, station: str, state: str, day: float, alert_id: str | None = None) -> AlertEvent:  # type: ignore[no-untyped-def]
    limit = load([shipped_path()]).limit(station, "cd", "III")
    ts = T0 + int(day * NS_PER_DAY)
    return AlertEvent(
        alert_id or f"{station}/cd/{day}", state, station, "cd", ts, 0.05, 10.0, "serious", limit, ts, 0.05, 10.0
    )


def test_alerts_down_one_river_form_one_incident_with_an_observed_velocity(stations) -> None:  # type: ignore[no-untyped-def]
    inc = Incidents(stations, default_km_per_day=5.0)
    first = inc.on_event(event(stations, "lalang", "firing", 0))
    assert first is not None
    v, source = first.velocity(5.0)
    assert (v, source.startswith("configured")) == (5.0, True)  # one station: the configured velocity
    eta = {a.station.id: a for a in first.arrivals(stations, 5.0)}
    assert eta["yemao"].eta_ns == T0 + 5 * NS_PER_DAY  # 25 km at 5 km/day
    second = inc.on_event(event(stations, "yemao", "firing", 2.0))  # 25 km in 2 days: 12.5 km/day
    assert second is first
    assert second.velocity(5.0)[0] == pytest.approx(12.5)
    arrivals = second.arrivals(stations, 5.0)
    assert [a.station.id for a in arrivals] == ["luodong", "sancha", "nuomitan", "liuzhou-hexi"]
    hexi = arrivals[-1]
    assert hexi.distance_km == pytest.approx(135.0)
    assert hexi.eta_ns == T0 + int((2.0 + 135 / 12.5) * NS_PER_DAY)
    assert hexi.station.intake


def test_incident_closes_when_its_alerts_resolve_and_a_new_one_opens_later(stations) -> None:  # type: ignore[no-untyped-def]
    inc = Incidents(stations)
    a = inc.on_event(event(stations, "lalang", "firing", 0, "a"))
    inc.on_event(event(stations, "yemao", "firing", 1, "b"))
    inc.on_event(event(stations, "lalang", "resolved", 3, "a"))
    assert inc.open
    inc.on_event(event(stations, "yemao", "resolved", 4, "b"))
    assert not inc.open
    b = inc.on_event(event(stations, "luodong", "firing", 9, "c"))
    assert a is not None and b is not None and b.id != a.id


def test_eta_against_a_front_moving_at_constant_speed(stations) -> None:  # type: ignore[no-untyped-def]
    """Three stations crossed by a front at 12 km/day: the estimates for the rest are exact."""
    inc = Incidents(stations, default_km_per_day=1.0)
    km = {"lalang": 0.0, "yemao": 25.0, "luodong": 57.0}
    for sid, k in km.items():
        incident = inc.on_event(event(stations, sid, "firing", k / 12.0))
    assert incident is not None
    arrivals = {a.station.id: a.eta_ns for a in incident.arrivals(stations, 1.0)}
    for sid, k in {"sancha": 80.0, "nuomitan": 100.0, "liuzhou-hexi": 160.0}.items():
        assert abs(arrivals[sid] - (T0 + k / 12.0 * NS_PER_DAY)) < 60 * 10**9
    assert np.isclose(incident.velocity(1.0)[0], 12.0)
