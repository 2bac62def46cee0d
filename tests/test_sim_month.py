"""The simulators as issue 13 grows them: any scenario for N days, one default seed for simulate and backtest,
a 30-day baseline with spikes and out-of-range values, and replay CSV that writes below-DL values as
"0.0005L" and replays them in that notation through a real mosquitto to the service's own decoder."""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.servers import Mosquitto
from monitor.ingest.decode import decode
from monitor.offline.commands import add_commands
from monitor.offline.sources import Source, load_source
from simulators.baseline import baseline
from simulators.commands import replay, simulate
from simulators.faults import KINDS, OUT_OF_RANGE_VALUE, Fault
from simulators.replaycsv import read_csv
from simulators.scenarios import SCENARIOS
from simulators.sensors import ANALYSERS, BELOW_DL
from tests.test_simulators import Subscriber

NS_PER_DAY = 86_400 * 10**9


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_days_for_every_scenario_with_the_same_default_seed_in_simulate_and_backtest(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "two.csv"
    assert simulate(name, None, 0.0, None, None, out, None, days=2) == 0
    seed = int(re.search(r"\(seed (\d+)\)", capsys.readouterr().err).group(1))  # type: ignore[union-attr]
    rows = list(read_csv(out))
    span = max(r[0] for r in rows) - min(r[0] for r in rows)
    assert NS_PER_DAY < span < 2 * NS_PER_DAY
    ds = load_source(Source(scenario=name, days=2))
    assert ds.label == f"scenario {name} (seed {seed})"
    assert ds.count == len(rows) and ds.end_ns - ds.start_ns == 2 * NS_PER_DAY
    # the same readings: the CSV decoded as the service decodes it gives the backtest's columns back
    csv_ds = load_source(Source(csv=out))
    assert csv_ds.count == ds.count
    assert csv_ds.columns is not None and ds.columns is not None
    assert np.array_equal(np.sort(csv_ds.columns.value), np.sort(ds.columns.value))


def test_bad_days_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate("baseline", None, 0.0, None, None, tmp_path / "x.csv", None, days=0) == 2
    assert "--days must be a number of days > 0" in capsys.readouterr().err
    parser = argparse.ArgumentParser(prog="riverwatch")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["backtest", "--scenario", "beijiang-2005", "--days", "-1", "--no-progress"])
    assert args.handler(args) == 2
    assert "--days must be a number of days > 0" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_the_baseline_is_a_month_with_spikes_and_out_of_range_values() -> None:
    sc = baseline(seed=4)
    assert sc.end_ns - sc.start_ns == 30 * NS_PER_DAY
    faults = sc.faults()
    assert {f.kind for f in faults} == set(KINDS)
    by_series: dict[tuple[str, str], list[tuple[int, float, str | None]]] = {}
    for r in sc.readings():
        by_series.setdefault((r.station, r.parameter), []).append((r.ts_ns, r.value, r.flag))

    def alone(f: Fault) -> bool:  # no other fault of that instrument within two readings of it
        margin = 2 * ANALYSERS[f.parameter].every_min * 60 * 10**9
        return not any(
            g is not f
            and (g.station, g.parameter) == (f.station, f.parameter)
            and g.start_ns < f.end_ns + margin
            and f.start_ns - margin < g.end_ns
            for g in faults
        )

    checked = 0
    for f in faults:
        series = by_series[(f.station, f.parameter)]
        inside = [v for t, v, fl in series if f.start_ns <= t < f.end_ns]
        if f.kind == "out_of_range" and alone(f):
            flags = {fl for t, v, fl in series if f.start_ns <= t < f.end_ns}
            assert inside and set(inside) == {OUT_OF_RANGE_VALUE} and flags == {None}  # unflagged error codes
            checked += 1
        elif f.kind == "spike" and alone(f):
            i = next(k for k, (t, _, _) in enumerate(series) if t == f.start_ns)
            before, spike, after = series[i - 1][1], series[i][1], series[i + 1][1]
            assert series[i][2] is None and len(inside) == 1
            a = ANALYSERS[f.parameter]
            if a.relative_drift and f.parameter != "do":
                assert spike > 4 * max(before, after)  # a single outlier, and the next reading normal again
            elif f.parameter == "do":
                assert spike < 0.5 * min(before, after)
            else:
                assert abs(spike - before) > 1.0 and abs(after - before) < 1.0
            checked += 1
    assert checked >= 5


def test_replay_csv_writes_below_dl_as_the_lab_notation_and_replays_it(
    tmp_path: Path, fresh_mosquitto: Mosquitto
) -> None:
    out = tmp_path / "b.csv"
    assert simulate("baseline", None, 0.0, 3, None, out, None, days=3) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    below = [r for r in rows if r["value"].endswith("L")]
    assert below and all(r["flag"] == "" for r in below)
    assert {r["value"] for r in below if r["parameter"] == "cd"} == {"0.0005L"}
    assert not any(r["flag"] == BELOW_DL for r in rows)  # the notation says it; no flag column needed
    assert any(r["value"] == repr(OUT_OF_RANGE_VALUE) for r in rows)  # the fault readings are in the file too
    parsed = {(r[0], r[1], r[2]): r for r in read_csv(out)}
    assert sum(1 for r in parsed.values() if r[5] == BELOW_DL) == len(below)

    small = tmp_path / "small.csv"
    small.write_text(
        "ts,station,parameter,value,unit,flag\n"
        "2024-03-01T00:00:00+08:00,lalang,cd,0.0005L,mg/L,\n"
        "2024-03-01T02:00:00+08:00,lalang,cd,<0.0005,mg/L,\n"
        "2024-03-01T04:00:00+08:00,lalang,cd,0.0007,mg/L,\n",
        encoding="utf-8",
    )
    root = f"dl-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(fresh_mosquitto.port, f"{root}/#")
    try:
        assert replay(small, fresh_mosquitto.url, 0.0, root=root) == 0
        sub.wait_for(3, timeout=10)
        time.sleep(0.2)
    finally:
        sub.close()
    assert [json.loads(p)["value"] for _, p in sub.received] == ["0.0005L", "0.0005L", 0.0007]
    got = [r for topic, p in sub.received for r in decode(topic, p, time.time_ns()).readings]
    assert [(r.value, r.flag) for r in got] == [(0.0005, "<DL"), (0.0005, "<DL"), (0.0007, None)]
