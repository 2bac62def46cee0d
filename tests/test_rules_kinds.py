"""Each rule kind on small hand-made series: what it fires on, when it clears, and why it waits."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts.evaluator import AlertBook, AlertEvent, Evaluator
from monitor.domain.reading import Reading
from monitor.ingest.decode import BELOW_DL_FLAG, parse_below_dl
from monitor.notify.render import parse_offset, render
from monitor.rules import Ring, Rules
from monitor.rules.timeofday import local_time
from monitor.thresholds import ThresholdSet, load, shipped_path
from monitor.thresholds.model import CLEAR_HOLD_CYCLE

T0 = 1_326_585_600 * 10**9  # 2012-01-15T00:00:00Z
HOUR = 3600 * 10**9
GB = shipped_path()
LONGJIANG = shipped_path("longjiang-stations.toml")


# What these tests assume unless they say otherwise: one step per transition (an alert fires at the first
# violating reading and clears at the first calm one), only the screens the test sets and no sensor-health
# alerts it does not ask for (learnt gaps, below-DL runs, long maintenance), so that each test
# sees its rule kind alone. The shipped defaults (two-step alerts, instrument screening) have their own tests.
SINGLE_STEP: dict[str, tuple[str, ...]] = {
    "alerts": ("confirm = 1", "clear_readings = 1", 'clear_hold = "0s"'),
    "screen": ("instrument_defaults = false", "gap_factor = 0", "below_dl_run = 0", 'maintenance_max = "0s"'),
}


def single_step(text: str) -> str:
    """The test's TOML with the SINGLE_STEP keys it does not set itself added to its [alerts] and [screen]
    (each table may appear only once across the files, so they go into the test's own tables)."""
    lines = textwrap.dedent(text).splitlines()
    for table, keys in SINGLE_STEP.items():
        header = next((i for i, line in enumerate(lines) if line.strip() == f"[{table}]"), None)
        if header is None:
            lines += ["", f"[{table}]", *keys]
            continue
        end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        have = {line.split("=")[0].strip() for line in lines[header + 1 : end] if "=" in line}
        lines[header + 1 : header + 1] = [k for k in keys if k.split("=")[0].strip() not in have]
    return "\n".join(lines) + "\n"


def thresholds(tmp_path: Path, text: str, *more: Path, shipped_defaults: bool = False) -> ThresholdSet:
    """GB 3838, the Longjiang stations, `more` and the test's TOML (made SINGLE_STEP unless `shipped_defaults`)."""
    path = tmp_path / "rules.toml"
    path.write_text(textwrap.dedent(text) if shipped_defaults else single_step(text), encoding="utf-8")
    return load([GB, LONGJIANG, *more, path])


def single_step_file(tmp_path: Path) -> Path:
    """A file that says only SINGLE_STEP, for tests that load shipped standards alone."""
    path = tmp_path / "single-step.toml"
    path.write_text(single_step(""), encoding="utf-8")
    return path


def series(
    values: Sequence[float | None],
    station: str = "lalang",
    parameter: str = "cd",
    start: int = T0,
    every: int = HOUR,
    flags: dict[int, str] | None = None,
) -> list[Reading]:
    """Readings every hour; None leaves a gap."""
    flags = flags or {}
    return [
        Reading(station, parameter, start + i * every, v, flags.get(i)) for i, v in enumerate(values) if v is not None
    ]


def run(ts: ThresholdSet, readings: Sequence[Reading], batch: int = 0) -> list[AlertEvent]:
    ev = Evaluator(ts, "III")
    if not batch:
        return ev.process(readings, now_ns=0)
    return [e for i in range(0, len(readings), batch) for e in ev.process(readings[i : i + batch], now_ns=0)]


def brief(events: Sequence[AlertEvent]) -> list[tuple[str, str, int]]:
    """(rule, state, hour) per event."""
    return [(e.rule, e.state, (e.ts_ns - T0) // HOUR) for e in events]


# ---------------------------------------------------------------- persistence


def test_persistence_waits_for_n_readings_and_replaces_the_instantaneous_alert(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "persistence"
        parameter = "cd"
        readings = 3
        """,
    )
    # one spike, then three in a row: only the run of three alerts, at its third reading
    events = run(ts, series([0.001, 0.04, 0.001, 0.04, 0.04, 0.04, 0.04, 0.001]))
    assert brief(events) == [("persistence", "firing", 5), ("persistence", "resolved", 7)]
    assert events[0].alert_id == "lalang/cd/20120115T0500Z"
    assert events[0].detail == "above the limit for 3 readings over 2 h"
    # other parameters keep the instantaneous rule
    assert brief(run(ts, series([9.5], parameter="ph"))) == [("instantaneous", "firing", 0)]


def test_persistence_by_duration_spans_gaps_and_batches(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "persistence"
        duration = "3h"
        """,
    )
    readings = series([0.04, None, 0.04, None, 0.04, 0.001])
    assert brief(run(ts, readings)) == [("persistence", "firing", 4), ("persistence", "resolved", 5)]
    assert brief(run(ts, readings, batch=1)) == [("persistence", "firing", 4), ("persistence", "resolved", 5)]


# ---------------------------------------------------------------- rolling mean


def test_rolling_mean_waits_until_the_window_has_filled_and_says_why(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "mean"
        parameter = "cd"
        window = "4h"
        """,
    )
    ev = Evaluator(ts, "III")
    # every reading but one is under the limit 0.005; the 4 h mean (0.0049 × 3 + 0.0058) / 4 = 0.005125 at 04:00
    # is over it. It is only judged once 4 h of data are there.
    events = ev.process(series([0.004, 0.0049, 0.0049]), now_ns=0)
    assert events == []
    assert ev.pending() == {
        "lalang/cd/mean": "rolling 4 h mean: no alert until the window has filled (2 h of 4 h of data so far)"
    }
    events = ev.process(series([0.0049, 0.0058, 0.0062], start=T0 + 3 * HOUR), now_ns=0)
    assert ev.pending() == {}
    mean = [e for e in events if e.rule == "mean"]
    assert [(e.state, (e.ts_ns - T0) // HOUR) for e in mean] == [("firing", 4)]
    assert mean[0].value == pytest.approx((0.0049 * 3 + 0.0058) / 4)
    assert mean[0].detail == "rolling 4 h mean 0.005125 mg/L over 4 readings"
    assert mean[0].alert_id == "lalang/cd/mean/20120115T0400Z"
    assert [e.rule for e in events] == ["instantaneous", "mean"]  # 0.0058 itself is over the limit too


def test_a_mean_limit_of_the_standard_is_checked_on_its_own(tmp_path: Path) -> None:
    """The WFD AA-EQS is an annual average: a rolling 365-day mean, silent until a year of data is in."""
    ts = load([shipped_path("eu-wfd-eqs-cadmium.toml"), single_step_file(tmp_path)])
    spec = ts.spec("x", "cd", "III")
    assert spec is not None and spec.mean is not None and spec.mean_window_ns == 365 * 24 * HOUR
    assert [lim.value for lim in spec.mean.limits] == [0.00008, 0.00008, 0.00009, 0.00015, 0.00025]
    ev = Evaluator(ts, "III")
    assert ev.process(series([0.0002] * 3), now_ns=0) == []  # 2.5 × the AA-EQS, under the MAC-EQS
    assert ev.pending()["lalang/cd/mean"].startswith("rolling 365 d mean: no alert until the window has filled")
    year = [Reading("lalang", "cd", T0 + d * 24 * HOUR, 0.0002) for d in range(3, 368, 7)]
    events = ev.process(year, now_ns=0)
    assert [(e.rule, e.state) for e in events] == [("mean", "firing")]
    assert events[0].ts_ns - T0 >= 365 * 24 * HOUR


# ---------------------------------------------------------------- rate of change


def test_rate_warns_before_the_limit_and_clears_when_the_river_settles(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "rate"
        parameter = "cd"
        window = "3h"
        rise_per_hour = 0.0005
        above = 0.4
        """,
    )
    values = [
        0.001,
        0.0011,
        0.001,
        0.0015,
        0.0022,
        0.003,
        0.0038,
        0.0046,
        0.0056,
        0.007,
        0.006,
        0.004,
        0.003,
        0.0018,
        0.0012,
        0.001,
        0.001,
        0.001,
    ]
    events = run(ts, series(values))
    # at 04:00 the slope over (01:00, 04:00] is 0.0006 mg/L per hour and 0.0022 is 0.44 × the limit: 4 h ahead.
    # It stays open through the exceedance, and clears once the river has been under 0.4 × the limit and not
    # rising for a whole window (3 h: 13:00 to 16:00).
    assert brief(events) == [
        ("rate", "firing", 4),
        ("instantaneous", "firing", 8),
        ("instantaneous", "resolved", 11),
        ("rate", "resolved", 16),
    ]
    fired = events[0]
    assert fired.severity == "warning" and fired.value == 0.0022 and fired.ratio == pytest.approx(0.44)
    assert fired.detail == "rising 0.0006 mg/L per hour over the last 3 h"
    assert fired.alert_id == "lalang/cd/rate/20120115T0400Z"
    assert events[-1].detail == "falling 0.0001 mg/L per hour over the last 3 h"
    # the same readings one at a time: the same transitions
    assert brief(run(ts, series(values), batch=1)) == brief(events)


def test_a_gap_or_noise_on_a_plateau_does_not_clear_a_trend_warning(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "rate"
        parameter = "cd"
        window = "3h"
        rise_per_hour = 0.0005
        above = 0.4
        """,
    )
    values = [0.001, 0.0015, 0.0022, 0.003, None, None, None, None, 0.0031, 0.0029, 0.0032, 0.0028, 0.003]
    assert brief(run(ts, series(values))) == [("rate", "firing", 2)]


def test_rate_without_a_limit_fires_on_the_slope(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "rate"
        name = "conductivity-jump"
        parameter = "cond"
        window = "3h"
        rise_per_hour = 0.05
        unit = "mS/cm"
        """,
    )
    events = run(ts, series([300, 302, 301, 400, 520, 530, 529, 528, 527, 527, 526], parameter="cond"))
    assert brief(events) == [("rate", "firing", 4), ("rate", "resolved", 10)]
    assert events[0].limit.describe() == "a rise of 50 µS/cm per hour over 3 h"
    assert events[0].ratio == pytest.approx((520 - 301) / 2 / 50)  # the slope over the rule's rise


# ---------------------------------------------------------------- no data


def test_no_data_fires_without_any_reading_and_clears_with_the_next(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [stations.extra]
        class = "III"
        expect = { cd = "2h" }
        """,
    )
    ev = Evaluator(ts, "III")
    assert ev.process(series([0.001, 0.001], station="extra", every=2 * HOUR), now_ns=T0 + 2 * HOUR) == []
    assert ev.tick(now_ns=T0 + 7 * HOUR) == []  # silent 5 h: under 3 × 2 h since the last reading at 2 h
    fired = ev.tick(now_ns=T0 + 9 * HOUR)  # 7 h since the last one
    assert [(e.rule, e.state, e.ts_ns) for e in fired] == [("no_data", "firing", T0 + 8 * HOUR)]
    assert fired[0].alert_id == "extra/cd/no_data/20120115T0800Z"
    assert fired[0].limit.describe() == "a reading every 2 h (alarm after 6 h of silence)"
    assert fired[0].detail == "no reading since 2012-01-15T02:00Z"
    assert ev.tick(now_ns=T0 + 20 * HOUR) == []  # still silent: no second notification
    back = ev.process(series([0.001], station="extra", start=T0 + 21 * HOUR), now_ns=T0 + 21 * HOUR)
    assert [(e.state, e.ts_ns, e.alert_id) for e in back] == [("resolved", T0 + 21 * HOUR, fired[0].alert_id)]
    assert back[0].detail == "readings again after 19 h of silence"


def test_a_listed_series_never_seen_is_silent_since_start_up(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [stations.extra]
        class = "III"
        expect = { ph = "1h" }
        """,
    )
    ev = Evaluator(ts, "III")
    assert ev.tick(now_ns=T0) == []
    fired = ev.tick(now_ns=T0 + 4 * HOUR)
    assert [(e.station, e.parameter, e.state, e.ts_ns) for e in fired] == [("extra", "ph", "firing", T0 + 3 * HOUR)]
    assert math.isnan(fired[0].value)


def test_no_data_follows_the_data_in_a_replay(tmp_path: Path) -> None:
    """Stream time: a replay of 2012 data, evaluated in 2025, is not silent; a gap inside the data is."""
    ts = thresholds(
        tmp_path,
        """
        [stations.extra]
        class = "III"
        expect = { cd = "1h" }
        """,
    )
    ev = Evaluator(ts, "III")
    wall = 1_750_000_000 * 10**9
    assert ev.process(series([0.001] * 3, station="extra"), now_ns=wall) == []
    assert ev.tick(now_ns=wall + 60 * 10**9) == []  # a minute later: stream time 2012-01-15 02:01
    gap = ev.process(series([0.001], station="extra", start=T0 + 10 * HOUR), now_ns=wall + 61 * 10**9)
    assert brief(gap) == [("no_data", "firing", 5), ("no_data", "resolved", 10)]


def test_a_station_wide_no_data_rule(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "no_data"
        scope = "station"
        stations = ["lalang"]
        interval = "1h"
        factor = 2
        severity = "serious"
        """,
    )
    ev = Evaluator(ts, "III")
    # live: the wall clock is at the newest reading (a reading's time never takes the clock past the wall clock)
    ev.process(series([0.001, 0.001]) + series([7.0, 7.1], parameter="ph"), now_ns=T0 + HOUR)
    assert ev.tick(now_ns=T0 + 3 * HOUR - 1) == []
    fired = ev.tick(now_ns=T0 + 3 * HOUR + 1)
    assert [(e.station, e.parameter, e.severity, e.ts_ns) for e in fired] == [("lalang", "*", "serious", T0 + 3 * HOUR)]
    back = ev.process(series([7.0], parameter="ph", start=T0 + 5 * HOUR), now_ns=T0 + 5 * HOUR)
    assert [e.state for e in back] == ["resolved"]


# ---------------------------------------------------------------- screening


def test_flagged_readings_never_alarm_and_never_clear(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [screen]
        ignore_flags = ["calibration"]
        suspect_flags = ["suspect", "maintenance"]
        """,
    )
    ev = Evaluator(ts, "III")
    events = ev.process(series([0.04, 0.001, 0.5, 0.001], flags={1: "calibration", 2: "Maintenance"}), now_ns=0)
    assert brief(events) == [("instantaneous", "firing", 0), ("instantaneous", "resolved", 3)]
    assert [(s[2] - T0) // HOUR for s in ev.rules.suspects] == [2]
    assert ev.rules.screened == {"suspect (flag)": 1}


def test_flatline_marks_the_nth_identical_value_suspect(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [instruments.cd]
        flatline = 3
        """,
    )
    rules = Rules(ts, "III")
    rules.evaluate(series([0.006, 0.006]), now_ns=0)
    rules.evaluate(series([0.006, 0.006, 0.007], start=T0 + 2 * HOUR), now_ns=0)
    assert rules.screened == {"flatline": 2}
    # the stuck readings are neither alarms nor clearances: the alert fired by the first two stays open, and
    # the third equal reading raises a sensor alert (the analyser cannot see) that the next change clears
    events = run(ts, series([0.006, 0.006, 0.006, 0.006, 0.001]))
    assert brief(events) == [
        ("instantaneous", "firing", 0),
        ("stuck", "firing", 2),
        ("stuck", "resolved", 4),
        ("instantaneous", "resolved", 4),
    ]
    assert [e.category for e in events] == ["water", "sensor", "sensor", "water"]


def test_a_lone_spike_is_suspect_but_a_level_shift_is_real(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [instruments.cd]
        spike_window = 5
        spike_mads = 5
        spike_floor = 0.0001
        """,
    )
    base = [0.001, 0.0011, 0.0009, 0.001, 0.0012]
    lone = run(ts, series([*base, 0.2, 0.001, 0.0011]))
    assert lone == []  # the lone 0.2 is screened out
    front = run(ts, series([*base, 0.02, 0.03, 0.04]))
    # 0.02 is held until the next reading; 0.03 rises with it, which releases it, judged at its own time
    # (4 × the limit), and 0.03 (6 ×) escalates
    assert brief(front) == [("instantaneous", "firing", 5), ("instantaneous", "escalated", 6)]
    assert [(e.value, e.severity) for e in front] == [(0.02, "warning"), (0.03, "serious")]
    rules = Rules(ts, "III")
    rules.evaluate(series([*base, 0.2, 0.001]), now_ns=0)
    assert [(r[2] - T0) // HOUR for r in rules.suspects] == [5] and rules.suspects[0][4] == "spike"


def test_outside_the_instrument_range_is_suspect(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [instruments.ph]
        range = [0, 14]

        [stations.gauge.instruments.cd]
        range = [0, 500]
        unit = "ug/L"
        """,
    )
    # outside the range: never a water alert, a sensor alert about the instrument instead
    out = run(ts, series([15.2], parameter="ph"))
    assert [(e.rule, e.state, e.category) for e in out] == [("range", "firing", "sensor")]
    assert "outside the instrument range" in out[0].detail
    gauge = run(ts, series([0.6], station="gauge"))  # 600 µg/L is beyond this station's analyser
    assert [(e.rule, e.category) for e in gauge] == [("range", "sensor")]
    assert brief(run(ts, series([0.4], station="gauge"))) == [("instantaneous", "firing", 0)]
    assert brief(run(ts, series([0.6]))) == [("instantaneous", "firing", 0)]


def test_below_the_detection_limit_clears_a_maximum_but_never_violates_it(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [instruments.hg]
        detection_limit = 0.00002
        """,
    )
    # the Chinese "0.00005L" convention arrives as the value 0.00005 flagged "<DL"
    readings = series([0.0002, 0.00005, 0.00001], parameter="hg", flags={1: "<DL"})
    events = run(ts, readings)
    # Class III hg 0.0001: "< 0.00005" is compliant for sure, so it clears the alert
    assert brief(events) == [("instantaneous", "firing", 0), ("instantaneous", "resolved", 1)]
    assert events[1].detail == "below the detection limit 5e-05 mg/L"
    # at a Class II station (limit 0.00005) "< 0.0001" proves nothing: no alarm, no clearance
    hexi = run(ts, series([0.0002, 0.0001, 0.00003], station="liuzhou-hexi", parameter="hg", flags={1: "L"}))
    assert brief(hexi) == [("instantaneous", "firing", 0), ("instantaneous", "resolved", 2)]


# ---------------------------------------------------------------- severity tiers and hysteresis


def test_severity_tiers_are_configurable(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [alerts]
        severity = { notice = 1, alarm = 2, emergency = 10 }
        """,
    )
    events = run(ts, series([0.006, 0.011, 0.06]))
    assert [(e.state, e.severity) for e in events] == [
        ("firing", "notice"),
        ("escalated", "alarm"),
        ("escalated", "emergency"),
    ]


def test_hysteresis_clears_only_below_the_ratio_held_for_the_hold_time(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [alerts]
        clear_ratio = 0.8
        clear_hold = "2h"
        """,
    )
    # 0.0045 is under the limit but above 0.8 × 0.005 = 0.004: no clearance; then 0.003 for 1 h is too short;
    # then 0.003, 0.0035, 0.003 held for 2 h clears at the third of them.
    values = [0.006, 0.0045, 0.003, 0.0042, 0.003, 0.0035, 0.003, 0.006]
    events = run(ts, series(values))
    assert brief(events) == [
        ("instantaneous", "firing", 0),
        ("instantaneous", "resolved", 6),
        ("instantaneous", "firing", 7),
    ]
    assert brief(run(ts, series(values), batch=1)) == brief(events)
    assert events[1].alert_id == events[0].alert_id != events[2].alert_id


def test_a_rule_can_have_its_own_hysteresis(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [[rules]]
        kind = "instantaneous"
        parameter = "cd"
        clear_ratio = 0.5
        """,
    )
    assert brief(run(ts, series([0.006, 0.003, 0.002]))) == [
        ("instantaneous", "firing", 0),
        ("instantaneous", "resolved", 2),
    ]
    assert brief(run(ts, series([6.0, 7.0], parameter="do"))) == []  # others keep the default


def test_the_alert_book_defaults_to_two_steps_and_a_held_clearance() -> None:
    book = AlertBook()
    assert book.severity(1) == "warning" and book.severity(3) == "critical"
    assert (book.confirm, book.clear_readings, book.clear_hold_ns) == (2, 2, CLEAR_HOLD_CYCLE)


# ---------------------------------------------------------------- limits that depend on time or on another parameter


def test_a_hardness_band_picks_the_cadmium_eqs(tmp_path: Path) -> None:
    ts = load([shipped_path("eu-wfd-eqs-cadmium.toml"), single_step_file(tmp_path)])
    ev = Evaluator(ts, "III")
    # no hardness yet: the most protective band (0.45 µg/L); then 120 mg/L CaCO3 (class 4: 0.9 µg/L)
    first = ev.process(series([0.0006], station="rhine"), now_ns=0)
    assert [(e.state, e.limit.value) for e in first] == [("firing", pytest.approx(0.00045))]
    assert first[0].limit.describe() == (
        "0.00045 mg/L (EU WFD EQS 2013/39/EU, total hardness as CaCO3 class 1 (< 40 mg/L))"
    )
    later = ev.process(
        [Reading("rhine", "hardness", T0 + HOUR, 120.0), Reading("rhine", "cd", T0 + 2 * HOUR, 0.0006)], now_ns=0
    )
    assert [(e.state, e.limit.value) for e in later] == [("resolved", pytest.approx(0.0009))]
    assert "class 4 (100–<200 mg/L)" in later[0].limit.describe()


def test_a_station_can_assume_a_hardness(tmp_path: Path) -> None:
    ts = thresholds(
        tmp_path,
        """
        [stations.rhine]
        standard = "EU WFD EQS 2013/39/EU"
        assume = { hardness = 250 }
        """,
        shipped_path("eu-wfd-eqs-cadmium.toml"),
    )
    assert run(ts, series([0.0012], station="rhine")) == []  # class 5: 1.5 µg/L


def test_a_dated_step_applies_by_the_reading_date(tmp_path: Path) -> None:
    ts = load([shipped_path("eu-dwd-2020-2184.toml"), single_step_file(tmp_path)])
    spec = ts.spec("tap", "pb", "III")
    assert spec is not None
    before = 2_000_000_000 * 10**9  # 2033
    after = 2_100_000_000 * 10**9  # 2036-07
    assert spec.at(before).value == pytest.approx(0.01) and spec.at(after).value == pytest.approx(0.005)
    assert spec.at(before).describe() == "0.01 mg/L (EU DWD 2020/2184, until 2036-01-12)"
    ev = Evaluator(ts, "III")
    events = ev.process([Reading("tap", "pb", before, 0.007), Reading("tap", "pb", after, 0.007)], now_ns=0)
    assert [(e.state, e.ts_ns) for e in events] == [("firing", after)]


# ---------------------------------------------------------------- the ring buffer


def test_the_ring_keeps_windows_exact_across_compactions() -> None:
    ring = Ring(16, moments=True)
    values = [float(i % 7) for i in range(200)]
    for i in range(0, 200, 9):
        chunk = values[i : i + 9]
        start = ring.extend(np.array([T0 + (i + k) * HOUR for k in range(len(chunk))]), np.array(chunk))
        assert start == len(ring) - len(chunk)
        ring.trim_before(T0 + (i + len(chunk) - 20) * HOUR)
    assert len(ring) == 20 and ring.values.tolist() == values[-20:]
    assert ring.since == T0 + 180 * HOUR
    n, total, *_ = ring.window_sums(np.array([0, 10]), np.array([20, 20]))
    assert n.tolist() == [20, 10] and total.tolist() == [sum(values[-20:]), sum(values[-10:])]


def test_the_below_detection_limit_conventions() -> None:
    assert parse_below_dl("0.00005L") == 0.00005 and parse_below_dl(" 5e-05 l ") == 0.00005
    assert parse_below_dl("<0.001") == 0.001 and parse_below_dl("< 0.001") == 0.001
    for other in ("0.00005", "L", "ND", "0.0.1L", "-1L", "nanL", "0.00005 mg/L"):
        assert parse_below_dl(other) is None, other
    assert BELOW_DL_FLAG.lower() in load([GB]).screen.dl_flags


def test_every_kind_of_event_renders(tmp_path: Path) -> None:
    """Notifications get a message for each rule's events, in both languages (no data: no value at all)."""
    ts = thresholds(
        tmp_path,
        """
        [stations.extra]
        expect = { cd = "1h" }

        [[rules]]
        kind = "rate"
        parameter = "cd"
        window = "3h"
        rise_per_hour = 0.0005

        [[rules]]
        kind = "mean"
        parameter = "cd"
        window = "2h"

        [[rules]]
        kind = "no_data"
        scope = "station"
        stations = ["extra"]
        interval = "1h"
        """,
    )
    ev = Evaluator(ts, "III")
    values = [0.001, None, None, None, None, 0.001, 0.002, 0.004, 0.006, 0.007, 0.002, 0.0001]
    events = ev.process(series(values, station="extra"), now_ns=T0 + 11 * HOUR)
    events += ev.tick(now_ns=T0 + 20 * HOUR)
    assert {(e.rule, e.parameter) for e in events} == {
        ("no_data", "cd"),
        ("no_data", "*"),
        ("rate", "cd"),
        ("instantaneous", "cd"),
        ("mean", "cd"),
    }
    for e in events:
        for language in ("en", "zh"):
            m = render(e, language, ts.stations, parse_offset("+08:00"))
            assert e.station in m.title + m.body


# ---------------------------------------------------------------- what a user gets out of the box


def shipped(values: Sequence[float], parameter: str = "cd", flags: dict[int, str] | None = None) -> list[AlertEvent]:
    """Two-hourly readings at Luodong through the shipped files alone, every default in force."""
    readings = series(values, station="luodong", parameter=parameter, every=2 * HOUR, flags=flags)
    return Evaluator(load([GB, LONGJIANG]), "III").process(readings, now_ns=readings[-1].ts_ns)


def test_by_default_the_first_reading_over_is_unconfirmed_and_the_second_confirms_it() -> None:
    events = shipped([0.0007, 0.0009, 0.012, 0.015, 0.001, 0.0011, 0.0012])
    # one calm reading (08:00) does not clear it; the second, a cycle later, does
    assert [(e.state, (e.ts_ns - T0) // HOUR, e.category) for e in events] == [
        ("unconfirmed", 4, "water"),
        ("firing", 6, "water"),
        ("resolved", 10, "water"),
    ]
    assert len({e.alert_id for e in events}) == 1
    # a reading back under the limit before the confirmation withdraws it: no alert a bureau acts on
    withdrawn = shipped([0.0007, 0.0009, 0.012, 0.0009, 0.0011])
    assert [(e.state, (e.ts_ns - T0) // HOUR) for e in withdrawn] == [("unconfirmed", 4), ("withdrawn", 6)]


def test_by_default_a_9999_cadmium_reading_is_a_sensor_fault_not_a_water_alert() -> None:
    events = shipped([0.0007, 9999.0, 9999.0, 0.0008])
    assert not [e for e in events if e.category == "water"]
    assert [(e.rule, e.state, (e.ts_ns - T0) // HOUR, e.category) for e in events] == [
        ("range", "firing", 2, "sensor"),
        ("range", "resolved", 6, "sensor"),
    ]
    assert "reads 9999 mg/L, outside the instrument range 0–10 mg/L" in events[0].detail
    since = local_time(T0 + 2 * HOUR, "Asia/Shanghai")  # the first reading out of range, in the station's time
    assert f"since {since}:" in events[0].detail, events[0].detail


def test_by_default_dissolved_oxygen_below_its_detection_limit_is_no_minimum_violation() -> None:
    # 0.03 mg/L is below the shipped DO detection limit 0.05, as is a "<DL" flagged 0.05: "unknown below
    # 0.05", a blank (reagent out) more likely than an anoxic river; neither is a water alert
    assert [e for e in shipped([8.0, 0.03, 0.05, 7.9], parameter="do", flags={2: "<DL"}) if e.category == "water"] == []
    # a real low reading above the detection limit still violates the 5 mg/L minimum
    low = shipped([8.0, 4.0, 3.9, 8.1], parameter="do")
    assert [(e.state, (e.ts_ns - T0) // HOUR) for e in low] == [("unconfirmed", 2), ("firing", 4)]
