"""What `riverwatch backtest` tells an engineer about trust (issue 13): water and sensor alerts apart, the
unconfirmed notices apart, latency in analyser cycles, resolves inside a plume, the fault behind each false
alarm and whether each blinding fault was announced; `--alerts` with `category` and `confirmed`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from bench.trust import main as trust_main
from monitor.offline.backtest import run_backtest
from monitor.offline.dataset import Columns, Dataset, Exceedance
from monitor.offline.evidence import Evidence, blinding, evidence, notices_per_week, plume_resolves
from monitor.offline.replay import run_rules
from monitor.offline.scoring import AlertSpan, Detection, Score, score
from monitor.offline.sources import Source, load_source
from monitor.offline.variants import load_variants
from monitor.thresholds import Limit, shipped_path
from simulators.faults import BLINDING, KINDS, Fault

BASE = [shipped_path("gb3838-2002.toml"), shipped_path("longjiang-stations.toml")]
H = 3600 * 10**9
T0 = 1_709_222_400 * 10**9  # 2024-03-01 00:00 +08:00


def _evidence(scenario: str, seed: int | None = None, days: float | None = None) -> tuple[Dataset, Evidence]:
    ds = load_source(Source(scenario=scenario, seed=seed, days=days))
    [run] = run_rules(load_variants([BASE], [], Path("/nonexistent")), ds)
    return ds, evidence(score(run, ds, ds.truth or [], "III"), ds)


@pytest.fixture(scope="module")
def baseline_month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Evidence, Evidence]:
    """The shipped defaults, and the same alerting at the first exceedance (many false alerts to explain)."""
    ds = load_source(Source(scenario="baseline", seed=2))  # seed 2: one spike the screen lets through
    variants = load_variants([BASE], ["alerts.confirm=1"], tmp_path_factory.mktemp("sweep"))
    plain, at_once = (evidence(score(r, ds, ds.truth or [], "III"), ds) for r in run_rules(variants, ds))
    return ds, plain, at_once


def test_sensor_alerts_are_never_false_alarms_and_every_false_one_has_its_fault(
    baseline_month: tuple[Dataset, Evidence, Evidence],
) -> None:
    ds, ev, at_once = baseline_month
    sc = ev.score
    assert sc.sensor and all(a.verdict == "" for a in sc.sensor)
    assert all(a.verdict == "false" for a in sc.water)  # a clean river: any water alert is false
    assert len(sc.withdrawn) <= len(sc.notices) and not at_once.score.notices
    # every false alert and false notice is explained by an injected fault of its own series
    assert at_once.score.false_alerts  # few since the spike screen is on by default: each still explained
    for e in (ev, at_once):
        assert {id(a) for a, _ in e.causes} >= {id(a) for a in e.score.false_alerts}
    for a, f in ev.causes + at_once.causes:
        assert f is not None, a.alert_id
        assert (f.station, f.parameter) == (a.station, a.parameter) and f.kind in KINDS
        assert f.start_ns <= a.notice_ns
    # every stuck, gap and below-DL fault of the month is judged, each with its series' cadence
    assert ds.faults is not None
    assert len(ev.blinding) == sum(1 for f in ds.faults if f.kind in BLINDING)
    assert all(b.cycle_ns > 0 for b in ev.blinding)
    for b in ev.blinding_announced:
        assert b.alert is not None and b.alert.sensor and b.alert.station == b.fault.station
        assert b.delay_ns is not None and b.delay_ns <= 2 * b.cycle_ns
    weeks = ev.notices_per_week
    assert set(weeks) == set(ds.stations) and all(len(w) == 5 for w in weeks.values())  # 30 days: 5 windows
    assert sum(map(sum, weeks.values())) == len(sc.notices)


def test_the_tables_and_the_alerts_file_keep_water_and_sensor_apart(tmp_path: Path) -> None:
    out = io.StringIO()
    alerts = tmp_path / "alerts.csv"
    # seed 2: its one withdrawn notice (the default seed has none since the spike screen judges young series)
    assert run_backtest([BASE], Source(scenario="baseline", seed=2), alerts_out=alerts, progress=False, out=out) == 0
    text = out.getvalue()
    for title in (
        "unconfirmed notices of 'longjiang-stations' per station",
        "what caused each false alert and false notice",
        "blinding faults of 'longjiang-stations' announced by a sensor alert within 2 cycles",
        "resolves inside a plume of 'longjiang-stations'",
    ):
        assert title in text
    header = text.split("variant 'longjiang-stations'")[1].splitlines()[1]
    assert "water alerts" in header and "sensor alerts" in header and "notices" in header and "withdrawn" in header
    with open(alerts, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"category", "confirmed"} <= set(rows[0])
    assert {r["category"] for r in rows} == {"water", "sensor"}
    assert {r["confirmed"] for r in rows} == {"true", "false"}
    for r in rows:
        assert r["confirmed"] == ("false" if r["state"] in ("unconfirmed", "withdrawn") else "true")
        if r["category"] == "sensor":
            assert r["verdict"] == ""
        elif r["state"] in ("firing", "unconfirmed"):
            assert r["verdict"] == "false"


def test_incident_latency_is_counted_in_analyser_cycles() -> None:
    out = io.StringIO()
    assert run_backtest([BASE], Source(scenario="longjiang-2012"), progress=False, out=out, utc_offset="+08:00") == 0
    table = out.getvalue().split("detection latency per station")[1].split("\n\n")[0]
    rows = [line.split() for line in table.splitlines()[2:-1]]
    assert {r[0] for r in rows} == {"lalang", "yemao", "luodong", "sancha", "nuomitan"}
    _, ev = _evidence("longjiang-2012")
    for d in ev.score.first_latency().values():
        assert d.cycle_ns == 2 * H  # cadmium every two hours
        assert d.notice_latency_ns is not None and d.latency_ns is not None
        assert d.notice_latency_ns <= d.latency_ns  # the notice never after the alert it announces
        assert d.cycles(d.latency_ns) == pytest.approx(d.latency_ns / (2 * H))


def _span(alert_id: str, first: int, confirmed: int | None, resolved: int | None, category: str = "water") -> AlertSpan:
    station, parameter = alert_id.split("/")[:2]
    return AlertSpan(
        alert_id,
        station,
        parameter,
        "instantaneous" if category == "water" else "stuck",
        first,
        resolved,
        "warning",
        0.01,
        2.0,
        Limit(parameter, "max", 0.005, None, "mg/L", "GB 3838-2002", "III", ""),
        category=category,
        first_ns=first,
        confirmed_ns=confirmed,
        noticed=confirmed != first,
        withdrawn=confirmed is None and resolved is not None,
        cycle_ns=2 * H,
    )


def _dataset(spans: list[AlertSpan]) -> tuple[Dataset, Score]:
    ds = Dataset("synthetic", ["lalang", "yemao"], ["cd"], [], T0, T0 + 15 * 24 * H, 0)
    plume = Exceedance("lalang", "cd", "III", T0 + 10 * H, T0 + 40 * H, "truth", 0.04)
    det = Detection(plume, spans[0], spans[0], 2 * H)
    return ds, Score("v", spans, "truth", 6 * H, [det], 0)


def test_a_resolve_while_the_truth_still_exceeds_is_a_resolve_inside_the_plume() -> None:
    inside = _span("lalang/cd/a", T0 + 11 * H, T0 + 13 * H, T0 + 20 * H)  # resolved at +20 h, truth back at +40 h
    after = _span("lalang/cd/b", T0 + 24 * H, T0 + 26 * H, T0 + 41 * H)  # resolved after the truth came back
    withdrawn = _span("lalang/cd/c", T0 + 30 * H, None, T0 + 32 * H)  # a notice, not an alert
    elsewhere = _span("yemao/cd/d", T0 + 11 * H, T0 + 13 * H, T0 + 20 * H)  # another station's series
    ds, sc = _dataset([inside, after, withdrawn, elsewhere])
    assert [a.alert_id for a, _ in plume_resolves(sc, ds)] == ["lalang/cd/a"]


def test_notices_are_counted_per_station_and_week() -> None:
    spans = [_span("lalang/cd/n1", T0 + 1 * H, None, T0 + 3 * H), _span("lalang/cd/n2", T0 + 50 * H, None, None)]
    spans += [_span("lalang/cd/n3", T0 + 8 * 24 * H, T0 + 8 * 24 * H + 2 * H, None)]
    spans += [_span("yemao/cd/x", T0 + 2 * H, T0 + 2 * H, None)]  # confirmed at once: no notice
    ds, sc = _dataset(spans)
    assert notices_per_week(sc, ds) == {"lalang": [2, 1, 0], "yemao": [0, 0, 0]}


def test_a_blinding_fault_is_announced_only_by_a_sensor_alert_of_its_station_within_two_cycles() -> None:
    fault = Fault("lalang", "cd", "stuck", T0, T0 + 20 * H)
    gap = Fault("yemao", "cd", "gap", T0, T0 + 20 * H)
    short = Fault("lalang", "cd", "below_dl", T0 + 30 * H, T0 + 33 * H)  # over within two cycles
    on_time = _span("lalang/cd/sensor.stuck/1", T0 + 4 * H, T0 + 4 * H, T0 + 21 * H, "sensor")
    late = _span("yemao/cd/sensor.gap/1", T0 + 5 * H, T0 + 5 * H, None, "sensor")  # 2.5 cycles
    water = _span("yemao/cd/w", T0 + 1 * H, T0 + 1 * H, None)  # a water alert announces no fault
    ds, sc = _dataset([on_time, late, water])
    ds.faults = [fault, gap, short]
    ds._cadences = {("lalang", "cd"): 2 * H, ("yemao", "cd"): 2 * H}
    got = {b.fault.kind: b for b in blinding(sc, ds.faults, ds)}
    assert got["stuck"].alert is on_time and got["stuck"].delay_ns == 4 * H
    assert got["gap"].alert is None
    assert got["below_dl"].short
    ev = Evidence(sc, {}, [], [], list(got.values()))
    assert len(ev.blinding_due) == 2 and len(ev.blinding_announced) == 1


def test_bench_trust_prints_the_done_means_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert trust_main(["--seeds", "3", "--days", "4"]) == 0
    text = capsys.readouterr().out
    assert "issue 13, Done means: seeds 3" in text
    for figure in (
        "confirmed water alerts (all false)",
        "unconfirmed notices, most at one station in 7 days",
        "blinding faults announced within 2 cycles",
        "blinding faults hidden in the series' noise for 2 cycles, announced before they end",
        "sensor alerts no injected fault explains",
        "first notice within 1 cycle of the true crossing",
        "confirmed alert within 2 cycles",
        "confirmed alerts resolved inside a plume",
    ):
        assert figure in text
    assert "/5 (worst" in text and "/4 (worst" in text  # station-runs: 5 Longjiang and 4 Beijiang stations


def test_a_fault_the_series_own_noise_hides_for_two_cycles_is_counted_apart_with_its_later_alert() -> None:
    """A noisy series (equal successive readings rare) must announce a stuck fault within two cycles; one whose
    resolution repeats readings half the time cannot without crying wolf, so it is judged on whether it was
    announced before the fault ended. A sensor alert no fault explains is listed as crying wolf."""
    n = 200
    ts = np.concatenate([T0 + np.arange(n) * 2 * H] * 2)
    noisy = 0.0006 + 0.00001 * (np.arange(n) % 17)
    coarse = np.where(np.arange(n) % 4 < 2, 0.0006, 0.0007)  # pairs of equal readings: half the pairs equal
    cols = Columns(
        ts.astype(np.int64),
        np.repeat(np.array([0, 1], dtype=np.int32), n),
        np.zeros(2 * n, dtype=np.int32),
        np.concatenate([noisy, coarse]),
        np.full(2 * n, -1, dtype=np.int16),
    )
    order = np.argsort(cols.ts, kind="stable")
    ds = Dataset("synthetic", ["lalang", "yemao"], ["cd"], ["<DL"], T0, T0 + n * 2 * H, 2 * n, columns=cols.take(order))
    ds.faults = [
        Fault("lalang", "cd", "stuck", T0 + 100 * H, T0 + 140 * H),
        Fault("yemao", "cd", "stuck", T0 + 100 * H, T0 + 140 * H),
    ]
    late = _span("yemao/cd/sensor.stuck/1", T0 + 120 * H, T0 + 120 * H, T0 + 141 * H, "sensor")
    wolf = _span("lalang/cd/sensor.stuck/2", T0 + 300 * H, T0 + 300 * H, T0 + 302 * H, "sensor")
    sc = Score("v", [late, wolf], "truth", 6 * H, [], 0)
    got = {b.fault.station: b for b in blinding(sc, ds.faults, ds)}
    assert not got["lalang"].hidden and got["lalang"].alert is None  # due, and missed
    assert got["yemao"].hidden and got["yemao"].alert is None and got["yemao"].later_ns == 20 * H
    ev = evidence(sc, ds)
    assert [b.fault.station for b in ev.blinding_due] == ["lalang"]
    assert [b.fault.station for b in ev.blinding_hidden] == ["yemao"]
    assert ev.unexplained_sensor == [wolf]


def test_a_fault_cut_by_the_end_of_the_data_is_judged_on_what_the_data_holds() -> None:
    """A below-DL run injected an hour before the data ends has one reading in the data: nothing can announce it,
    and it is short, not a silent blind spot."""
    ds, sc = _dataset([_span("lalang/cd/w", T0 + 1 * H, T0 + 1 * H, None)])
    ds.faults = [Fault("lalang", "cd", "below_dl", ds.end_ns - 1 * H, ds.end_ns + 28 * H)]
    ds._cadences = {("lalang", "cd"): 2 * H}
    [b] = blinding(sc, ds.faults, ds)
    assert b.short and b.fault.end_ns == ds.end_ns
