"""Dosing points in the river description: a forecast below a running one is lowered by its removal (no
station above it can show that), one not yet started or already over changes nothing, one that starts while
the plume passes lowers only what passes after, one announced ahead (`planned`) counts before it runs, and
a bad table is named with its path:line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.alerts.forecast import NS_PER_HOUR, Forecaster, Target
from monitor.thresholds import check, load, shipped_path
from tests.test_forecast_model import LIMIT, T0, truth

DESCRIPTION = """
[stations.a]
river = "R"
river_km = 10.0
[stations.b]
river = "R"
river_km = 30.0
[stations.c]
river = "R"
river_km = 60.0
intake = true
[rivers.R]
flow_m3s = 50.0
[[rivers.R.reaches]]
from_km = 0.0
to_km = 100.0
velocity_km_per_day = 10.0
dispersion_km2_per_day = 4.0
[[rivers.R.tributaries]]
km = 45.0
name = "Side"
flow_m3s = 50.0
[[rivers.R.treatments]]
km = 40.0
name = "lime below the dam"
removal = 0.5
from = {start}
until = 2030-01-01T00:00:00+08:00
"""


def _at(hours: float) -> str:
    """T0 + hours as a TOML date-time."""
    return datetime.fromtimestamp(T0 / 1e9 + hours * 3600, UTC).isoformat()


def _peak_at_c(tmp_path: Path, start: str, km: float = 40.0, planned: str | None = None, now_h: int = 24 * 5) -> float:
    path = tmp_path / "r.toml"
    text = DESCRIPTION.format(start=start).replace("km = 40.0", f"km = {km}")
    if planned is not None:
        text += f"planned = {planned}\n"
    path.write_text(text, encoding="utf-8")
    river = load([shipped_path(), path]).rivers["R"]
    f = Forecaster(river, "cd", [Target("c", 60.0, LIMIT, True)])
    for station, km in (("a", 10.0), ("b", 30.0)):
        hours = np.arange(-48, now_h + 1, 2)
        f.observe(station, km, T0 + hours * NS_PER_HOUR, truth(km, hours))
        f.hit(station, km, T0 + int(hours[np.argmax(truth(km, hours) > LIMIT)]) * NS_PER_HOUR)
    [c] = f.issue(T0 + now_h * NS_PER_HOUR)
    return c.peak_value - 0.0005  # the excess over the background


def test_a_running_dosing_point_halves_the_forecast_below_it(tmp_path: Path) -> None:
    running = _peak_at_c(tmp_path, "2020-01-01T00:00:00+08:00")
    not_yet = _peak_at_c(tmp_path, "2029-01-01T00:00:00+08:00")  # starts after the forecast: not applied
    assert abs(running / not_yet - 0.5) < 0.02


def test_a_dosing_that_starts_while_the_plume_passes_lowers_only_what_passes_after(tmp_path: Path) -> None:
    before = _peak_at_c(tmp_path, "2020-01-01T00:00:00+08:00")
    untreated = _peak_at_c(tmp_path, "2029-01-01T00:00:00+08:00")
    midway = _peak_at_c(tmp_path, _at(84))  # running at the forecast (day 5); the plume passed km 40 about then
    assert abs(before / untreated - 0.5) < 0.02
    assert 0.55 < midway / untreated < 0.95  # not the whole plume halved: its head had gone by


def test_a_dosing_announced_ahead_counts_before_it_runs(tmp_path: Path) -> None:
    untreated = _peak_at_c(tmp_path, "2029-01-01T00:00:00+08:00", km=55.0, now_h=72)
    soon = _at(73)  # an hour after the forecast (day 3), before the plume reaches km 55
    assert abs(_peak_at_c(tmp_path, soon, km=55.0, now_h=72) / untreated - 1.0) < 0.01  # not known: not counted
    announced = _peak_at_c(tmp_path, soon, km=55.0, planned=_at(0), now_h=72)
    assert 0.45 < announced / untreated < 0.6


def test_a_bad_treatment_is_named_with_its_line(tmp_path: Path) -> None:
    text = DESCRIPTION.format(start="2020-01-01T00:00:00").replace("removal = 0.5", "removal = 1.5")
    path = tmp_path / "r.toml"
    path.write_text(text.replace("km = 40.0", "km = 140.0"), encoding="utf-8")
    problems = {p.line: p.message for p in check([shipped_path(), path])}
    assert sorted(problems) == [24, 26, 27], problems  # the km, removal and from lines of the table
    assert problems[24].endswith(".km 140 is outside the reaches (0 to 100 km)")
    assert problems[26].endswith(".removal: the share of the load removed, at least 0 and under 1, not 1.5")
    assert "from: needs a date-time with its offset" in problems[27]


def test_a_plan_announced_after_the_dosing_began_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    text = DESCRIPTION.format(start="2020-01-01T00:00:00+08:00") + "planned = 2020-01-02T00:00:00+08:00\n"
    path.write_text(text, encoding="utf-8")
    problems = {p.line: p.message for p in check([shipped_path(), path])}
    assert list(problems) == [len(text.splitlines())], problems
    assert problems[len(text.splitlines())].endswith(
        ".planned: when the dosing was known to be coming, at or before from"
    )
