"""Instrument screening on by default and sensor health as its own alert category (issue 13 items 2-3)."""

from __future__ import annotations

from monitor.alerts.evaluator import Evaluator
from monitor.domain.reading import Reading
from monitor.rules import Rules, SeriesCheck
from monitor.thresholds import load, shipped_path

H = 3_600_000_000_000
T0 = 1_326_585_600_000_000_000  # 2012-01-15 00:00 UTC
TS = load([shipped_path(), shipped_path("longjiang-stations.toml")])


def _readings(parameter: str, values: list[float], every: int = 2 * H, flag: str | None = None) -> list[Reading]:
    return [Reading("luodong", parameter, T0 + i * every, v, flag) for i, v in enumerate(values)]


def _events(readings: list[Reading]) -> list[tuple[str, str, str]]:
    ev = Evaluator(TS, "III")
    return [(e.rule, e.state, e.detail) for e in ev.process(readings, now_ns=readings[-1].ts_ns)]


def test_9999_mg_per_litre_cadmium_is_a_sensor_fault_not_pollution() -> None:
    events = _events(_readings("cd", [0.0005, 0.0006, 9999.0, 9999.0, 0.0005]))
    assert [(r, s) for r, s, _ in events] == [("range", "firing"), ("range", "resolved")]
    assert "outside the instrument range" in events[0][2]


def test_dissolved_oxygen_below_the_detection_limit_never_violates_the_minimum() -> None:
    do = [8.1, 8.2, 8.0, 8.3] * 4 + [0.0] * 4 + [8.2, 8.1]
    events = _events(_readings("do", do, every=H // 6))
    assert all(r != "instantaneous" for r, _, _ in events)
    assert [(r, s) for r, s, _ in events] == [("below_dl", "firing"), ("below_dl", "resolved")]
    assert "below its detection limit" in events[0][2]


def test_a_stuck_analyser_raises_a_sensor_alert_within_two_cycles() -> None:
    cd = [0.00052, 0.00061, 0.00049, 0.00055] + [0.00055] * 5 + [0.00058]
    readings = _readings("cd", cd)
    ev = Evaluator(TS, "III")
    events = ev.process(readings, now_ns=readings[-1].ts_ns)
    fired = [e for e in events if e.rule == "stuck" and e.state == "firing"]
    assert len(fired) == 1
    fault_start = readings[4].ts_ns  # the first repeated reading
    assert fired[0].ts_ns - fault_start <= 2 * 2 * H
    assert "cadmium at Luodong hydropower station stuck at" in fired[0].detail
    assert [e.state for e in events if e.rule == "stuck"] == ["firing", "resolved"]


def test_a_day_of_silence_raises_a_sensor_alert_without_any_expect_key() -> None:
    cd = _readings("cd", [0.0005, 0.0006, 0.0005, 0.0007, 0.0006])
    late = Reading("luodong", "cd", cd[-1].ts_ns + 24 * H, 0.0006, None)
    ev = Evaluator(TS, "III")
    ev.process(cd, now_ns=cd[-1].ts_ns)
    ticked = ev.tick(cd[-1].ts_ns + 7 * H)
    assert [(e.rule, e.state) for e in ticked] == [("gap", "firing")]
    assert "unobserved since" in ticked[0].detail and "a plume would not be seen" in ticked[0].detail
    assert ticked[0].ts_ns <= cd[-1].ts_ns + 3 * 2 * H  # two cycles after the first missing reading
    back = ev.process([late], now_ns=late.ts_ns)
    assert [(e.rule, e.state) for e in back] == [("gap", "resolved")]


def test_an_unflagged_check_standard_raises_no_water_alert() -> None:
    events = _events(_readings("cd", [0.0005, 0.0006, 0.0005, 0.010, 0.0006, 0.0005]))
    assert events == []


def test_a_plume_through_the_check_value_is_judged_not_hidden() -> None:
    events = _events(_readings("cd", [0.0005, 0.0006, 0.0005, 0.010, 0.03, 0.05, 0.06]))
    water = [(r, s) for r, s, _ in events if r == "instantaneous"]
    assert water[:2] == [("instantaneous", "unconfirmed"), ("instantaneous", "firing")]


def test_a_clock_ahead_opens_a_sensor_alert_that_clears_at_the_next_accepted_reading() -> None:
    rules = Rules(TS, "III")
    check = rules.clock_fault("luodong", "cd", T0 + 48 * H, T0)
    assert check.category == "sensor" and check.rule == "clock" and check.violated.all()
    assert "clock is ahead by 2 d" in check.detail_at(0) or "clock is ahead by 48 h" in check.detail_at(0)
    cleared = [c for c in rules.evaluate(_readings("cd", [0.0005])) if isinstance(c, SeriesCheck) and c.rule == "clock"]
    assert len(cleared) == 1 and not cleared[0].violated.any()


def test_a_future_reading_does_not_move_the_no_data_clock_beyond_the_wall_clock() -> None:
    rules = Rules(TS, "III")
    rules.evaluate([Reading("luodong", "cd", T0 + 30 * 24 * H, 0.0005, None)], now_ns=T0)
    assert rules.stream_time(T0) == T0


def test_a_long_blank_on_a_series_that_reads_below_its_dl_now_and_then_raises_a_sensor_alert() -> None:
    """Cadmium near 0.0005 mg/L reads "<DL" one reading in five: no run of 12 above ever arms the old test, so a
    blank (reagent out) went unannounced for as long as it lasted. The learnt rate at which a below-DL reading
    follows another makes the sixth in a row improbable."""
    normal = [Reading("luodong", "cd", T0 + i * 2 * H, 0.0005, "<DL") if i % 5 == 4 else None for i in range(200)]
    readings = [
        r or Reading("luodong", "cd", T0 + i * 2 * H, 0.00062 + 0.00001 * (i % 3), None) for i, r in enumerate(normal)
    ]
    blank_from = T0 + 200 * 2 * H
    readings += [Reading("luodong", "cd", blank_from + i * 2 * H, 0.0005, "<DL") for i in range(10)]
    readings.append(Reading("luodong", "cd", blank_from + 10 * 2 * H, 0.00064, None))
    ev = Evaluator(TS, "III")
    events = ev.process(readings, now_ns=readings[-1].ts_ns)
    below = [e for e in events if e.rule == "below_dl"]
    assert [e.state for e in below] == ["firing", "resolved"]
    assert below[0].ts_ns < blank_from + 6 * 2 * H  # improbable by the sixth blank reading
    assert "below its detection limit" in below[0].detail
    assert not [e for e in events if e.rule != "below_dl"]


def test_a_series_that_reads_below_its_dl_in_short_runs_raises_nothing() -> None:
    values = [(0.0005, "<DL") if i % 7 in (3, 4, 5) else (0.0006 + 0.00001 * (i % 7), None) for i in range(300)]
    readings = [Reading("luodong", "cd", T0 + i * 2 * H, v, f) for i, (v, f) in enumerate(values)]
    ev = Evaluator(TS, "III")
    assert ev.process(readings, now_ns=readings[-1].ts_ns) == []


def test_a_spike_in_a_new_series_first_hours_sends_nothing() -> None:
    """Six readings are enough to judge a spike (the window fills up to 12): a young series, a new station or
    the first hours after installation, no longer sends "unconfirmed" then "withdrawn" for a one-off."""
    nh3n = [0.15, 0.16, 0.14, 0.15, 0.17, 0.15, 0.16, 3.4, 0.15, 0.16]
    events = _events(_readings("nh3n", nh3n, every=H))
    assert events == []


def test_a_spike_followed_by_an_unflagged_check_standard_raises_nothing() -> None:
    """Seen on a baseline (seed 20, Luodong): a 0.012 spike, then the analyser's unflagged 0.010 check, then the
    river again. The check read right after the spike looked like the spike's confirmation (a level shift), and
    the two readings over the limit confirmed a cadmium alert on a clean river."""
    cd = [0.00061, 0.00055, 0.00068, 0.00059, 0.00064, 0.00057, 0.0006, 0.00066, 0.00058, 0.00062, 0.00056, 0.00065]
    cd += [0.01197, 0.010, 0.00059, 0.00063]
    assert _events(_readings("cd", cd)) == []


def test_a_plume_that_passes_through_the_check_value_after_a_jump_still_alerts() -> None:
    cd = [0.00061, 0.00055, 0.00068, 0.00059, 0.00064, 0.00057, 0.0006, 0.00066, 0.00058, 0.00062, 0.00056, 0.00065]
    cd += [0.012, 0.010, 0.0105, 0.013, 0.016]
    events = [(r, s) for r, s, _ in _events(_readings("cd", cd))]
    assert ("instantaneous", "firing") in events
