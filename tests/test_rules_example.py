"""The example policy file: "Class II for drinking-water intake stations, Class III elsewhere; warn on a rising
cadmium trend before the limit; ignore readings during calibration" loads, checks clean and behaves."""

from __future__ import annotations

import numpy as np

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.domain.reading import Reading
from monitor.thresholds import check, load, shipped_path

PATHS = [shipped_path(), shipped_path("longjiang-stations.toml"), shipped_path("examples/longjiang-rules.toml")]
HOUR = 3600 * 10**9
T0 = 1_326_585_600 * 10**9

# A cadmium plume down the Longjiang, made here so that the test does not move with the simulator: per station
# (peak day, peak mg/L above background, rise and fall sigma in days), background ~0.0007 mg/L, 2-hourly
# readings, sensor noise, values rounded to 0.00001 mg/L as analysers report them.
PULSES = {
    "lalang": (4.0, 0.41, 0.8, 4.5),
    "yemao": (6.1, 0.10, 1.0, 4.5),
    "luodong": (8.75, 0.026, 1.5, 4.5),
    "sancha": (13.7, 0.08, 2.5, 4.0),
    "nuomitan": (18.0, 0.06, 3.0, 3.5),
    "liuzhou-hexi": (23.0, 0.003, 3.0, 3.5),
}


def plume(days: int = 28, seed: int = 2012) -> list[Reading]:
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * 12) / 12.0
    out: list[Reading] = []
    for station, (peak, height, rise, fall) in PULSES.items():
        dt = t - peak
        pulse = height * np.exp(-0.5 * (dt / np.where(dt < 0, rise, fall)) ** 2)
        cd = 0.0007 + 0.00005 * rng.standard_normal(len(t)) + pulse * np.exp(0.03 * rng.standard_normal(len(t)))
        out += [Reading(station, "cd", T0 + i * 2 * HOUR, round(float(v), 5)) for i, v in enumerate(cd)]
    return sorted(out, key=lambda r: (r.ts_ns, r.station))


def test_it_is_a_few_readable_lines() -> None:
    text = PATHS[2].read_text(encoding="utf-8")
    settings = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(settings) <= 15, settings
    assert check(PATHS) == []


def test_class_ii_at_the_intake_and_class_iii_elsewhere() -> None:
    ts = load(PATHS)
    for station in ts.stations:
        klass = ts.class_of(station, "IV")[0]
        assert klass == ("II" if ts.stations[station].intake else "III"), station
    assert ts.class_of("a-new-station", "IV")[0] == "III"
    assert ts.limit("liuzhou-hexi", "hg", "III").value == 0.00005  # type: ignore[union-attr]


def run_scenario() -> list[AlertEvent]:
    ev = Evaluator(load(PATHS), "III")
    readings = plume()
    return [e for i in range(0, len(readings), 100) for e in ev.process(readings[i : i + 100], now_ns=0)]


def test_the_trend_warning_comes_before_the_limit_at_every_station() -> None:
    events = run_scenario()
    first: dict[tuple[str, str, str], int] = {}
    for e in events:
        first.setdefault((e.station, e.rule, e.state), e.ts_ns)
    for station in ("lalang", "yemao", "luodong", "sancha", "nuomitan"):
        # the trend's first notice 6 h before the limit's first notice, and the confirmed warning 6 h before
        # the confirmed alert
        for state in ("unconfirmed", "firing"):
            ahead = first[(station, "instantaneous", state)] - first[(station, "rate", state)]
            assert ahead >= 6 * HOUR, (station, state, ahead / HOUR)
        # each confirmed by the next reading, two hours after its first notice; the limit's notice may open a
        # reading earlier, under the limit but rising toward it within its noise ("rising toward the limit")
        assert first[(station, "rate", "firing")] - first[(station, "rate", "unconfirmed")] == 2 * HOUR
        step = first[(station, "instantaneous", "firing")] - first[(station, "instantaneous", "unconfirmed")]
        assert step in (2 * HOUR, 4 * HOUR), (station, step / HOUR)
    # the intake's peak is 0.0037 mg/L: neither over its Class II limit nor rising fast enough to warn
    assert not [e for e in events if e.station == "liuzhou-hexi"]
    # one warning per station and incident, not one per noisy slope (none withdrawn); each clears once the
    # plume has passed
    trend = [(e.station, e.state) for e in events if e.rule == "rate"]
    assert sorted(trend) == sorted(
        (s, state)
        for s in PULSES
        if s != "liuzhou-hexi"
        for state in ("unconfirmed", "firing", "resolved")
        if (s, state) != ("nuomitan", "resolved")
    )
    notice, warning = [e for e in events if e.rule == "rate"][:2]
    assert (notice.state, warning.state) == ("unconfirmed", "firing")
    assert notice.alert_id == warning.alert_id == "lalang/cd/cadmium-trend/20120116T0800Z"
    assert notice.severity == "warning" and notice.detail == "rising 0.0001249 mg/L per hour over the last 12 h"
    assert warning.severity == "warning" and warning.ratio < 1


def test_calibration_readings_are_ignored() -> None:
    ev = Evaluator(load(PATHS), "III")
    readings = [
        Reading("liuzhou-hexi", "cd", T0 + i * HOUR, v, f)
        for i, (v, f) in enumerate([(0.001, None), (0.05, "calibration"), (0.06, "calibration"), (0.001, None)])
    ]
    assert ev.process(readings, now_ns=0) == []
    first = ev.process([Reading("liuzhou-hexi", "cd", T0 + 4 * HOUR, 0.006)], now_ns=0)
    assert [(e.state, e.limit.describe()) for e in first] == [("unconfirmed", "0.005 mg/L (GB 3838-2002 Class II)")]
    # a calibration reading neither confirms nor withdraws it: the next river reading does
    assert ev.process([Reading("liuzhou-hexi", "cd", T0 + 5 * HOUR, 0.0, "calibration")], now_ns=0) == []
    fired = ev.process([Reading("liuzhou-hexi", "cd", T0 + 6 * HOUR, 0.007)], now_ns=0)
    assert [(e.state, e.alert_id) for e in fired] == [("firing", first[0].alert_id)]
    # and a calibration reading cannot clear it either
    assert ev.process([Reading("liuzhou-hexi", "cd", T0 + 7 * HOUR, 0.0, "calibration")], now_ns=0) == []
