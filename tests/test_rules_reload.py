"""Hot reload at the Evaluator: mid-stream, no alert is lost and none is sent twice."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.domain.reading import Reading
from monitor.thresholds import load, shipped_path
from tests.test_rules_example import plume

GB = shipped_path()
LONGJIANG = shipped_path("longjiang-stations.toml")
EXAMPLE = shipped_path("examples/longjiang-rules.toml")
T0 = 1_326_585_600 * 10**9
HOUR = 3600 * 10**9

READINGS = plume(days=24)
BATCH = 150


def stream(
    ev: Evaluator,
    readings: Sequence[Reading],
    reload_at: set[int] = frozenset(),  # type: ignore[assignment]
    paths: Sequence[Path] = (GB, LONGJIANG),
) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for k, i in enumerate(range(0, len(readings), BATCH)):
        if k in reload_at:
            events += ev.reload(load(paths))
        events += ev.process(readings[i : i + BATCH], now_ns=0)
    return events


def key(e: AlertEvent) -> tuple[object, ...]:
    return (e.alert_id, e.state, e.ts_ns, e.severity, e.value, e.peak_value)


BASELINE = [key(e) for e in stream(Evaluator(load([GB, LONGJIANG])), READINGS)]


def test_the_baseline_has_alerts_at_every_plume_station() -> None:
    firing = [k for k in BASELINE if k[1] == "firing"]
    assert [str(k[0]).split("/")[0] for k in firing] == ["lalang", "yemao", "luodong", "sancha", "nuomitan"]


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.sets(st.integers(0, len(READINGS) // BATCH), max_size=5))
def test_reloading_the_same_files_anywhere_changes_nothing(points: set[int]) -> None:
    got = [key(e) for e in stream(Evaluator(load([GB, LONGJIANG])), READINGS, points, (GB, LONGJIANG))]
    assert got == BASELINE


def test_reloading_new_rules_keeps_open_alerts_and_adds_the_new_ones() -> None:
    """Mid-plume, the example rules (class policy, cadmium trend, calibration ignored) are reloaded: the limit
    alerts already open are neither lost nor fired again; the trend warnings start for stations not yet hit."""
    reload_batch = 2  # at hour 100: lalang and yemao are in alarm, luodong and below are not yet
    ev = Evaluator(load([GB, LONGJIANG]))
    events = stream(ev, READINGS, {reload_batch}, (GB, LONGJIANG, EXAMPLE))
    limit_events = [key(e) for e in events if e.rule == "instantaneous"]
    assert limit_events == BASELINE
    states = Counter((e.alert_id, e.state, e.ts_ns) for e in events)
    assert all(n == 1 for n in states.values())  # no transition twice
    assert Counter(e.alert_id for e in events if e.state == "firing").most_common(1)[0][1] == 1
    trend = [(e.station, e.state) for e in events if e.rule == "rate"]
    assert ("luodong", "firing") in trend and ("lalang", "firing") not in trend


def test_a_rule_that_disappears_resolves_its_alerts(tmp_path: Path) -> None:
    rules = tmp_path / "trend.toml"
    rules.write_text(
        textwrap.dedent("""
        [[rules]]
        kind = "rate"
        parameter = "cd"
        window = "6h"
        rise_per_hour = 0.0001
        above = 0.4
        """),
        encoding="utf-8",
    )
    values = [0.001, 0.0015, 0.0022, 0.003, 0.0035]
    readings = [Reading("lalang", "cd", T0 + i * HOUR, v) for i, v in enumerate(values)]
    ev = Evaluator(load([GB, LONGJIANG, rules]))
    fired = ev.process(readings, now_ns=0)
    assert [(e.rule, e.state) for e in fired] == [("rate", "unconfirmed"), ("rate", "firing")]
    closed = ev.reload(load([GB, LONGJIANG]))
    assert [(e.alert_id, e.state, e.ts_ns, e.value) for e in closed] == [
        (fired[0].alert_id, "resolved", T0 + 4 * HOUR, 0.0035)
    ]
    assert closed[0].detail == "resolved because the reloaded thresholds no longer have this rule"
    assert ev.reload(load([GB, LONGJIANG])) == []
    # an alert not confirmed yet is withdrawn, not resolved, and the next reading does not bring it back
    ev = Evaluator(load([GB, LONGJIANG, rules]))
    opened = ev.process(readings[:3], now_ns=0)
    assert [(e.rule, e.state) for e in opened] == [("rate", "unconfirmed")]
    gone = ev.reload(load([GB, LONGJIANG]))
    assert [(e.alert_id, e.state, e.ts_ns) for e in gone] == [(opened[0].alert_id, "withdrawn", T0 + 2 * HOUR)]
    assert gone[0].detail == "withdrawn because the reloaded thresholds no longer have this rule"
    assert ev.process(readings[3:], now_ns=0) == []


def test_a_changed_class_keeps_the_alert_and_judges_by_the_new_limit(tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text('[classes]\ndefault = "I"\n', encoding="utf-8")
    ev = Evaluator(load([GB, LONGJIANG]))
    first = ev.process([Reading("lalang", "cd", T0, 0.006)], now_ns=0)
    assert [(e.state, e.limit.klass) for e in first] == [("unconfirmed", "III")]
    assert ev.reload(load([GB, LONGJIANG, strict])) == []
    # 0.004 is compliant in Class III, still 4 × the Class I limit 0.001: it confirms the same alert, by
    # Class I; two calm readings under Class I clear it
    later = ev.process(
        [Reading("lalang", "cd", T0 + i * HOUR, v) for i, v in [(1, 0.004), (2, 0.0009), (3, 0.0008)]], now_ns=0
    )
    assert [(e.alert_id, e.state, e.limit.klass, (e.ts_ns - T0) // HOUR) for e in later] == [
        (first[0].alert_id, "firing", "I", 1),
        (first[0].alert_id, "resolved", "I", 3),
    ]


def test_rolling_windows_survive_a_reload(tmp_path: Path) -> None:
    rules = tmp_path / "mean.toml"
    rules.write_text('[[rules]]\nkind = "mean"\nparameter = "cd"\nwindow = "3h"\n', encoding="utf-8")
    ev = Evaluator(load([GB, LONGJIANG, rules]))
    # not four equal readings: the fourth would be a stuck analyser (the shipped cadmium flatline)
    values = [0.0045, 0.0046, 0.0045, 0.0046]
    ev.process([Reading("lalang", "cd", T0 + i * HOUR, v) for i, v in enumerate(values)], now_ns=0)
    assert ev.pending() == {}
    ev.reload(load([GB, LONGJIANG, rules]))
    events = ev.process([Reading("lalang", "cd", T0 + 4 * HOUR, 0.0065)], now_ns=0)  # mean 0.0052
    assert [(e.rule, e.state) for e in events] == [("instantaneous", "unconfirmed"), ("mean", "unconfirmed")]
    assert events[1].value == pytest.approx((0.0045 + 0.0046 + 0.0065) / 3)


def test_an_invalid_file_keeps_the_rules_in_force(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[rules]]\nkind = "rate"\nwindow = "6 hours"\nrise_per_hour = 1\n', encoding="utf-8")
    ev = Evaluator(load([GB, LONGJIANG]))
    before = ev.thresholds
    events, problems = ev.reload_files([GB, LONGJIANG, broken])
    assert events == [] and [str(p) for p in problems] == [
        f"{broken}:3: rules[0].window: bad duration '6 hours' (use e.g. 90s, 15min, 2h, 7d, 1w)"
    ]
    assert ev.thresholds is before
    events, problems = ev.reload_files([GB, LONGJIANG, EXAMPLE])
    assert problems == [] and ev.thresholds is not before


@pytest.mark.parametrize("tiers", ["{ warning = 1, serious = 5 }", "{ minor = 1 }"])
def test_fewer_tiers_after_a_reload_cap_open_alerts(tmp_path: Path, tiers: str) -> None:
    policy = tmp_path / "tiers.toml"
    policy.write_text(f"[alerts]\nseverity = {tiers}\n", encoding="utf-8")
    ev = Evaluator(load([GB, LONGJIANG]))
    ev.process([Reading("lalang", "cd", T0, 0.2)], now_ns=0)  # critical
    ev.reload(load([GB, LONGJIANG, policy]))
    (resolved,) = ev.process([Reading("lalang", "cd", T0 + HOUR, 0.001)], now_ns=0)
    assert resolved.severity == tiers.split("=")[-2].split(",")[-1].strip(" {")
