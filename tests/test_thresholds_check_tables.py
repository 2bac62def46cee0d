"""`check` on stations, `[[rules]]` and the policy tables, each problem as path:line: message."""

from __future__ import annotations

from pathlib import Path

from monitor.thresholds import (
    check,
)
from tests.thresholds_files import GB, LONGJIANG, STANDARD, lines, write


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
        f"{path}:8: rules[1].kind: unknown rule kind 'trend' "
        "(one of instantaneous, persistence, mean, rate, no_data, event)",
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
