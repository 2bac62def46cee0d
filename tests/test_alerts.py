"""Alerts: per-reading verdicts become firing / escalated / resolved transitions, never one per reading."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from monitor.alerts.evaluator import AlertBook, AlertEvent
from monitor.domain.reading import Reading
from monitor.rules import Rules, SeriesCheck
from monitor.thresholds import ThresholdSet

T0 = 1_326_585_600 * 10**9  # 2012-01-15T00:00:00Z
HOUR = 3600 * 10**9


@pytest.fixture
def rules(thresholds: ThresholdSet) -> Rules:
    """The one-step lifecycle of `[alerts] confirm = 1, clear_readings = 1, clear_hold = "0s"` (the two-step
    defaults have their own tests in test_alert_lifecycle.py)."""
    one_step = dataclasses.replace(thresholds.alerts, confirm=1, clear_readings=1, clear_hold_ns=0)
    return Rules(dataclasses.replace(thresholds, alerts=one_step), "III")


def classic() -> AlertBook:
    return AlertBook(confirm=1, clear_readings=1, clear_hold_ns=0)


def series(values: Sequence[float], station: str = "lalang", parameter: str = "cd", start: int = T0) -> list[Reading]:
    return [Reading(station, parameter, start + i * HOUR, v) for i, v in enumerate(values)]


# Rules keep per-series state (windows, the last time seen), so each AlertBook gets the Rules it grew up with.
_RULES_OF: dict[int, tuple[AlertBook, Rules]] = {}


def run(rules: Rules, book: AlertBook, readings: Sequence[Reading]) -> list[AlertEvent]:
    own = _RULES_OF.setdefault(id(book), (book, Rules(rules.thresholds, "III")))[1]
    events: list[AlertEvent] = []
    for check in own.evaluate(readings):
        events += book.update(check)
    return events


def states(events: Sequence[AlertEvent]) -> list[str]:
    return [e.state for e in events]


def test_a_run_of_exceedances_opens_one_firing_alert(rules: Rules) -> None:
    book = classic()
    events = run(rules, book, series([0.001, 0.03, 0.04, 0.041, 0.035]))
    assert states(events) == ["firing"]
    e = events[0]
    assert (e.station, e.parameter, e.ts_ns, e.value) == ("lalang", "cd", T0 + HOUR, 0.03)
    assert e.ratio == pytest.approx(6.0)
    assert e.severity == "serious"
    assert e.limit.value == 0.005


def test_a_reading_back_under_the_limit_resolves_it_once(rules: Rules) -> None:
    book = classic()
    events = run(rules, book, series([0.03, 0.04, 0.004, 0.003, 0.002]))
    assert states(events) == ["firing", "resolved"]
    fired, resolved = events
    assert resolved.ts_ns == T0 + 2 * HOUR
    assert resolved.value == 0.004
    assert resolved.alert_id == fired.alert_id
    assert resolved.started_ns == fired.ts_ns == T0
    # Nothing more once it is resolved and the river stays clean.
    assert run(rules, book, series([0.001, 0.002], start=T0 + 5 * HOUR)) == []


def test_a_reading_at_exactly_the_limit_resolves(rules: Rules) -> None:
    events = run(rules, classic(), series([0.041, 0.005]))
    assert states(events) == ["firing", "resolved"]


def test_a_rise_into_a_higher_tier_escalates_once(rules: Rules) -> None:
    # ratio 8 (serious), 30 (critical), 24 (still critical), 35 (still critical)
    events = run(rules, classic(), series([0.04, 0.15, 0.12, 0.175]))
    assert states(events) == ["firing", "escalated"]
    fired, escalated = events
    assert fired.severity == "serious"
    assert escalated.severity == "critical"
    assert escalated.ts_ns == T0 + HOUR
    assert escalated.ratio == pytest.approx(30.0)
    assert escalated.alert_id == fired.alert_id


def test_staying_in_the_same_tier_or_falling_within_the_alert_gives_nothing(rules: Rules) -> None:
    book = classic()
    assert states(run(rules, book, series([0.15]))) == ["firing"]
    # Down to serious, up to critical again, down to warning: still the same alert, no new notification.
    assert run(rules, book, series([0.04, 0.16, 0.006, 0.2], start=T0 + HOUR)) == []


def test_a_series_that_never_exceeds_gives_nothing(rules: Rules) -> None:
    assert run(rules, classic(), series([0.001, 0.002, 0.005, 0.0049])) == []


VALUES = [0.001, 0.006, 0.03, 0.041, 0.15, 0.2, 0.12, 0.004, 0.003, 0.04, 0.04, 0.001, 0.002, 0.1, 0.001]


def summary(events: Sequence[AlertEvent]) -> list[tuple[object, ...]]:
    return [
        (e.alert_id, e.state, e.ts_ns, e.value, e.severity, e.started_ns, e.peak_value, e.peak_ratio) for e in events
    ]


def test_state_carries_over_between_batches(rules: Rules) -> None:
    readings = series(VALUES)
    whole = run(rules, classic(), readings)
    assert states(whole) == ["firing", "escalated", "escalated", "resolved", "firing", "resolved", "firing", "resolved"]

    one_by_one = classic()
    split: list[AlertEvent] = []
    for r in readings:
        split += run(rules, one_by_one, [r])
    assert summary(split) == summary(whole)

    for cut in range(1, len(readings)):
        book = classic()
        events = run(rules, book, readings[:cut]) + run(rules, book, readings[cut:])
        assert summary(events) == summary(whole), cut


def test_the_peak_is_carried_to_the_resolved_event(rules: Rules) -> None:
    readings = series([0.03, 0.041, 0.035, 0.002])
    events = run(rules, classic(), readings)
    assert states(events) == ["firing", "resolved"]
    resolved = events[1]
    assert resolved.peak_value == 0.041
    assert resolved.peak_ratio == pytest.approx(8.2)

    book = classic()
    split = [e for r in readings for e in run(rules, book, [r])]
    assert split[-1].state == "resolved"
    assert (split[-1].peak_value, split[-1].peak_ratio) == (resolved.peak_value, resolved.peak_ratio)


def test_the_peak_includes_the_escalating_reading(rules: Rules) -> None:
    events = run(rules, classic(), series([0.04, 0.15, 0.05, 0.001]))
    assert states(events) == ["firing", "escalated", "resolved"]
    assert events[-1].peak_value == 0.15
    assert events[-1].peak_ratio == pytest.approx(30.0)


def test_the_alert_id_is_readable_and_stable(rules: Rules) -> None:
    first = run(rules, classic(), series([0.041, 0.002]))
    again = run(rules, classic(), series([0.041, 0.002]))
    assert first[0].alert_id == "lalang/cd/20120115T0000Z"
    assert [e.alert_id for e in first] == [e.alert_id for e in again] == ["lalang/cd/20120115T0000Z"] * 2
    later = run(rules, classic(), series([0.041], start=T0 + 90 * 60 * 10**9))
    assert later[0].alert_id == "lalang/cd/20120115T0130Z"


def test_alternating_readings_give_alternating_events_in_time_order(rules: Rules) -> None:
    values = [0.04, 0.001, 0.04, 0.001, 0.04, 0.001]
    events = run(rules, classic(), series(values))
    assert states(events) == ["firing", "resolved"] * 3
    assert [e.ts_ns for e in events] == [T0 + i * HOUR for i in range(6)]
    ids = [e.alert_id for e in events]
    assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4] == ids[5]


def test_alternating_readings_sent_out_of_order_are_handled_in_time_order(rules: Rules) -> None:
    readings = series([0.04, 0.001, 0.04, 0.001])
    events = run(rules, classic(), list(reversed(readings)))
    assert states(events) == ["firing", "resolved", "firing", "resolved"]
    assert [e.ts_ns for e in events] == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]


def test_a_maintenance_reading_does_not_resolve_an_alert(rules: Rules) -> None:
    book = classic()
    readings = series([0.04, 0.001, 0.04])
    readings[1] = readings[1]._replace(flag="maintenance")
    assert states(run(rules, book, readings)) == ["firing"]
    assert ("lalang", "cd", "") in book.open


def test_series_are_independent(rules: Rules) -> None:
    book = classic()
    events = run(rules, book, series([0.04, 0.04, 0.001]) + series([0.001, 0.04, 0.04], station="yemao"))
    by_station = {(e.station, e.state): e for e in events}
    assert sorted(by_station) == [("lalang", "firing"), ("lalang", "resolved"), ("yemao", "firing")]
    assert by_station[("yemao", "firing")].alert_id == "yemao/cd/20120115T0100Z"


def test_dissolved_oxygen_alerts_on_a_shortfall(rules: Rules) -> None:
    # Class III minimum 5 mg/L: 4 is 1.25x short (warning), 0.2 is 25x (critical).
    events = run(rules, classic(), series([6.0, 4.0, 0.2, 7.0], parameter="do"))
    assert states(events) == ["firing", "escalated", "resolved"]
    assert [e.severity for e in events] == ["warning", "critical", "critical"]


# ---------------------------------------------------------------- hysteresis and rule keys, at the AlertBook


def check_of(
    values: Sequence[float],
    calm: Sequence[bool] | None = None,
    start: int = T0,
    key: str = "",
    hold: int | None = None,
    severity: str = "",
) -> SeriesCheck:
    import numpy as np

    from monitor.thresholds import Limit

    v = np.array(values)
    lim = Limit("cd", "max", 0.005, None, "mg/L", "GB 3838-2002", "III", "")
    return SeriesCheck(
        "lalang",
        "cd",
        lim,
        np.array([start + i * HOUR for i in range(len(v))], dtype=np.int64),
        v,
        v / 0.005,
        v > 0.005,
        rule="test",
        key=key,
        calm=None if calm is None else np.array(calm),
        severity=severity,
        clear_hold_ns=hold,
    )


def test_a_clear_needs_calm_readings_held_across_batches() -> None:
    book = classic()
    values = [0.006, 0.003, 0.003, 0.0045, 0.003, 0.003, 0.003]
    calm = [v <= 0.004 for v in values]
    whole = book.update(check_of(values, calm, hold=2 * HOUR))
    assert states(whole) == ["firing", "resolved"] and whole[1].ts_ns == T0 + 6 * HOUR
    split = classic()
    events = [
        e
        for i in range(len(values))
        for e in split.update(check_of(values[i : i + 1], calm[i : i + 1], start=T0 + i * HOUR, hold=2 * HOUR))
    ]
    assert [(e.state, e.ts_ns) for e in events] == [(e.state, e.ts_ns) for e in whole]


def test_alerts_of_different_rules_on_one_series_are_independent() -> None:
    book = classic()
    a = book.update(check_of([0.006, 0.001]))
    b = book.update(check_of([0.006], key="rate", severity="serious"))
    assert [e.alert_id for e in a] == ["lalang/cd/20120115T0000Z"] * 2
    assert [(e.alert_id, e.severity, e.rule) for e in b] == [("lalang/cd/rate/20120115T0000Z", "serious", "test")]
    assert list(book.open) == [("lalang", "cd", "rate")]


def test_events_default_to_the_instantaneous_rule() -> None:
    from monitor.thresholds import Limit

    e = AlertEvent(
        "a", "firing", "s", "cd", 0, 1.0, 1.0, "warning", Limit("cd", "max", 1, None, "", "", "", ""), 0, 1.0, 1.0
    )
    assert (e.rule, e.detail) == ("instantaneous", "")
