"""Rules: readings checked against the shipped GB 3838-2002 limits for each station's class."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from monitor.domain.reading import Reading
from monitor.rules import QuietChecks, Rules, SeriesCheck
from monitor.thresholds import ThresholdSet

T0 = 1_326_585_600 * 10**9  # 2012-01-15T00:00:00Z
HOUR = 3600 * 10**9


@pytest.fixture
def rules(thresholds: ThresholdSet) -> Rules:
    return Rules(thresholds, "III")


def series(checks: Sequence[SeriesCheck | QuietChecks]) -> list[SeriesCheck]:
    """A small batch without open alerts: its quiet series come expanded, so every check is a SeriesCheck."""
    assert all(isinstance(c, SeriesCheck) for c in checks), checks
    return [c for c in checks if isinstance(c, SeriesCheck)]


def one(checks: Sequence[SeriesCheck | QuietChecks], station: str, parameter: str) -> SeriesCheck:
    found = [c for c in series(checks) if (c.station, c.parameter) == (station, parameter)]
    assert len(found) == 1, checks
    return found[0]


def fresh(rules: Rules) -> Rules:
    """Rules remember each series' last reading time; a fresh one evaluates the same times again."""
    return Rules(rules.thresholds, "III")


def verdicts(rules: Rules, station: str, parameter: str, *values: float) -> tuple[list[bool], list[float]]:
    readings = [Reading(station, parameter, T0 + i * HOUR, v) for i, v in enumerate(values)]
    c = one(fresh(rules).evaluate(readings), station, parameter)
    return [bool(x) for x in c.violated], [float(x) for x in c.ratio]


def test_cadmium_over_the_class_iii_limit_is_violated_with_its_ratio(rules: Rules) -> None:
    violated, ratio = verdicts(rules, "lalang", "cd", 0.041)
    assert violated == [True]
    assert ratio[0] == pytest.approx(8.2)
    c = one(fresh(rules).evaluate([Reading("lalang", "cd", T0, 0.041)]), "lalang", "cd")
    assert (c.limit.value, c.limit.klass, c.limit.standard) == (0.005, "III", "GB 3838-2002")


def test_cadmium_exactly_at_the_limit_is_not_violated(rules: Rules) -> None:
    violated, ratio = verdicts(rules, "lalang", "cd", 0.005, 0.0049, 0.0051)
    assert violated == [False, False, True]
    assert ratio[0] == pytest.approx(1.0)


def test_dissolved_oxygen_below_its_minimum_is_violated_with_limit_over_value(rules: Rules) -> None:
    violated, ratio = verdicts(rules, "lalang", "do", 4.0, 5.0, 8.0)
    assert violated == [True, False, False]
    assert ratio[0] == pytest.approx(5.0 / 4.0)


def test_ph_outside_6_to_9_is_violated(rules: Rules) -> None:
    violated, ratio = verdicts(rules, "lalang", "ph", 9.5, 5.5, 7.0, 6.0, 9.0)
    assert violated == [True, True, False, False, False]
    assert ratio[0] == pytest.approx(9.5 / 9)
    assert ratio[1] == pytest.approx(6 / 5.5)
    assert ratio[2] < 1


def test_a_class_ii_station_is_held_to_its_own_limit(rules: Rules) -> None:
    hexi_v, hexi_r = verdicts(rules, "liuzhou-hexi", "hg", 0.00008)
    lalang_v, _ = verdicts(rules, "lalang", "hg", 0.00008)
    assert hexi_v == [True]
    assert hexi_r[0] == pytest.approx(0.00008 / 0.00005)
    assert lalang_v == [False]
    checks = fresh(rules).evaluate([Reading("liuzhou-hexi", "hg", T0, 0.00008), Reading("lalang", "hg", T0, 0.00008)])
    assert one(checks, "liuzhou-hexi", "hg").limit.klass == "II"
    assert one(checks, "liuzhou-hexi", "hg").limit.value == 0.00005
    assert one(checks, "lalang", "hg").limit.value == 0.0001


def test_an_unknown_station_gets_the_default_class(thresholds: ThresholdSet) -> None:
    strict = Rules(thresholds, "I")
    c = one(strict.evaluate([Reading("elsewhere", "cd", T0, 0.002)]), "elsewhere", "cd")
    assert c.limit.klass == "I"
    assert bool(c.violated[0])
    relaxed = Rules(thresholds, "III")
    assert not bool(one(relaxed.evaluate([Reading("elsewhere", "cd", T0, 0.002)]), "elsewhere", "cd").violated[0])


@pytest.mark.parametrize("flag", ["maintenance", "calibration"])
def test_flagged_readings_are_not_evaluated(rules: Rules, flag: str) -> None:
    readings = [
        Reading("lalang", "cd", T0, 0.5, flag),
        Reading("lalang", "cd", T0 + HOUR, 0.003),
        Reading("yemao", "cd", T0, 0.5, flag),
    ]
    checks = rules.evaluate(readings)
    c = one(checks, "lalang", "cd")
    assert c.values.tolist() == [0.003]
    assert c.violated.tolist() == [False]
    assert not [x for x in series(checks) if x.station == "yemao"]


def test_readings_of_a_series_are_put_in_time_order(rules: Rules) -> None:
    readings = [
        Reading("lalang", "cd", T0 + 2 * HOUR, 0.03),
        Reading("yemao", "cd", T0 + HOUR, 0.001),
        Reading("lalang", "cd", T0, 0.01),
        Reading("lalang", "cd", T0 + HOUR, 0.002),
    ]
    checks = rules.evaluate(readings)
    c = one(checks, "lalang", "cd")
    assert c.ts_ns.tolist() == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert c.values.tolist() == [0.01, 0.002, 0.03]
    assert c.violated.tolist() == [True, False, True]
    assert one(checks, "yemao", "cd").values.tolist() == [0.001]


def test_parameters_without_an_evaluable_limit_produce_no_check(rules: Rules) -> None:
    checks = rules.evaluate([Reading("lalang", "temp", T0, 35.0), Reading("lalang", "cd", T0, 0.001)])
    assert [(c.station, c.parameter) for c in series(checks)] == [("lalang", "cd")]


def test_an_empty_batch_gives_no_checks(rules: Rules) -> None:
    assert rules.evaluate([]) == []
