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

TABLE1 = ["temp", "ph", "do", "codmn", "cod", "bod5", "nh3n", "tp", "tn", "cu", "zn", "f", "se", "as", "hg", "cd",
          "cr6", "pb", "cn", "phenol", "oil", "las", "s2", "fcoli"]
TABLE2 = ["so4", "cl", "no3n", "fe", "mn"]
TABLE3 = {"mo": 0.07, "co": 1.0, "be": 0.002, "b": 0.5, "sb": 0.005, "ni": 0.02, "ba": 0.7, "v": 0.05, "ti": 0.1,
          "tl": 0.0001}

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
    lake = write(tmp_path, """\
        [stations.dam]
        class = "III"
        water_body = "reservoir"
        """)
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
    assert km == {"lalang": (0.0, "III"), "yemao": (25.0, "III"), "luodong": (57.0, "III"), "sancha": (80.0, "III"),
                  "nuomitan": (100.0, "III"), "liuzhou-hexi": (160.0, "II")}
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
    path = write(tmp_path, STANDARD + """
        [items.cd]
        kind = "max"
        unit = "ug/L"
        limits = { I = 1, II = 5, III = 5 }
        """)
    lim = load([path]).limit("x", "cd", "II")
    assert lim is not None and lim.unit == "mg/L" and lim.value == pytest.approx(0.005)


def test_earlier_files_take_precedence(tmp_path: Path) -> None:
    local = write(tmp_path, """\
        [standard]
        id = "Local"
        classes = ["I", "II", "III", "IV", "V"]

        [items.cd]
        kind = "max"
        limit = 0.003
        """)
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
    path = write(tmp_path, STANDARD + """
        [items.cadmium]
        kind = "max"
        limit = 0.005

        [items.lede]
        kind = "max"
        limit = 0.05

        [items.zzz]
        kind = "max"
        limit = 1
        """)
    assert lines(check([path])) == [
        f"{path}:5: items.cadmium: unknown parameter id 'cadmium' ('cadmium' is an alias: use the id 'cd')",
        f"{path}:9: items.lede: unknown parameter id 'lede'",
        f"{path}:13: items.zzz: unknown parameter id 'zzz'",
    ]


def test_unknown_unit(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + """
        [items.cd]
        kind = "max"
        unit = "mg/m3"
        limit = 0.005

        [items.ph]
        kind = "range"
        unit = "mg/L"
        low = 6
        high = 9
        """)
    assert lines(check([path])) == [
        f"{path}:7: items.cd.unit: unknown unit 'mg/m3' for cd (use 'mg/L' or a unit convertible to it)",
        f"{path}:12: items.ph.unit: unknown unit 'mg/L' for ph (use no unit ('') or a unit convertible to it)",
    ]


def test_missing_and_extra_class(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + """
        [items.cd]
        kind = "max"
        unit = "mg/L"
        limits = { I = 0.001, II = 0.005 }

        [items.pb]
        kind = "max"
        limits = { I = 0.01, II = 0.01, III = 0.05, IV = 0.05 }
        """)
    assert lines(check([path])) == [
        f"{path}:8: items.cd.limits: no value for class III",
        f"{path}:12: items.pb.limits: class 'IV' is not in standard.classes (I, II, III)",
    ]


def test_contradictory_ordering(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + """
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
        """)
    assert lines(check([path])) == [
        f"{path}:8: items.cd.limits.II = 0.001 is stricter than class I (0.005): max limits must not decrease "
        "from class I to III",
        f"{path}:13: items.do.limits.II = 6 is stricter than class I (5): min limits must not increase "
        "from class I to III",
        f"{path}:17: items.ph: class II: low 9 is not below high 6",
    ]


def test_bad_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + """
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
        """)
    assert lines(check([path])) == [
        f"{path}:7: items.cd.limits.II: negative limit -0.005",
        f"{path}:11: items.pb.limit: not a number: '0.05'",
        f"{path}:15: items.hg.limit: not a finite number: inf",
        f"{path}:19: items.temp.max_rise: negative limit -1",
    ]


def test_unknown_kind_and_keys(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + """
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
        """)
    assert lines(check([path])) == [
        f"{path}:6: items.cd.kind: unknown kind 'maximum' (one of max, min, range, change)",
        f"{path}:9: items.pb: missing 'limits' (or 'limit', 'lake_limits')",
        f"{path}:11: items.pb.limts: unknown key 'limts' for kind 'max' (did you mean 'limits'?)",
        f"{path}:13: items.do: missing 'kind' (one of max, min, range, change)",
        f"{path}:18: stations.s1.river_kms: unknown key 'river_kms' (did you mean 'river_km'?)",
    ]


def test_station_problems(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        # stations only: the classes are GB 3838-2002's
        [stations.a]
        class = "VI"

        [stations.b]
        class = "II"
        water_body = "sea"
        intake = "yes"
        river_km = nan
        """)
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
    path = write(tmp_path, """\
        # no [standard]

        [items.cd]
        kind = "max"
        limit = 0.005
        """)
    assert lines(check([path])) == [f"{path}:3: items without a [standard] table (it needs id and classes)"]
    path = write(tmp_path, '[standard]\nid = "X"\n\n[items.cd]\nkind = "max"\nlimit = 0.005\n')
    assert lines(check([path])) == [f'{path}:1: [standard] has no \'classes\' (e.g. classes = ["I", "II", "III"])']


def test_unreadable_and_unknown_top_level(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    typo = write(tmp_path, STANDARD + "\n[itmes.cd]\n")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'a = 1\nb = "\xff"\n')
    assert lines(check([missing, typo, str(binary)])) == [
        f"{missing}:1: cannot read: No such file or directory",
        f"{typo}:5: itmes: unknown key 'itmes' (expected standard, items or stations) (did you mean 'items'?)",
        f"{binary}:2: not UTF-8 text (TOML files must be UTF-8)",
    ]


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, STANDARD + '\n[items.cd]\nkind = "max"\nlimit = -1\n\n[stations.s]\nclass = "X"\n')
    with pytest.raises(ThresholdError) as err:
        load([path])
    assert str(err.value).splitlines() == [f"{path}:7: items.cd.limit: negative limit -1",
                                           f"{path}:10: stations.s.class: unknown class 'X' (one of I, II, III)"]
    assert len(err.value.problems) == 2


def test_line_locator_handles_other_toml_forms(tmp_path: Path) -> None:
    path = write(tmp_path, """\
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
        """)
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
