"""Threshold files: the shipped standards and their values, stations, precedence, durations and `show`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from monitor.thresholds import (
    Limit,
    Screening,
    ThresholdError,
    ThresholdSet,
    check,
    load,
    shipped_path,
    show,
)
from monitor.thresholds.model import CheckStandard, merged_settings
from tests.thresholds_files import GB, LONGJIANG, STANDARD, write

TABLE1 = [
    "temp",
    "ph",
    "do",
    "codmn",
    "cod",
    "bod5",
    "nh3n",
    "tp",
    "tn",
    "cu",
    "zn",
    "f",
    "se",
    "as",
    "hg",
    "cd",
    "cr6",
    "pb",
    "cn",
    "phenol",
    "oil",
    "las",
    "s2",
    "fcoli",
]

TABLE2 = ["so4", "cl", "no3n", "fe", "mn"]

TABLE3 = {
    "mo": 0.07,
    "co": 1.0,
    "be": 0.002,
    "b": 0.5,
    "sb": 0.005,
    "ni": 0.02,
    "ba": 0.7,
    "v": 0.05,
    "ti": 0.1,
    "tl": 0.0001,
}


@pytest.fixture(scope="module")
def gb() -> ThresholdSet:
    return load([GB, LONGJIANG])


# ---------------------------------------------------------------- the shipped files


def test_shipped_files_exist_and_check_clean() -> None:
    assert GB.is_file() and LONGJIANG.is_file()
    assert check([GB]) == []
    assert check([LONGJIANG]) == []  # a stations-only file is valid on its own
    assert check([GB, LONGJIANG]) == []


def test_every_table_item_is_present(gb: ThresholdSet) -> None:
    (std,) = gb.standards
    assert std.id == "GB 3838-2002"
    assert std.classes == ("I", "II", "III", "IV", "V")
    assert len(TABLE1) == 24
    assert set(TABLE1) | set(TABLE2) | set(TABLE3) == set(std.items)
    for pid, value in TABLE3.items():
        for klass in std.classes:
            lim = gb.limit("anywhere", pid, klass)
            assert lim is not None and lim.value == value and lim.kind == "max"
            assert "Table 3" in lim.source


def test_cadmium_class_limits(gb: ThresholdSet) -> None:
    iii = gb.limit("nowhere", "cd", "III")
    assert iii == Limit("cd", "max", 0.005, None, "mg/L", "GB 3838-2002", "III", iii.source if iii else "")
    assert iii is not None and "item 16" in iii.source
    assert iii.describe() == "0.005 mg/L (GB 3838-2002 Class III)"
    assert iii.violated(0.0051) and not iii.violated(0.005)
    assert iii.ratio(0.041) == pytest.approx(8.2)
    one = gb.limit("nowhere", "cd", "I")
    assert one is not None and one.value == 0.001
    assert gb.limit("nowhere", "cadmium", "III") == iii  # an alias finds the same limit


def test_mercury_is_described_without_exponent(gb: ThresholdSet) -> None:
    lim = gb.limit("x", "hg", "I")
    assert lim is not None and lim.describe() == "0.00005 mg/L (GB 3838-2002 Class I)"


def test_dissolved_oxygen_is_a_minimum(gb: ThresholdSet) -> None:
    lim = gb.limit("x", "do", "III")
    assert lim is not None and lim.kind == "min" and lim.value == 5
    assert lim.violated(4) and lim.ratio(4) == pytest.approx(1.25)
    assert not lim.violated(5) and not lim.violated(8)
    assert lim.ratio(0) == math.inf
    assert lim.describe() == "≥ 5 mg/L (GB 3838-2002 Class III)"
    one = gb.limit("x", "do", "I")
    assert one is not None and one.value == 7.5


def test_ph_is_a_range(gb: ThresholdSet) -> None:
    lim = gb.limit("x", "ph", "III")
    assert lim is not None and lim.kind == "range" and (lim.low, lim.value) == (6, 9)
    assert lim.violated(9.5) and lim.ratio(9.5) == pytest.approx(9.5 / 9)
    assert lim.violated(5.5) and lim.ratio(5.5) == pytest.approx(6 / 5.5)
    assert not lim.violated(7) and lim.ratio(7) == pytest.approx(max(7 / 9, 6 / 7))
    assert lim.unit == "" and lim.describe() == "6–9 (GB 3838-2002 Class III)"


def test_total_phosphorus_lake_and_river_differ(tmp_path: Path) -> None:
    lake = write(
        tmp_path,
        """\
        [stations.dam]
        class = "III"
        water_body = "reservoir"
        """,
    )
    ts = load([GB, lake])
    river = ts.limit("elsewhere", "tp", "III")
    reservoir = ts.limit("dam", "tp", "III")
    assert river is not None and reservoir is not None
    assert (river.value, reservoir.value) == (0.2, 0.05)
    assert ts.stations["dam"].water_body == "lake"
    # total nitrogen is set for lakes and reservoirs only
    assert ts.limit("elsewhere", "tn", "III") is None
    tn = ts.limit("dam", "tn", "III")
    assert tn is not None and tn.value == 1.0


def test_water_temperature_is_not_an_instantaneous_limit(gb: ThresholdSet) -> None:
    assert gb.standards[0].items["temp"].kind == "change"
    assert gb.limit("x", "temp", "III") is None
    assert gb.limit("x", "cond", "III") is None  # not in the standard at all


def test_longjiang_stations(gb: ThresholdSet) -> None:
    km = {sid: (st.river_km, st.klass) for sid, st in gb.stations.items()}
    assert km == {
        "lalang": (0.0, "III"),
        "yemao": (25.0, "III"),
        "luodong": (57.0, "III"),
        "sancha": (80.0, "III"),
        "nuomitan": (100.0, "III"),
        "liuzhou-hexi": (160.0, "II"),
    }
    intake = gb.stations["liuzhou-hexi"]
    assert intake.intake and intake.name_zh == "柳州河西水厂取水口"
    assert not gb.stations["lalang"].intake and gb.stations["lalang"].name_zh == "拉浪水电站"
    # the station's class wins over the default class
    lim = gb.limit("liuzhou-hexi", "pb", "IV")
    assert lim is not None and (lim.klass, lim.value) == ("II", 0.01)
    lim = gb.limit("unknown-station", "pb", "IV")
    assert lim is not None and (lim.klass, lim.value) == ("IV", 0.05)


def test_limits_array(gb: ThresholdSet) -> None:
    low, high = gb.limits_array(["lalang", "liuzhou-hexi"], "pb", "III")
    assert list(high) == [0.05, 0.01] and np.all(np.isneginf(low))
    low, high = gb.limits_array(["x"], "temp", "III")
    assert np.isnan(low[0]) and np.isnan(high[0])


def test_units_are_converted_on_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "max"
        unit = "ug/L"
        limits = { I = 1, II = 5, III = 5 }
        """,
    )
    lim = load([path]).limit("x", "cd", "II")
    assert lim is not None and lim.unit == "mg/L" and lim.value == pytest.approx(0.005)


def test_earlier_files_take_precedence(tmp_path: Path) -> None:
    local = write(
        tmp_path,
        """\
        [standard]
        id = "Local"
        classes = ["I", "II", "III", "IV", "V"]

        [items.cd]
        kind = "max"
        limit = 0.003
        """,
    )
    lim = load([local, GB]).limit("x", "cd", "III")
    assert lim is not None and (lim.standard, lim.value) == ("Local", 0.003)
    lim = load([local, GB]).limit("x", "pb", "III")
    assert lim is not None and lim.standard == "GB 3838-2002"


# ---------------------------------------------------------------- the standards library

# Transcribed a second time from the official tables, in mg/L (pH: range; conductivity: µS/cm; turbidity:
# NTU), so that a typo in a file shows up as a difference here.
LIBRARY: dict[str, tuple[str, dict[str, float | tuple[float, float]]]] = {
    "gb5749-2022.toml": (
        "GB 5749-2022",
        {
            "as": 0.01,
            "cd": 0.005,
            "cr6": 0.05,
            "pb": 0.01,
            "hg": 0.001,
            "cn": 0.05,
            "f": 1.0,
            "no3n": 10,
            "turb": 1,
            "ph": (6.5, 8.5),
            "fe": 0.3,
            "mn": 0.1,
            "cu": 1.0,
            "zn": 1.0,
            "cl": 250,
            "so4": 250,
            "hardness": 450,
            "codmn": 3,
            "nh3n": 0.5,
            "sb": 0.005,
            "ba": 0.7,
            "be": 0.002,
            "b": 1.0,
            "mo": 0.07,
            "ni": 0.02,
            "tl": 0.0001,
            "se": 0.01,
            "phenol": 0.002,
            "las": 0.3,
        },
    ),
    "who-gdwq-4.toml": (
        "WHO GDWQ 4th ed. (2022)",
        {
            "sb": 0.02,
            "as": 0.01,
            "ba": 1.3,
            "b": 2.4,
            "cd": 0.003,
            "cr6": 0.05,
            "cu": 2,
            "f": 1.5,
            "pb": 0.01,
            "mn": 0.08,
            "hg": 0.006,
            "ni": 0.07,
            "no3n": 11,
            "se": 0.04,
        },
    ),
    "us-epa-mcl.toml": (
        "US EPA NPDWR (40 CFR 141)",
        {
            "sb": 0.006,
            "as": 0.010,
            "ba": 2,
            "be": 0.004,
            "cd": 0.005,
            "cr6": 0.1,
            "cn": 0.2,
            "f": 4.0,
            "hg": 0.002,
            "no3n": 10,
            "se": 0.05,
            "tl": 0.002,
            "pb": 0.010,
            "cu": 1.3,
        },
    ),
    "us-epa-smcl.toml": (
        "US EPA NSDWR (40 CFR 143)",
        {"cl": 250, "cu": 1.0, "f": 2.0, "las": 0.5, "fe": 0.3, "mn": 0.05, "ph": (6.5, 8.5), "so4": 250, "zn": 5},
    ),
    "eu-dwd-2020-2184.toml": (
        "EU DWD 2020/2184",
        {
            "sb": 0.01,
            "as": 0.01,
            "b": 1.5,
            "cd": 0.005,
            "cr6": 0.025,
            "cu": 2.0,
            "cn": 0.05,
            "f": 1.5,
            "pb": 0.005,
            "hg": 0.001,
            "ni": 0.02,
            "no3n": 11.29,
            "se": 0.02,
            "nh3n": 0.39,
            "cl": 250,
            "cond": 2500,
            "ph": (6.5, 9.5),
            "fe": 0.2,
            "mn": 0.05,
            "codmn": 5.0,
            "so4": 250,
        },
    ),
}

AFTER_2036 = 2_100_000_000 * 10**9  # 2036-07-19: after every dated step


@pytest.mark.parametrize("name", [*LIBRARY, "eu-wfd-eqs-cadmium.toml"])
def test_every_shipped_standard_checks_clean_and_cites_its_source(name: str) -> None:
    path = shipped_path(name)
    assert check([path]) == []
    (std,) = load([path]).standards
    assert not std.classes  # one value per item
    for item in std.items.values():
        assert item.source and item.origin.startswith(f"{path}:")


@pytest.mark.parametrize("name", list(LIBRARY))
def test_shipped_standards_match_their_tables(name: str) -> None:
    std_id, expected = LIBRARY[name]
    ts = load([shipped_path(name)])
    assert ts.standards[0].id == std_id
    assert set(ts.standards[0].items) == set(expected)
    for pid, value in expected.items():
        lim = ts.limit("any", pid, "III", AFTER_2036)
        assert lim is not None, pid
        if isinstance(value, tuple):
            assert (lim.kind, lim.low, lim.value) == ("range", *value), pid
        else:
            assert (lim.kind, lim.value) == ("max", value), pid
        assert lim.standard == std_id and lim.klass == ""


def test_all_standards_load_together_and_the_first_covering_one_wins() -> None:
    names = ["gb3838-2002.toml", *LIBRARY, "eu-wfd-eqs-cadmium.toml"]
    ts = load([shipped_path(n) for n in names])
    assert len(ts.standards) == len(names)
    lim = ts.limit("x", "cd", "III")
    assert lim is not None and lim.standard == "GB 3838-2002"
    lim = ts.limit("x", "hardness", "III")
    assert lim is not None and (lim.standard, lim.value) == ("GB 5749-2022", 450)


def test_the_dated_lead_and_chromium_steps() -> None:
    eu = load([shipped_path("eu-dwd-2020-2184.toml")])
    now = 1_750_000_000 * 10**9  # 2025
    for pid, before, after in (("pb", 0.01, 0.005), ("cr6", 0.05, 0.025)):
        assert eu.limit("x", pid, "III", now).value == before  # type: ignore[union-attr]
        assert eu.limit("x", pid, "III", AFTER_2036).value == after  # type: ignore[union-attr]
    day = 2_083_708_800 * 10**9  # 2036-01-12T00:00Z: the new value applies from that day
    assert eu.limit("x", "pb", "III", day - 1).value == 0.01  # type: ignore[union-attr]
    assert eu.limit("x", "pb", "III", day).value == 0.005  # type: ignore[union-attr]
    epa = load([shipped_path("us-epa-mcl.toml")])
    assert epa.limit("x", "pb", "III", now).value == 0.015  # type: ignore[union-attr]


def test_the_cadmium_eqs_depends_on_hardness() -> None:
    ts = load([shipped_path("eu-wfd-eqs-cadmium.toml")])
    spec = ts.spec("x", "cd", "III")
    assert spec is not None and spec.depends_on == "hardness"
    mac = [0.00045, 0.00045, 0.0006, 0.0009, 0.0015]
    aa = [0.00008, 0.00008, 0.00009, 0.00015, 0.00025]
    assert [lim.value for lim in spec.limits] == mac
    assert spec.mean is not None and [lim.value for lim in spec.mean.limits] == aa
    for hardness, band in ((0, 0), (39.9, 0), (40, 1), (49.9, 1), (50, 2), (100, 3), (199, 3), (200, 4), (900, 4)):
        assert spec.at(0, hardness).value == mac[band], hardness
    assert spec.at(0).value == mac[0]  # unknown hardness: the most protective class


def test_a_standard_named_by_the_station_and_a_local_limit(tmp_path: Path) -> None:
    who = shipped_path("who-gdwq-4.toml")
    stations = write(
        tmp_path,
        """\
        [stations.tap]
        standard = ["WHO GDWQ 4th ed. (2022)", "GB 3838-2002"]
        timezone = "Asia/Shanghai"
        coordinates = [24.33, 109.41]

        [stations.tap.limits]
        pb = { limit = 5, unit = "ug/L", source = "city emergency order 2012-02" }
        ph = { low = 6.5, high = 8.5 }
        """,
    )
    ts = load([GB, who, stations])
    st = ts.stations["tap"]
    assert st.coordinates == (24.33, 109.41) and st.timezone == "Asia/Shanghai"
    assert ts.limit("tap", "cd", "III").standard == "WHO GDWQ 4th ed. (2022)"  # type: ignore[union-attr]
    assert ts.limit("tap", "codmn", "III").standard == "GB 3838-2002"  # type: ignore[union-attr]
    pb = ts.limit("tap", "pb", "III")
    assert (
        pb is not None
        and pb.value == 0.005
        and pb.describe() == ("0.005 mg/L (local limit, city emergency order 2012-02)")
    )
    ph = ts.limit("tap", "ph", "III")
    assert ph is not None and (ph.kind, ph.low, ph.value) == ("range", 6.5, 8.5)
    assert ts.limit("elsewhere", "cd", "III").standard == "GB 3838-2002"  # type: ignore[union-attr]


def test_the_class_policy_wins_over_the_station_files(tmp_path: Path) -> None:
    policy = write(tmp_path, '[classes]\nintake = "I"\ndefault = "IV"\n')
    ts = load([GB, LONGJIANG, policy])
    assert ts.class_of("liuzhou-hexi", "III") == ("I", f"{policy}:2 ([classes].intake)")
    assert ts.class_of("lalang", "III") == ("IV", f"{policy}:3 ([classes].default)")
    assert ts.class_of("nowhere", "III")[0] == "IV"
    plain = load([GB, LONGJIANG])
    assert plain.class_of("lalang", "I") == ("III", f"{LONGJIANG}:19 (stations.lalang.class)")
    assert plain.class_of("nowhere", "I") == ("I", "the configured default_class")


def test_durations() -> None:
    from monitor.thresholds import format_duration, parse_duration

    hour = 3600 * 10**9
    assert parse_duration("2h") == 2 * hour and parse_duration("1h30m") == 90 * 60 * 10**9
    assert parse_duration("15min") == parse_duration("15m") == 15 * 60 * 10**9
    assert parse_duration("7d") == parse_duration("1w") == 168 * hour and parse_duration("0.5h") == hour // 2
    for bad in ("", "2", "2 hours", "h", "-1h", "1y", 5, None):
        assert parse_duration(bad) is None, bad
    assert format_duration(90 * 60 * 10**9) == "1 h 30 min" and format_duration(365 * 24 * hour) == "365 d"


# ---------------------------------------------------------------- show


def test_show_says_what_applies_and_where_it_comes_from(tmp_path: Path) -> None:
    from monitor.thresholds import show

    rules = shipped_path("examples/longjiang-rules.toml")
    text = show([GB, LONGJIANG, rules], "liuzhou-hexi")
    assert text.startswith(
        f"station liuzhou-hexi: Liuzhou Hexi waterworks intake / 柳州河西水厂取水口, Longjiang km 160    ({LONGJIANG}:"
    )
    assert f"  class II    from {rules}:11 ([classes].intake)\n" in text
    assert f"  standards GB 3838-2002    from {LONGJIANG}:" in text
    cd = next(line for line in text.splitlines() if line.startswith("  cd "))
    assert "0.005 mg/L (GB 3838-2002 Class II)" in cd and cd.endswith(f"{GB}:117")
    assert "  instantaneous: every parameter with a limit: each reading against the limit    (built in)" in text
    assert (
        f"  rate 'cadmium-trend': cd: rising ≥ 0.0001 mg/L per hour over 12 h, from 0.4 × the limit, "
        f"at least 3 readings, severity warning    {rules}:14"
    ) in text
    assert f"  ignored flags: calibration, maintenance    {rules}:24" in text
    assert "  severity by ratio: warning ≥ 1, serious ≥ 5, critical ≥ 20    (built in)" in text
    unknown = show([GB], "nowhere", "IV")
    assert unknown.startswith("station nowhere: not in any station file")
    assert "  class IV    from the configured default_class" in unknown
    with pytest.raises(ThresholdError):
        show([str(tmp_path / "missing.toml")], "lalang")


# ---------------------------------------------------------------- screening


def test_screen_and_instrument_tables_layer_into_each_series_screening(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [screen]
        flatline = 6
        spike_mads = 4

        [instruments.cd]
        unit = "µg/L"
        range = [0, 50]
        detection_limit = 0.1
        spike_floor = 0.5

        [stations.s]
        name = "S"

        [stations.s.instruments.cd]
        flatline = 3
        """,
    )
    ts = load([GB, path])
    # the station's own table wins over [instruments.cd], which wins over [screen], which wins over the shipped
    # instrument defaults (the cadmium check standard 0.010 mg/L is left from those); µg/L became mg/L
    shipped_cd_check = CheckStandard(0.010, tolerance=0.1)
    assert ts.screening("s", "cd") == Screening(
        range=(0.0, 0.05),
        detection_limit=0.0001,
        flatline=3,
        spike_window=12,
        spike_mads=4.0,
        spike_floor=0.0005,
        check=shipped_cd_check,
    )
    assert ts.screening("s", "cd").active
    # [screen] flatline 6 beats the shipped pH flatline 8; range and check standard stay the shipped ones
    assert ts.screening("elsewhere", "ph") == Screening(
        range=(0.0, 14.0), flatline=6, spike_window=12, spike_mads=4.0, check=CheckStandard(9.18, tolerance=0.01)
    )
    assert ts.screening("elsewhere", "ph").spike_window == 12 and ts.screening("elsewhere", "ph").active
    # the settings as the files set them (no defaults), in the order `show` prints them
    assert list(merged_settings(ts.screen_layers("s", "cd", shipped=False)).items()) == [
        ("flatline", 3),
        ("spike_mads", 4.0),
        ("spike_floor", 0.0005),
        ("range", (0.0, 0.05)),
        ("detection_limit", 0.0001),
    ]
    assert merged_settings(ts.screen_layers("elsewhere", "ph", shipped=False)) == {"flatline": 6, "spike_mads": 4.0}
    assert merged_settings(ts.screen_layers("s", "cd"))["check"] == shipped_cd_check
    text = show([GB, path], "s")
    cd = next(line for line in text.splitlines() if line.startswith("  cd: "))
    assert cd.startswith("  cd: flatline 3, spike_window 12, range (0.0, 0.05), ") and "detection_limit 0.0001" in cd
    assert cd.endswith(f"    {path}:14")


def test_the_shipped_instrument_defaults_screen_every_series_unless_turned_off(
    gb: ThresholdSet, tmp_path: Path
) -> None:
    # out of the box, at a station no file describes (only the shipped defaults apply): what the instrument
    # can measure, its detection limit, its check standard, when it is stuck
    assert gb.screening("a-new-station", "cd") == Screening(
        range=(0.0, 10.0), flatline=4, spike_window=12, check=CheckStandard(0.010, tolerance=0.1)
    )
    assert gb.screening("a-new-station", "do") == Screening(
        range=(0.0, 25.0), detection_limit=0.05, flatline=6, spike_window=12
    )
    assert gb.screening("a-new-station", "cd").active
    assert merged_settings(gb.screen_layers("a-new-station", "cd", shipped=False)) == {}
    # `[screen] instrument_defaults = false`: only the instrument flags screen
    off = load([GB, LONGJIANG, write(tmp_path, "[screen]\ninstrument_defaults = false\n")])
    assert off.screening("a-new-station", "cd") == Screening()
    assert not off.screening("a-new-station", "cd").active and not off.screening("a-new-station", "do").active
    assert merged_settings(off.screen_layers("a-new-station", "cd")) == {}
    assert not Screening().active
    assert (Screening().spike_mads, Screening().spike_floor) == (6.0, 0.0)
    assert gb.screen.ignore_flags == frozenset({"maintenance", "calibration", "backfill"})
