"""Severity tiers per station, parameter or standard (issue 17): `[alerts.severity_by.<scope>.<id>]`."""

from __future__ import annotations

from pathlib import Path

from monitor.alerts.evaluator import Evaluator
from monitor.domain.reading import Reading
from monitor.thresholds import check, explain, load, shipped_path

H = 3_600_000_000_000
T0 = 1_326_585_600_000_000_000  # 2012-01-15 00:00 UTC
STATIONS = shipped_path("longjiang-stations.toml")


def _files(tmp_path: Path, alerts: str) -> list[Path]:
    path = tmp_path / "alerts.toml"
    path.write_text(alerts, encoding="utf-8")
    return [shipped_path(), STATIONS, path]


def _severities(files: list[Path], station: str, values: list[float]) -> list[tuple[str, str]]:
    ev = Evaluator(load(files), "III")
    readings = [Reading(station, "cd", T0 + i * 2 * H, v, None) for i, v in enumerate(values)]
    return [(e.state, e.severity) for e in ev.process(readings, now_ns=readings[-1].ts_ns) if e.rule == "instantaneous"]


def test_an_intake_can_call_four_times_the_cadmium_limit_critical(tmp_path: Path) -> None:
    """Liuzhou's Hexi intake is Class II (0.005 mg/L cadmium): 4.4x there must be critical, where the shipped
    tiers (warning 1, serious 5, critical 20) call it a warning; the river stations keep the shipped tiers."""
    files = _files(tmp_path, "[alerts.severity_by.station.liuzhou-hexi]\nserious = 2\ncritical = 4\n")
    readings = [0.0006, 0.0005, 0.0222, 0.0221, 0.0223]
    at_intake = _severities(files, "liuzhou-hexi", readings)
    assert at_intake and at_intake[-1][1] == "critical"
    in_river = _severities(files, "luodong", readings)
    assert in_river and {s for _, s in in_river} == {"warning"}
    assert at_intake != _severities([shipped_path(), STATIONS], "liuzhou-hexi", readings)


def test_a_station_scope_wins_over_a_parameter_scope(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        "[alerts.severity_by.parameter.cd]\nserious = 2\n\n[alerts.severity_by.station.luodong]\nserious = 8\n",
    )
    readings = [0.0006, 0.0005, 0.0222, 0.0221, 0.0223]
    assert {s for _, s in _severities(files, "luodong", readings)} == {"warning"}
    assert _severities(files, "yemao", readings)[-1][1] == "serious"
    shown = explain(load(files), "luodong")
    assert "severity for station luodong: warning ≥ 1, serious ≥ 8, critical ≥ 20" in shown


def test_bad_scopes_are_named_with_their_line(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        "[alerts.severity_by.station.liuzhou-hexy]\ncritical = 4\n\n"
        "[alerts.severity_by.parameter.cadmium]\ncritical = 4\n\n"
        "[alerts.severity_by.station.luodong]\nurgent = 4\nserious = 30\n\n"
        "[alerts.severity_by.river.longjiang]\ncritical = 4\n",
    )
    path = str(files[-1])
    got = [str(p) for p in check(files)]

    def one(prefix: str) -> str:
        [line] = [g for g in got if g.startswith(f"{path}:{prefix}")]
        return line

    wrong_station = one("1: alerts.severity_by.station.liuzhou-hexy: no station 'liuzhou-hexy' in the threshold files")
    assert "liuzhou-hexi" in wrong_station
    one("4: alerts.severity_by.parameter.cadmium: unknown parameter id 'cadmium'")
    one("8: alerts.severity_by.station.luodong.urgent: not a severity tier (one of warning, serious, critical)")
    assert "serious 30, critical 20" in one("7: alerts.severity_by.station.luodong: the tiers must rise")
    one("11: alerts.severity_by.river: expected [alerts.severity_by.station.<id>]")
    assert len(got) == 5
