"""Threshold files: the shipped GB 3838-2002 values, station tables, and `check`'s path:line messages."""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest

from monitor.thresholds import (
    Limit,
    Problem,
    ThresholdError,
    ThresholdSet,
    check,
    load,
    shipped_path,
)

GB = shipped_path()
LONGJIANG = shipped_path("longjiang-stations.toml")

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

STANDARD = """\
[standard]
id = "T"
classes = ["I", "II", "III"]
"""


@pytest.fixture(scope="module")
def gb() -> ThresholdSet:
    return load([GB, LONGJIANG])


def write(tmp_path: Path, text: str, name: str = "t.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


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


# ---------------------------------------------------------------- check: path:line: message


def test_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + 'name = "unterminated\n')
    assert lines(check([path])) == [f"{path}:4: invalid TOML: Illegal character '\\n' (column 21)"]


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + 'id = "again"\n')
    assert lines(check([path])) == [
        f"{path}:4: invalid TOML: duplicate key 'id' (cannot overwrite a value) (column 13)"
    ]


def test_duplicate_table(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + '\n[items.cd]\nkind = "max"\n\n[items.cd]\n')
    assert lines(check([path])) == [f"{path}:8: invalid TOML: duplicate table [items.cd] (declared twice) (column 10)"]


def test_duplicate_inline_key(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + '[items.cd]\nkind = "max"\nlimits = { I = 1, I = 2 }\n')
    assert lines(check([path])) == [f"{path}:6: invalid TOML: Duplicate inline table key 'I' (column 24)"]


def test_unknown_parameter_suggests_the_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cadmium]
        kind = "max"
        limit = 0.005

        [items.lede]
        kind = "max"
        limit = 0.05

        [items.zzz]
        kind = "max"
        limit = 1
        """,
    )
    assert lines(check([path])) == [
        f"{path}:5: items.cadmium: unknown parameter id 'cadmium' ('cadmium' is an alias: use the id 'cd')",
        f"{path}:9: items.lede: unknown parameter id 'lede'",
        f"{path}:13: items.zzz: unknown parameter id 'zzz'",
    ]


def test_unknown_unit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "max"
        unit = "mg/m3"
        limit = 0.005

        [items.ph]
        kind = "range"
        unit = "mg/L"
        low = 6
        high = 9
        """,
    )
    assert lines(check([path])) == [
        f"{path}:7: items.cd.unit: unknown unit 'mg/m3' for cd (use 'mg/L' or a unit convertible to it)",
        f"{path}:12: items.ph.unit: unknown unit 'mg/L' for ph (use no unit ('') or a unit convertible to it)",
    ]


def test_missing_and_extra_class(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "max"
        unit = "mg/L"
        limits = { I = 0.001, II = 0.005 }

        [items.pb]
        kind = "max"
        limits = { I = 0.01, II = 0.01, III = 0.05, IV = 0.05 }
        """,
    )
    assert lines(check([path])) == [
        f"{path}:8: items.cd.limits: no value for class III",
        f"{path}:12: items.pb.limits: class 'IV' is not in standard.classes (I, II, III)",
    ]


def test_contradictory_ordering(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "max"
        limits.I = 0.005
        limits.II = 0.001
        limits.III = 0.01

        [items.do]
        kind = "min"
        limits = { I = 5, II = 6, III = 2 }

        [items.ph]
        kind = "range"
        low = { I = 6, II = 9, III = 6 }
        high = { I = 9, II = 6, III = 9 }
        """,
    )
    assert lines(check([path])) == [
        f"{path}:8: items.cd.limits.II = 0.001 is stricter than class I (0.005): max limits must not decrease "
        "from class I to III",
        f"{path}:13: items.do.limits.II = 6 is stricter than class I (5): min limits must not increase "
        "from class I to III",
        f"{path}:17: items.ph: class II: low 9 is not below high 6",
    ]


def test_bad_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "max"
        limits = { I = 0.001, II = -0.005, III = 0.005 }

        [items.pb]
        kind = "max"
        limit = "0.05"

        [items.hg]
        kind = "max"
        limit = inf

        [items.temp]
        kind = "change"
        max_rise = -1
        """,
    )
    assert lines(check([path])) == [
        f"{path}:7: items.cd.limits.II: negative limit -0.005",
        f"{path}:11: items.pb.limit: not a number: '0.05'",
        f"{path}:15: items.hg.limit: not a finite number: inf",
        f"{path}:19: items.temp.max_rise: negative limit -1",
    ]


def test_unknown_kind_and_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        STANDARD
        + """
        [items.cd]
        kind = "maximum"
        limit = 0.005

        [items.pb]
        kind = "max"
        limts = { I = 0.01, II = 0.01, III = 0.05 }

        [items.do]
        low = 5

        [stations.s1]
        name = "Station 1"
        river_kms = 3
        """,
    )
    assert lines(check([path])) == [
        f"{path}:6: items.cd.kind: unknown kind 'maximum' (one of max, min, range, change)",
        f"{path}:9: items.pb: missing 'limits' (or 'limit', 'lake_limits')",
        f"{path}:11: items.pb.limts: unknown key 'limts' for kind 'max' (did you mean 'limits'?)",
        f"{path}:13: items.do: missing 'kind' (one of max, min, range, change)",
        f"{path}:18: stations.s1.river_kms: unknown key 'river_kms' (did you mean 'river_km'?)",
    ]


def test_station_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        # stations only: the classes are GB 3838-2002's
        [stations.a]
        class = "VI"

        [stations.b]
        class = "II"
        water_body = "sea"
        intake = "yes"
        river_km = nan
        """,
    )
    assert lines(check([path])) == [
        f"{path}:3: stations.a.class: unknown class 'VI' (one of I, II, III, IV, V)",
        f"{path}:7: stations.b.water_body: unknown water body 'sea' (river, lake or reservoir)",
        f"{path}:8: stations.b.intake must be true or false",
        f"{path}:9: stations.b.river_km must be a finite number",
    ]
    # the classes come from the standards being loaded with it
    other = write(tmp_path, STANDARD, "std.toml")
    only_iii = write(tmp_path, '[stations.c]\nclass = "IV"\n', "c.toml")
    assert lines(check([other, only_iii])) == [
        f"{only_iii}:2: stations.c.class: unknown class 'IV' (one of I, II, III)"
    ]


def test_duplicate_station_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, '[stations.s1]\nclass = "III"\n', "a.toml")
    b = write(tmp_path, '\n[stations.s1]\nclass = "II"\n', "b.toml")
    assert lines(check([a, b])) == [f"{b}:2: stations.s1: station 's1' is already defined at {a}:1"]


def test_missing_standard_and_classes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        # no [standard]

        [items.cd]
        kind = "max"
        limit = 0.005
        """,
    )
    assert lines(check([path])) == [f"{path}:3: items without a [standard] table (it needs an id)"]
    # a standard without classes (WHO, EPA...) is fine with one limit per item, not with a per-class table
    path = write(tmp_path, '[standard]\nid = "X"\n\n[items.cd]\nkind = "max"\nlimit = 0.005\n')
    assert check([path]) == []
    path = write(tmp_path, '[standard]\nname = "X"\n\n[items.cd]\nkind = "max"\nlimits = { I = 0.005 }\n')
    assert lines(check([path])) == [
        f"{path}:1: [standard] has no 'id'",
        f"{path}:6: items.cd.limits: the standard has no classes (use 'limit' for its one value)",
    ]


def test_unreadable_and_unknown_top_level(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    typo = write(tmp_path, STANDARD + "\n[itmes.cd]\n")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'a = 1\nb = "\xff"\n')
    assert lines(check([missing, typo, str(binary)])) == [
        f"{missing}:1: cannot read: No such file or directory",
        f"{typo}:5: itmes: unknown key 'itmes' (expected standard, items, stations, classes, rules, screen, "
        "instruments or alerts) (did you mean 'items'?)",
        f"{binary}:2: not UTF-8 text (TOML files must be UTF-8)",
    ]


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + '\n[items.cd]\nkind = "max"\nlimit = -1\n\n[stations.s]\nclass = "X"\n')
    with pytest.raises(ThresholdError) as err:
        load([path])
    assert str(err.value).splitlines() == [
        f"{path}:7: items.cd.limit: negative limit -1",
        f"{path}:10: stations.s.class: unknown class 'X' (one of I, II, III)",
    ]
    assert len(err.value.problems) == 2


def test_line_locator_handles_other_toml_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [standard]
        id = "T"
        classes = [
          "I",   # the strictest
          "II",
        ]
        name = '''a "multi-line"
        string with [items.x] inside'''

        [items."cd"]
        kind = "max"
        source = "limits = { I = 1 }"

        [items.cd.limits]
        I = 0.005
        "II" = 0.001
        """,
    )
    assert lines(check([path])) == [
        f"{path}:16: items.cd.limits.II = 0.001 is stricter than class I (0.005): max limits must not decrease "
        "from class I to II",
    ]


def test_check_never_raises_on_mangled_files(tmp_path: Path) -> None:
    """Random edits of the shipped files: check must report, not crash, and name lines that exist."""
    source = (GB.read_text(encoding="utf-8") + "\n" + LONGJIANG.read_text(encoding="utf-8")).splitlines()
    values = ['"x"', "-1", "{}", "[1, 2]", "true", "nan", "{ I = {} }", "1979-05-27 07:32:00Z", "[[1], [2]]"]
    inserts = ["[items]", "[[stations]]", "items = 3", "[items.cd.limits]", "III = 3", "a.b = 2"]
    rng = random.Random(3838)
    path = tmp_path / "fuzz.toml"
    for _ in range(300):
        text = list(source)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text))
            op = rng.random()
            if op < 0.3:
                del text[i]
            elif op < 0.7 and "=" in text[i]:
                text[i] = text[i].split("=")[0] + "= " + rng.choice(values)
            elif op < 0.85:
                text.insert(i, rng.choice(inserts))
            else:
                text[i] = text[i][: rng.randrange(len(text[i]) + 1)]
        path.write_text("\n".join(text), encoding="utf-8")
        for problem in check([path]):
            assert 1 <= problem.line <= len(text) + 1, problem


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


# ---------------------------------------------------------------- check: rules, policies, stations, items


def test_rule_problems_each_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [[rules]]
        kind = "rate"
        parameter = "cadmium"
        window = "2 hours"
        rise_per_hour = 0

        [[rules]]
        kind = "trend"

        [[rules]]
        kind = "mean"
        parameters = ["cd"]
        windw = "24h"

        [[rules]]
        kind = "persistence"
        stations = ["lalng"]
        intake = "yes"
        severity = "urgent"
        clear_ratio = 1.5

        [[rules]]
        kind = "persistence"
        readings = 0
        duration = 24

        [[rules]]
        kind = "no_data"
        scope = "river"
        factor = 0.5
        clear_hold = "-1h"

        [[rules]]
        kind = "no_data"
        scope = "station"

        [[rules]]
        kind = "rate"
        window = "0h"
        rise_per_hour = 0.001
        unit = "ug/L"
        above = -1
        min_readings = 1

        [[rules]]
        kind = "rate"
        parameter = "ph"
        window = "1h"
        rise_per_hour = 1
        unit = "mg/L"
        """,
    )
    assert lines(check([GB, LONGJIANG, path])) == [
        f"{path}:3: rules[0]: unknown parameter id 'cadmium' ('cadmium' is an alias: use the id 'cd')",
        f"{path}:4: rules[0].window: bad duration '2 hours' (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:5: rules[0].rise_per_hour must be a positive number",
        f"{path}:8: rules[1].kind: unknown rule kind 'trend' (one of instantaneous, persistence, mean, rate, no_data)",
        f"{path}:10: rules[2]: a mean rule needs 'window' (e.g. \"24h\")",
        f"{path}:13: rules[2].windw: unknown key 'windw' for rule kind 'mean' (did you mean 'window'?)",
        f"{path}:15: rules[3]: a persistence rule needs 'readings' (N in a row) and/or 'duration' (e.g. \"2h\")",
        f"{path}:17: rules[3]: unknown station 'lalng' (did you mean 'lalang'?)",
        f"{path}:18: rules[3].intake must be true or false",
        f"{path}:19: rules[3].severity: unknown severity 'urgent' (one of warning, serious, critical)",
        f"{path}:20: rules[3].clear_ratio: must be above 0 and at most 1, not 1.5",
        f"{path}:24: rules[4].readings: must be a whole number ≥ 1, not 0",
        f"{path}:25: rules[4].duration: bad duration 24 (a number needs a unit) (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:29: rules[5].scope must be 'series' or 'station', not 'river'",
        f"{path}:30: rules[5].factor must be a number ≥ 1, not 0.5",
        f"{path}:31: rules[5].clear_hold: bad duration '-1h' (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:33: rules[6]: a station-wide no_data rule needs 'interval'",
        f"{path}:39: rules[7].window: the duration must be more than zero",
        f"{path}:41: rules[7].unit needs 'parameters' (a unit belongs to them)",
        f"{path}:42: rules[7].above must be a fraction of the limit ≥ 0, not -1",
        f"{path}:43: rules[7].min_readings: must be a whole number ≥ 2, not 1",
        f"{path}:50: rules[8].unit: unknown unit 'mg/L' for ph",
    ]


def test_rules_that_would_share_an_alert(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [[rules]]
        kind = "rate"
        parameter = "cd"
        window = "6h"
        rise_per_hour = 0.001

        [[rules]]
        kind = "rate"
        window = "1d"
        rise_per_hour = 0.01

        [[rules]]
        kind = "rate"
        name = "slow-trend"
        window = "1d"
        rise_per_hour = 0.01

        [[rules]]
        kind = "persistence"
        parameter = "cd"
        readings = 3

        [[rules]]
        kind = "instantaneous"
        parameters = ["cd", "pb"]

        [[rules]]
        kind = "instantaneous"
        parameter = "cd"
        station = "lalang"
        """,
    )
    assert lines(check([GB, LONGJIANG, path])) == [
        f"{path}:7: rule 'rate' also applies to series that the rule at {path}:1 covers: give one of them another "
        "'name'",
        f"{path}:23: this instantaneous rule and the persistence rule at {path}:18 both decide the limit alert of "
        "the same series: narrow one with 'parameters', 'stations' or 'intake'",
    ]


def test_policy_problems_each_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [classes]
        intake = "VI"
        other = "III"

        [alerts]
        severity = { warning = 1, serious = 0.5, critical = -2 }
        clear_ratio = 1.2
        clear_hold = "soon"

        [screen]
        ignore_flags = "calibration"
        suspect_flags = ["suspect", "maintenance"]
        range = [0, 1]
        flatline = 1
        spike_window = 2
        spike_mads = 0

        [instruments.cadmium]
        range = [0, 1]

        [instruments.cd]
        range = [1, 0]
        detection_limit = -0.1
        unit = "furlongs"

        [instruments.pb]
        detection_limit = 0.001
        """,
    )
    again = write(
        tmp_path,
        """\
        [classes]
        default = "III"

        [instruments.pb]
        flatline = 4

        [screen]
        ignore_flags = ["maintenance"]
        suspect_flags = ["maintenance"]
        """,
        "again.toml",
    )
    assert lines(check([path, again])) == [
        f"{path}:2: classes.intake: unknown class 'VI' (one of I, II, III, IV, V)",
        f"{path}:3: classes.other: unknown key 'other' (did you mean 'note'?)",
        f"{path}:6: alerts.severity.serious = 0.5 must be above warning (1): tiers go from the mildest to the worst",
        f"{path}:6: alerts.severity.critical: the ratio must be a positive number, not -2",
        f"{path}:7: alerts.clear_ratio: must be above 0 and at most 1, not 1.2",
        f"{path}:8: alerts.clear_hold: bad duration 'soon' (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:11: screen.ignore_flags must be a list of flag strings",
        f"{path}:13: screen.range: unknown key 'range' (instrument range and detection limit go in "
        "[instruments.<parameter>])",
        f"{path}:14: screen.flatline: must be a whole number ≥ 2, not 1",
        f"{path}:15: screen.spike_window: must be a whole number ≥ 3, not 2",
        f"{path}:16: screen.spike_mads: must be a positive number of MADs, not 0",
        f"{path}:18: instruments.cadmium: unknown parameter id 'cadmium' ('cadmium' is an alias: use the id 'cd')",
        f"{path}:22: instruments.cd.range must be [low, high] with low < high",
        f"{path}:23: instruments.cd.detection_limit: negative limit -0.1",
        f"{path}:24: instruments.cd.unit: unknown unit 'furlongs' for cd (use 'mg/L' or a unit convertible to it)",
        f"{again}:1: [classes] is already defined at {path}:1",
        f"{again}:4: [instruments.pb] is already defined at {path}:26",
        f"{again}:7: [screen] is already defined at {path}:10",
    ]
    both = write(tmp_path, '[screen]\nignore_flags = ["maintenance"]\nsuspect_flags = ["Maintenance"]\n', "b.toml")
    assert lines(check([both])) == [f"{both}:3: screen: flag 'maintenance' is both ignored and suspect"]


def test_station_format_problems_each_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [stations.a]
        timezone = "Mars/Olympus"
        coordinates = [95, 10]
        standard = "GB 3838-2020"
        expect = { cd = "2", zz = "1h", pb = "1 fortnight" }
        assume = { hardness = "hard" }

        [stations.a.limits]
        cd = { limt = 0.003 }
        pb = { low = 0.05, high = 0.01 }
        cadmium = 0.001
        hg = "0.001"

        [stations.b]
        coordinates = "24.5N"
        timezone = "+08:00"

        [stations.b.instruments.cd]
        flatline = 2.5
        """,
    )
    assert lines(check([GB, path])) == [
        f"{path}:2: stations.a.timezone: unknown time zone 'Mars/Olympus' (an IANA name such as 'Asia/Shanghai', "
        "or '+08:00')",
        f"{path}:3: stations.a.coordinates must be [latitude, longitude] in degrees (-90..90, -180..180)",
        f"{path}:4: stations.a.standard: no standard 'GB 3838-2020' is loaded (loaded: GB 3838-2002) "
        "(did you mean 'GB 3838-2002'?)",
        f"{path}:5: stations.a.expect.cd: bad duration '2' (a number needs a unit) (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:5: stations.a.expect.zz: unknown parameter id 'zz'",
        f"{path}:5: stations.a.expect.pb: bad duration '1 fortnight' (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:6: stations.a.assume.hardness: not a number: 'hard'",
        f"{path}:9: stations.a.limits.cd.limt: unknown key 'limt' (did you mean 'limit'?)",
        f"{path}:9: stations.a.limits.cd: missing 'limit'",
        f"{path}:10: stations.a.limits.pb: low 0.05 is not below high 0.01",
        f"{path}:11: stations.a.limits.cadmium: unknown parameter id 'cadmium' ('cadmium' is an alias: use the id "
        "'cd')",
        f"{path}:12: stations.a.limits.hg must be a number or a table {{ limit = ..., source = ... }}",
        f"{path}:15: stations.b.coordinates must be [latitude, longitude] in degrees (-90..90, -180..180)",
        f"{path}:19: stations.b.instruments.cd.flatline: must be a whole number ≥ 2, not 2.5",
    ]
    assert check([path])[2:3] != lines(check([GB, path]))[2:3]  # alone, the standard's id cannot be checked


def test_item_format_problems_each_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [standard]
        id = "X"

        [items.pb]
        kind = "max"
        unit = "ug/L"
        limit = 5
        steps = [
          { until = "2036-01-12", limit = 10 },
          { until = 2030-01-01, limit = 20 },
          { until = 2029-01-01, limit = 30 },
        ]

        [items.cr6]
        kind = "max"
        limits = { I = 1 }
        steps = [ { until = 2036-01-12, limit = 50 } ]

        [items.cd]
        kind = "max"
        depends_on = "hardnes"
        limit = [1, 2]

        [items.ni]
        kind = "max"
        depends_on = "ni"
        limit = 1

        [items.zn]
        kind = "max"
        depends_on = "hardness"
        bounds = [40, 30]
        limit = [1, 2, 3]

        [items.cu]
        kind = "max"
        depends_on = "hardness"
        bounds = [40, 50]
        limit = [1, 2]
        mean_limit = [0.1, 0.2, 0.3]
        default_band = 4

        [items.as]
        kind = "max"
        limit = 0.01
        mean_limit = 0.005

        [items.se]
        kind = "max"
        limit = 0.01
        mean_window = "1y"

        [items.hg]
        kind = "max"
        limit = 0.001
        bounds = [1]
        """,
    )
    assert lines(check([path])) == [
        f"{path}:9: items.pb.steps[0].until must be a date (YYYY-MM-DD, unquoted)",
        f"{path}:11: items.pb.steps[2].until 2029-01-01 is not after the step before it",
        f"{path}:16: items.cr6.limits: the standard has no classes (use 'limit' for its one value)",
        f"{path}:17: items.cr6.steps needs a single 'limit' (the value after the last step)",
        f"{path}:21: items.cd.depends_on: unknown parameter id 'hardnes' (did you mean 'hardness'?)",
        f"{path}:26: items.ni.depends_on: a limit cannot depend on itself",
        f"{path}:32: items.zn.bounds must increase",
        f"{path}:35: items.cu: a mean limit needs 'mean_window' (e.g. \"365d\")",
        f"{path}:39: items.cu.limit must be a list of 3 values, one per band (2 bounds make 3 bands)",
        f"{path}:41: items.cu.default_band: there are only 3 bands",
        f"{path}:43: items.as: a mean limit needs 'mean_window' (e.g. \"365d\")",
        f"{path}:51: items.se.mean_window: bad duration '1y' (use e.g. 90s, 15min, 2h, 7d, 1w)",
        f"{path}:51: items.se.mean_window without 'mean_limit'",
        f"{path}:56: items.hg.bounds needs 'depends_on'",
    ]
    classed = write(tmp_path, STANDARD + '\n[items.cd]\nkind = "max"\ndepends_on = "hardness"\n', "c.toml")
    assert lines(check([classed])) == [f"{classed}:7: items.cd.depends_on: only for a standard without classes"]


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
