"""`riverwatch report`: the after-action report of live data, as a duty officer reads it.

The data_dir is what a service run leaves: readings (and alert points) in the embedded store, written by
EmbeddedStore itself, and the alerts in the ledger, recorded by Ledger from the Evaluator's transitions.
The read-back from InfluxDB 1.x and VictoriaMetrics runs against the real servers.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bench.servers import InfluxDB1, Victoria
from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.ledger import Ledger
from monitor.domain.reading import Reading
from monitor.offline.report import run_report
from monitor.offline.sources import Source, load_source
from monitor.store.influx import EmbeddedStore
from monitor.store.lineprotocol import alert_line, reading_line
from monitor.thresholds import load, shipped_path
from simulators.messages import CST
from simulators.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parent.parent
RULES = [
    shipped_path("gb3838-2002.toml"),
    shipped_path("longjiang-stations.toml"),
    REPO / "thresholds" / "examples" / "longjiang-rules.toml",
]
CHROMIUM = "/usr/bin/chromium"


def images_loaded_in_chromium(html: Path, tmp: Path) -> int:
    """Open a copy of the report with a probe script in headless Chromium: how many images decoded.

    The report itself carries no script (mail clients strip them); the probe writes the count of images with a
    natural width into the DOM once the page has loaded, and --dump-dom prints that DOM.
    """
    probe = (
        "<script>addEventListener('load',()=>{document.body.setAttribute('data-images-loaded',"
        "String([...document.images].filter(i=>i.complete&&i.naturalWidth>0).length));});</script>"
    )
    copy = tmp / "probe.html"
    copy.write_text(html.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        copy.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    found = re.search(r'data-images-loaded="(\d+)"', proc.stdout)
    assert found, f"chromium exit {proc.returncode}: {proc.stderr[-2000:]}"
    return int(found.group(1))


@dataclass
class ServiceData:
    data_dir: Path
    readings: list[Reading]
    events: list[AlertEvent]


@pytest.fixture(scope="module")
def service_data(tmp_path_factory: pytest.TempPathFactory) -> ServiceData:
    """A data_dir as the service leaves it after the Longjiang incident."""
    data_dir = tmp_path_factory.mktemp("data")
    readings = SCENARIOS["longjiang-2012"]().readings()
    evaluator = Evaluator(load(RULES), "III")
    events = [e for i in range(0, len(readings), 5000) for e in evaluator.process(readings[i : i + 5000])]
    store = EmbeddedStore(data_dir / "store.sqlite")
    asyncio.run(store.write([reading_line(r) for r in readings] + [alert_line(e, "title") for e in events]))
    asyncio.run(store.close())
    ledger = Ledger(data_dir / "alerts.sqlite")
    for e in events:
        ledger.record(e)
        ledger.mark_sent(e.alert_id, e.ts_ns + 60 * 10**9)
    ledger.close()
    return ServiceData(data_dir, readings, events)


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 10**9


def test_report_lists_the_alerts_sent_with_latency_and_one_plot_per_station(
    service_data: ServiceData, tmp_path: Path
) -> None:
    out = io.StringIO()
    rc = run_report(
        None,
        service_data.data_dir,
        None,
        None,
        tmp_path / "png",
        tmp_path / "report.html",
        thresholds=RULES,
        progress=False,
        utc_offset="+08:00",
        out=out,
    )
    text = out.getvalue()
    assert rc == 0, text
    assert f"{len(service_data.readings):,} readings, 6 stations" in text
    recorded = {e.alert_id for e in service_data.events}  # alerts, and first notices (confirmed or withdrawn)
    sent = text.split("alerts sent (from")[1].split("\n\n")[0]
    assert {line.split()[0] for line in sent.splitlines()[2:]} == recorded
    # Lalang: the trend warning went out at 10:00, three hours before the first reading over the limit.
    latency = text.split("detection latency per station")[1].split("\n\n")[0]
    lalang = next(line for line in latency.splitlines() if line.startswith("lalang"))
    assert "2012-01-05 14:00" in lalang and "2012-01-05 10:00" in lalang and "-4 h" in lalang
    assert {line.split()[0] for line in latency.splitlines()[2:-1]} == {
        "lalang",
        "yemao",
        "luodong",
        "sancha",
        "nuomitan",
    }
    assert "hours above each class limit" in text
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 6 and all(p.stat().st_size > 20_000 for p in pngs)
    html = (tmp_path / "report.html").read_text()
    assert "lalang/cd/cadmium-trend/20120105T0200Z" in html
    assert images_loaded_in_chromium(tmp_path / "report.html", tmp_path) == 6


def test_report_of_a_time_range_from_the_config(service_data: ServiceData, tmp_path: Path) -> None:
    cfg = tmp_path / "riverwatch.toml"
    files = ", ".join(f'"{p}"' for p in RULES)
    cfg.write_text(
        f'[thresholds]\nfiles = [{files}]\n[notify]\nutc_offset = "+08:00"\n'
        f'[service]\ndata_dir = "{service_data.data_dir}"\n'
    )
    since, until = _ns("2012-01-15T00:00:00+08:00"), _ns("2012-01-20T00:00:00+08:00")
    out = io.StringIO()
    assert run_report(cfg, None, since, until, None, None, progress=False, out=out) == 0
    text = out.getvalue()
    inside = [r for r in service_data.readings if since <= r.ts_ns < until]
    assert f"{len(inside):,} readings" in text and "2012-01-15 00:00 to 2012-01-20 00:00 (+08:00)" in text
    assert "lalang/cd/20120105T0600Z" in text  # opened before the range, still open in it
    assert "nuomitan/cd/cadmium-trend" in text and "20120125" not in text


def test_report_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_report(None, tmp_path / "nothing-here", progress=False) == 1
    assert "no embedded store" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[influxdb]\nurl = "ftp://x"\n')
    assert run_report(bad, progress=False) == 2
    assert "url" in capsys.readouterr().err


def _sample(readings: list[Reading]) -> list[Reading]:
    lalang = [r for r in readings if r.station == "lalang" and r.parameter in ("cd", "ph")][:300]
    return [*lalang, Reading("yemao", "cd", lalang[0].ts_ns, 0.0005, "<DL")]


def test_reads_back_influxdb_1x_with_flags_and_credentials(
    influxdb1: InfluxDB1, service_data: ServiceData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    influxdb1.create_database("water_bt")
    sample = _sample(service_data.readings)
    status, body = influxdb1.write("water_bt", [reading_line(r) for r in sample])
    assert status == 204, body
    src = Source(
        influx=influxdb1.url, database="water_bt", username=influxdb1.username or "", password=influxdb1.password or ""
    )
    ds = load_source(src)
    assert ds.columns is not None
    got = sorted(
        (ds.stations[s], ds.parameters[p], t, v, ds.flags[f] if f >= 0 else None)
        for s, p, t, v, f in zip(
            ds.columns.station, ds.columns.parameter, ds.columns.ts, ds.columns.value, ds.columns.flag, strict=True
        )
    )
    assert got == sorted(tuple(r) for r in sample)
    # The report of a service that writes to InfluxDB 1.x reads it back with the configured credentials.
    monkeypatch.setenv("RW_REPORT_PW", influxdb1.password or "")
    cfg = tmp_path / "riverwatch.toml"
    cfg.write_text(
        f'[influxdb]\nurl = "{influxdb1.url}"\napi = "v1"\ndatabase = "water_bt"\n'
        f'username = "{influxdb1.username}"\npassword_env = "RW_REPORT_PW"\n'
        f'[service]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    out = io.StringIO()
    assert run_report(cfg, progress=False, utc_offset="+08:00", out=out) == 0
    assert f"{len(sample)} readings" in out.getvalue()
    monkeypatch.setenv("RW_REPORT_PW", "wrong")
    assert run_report(cfg, progress=False) == 1


def test_reads_back_victoriametrics(victoria: Victoria, service_data: ServiceData) -> None:
    sample = [r for r in _sample(service_data.readings) if r.flag is None]
    victoria.write_lines([reading_line(r).replace("water_quality,", "water_quality,rbt=1,") for r in sample])
    victoria.force_flush()
    ds = load_source(Source(victoria=victoria.url, since_ns=sample[0].ts_ns, until_ns=sample[-1].ts_ns + 1))
    assert ds.columns is not None
    got = sorted(
        zip(
            (ds.stations[s] for s in ds.columns.station),
            (ds.parameters[p] for p in ds.columns.parameter),
            ds.columns.ts.tolist(),
            ds.columns.value.tolist(),
            strict=True,
        )
    )
    assert got == sorted((r.station, r.parameter, r.ts_ns, r.value) for r in sample)
    assert datetime.fromtimestamp(ds.start_ns / 1e9, CST).year == 2012


def test_the_command_line_makes_a_report_of_a_store(
    service_data: ServiceData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from monitor.offline.commands import add_commands

    parser = argparse.ArgumentParser(prog="riverwatch")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "report",
            "--store",
            str(service_data.data_dir),
            "--thresholds",
            *map(str, RULES),
            "--since",
            "2012-01-28",
            "--until",
            "2012-02-01",
            "--utc-offset",
            "+08:00",
            "--html",
            str(tmp_path / "r.html"),
            "--no-progress",
        ]
    )
    assert args.handler(args) == 0
    text = capsys.readouterr().out
    assert "2012-01-28 00:00 to 2012-02-01 00:00 (+08:00)" in text
    assert "lalang/cd/20120105T0600Z" in text  # the ledger next to the store: Lalang's alert resolved on 29 Jan
    assert (tmp_path / "r.html").stat().st_size > 100_000
