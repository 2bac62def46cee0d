"""`riverwatch backtest` as an engineer relies on it: the live service's alerts, scored against the truth.

The live run is the real service path in-process (embedded amqtt broker, SenML packs over MQTT, journal,
rules, ledger, embedded store), once per module; every other test reuses its alerts and data_dir.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.alerts.evaluator import AlertEvent
from monitor.config import Config, MqttConfig, NotifyConfig, ServiceConfig, ThresholdsConfig
from monitor.offline.backtest import run_backtest
from monitor.offline.dataset import Dataset
from monitor.offline.replay import DEFAULT_BATCH, run_rules
from monitor.offline.scoring import Score, score
from monitor.offline.sources import Source, load_source
from monitor.offline.variants import Variant, load_variants
from monitor.service.app import Service
from monitor.service.demo import _free_port
from monitor.thresholds import load, shipped_path
from simulators.longjiang import senml_packs
from simulators.messages import unit_of
from simulators.replaycsv import write_csv
from simulators.scenarios import SCENARIOS
from simulators.sensors import ANALYSERS

REPO = Path(__file__).resolve().parent.parent
BASE = [shipped_path("gb3838-2002.toml"), shipped_path("longjiang-stations.toml")]
RULES = [*BASE, REPO / "thresholds" / "examples" / "longjiang-rules.toml"]
PLUME_STATIONS = ["lalang", "yemao", "luodong", "sancha", "nuomitan"]
CD_CADENCE_NS = ANALYSERS["cd"].every_min * 60 * 10**9


@dataclass
class LiveRun:
    events: list[AlertEvent]
    data_dir: Path
    readings: int


async def _live(data_dir: Path) -> LiveRun:
    """The Longjiang scenario through the service exactly as `riverwatch demo` runs it, at full speed."""
    from amqtt.broker import Broker

    from simulators.publish import publish

    port = _free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    cfg = Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{port}", protocol="3.1.1", client_id="rw-backtest-live"),
        thresholds=ThresholdsConfig(files=tuple(RULES)),
        notify=NotifyConfig(urls=("console://",), utc_offset="+08:00"),
        service=ServiceConfig(data_dir=data_dir, http_listen=""),
        source="(test)",
    )
    events: list[AlertEvent] = []
    service = Service(cfg, on_alert=events.append)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, ready))
    try:
        await ready.wait()
        await asyncio.wait_for(service.ingest.subscribed.wait(), timeout=15)
        readings = SCENARIOS["longjiang-2012"]().readings()
        messages = list(senml_packs(readings))
        await asyncio.to_thread(
            publish, messages, f"mqtt://127.0.0.1:{port}", speed=0, qos=1, window=200, client_id="rw-backtest-publisher"
        )
        deadline = time.monotonic() + 60
        while not (service.summary().messages >= len(messages) and service.settled()):
            assert time.monotonic() < deadline, "the service did not settle"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await broker.shutdown()
    assert service.summary().readings == len(readings)
    return LiveRun(events, data_dir, len(readings))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    return asyncio.run(_live(tmp_path_factory.mktemp("live")))


def _key(e: AlertEvent) -> tuple[int, str, str]:
    return e.ts_ns, e.alert_id, e.state


def _fields(events: list[AlertEvent]) -> list[str]:
    """Every field of every event, in time order; as text, so that a gap's NaN value equals itself.

    Less a silence still open when the data ends: the backtest judges the end of the data as the present, while
    the live service's no-data clock runs on the wall clock, so whether the live run sees a series that went
    quiet in the last hours of the data depends on how long it runs before it stops."""
    ended = {e.alert_id for e in events if e.state in ("resolved", "withdrawn")}
    kept = [e for e in events if e.category == "water" or e.rule not in ("gap", "no_data") or e.alert_id in ended]
    return [repr(e) for e in sorted(kept, key=_key)]


def _backtest_events(source: Source, files: list[Path], batch: int = DEFAULT_BATCH) -> list[AlertEvent]:
    ds = load_source(source)
    [run] = run_rules([Variant("v", files, load(files))], ds, batch=batch)
    return run.events


def test_live_service_and_backtest_raise_identical_alerts(live: LiveRun) -> None:
    assert len(live.events) > 20  # firings, escalations, resolutions and trend warnings at five stations
    expected = _fields(live.events)
    for batch in (DEFAULT_BATCH, 5000, 777):  # the service's batch size, and odd ones: same alerts
        got = _fields(_backtest_events(Source(scenario="longjiang-2012"), RULES, batch))
        assert got == expected, f"batch {batch}"  # every field: ids, times, values, severities, limits, details


def test_backtest_of_the_embedded_store_replays_the_live_alerts(live: LiveRun) -> None:
    ds = load_source(Source(store=live.data_dir))
    assert ds.count == live.readings
    assert _fields(_backtest_events(Source(store=live.data_dir), RULES)) == _fields(live.events)


def test_replay_csv_with_ground_truth_gives_the_scenario_result(tmp_path: Path) -> None:
    scenario = SCENARIOS["longjiang-2012"]()
    write_csv(tmp_path / "lj.csv", scenario.readings(), unit_of)
    scenario.ground_truth().write(tmp_path / "truth.json")
    src = Source(csv=tmp_path / "lj.csv", ground_truth=tmp_path / "truth.json")
    assert _fields(_backtest_events(src, RULES)) == _fields(_backtest_events(Source(scenario="longjiang-2012"), RULES))
    out = io.StringIO()
    assert run_backtest([RULES], src, progress=False, out=out, utc_offset="+08:00") == 0
    assert "missed exceedances" in out.getvalue() and "0 of 5" in out.getvalue()


def _scored(
    scenario: str,
    files: list[list[Path]],
    sweeps: tuple[str, ...] = (),
    tmp: Path = Path("/nonexistent"),
    seed: int | None = None,
) -> tuple[Dataset, list[Score]]:
    ds = load_source(Source(scenario=scenario, seed=seed))
    variants = load_variants(files, sweeps, tmp)  # tmp holds the sweep's edited copies
    runs = run_rules(variants, ds)
    return ds, [score(r, ds, ds.truth or [], "III") for r in runs]


def test_longjiang_every_station_that_truly_exceeded_is_caught_within_the_analyser_cadence() -> None:
    ds, (plain, trend) = _scored("longjiang-2012", [BASE, RULES])
    truly = {e.station for e in ds.truth or [] if e.parameter == "cd" and e.klass == "III"}
    assert truly == set(PLUME_STATIONS)  # Liuzhou's intake (Class II) stayed compliant
    for sc in (plain, trend):
        first = sc.first_latency()
        assert {s for s, _ in first} == set(PLUME_STATIONS)
        assert not sc.missed and not sc.false_alerts
        assert "liuzhou-hexi" not in {a.station for a in sc.alerts if a.water}  # its sensors may say things
    for station in PLUME_STATIONS:
        d = plain.first_latency()[(station, "cd")]
        lat = d.notice_latency_ns  # the first notice: within one analyser cycle of the true crossing, or before
        # it when the readings rise toward the limit within their noise (the "rising toward the limit" notice)
        assert lat is not None and -3 * CD_CADENCE_NS <= lat <= CD_CADENCE_NS, (station, lat)
        assert d.latency_ns is not None and d.latency_ns >= lat
        early = trend.first_latency()[(station, "cd")]
        assert early.notice_latency_ns is not None and early.notice_latency_ns <= lat  # a trend rule never delays
    lalang = trend.first_latency()[("lalang", "cd")]
    assert lalang.first_notice is not None and lalang.first_notice.rule == "rate"  # it warns before the limit
    assert (lalang.notice_latency_ns or 0) < (plain.first_latency()[("lalang", "cd")].notice_latency_ns or 0)


def test_baseline_false_alarms_are_counted_and_the_confirmation_step_removes_most(tmp_path: Path) -> None:
    # seed 2: a spike the screen lets through (the default seed now has no notice at all)
    ds, scores = _scored("baseline", [BASE], ("alerts.confirm=1",), tmp_path, seed=2)
    plain, at_once = scores
    assert not [e for e in ds.truth or [] if e.klass in ("II", "III")]  # a clean month: every alert is false
    assert len(plain.false_alerts) == len(plain.water)
    assert len(plain.false_alerts) < len(at_once.false_alerts)  # alerting at the first exceedance cries wolf
    assert not at_once.notices and plain.notices  # the two steps: notices first, most of them withdrawn
    # Each false alarm is an injected instrument fault at that series, as the ground truth lists them.
    faults = ds.faults or []
    assert faults
    for a in at_once.false_alerts:
        assert any(
            f.station == a.station
            and f.parameter == a.parameter
            and f.start_ns - 6 * 3600 * 10**9 <= a.started_ns <= f.end_ns + 6 * 3600 * 10**9
            for f in faults
        ), a.alert_id
    out = io.StringIO()
    assert run_backtest([BASE], Source(scenario="baseline", seed=2), ["alerts.confirm=1"], progress=False, out=out) == 0
    text = out.getvalue()
    more = len(at_once.false_alerts) - len(plain.false_alerts)
    assert (
        f"alerts.confirm=1 against longjiang-stations: {more} more false alarm{'' if more == 1 else 's'} "
        f"({len(at_once.false_alerts)} against {len(plain.false_alerts)})"
    ) in text
    assert "variants side by side" in text


def test_the_summary_names_the_stations_caught_earlier_or_later() -> None:
    out = io.StringIO()
    rc = run_backtest([BASE, RULES], Source(scenario="longjiang-2012"), progress=False, out=out, utc_offset="+08:00")
    text = out.getvalue()
    assert rc == 0
    line = next(x for x in text.splitlines() if x.startswith("longjiang-rules against longjiang-stations:"))
    assert "as many false alarms (0)" in line
    assert "Lalang caught 4 h earlier" in line  # the trend warning at 10:00 against the limit alert at 14:00
    assert "2012-01-05 13:05" in text  # Lalang's true crossing, in +08:00


def test_a_sweep_makes_one_row_per_grid_point(tmp_path: Path) -> None:
    out = io.StringIO()
    rc = run_backtest(
        [RULES],
        Source(scenario="longjiang-2012"),
        ["rules[cadmium-trend].rise_per_hour=0.00005,0.0004", "rules[0].above=0.2,0.8"],
        progress=False,
        out=out,
    )
    assert rc == 0
    table = out.getvalue().split("variants side by side (one row per variant)\n")[1].split("\n\n")[0]
    rows = table.splitlines()[1:-1]  # the header, and the note at the end
    assert len(rows) == 5  # the variant itself and 2 x 2 grid points
    assert rows[1].startswith("rules[cadmium-trend].rise_per_hour=0.00005, rules[0].above=0.2")
    # A steeper required rise warns later: the grid shows the trade-off an engineer picks from.
    _, scores = _scored("longjiang-2012", [RULES], ("rules[0].rise_per_hour=0.00005,0.0004",), tmp_path)
    slow, steep = scores[1].first_latency(), scores[2].first_latency()
    assert all((steep[k].latency_ns or 0) >= (slow[k].latency_ns or 0) for k in slow)
    assert any((steep[k].latency_ns or 0) > (slow[k].latency_ns or 0) for k in slow)


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ("rules[0].window", "expected TABLE.KEY=V1,V2"),
        ("rules[9].window=6h", "no rule '9'"),
        ("stations.nowhere.class=II", "no [stations.nowhere] table"),
        ("rules[0].window=forever", "rules[0].window=forever"),  # the checker's problem names the sweep point
    ],
)
def test_bad_sweeps_exit_2_with_a_reason(sweep: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_backtest([RULES], Source(scenario="longjiang-2012"), [sweep], progress=False) == 2
    assert message in capsys.readouterr().err


def test_bad_sources_and_files_exit_with_the_documented_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_backtest([BASE], Source(scenario="nile-1999"), progress=False) == 2
    assert "unknown scenario 'nile-1999'" in capsys.readouterr().err
    assert run_backtest([BASE], Source(store=tmp_path / "empty"), progress=False) == 1
    assert "no embedded store" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nkind = "rate"\nname = "x"\nwindow = "soon"\n')
    assert run_backtest([[*BASE, bad]], Source(scenario="baseline"), progress=False) == 2
    assert f"{bad}:" in capsys.readouterr().err


def test_alerts_file_lists_every_transition_with_its_verdict(tmp_path: Path) -> None:
    out = io.StringIO()
    assert (
        run_backtest(
            [BASE, RULES],
            Source(scenario="longjiang-2012"),
            alerts_out=tmp_path / "a.json",
            progress=False,
            out=out,
            utc_offset="+08:00",
        )
        == 0
    )
    rows = json.loads((tmp_path / "a.json").read_text())
    assert {r["variant"] for r in rows} == {"longjiang-stations", "longjiang-rules"}
    firing = [r for r in rows if r["state"] == "firing" and r["category"] == "water"]
    assert firing and all(r["verdict"] == "true" for r in firing)
    assert all(r["verdict"] == "" for r in rows if r["category"] == "sensor")
    assert rows[0]["time"].endswith("+08:00")
    assert (
        run_backtest(
            [BASE], Source(scenario="baseline", seed=2), alerts_out=tmp_path / "b.csv", progress=False, out=out
        )
        == 0
    )
    with open(tmp_path / "b.csv", newline="") as f:
        baseline = list(csv.DictReader(f))
    first = [r for r in baseline if r["state"] in ("unconfirmed", "firing") and r["category"] == "water"]
    assert first and {r["verdict"] for r in first} == {"false"}  # a clean river: every notice or alert is false


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("backtest-report")
    out = io.StringIO()
    assert (
        run_backtest(
            [BASE, RULES],
            Source(scenario="longjiang-2012"),
            plots=True,
            out_dir=folder / "png",
            html=folder / "report.html",
            progress=False,
            out=out,
            utc_offset="+08:00",
        )
        == 0
    )
    yield folder


def test_plots_one_png_per_station_and_a_self_contained_html(report_files: Path) -> None:
    pngs = sorted((report_files / "png").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(["lalang", "yemao", "luodong", "sancha", "nuomitan", "liuzhou-hexi"])
    for p in pngs:
        data = p.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    html = (report_files / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 6
    assert "http://" not in html and "https://" not in html and "<script" not in html  # nothing fetched or run
    assert "Lalang caught 4 h earlier" in html
    assert "detection latency per station" in html


def test_the_html_report_shows_its_images_in_chromium(report_files: Path, tmp_path: Path) -> None:
    from tests.test_report import images_loaded_in_chromium

    assert images_loaded_in_chromium(report_files / "report.html", tmp_path) == 6


def test_the_command_line_runs_a_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from monitor.offline.commands import add_commands

    parser = argparse.ArgumentParser(prog="riverwatch")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "backtest",
            "--scenario",
            "baseline",
            "--thresholds",
            *map(str, BASE),
            "--sweep",
            "screen.flatline=4",
            "--tolerance",
            "2h",
            "--no-progress",
            "--utc-offset",
            "+08:00",
            "--since",
            "2024-03-02",
            "--until",
            "2024-03-06",
            "--alerts",
            str(tmp_path / "alerts.csv"),
        ]
    )
    assert args.handler(args) == 0
    text = capsys.readouterr().out
    assert "2024-03-02 00:00 to 2024-03-06 00:00 (+08:00)" in text
    assert "widened by 2 h" in text
    assert (tmp_path / "alerts.csv").exists()
    assert args.handler(parser.parse_args(["backtest", "--scenario", "baseline", "--tolerance", "a while"])) == 2
