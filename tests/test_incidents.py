"""Incidents, arrival estimates and their bounds in time and speed, on the shipped Longjiang stations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.forecast_notice import ForecastSettings
from monitor.alerts.incidents import NS_PER_DAY, Incidents
from monitor.alerts.ledger import Ledger
from monitor.domain.reading import Reading
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
    inc.on_event(event(stations, "yemao", "resolved", 4, "b"))
    assert inc.open  # every station resolved, but not yet for incident_end (48 h): a relapse joins it
    assert inc.due(T0 + int(5.9 * NS_PER_DAY)) == [] or inc.open
    ended = inc.due(T0 + 6 * NS_PER_DAY)  # 48 h after the last resolve
    assert [(i.id, forecasts) for i, forecasts in ended] == [(a.id if a else "", [])] and not inc.open
    b = inc.on_event(event(stations, "luodong", "firing", 9, "c"))
    assert a is not None and b is not None and b.id != a.id


def test_eta_against_a_front_moving_at_constant_speed(stations) -> None:  # type: ignore[no-untyped-def]
    """Three stations crossed by a front at 12 km/day: the estimates for the rest are exact."""
    inc = Incidents(stations, default_km_per_day=1.0)
    km = {"lalang": 0.0, "yemao": 25.0, "luodong": 57.0}
    for sid, k in km.items():
        incident = inc.on_event(event(stations, sid, "firing", k / 12.0))
        # Readings keep an incident going between crossings (its last activity); 2 days without any would end it.
        inc.observe([reading("lalang", k / 12.0 + h / 24, 0.02) for h in range(1, 48)])
    assert incident is not None
    arrivals = {a.station.id: a.eta_ns for a in incident.arrivals(stations, 1.0)}
    for sid, k in {"sancha": 80.0, "nuomitan": 100.0, "liuzhou-hexi": 160.0}.items():
        assert abs(arrivals[sid] - (T0 + k / 12.0 * NS_PER_DAY)) < 60 * 10**9
    assert np.isclose(incident.velocity(1.0)[0], 12.0)


def test_all_resolved_less_than_incident_end_ago_a_relapse_joins_the_same_incident(stations) -> None:  # type: ignore[no-untyped-def]
    inc = Incidents(stations)
    a = inc.on_event(event(stations, "lalang", "firing", 0, "a"))
    inc.on_event(event(stations, "lalang", "resolved", 1, "a"))
    again = inc.on_event(event(stations, "yemao", "firing", 2.5, "b"))  # 36 h later
    assert a is not None and again is a and [h.station for h in a.hits] == ["lalang", "yemao"]


def test_an_alert_years_later_opens_a_new_incident_even_with_alerts_still_open(stations) -> None:  # type: ignore[no-untyped-def]
    """A 2026 intake alert was once filed into the 2012 incident, whose alerts had never resolved."""
    inc = Incidents(stations)
    old = inc.on_event(event(stations, "lalang", "firing", 0, "a"))
    years = 14 * 365.25
    new = inc.on_event(event(stations, "liuzhou-hexi", "firing", years, "b"))
    assert old is not None and new is not None and new.id != old.id
    assert [h.station for h in new.hits] == ["liuzhou-hexi"]
    assert new.velocity(12.0) == (12.0, "configured (fewer than two stations hit)")  # nothing from 2012
    assert new.id.endswith("/cd/" + new.id.rsplit("/", 1)[1]) and new.id.split("/")[2].startswith("2026")


def test_crossings_minutes_apart_give_no_velocity_of_thousands_of_km_per_day(stations) -> None:  # type: ignore[no-untyped-def]
    """Two test alerts 28 minutes apart, 25 km apart, once gave 4,040 km/day (more than 40 m/s)."""
    inc = Incidents(stations, default_km_per_day=12.0)
    inc.on_event(event(stations, "lalang", "firing", 0))
    i = inc.on_event(event(stations, "yemao", "firing", 28 / 1440))
    assert i is not None
    v, source = i.velocity(12.0)
    assert (v, source) == (12.0, "configured (fewer than two stations hit)")
    # A third crossing at a plausible time gives the velocity from the plausible pair.
    i = inc.on_event(event(stations, "luodong", "firing", 28 / 1440 + 2.0))  # 32 km in 2 days
    assert i is not None
    v, source = i.velocity(12.0)
    assert v == pytest.approx(16.0) and source == "observed between yemao and luodong"


def reading(station: str, day: float, value: float, parameter: str = "cd") -> Reading:
    return Reading(station, parameter, T0 + int(day * NS_PER_DAY), value)


def test_readings_feed_only_the_incidents_parameter_at_its_rivers_stations(stations) -> None:  # type: ignore[no-untyped-def]
    inc = Incidents(stations)
    incident = inc.on_event(event(stations, "lalang", "firing", 0))
    assert incident is not None
    inc.observe(
        [
            reading("yemao", 0.1, 0.001),
            reading("yemao", 0.1, 7.2, "ph"),  # another parameter: not this incident's
            reading("flappy", 0.1, 0.02),  # a station off any river
            Reading("luodong", "cd", T0 + NS_PER_DAY // 10, 0.02, "maintenance"),  # flagged: not learnt from
        ]
    )
    inc.due_at(T0 + NS_PER_DAY // 10)  # a batch's readings are applied by its transitions and, in full, here
    assert incident.seen == {"yemao": T0 + NS_PER_DAY // 10}
    inc.observe([reading("yemao", 0.05, 0.001)])  # older than what it was fed: the forecaster wants time order
    inc.due_at(T0 + NS_PER_DAY // 10)
    assert incident.seen == {"yemao": T0 + NS_PER_DAY // 10}


def test_a_forecast_at_each_transition_and_at_most_one_per_interval_while_readings_arrive(stations) -> None:  # type: ignore[no-untyped-def]
    hour = 3600 * 10**9
    inc = Incidents(stations, settings=ForecastSettings(interval_ns=hour))
    incident = inc.on_event(event(stations, "lalang", "firing", 0))
    assert incident is not None
    assert [(i.id, t) for i, t, _ in inc.due_at(T0)] == [(incident.id, T0)]  # the transition's
    assert inc.due_at(T0 + hour) == []  # no new readings: none
    # Readings every 20 minutes for 3 h: one forecast per hour of them, at reading times, whatever the batching.
    times = [T0 + k * hour // 3 for k in range(1, 10)]
    inc.observe([Reading("yemao", "cd", t, 0.001) for t in times[:4]])
    inc.observe([Reading("yemao", "cd", t, 0.001) for t in times[4:]])
    issued = [t for _, t, _ in inc.due_at(times[-1])]
    assert issued == [times[0], times[0] + hour, times[0] + 2 * hour]
    assert inc.due_at(times[-1]) == []


def test_an_incident_and_its_notices_survive_a_restart_through_the_ledger(stations, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(tmp_path / "alerts.sqlite")
    inc = Incidents(stations, limit=lambda s, p, t: 0.005)
    e = event(stations, "lalang", "firing", 0)
    incident = inc.on_event(e)
    assert incident is not None
    inc.observe([reading("lalang", 0.1, 0.03), reading("yemao", 0.1, 0.001)])
    for i, issued, forecasts in inc.due_at(T0 + NS_PER_DAY // 10):
        inc.notices(i, forecasts, issued)
    ledger.record(e, incident=incident)
    ledger.save_incidents(inc.take_dirty(), T0)
    before = incident.state_json()

    again = Incidents(stations, limit=lambda s, p, t: 0.005)
    again.restore(ledger.open_incidents())
    (restored,) = again.open.values()
    assert restored.id == incident.id and restored.seen == incident.seen
    assert json.loads(json.dumps(restored.state_json())) == json.loads(json.dumps(before))
    assert restored.notes == incident.notes and restored.forecaster is not None
    # and it forecasts on from where it was
    assert restored.forecaster.issue(T0 + NS_PER_DAY) == incident.forecaster.issue(T0 + NS_PER_DAY)  # type: ignore[union-attr]
    ledger.close()
