"""River descriptions in station files: what the forecast reads (travel times, dilution), and the checker's
`path:line:` problems for a description that would mislead it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.offline.variants import default_files
from monitor.thresholds import check, load, shipped_path

STATION = """
[stations.a]
river = "R"
river_km = {km}
"""
RIVER = """
[rivers.R]
flow_m3s = 10.0
[[rivers.R.reaches]]
from_km = 0.0
to_km = 40.0
velocity_km_per_day = 4.0
kind = "pool"
[[rivers.R.reaches]]
from_km = {second_from}
to_km = 100.0
travel_time = "2d"
[[rivers.R.tributaries]]
km = 60.0
name = "T"
flow_m3s = 30.0
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_travel_time_and_dilution_from_the_reaches(tmp_path: Path) -> None:
    path = _write(tmp_path, STATION.format(km=20.0) + RIVER.format(second_from=40.0))
    river = load([shipped_path(), path]).rivers["R"]
    assert river.travel_days(0.0, 40.0) == pytest.approx(10.0)
    assert river.travel_days(40.0, 100.0) == pytest.approx(2.0)  # "2d" over 60 km: 30 km/day
    assert river.travel_days(20.0, 70.0) == pytest.approx(5.0 + 1.0)
    assert river.dilution(20.0, 70.0) == pytest.approx(4.0) and river.dilution(70.0, 90.0) == 1.0
    assert river.reach_at(50.0) is not None and river.reach_at(150.0) is None
    assert river.velocity_at(150.0) == pytest.approx(30.0)  # beyond the last reach: the last reach's speed


def test_a_gap_between_reaches_and_a_station_outside_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, STATION.format(km=120.0) + RIVER.format(second_from=45.0) + "bogus = 1\n")
    messages = [f"{p.line}: {p.message}" for p in check([shipped_path(), path])]
    assert any("reaches[1]: from_km 45 leaves a gap" in m for m in messages), messages
    gap = check([shipped_path(), _write(tmp_path, STATION.format(km=120.0) + RIVER.format(second_from=40.0))])
    assert [p.message for p in gap] == [
        f"stations.a.river_km 120 is outside the reaches of [rivers.R] (0 to 100 km, {tmp_path / 'r.toml'}:6)"
    ]
    assert gap[0].line == 4


def test_bad_speed_and_unknown_key(tmp_path: Path) -> None:
    text = STATION.format(km=10.0) + RIVER.format(second_from=40.0).replace("velocity_km_per_day = 4.0", "speed = 4")
    messages = [p.message for p in check([shipped_path(), _write(tmp_path, text)])]
    assert any("unknown key 'speed'" in m for m in messages), messages
    assert any("no speed" in m for m in messages), messages


def test_shipped_station_files_describe_both_scenario_rivers() -> None:
    ts = load(default_files())
    assert set(ts.rivers) == {"Longjiang", "Beijiang"}
    assert {"yingde", "gaoqiao", "lalang", "liuzhou-hexi"} <= set(ts.stations) and ts.stations["yingde"].intake
    longjiang = ts.rivers["Longjiang"]
    assert longjiang.travel_days(112.0, 160.0) == pytest.approx(70 / 24)
    assert longjiang.dilution(100.0, 160.0) > 5
    pool = longjiang.reach_at(10.0)
    assert pool is not None and pool.kind == "pool"


def test_chinese_names_of_the_shipped_rivers_for_messages() -> None:
    """A zh message names the river a station is on: the Longjiang above the Rongjiang, the Liujiang below."""
    rivers = load(default_files()).rivers
    longjiang, beijiang = rivers["Longjiang"], rivers["Beijiang"]
    assert longjiang.name_zh == "龙江" and beijiang.name_zh == "北江"
    assert longjiang.name_zh_at(57.0) == "龙江" and longjiang.name_zh_at(160.0) == "柳江"
    assert longjiang.name_zh_at(None) == "龙江" and beijiang.name_zh_at(100.0) == "北江"
    assert [(t.name, t.name_zh) for t in longjiang.tributaries] == [("Rongjiang", "融江")]


def test_a_name_zh_that_is_not_a_string_is_named(tmp_path: Path) -> None:
    text = STATION.format(km=10.0) + RIVER.format(second_from=40.0).replace(
        "[rivers.R]\n", "[rivers.R]\nname_zh = 3\n"
    ).replace('name = "T"\n', 'name = "T"\nname_zh = ["x"]\n')
    messages = [p.message for p in check([shipped_path(), _write(tmp_path, text)])]
    assert "rivers.R.name_zh must be a string" in messages, messages
    assert "rivers.R.tributaries[0].name_zh must be a string" in messages, messages
    path = _write(
        tmp_path,
        STATION.format(km=10.0)
        + RIVER.format(second_from=40.0).replace("[rivers.R]\n", '[rivers.R]\nname_zh = "河"\n'),
    )
    river = load([shipped_path(), path]).rivers["R"]
    assert river.name_zh == "河" and river.name_zh_at(80.0) == "河"
