"""`check` on standards and items: TOML syntax, keys, units, classes and numbers, each as path:line: message."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from monitor.thresholds import (
    ThresholdError,
    check,
    load,
)
from tests.thresholds_files import GB, LONGJIANG, STANDARD, lines, write


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
        unit = "mg/kg"
        limit = 0.005

        [items.ph]
        kind = "range"
        unit = "mg/L"
        low = 6
        high = 9
        """,
    )
    assert lines(check([path])) == [
        f"{path}:7: items.cd.unit: unknown unit 'mg/kg' for cd (use 'mg/L' or a unit convertible to it)",
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
        "instruments, alerts, parameters or rivers) (did you mean 'items'?)",
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
