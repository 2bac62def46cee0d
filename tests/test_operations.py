"""Operations that say what they do (issue 19 item 5), on real processes: the start-up and reload summary lines
in the service's log, the new metrics on /metrics, and the outbox rows of a target removed from the config,
reported at start-up, kept out of the backlog and dropped with `riverwatch outbox`."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from monitor import __version__
from monitor.alerts.ledger import Ledger
from monitor.notify.routes import target_id
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
REPO = Path(__file__).resolve().parent.parent
SHIPPED = f'"{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"'


def reading(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"ts": ts, "value": value, "unit": "mg/L"}).encode()


def config(mosquitto: Mosquitto, name: str, thresholds: str, *urls: str) -> str:
    return f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "operations-{name}"
topics = ["river/#"]

[thresholds]
files = [{SHIPPED}, "{thresholds}"]

[notify]
urls = [{", ".join(f'"{u}"' for u in urls)}]
retry_cap_s = 1
group_wait = 0  # one message per transition: these tests count deliveries
group_interval = 0
"""


def riverwatch(svc: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(svc.config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=svc.workdir,
    )


def metric(svc: ServiceProcess, name: str, **labels: str) -> float | None:
    """One sample of /metrics, by its exact labels; None when the service does not expose it."""
    want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    for line in svc.get("/metrics")[1].splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name + want:
            return float(value)
    return None


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.stop()


def test_the_startup_line_says_what_runs_and_a_reload_says_what_changed(
    tmp_path: Path, mosquitto: Mosquitto, receiver: HttpReceiver
) -> None:
    extra = tmp_path / "extra-stations.toml"
    extra.write_text('[alerts]\nconfirm = 1\nclear_readings = 1\nclear_hold = "0s"\n')
    secret_url = receiver.json_url().replace("json://", "json://duty:s3cret-pw@")
    svc = ServiceProcess(tmp_path, config(mosquitto, "summary", str(extra), secret_url))
    try:
        svc.start()
        svc.wait(lambda: "starting:" in svc.output(), 10, "the start-up summary line")
        (line,) = [x for x in svc.output().splitlines() if "riverwatch" in x and "starting:" in x]
        assert f"riverwatch {__version__} starting: 6 stations;" in line, line
        assert re.search(r"; \d+ limit checks \(GB 3838-2002, default class III\)", line), line
        assert f"targets: 1 ({target_id(secret_url)} json://duty:****@" in line, line
        assert f"inputs: MQTT {mosquitto.url} topics river/#" in line, line
        assert f"data dir {(tmp_path / 'data').resolve()}" in line, line
        assert "s3cret-pw" not in svc.output()

        # A station file gains a station and a rule: the reload's line says so.
        extra.write_text(
            extra.read_text()
            + '\n[stations.newbridge]\nname = "New bridge"\nriver = "Longjiang"\nriver_km = 40.0\n'
            + '\n[[rules]]\nkind = "persistence"\nname = "cd-3"\nparameter = "cd"\nreadings = 3\n'
        )
        svc.wait(lambda: "in force after the reload:" in svc.output(), 20, "the reload's summary line")
        (reloaded,) = [x for x in svc.output().splitlines() if "in force after the reload:" in x]
        assert "7 stations;" in reloaded and "rules: 1 persistence" in reloaded, reloaded
        assert "stations added: newbridge" in reloaded and "rules 0 -> 1" in reloaded, reloaded
        counts = re.search(r"limit checks (\d+) -> (\d+)", reloaded)
        assert counts and int(counts[2]) > int(counts[1]), reloaded  # the new station's cadmium, lead, ...
    finally:
        svc.stop()


def test_metrics_show_the_build_the_open_alerts_and_delivery_latency(
    tmp_path: Path, mosquitto: Mosquitto, receiver: HttpReceiver
) -> None:
    svc = ServiceProcess(tmp_path, config(mosquitto, "metrics", one_step(tmp_path), receiver.json_url()))
    try:
        svc.start()
        assert metric(svc, "riverwatch_build_info", version=__version__, python=platform.python_version()) == 1
        publish([reading("lalang", T0, 0.006)], mosquitto.url)  # cadmium 1.2x the class III limit
        receiver.wait_for(1, timeout=20)
        svc.wait(
            lambda: metric(svc, "riverwatch_active_alerts", category="water", severity="warning") == 1,
            15,
            "one open water alert on /metrics",
        )
        svc.wait(lambda: (metric(svc, "riverwatch_delivery_latency_seconds_count") or 0) >= 1, 15, "a delivery")
        publish([reading("lalang", T0 + 3600, 0.001)], mosquitto.url)  # compliant: resolved at once (one step)
        receiver.wait_for(2, timeout=20)
        svc.wait(
            lambda: metric(svc, "riverwatch_active_alerts", category="water", severity="warning") == 0,
            15,
            "the resolved alert no longer counted",
        )
    finally:
        svc.stop()


def test_rows_of_a_removed_target_are_reported_not_backlog_and_dropped(
    tmp_path: Path, mosquitto: Mosquitto, receiver: HttpReceiver
) -> None:
    gone = HttpReceiver()
    gone.start()
    try:
        gone.fail_next(1000)  # the old target refuses everything: its notifications stay in the outbox
        old_url = gone.json_url("old")
        svc = ServiceProcess(tmp_path, config(mosquitto, "orphans", one_step(tmp_path), old_url))
        try:
            svc.start()
            publish([reading("lalang", T0, 0.006)], mosquitto.url)
            gone.wait_for(1, timeout=20)
            svc.wait(lambda: svc.metric("riverwatch_notify_backlog") == 1, 10, "one undelivered notification")
            assert svc.terminate()[0] == 0
        finally:
            svc.stop()
    finally:
        gone.stop()

    # The config now names another target: the old one's row is an orphan.
    old = target_id(old_url)
    svc = ServiceProcess(tmp_path, config(mosquitto, "orphans", one_step(tmp_path), receiver.json_url()))
    try:
        svc.start()
        svc.wait(lambda: "no longer configured" in svc.output(), 10, "the start-up warning")
        assert re.search(rf"WARNING .*outbox: 1 undelivered notification\(s\) for target {old}, ", svc.output())
        assert metric(svc, "riverwatch_notify_orphaned") == 1
        assert metric(svc, "riverwatch_notify_backlog") == 0

        listed = riverwatch(svc, "outbox", "list")
        assert listed.returncode == 0, listed.stderr
        (row,) = [x for x in listed.stdout.splitlines() if x.startswith(old)]
        assert row.split()[1] == "1" and "ORPHAN" in row, listed.stdout
        new = target_id(receiver.json_url())
        assert re.search(rf"^{new}\s+0\s+json://", listed.stdout, re.M), listed.stdout

        refused = riverwatch(svc, "outbox", "drop", new)
        assert refused.returncode == 2 and "is configured" in refused.stderr and "--force" in refused.stderr

        dropped = riverwatch(svc, "outbox", "drop", old, "--by", "duty-officer")
        assert dropped.returncode == 0, dropped.stderr
        assert f"dropped 1 undelivered notification(s) of target {old}" in dropped.stdout
        svc.wait(lambda: metric(svc, "riverwatch_notify_orphaned") == 0, 5, "no orphan left")
        again = riverwatch(svc, "outbox", "drop", old)
        assert again.returncode == 1 and "no undelivered notifications" in again.stdout
    finally:
        svc.stop()
    ledger = Ledger(tmp_path / "data" / "alerts.sqlite")
    try:
        audit = [(actor, action, subject) for _, actor, action, subject, _ in ledger.audit_log()]
    finally:
        ledger.close()
    assert ("duty-officer", "outbox_drop", old) in audit


def test_a_missing_optional_dependency_says_what_to_install(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['{m}'] = None; from monitor.cli import main; sys.exit(main({argv!r}))"
    demo = subprocess.run(
        [sys.executable, "-c", hide.format(m="amqtt", argv=["demo"])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert demo.returncode == 1
    assert "pip install 'riverwatch[demo]'" in demo.stderr and "scripts/setup" in demo.stderr, demo.stderr
    plots = subprocess.run(
        [
            sys.executable,
            "-c",
            hide.format(m="matplotlib", argv=["backtest", "--scenario", "baseline", "--plots", "--out", "x"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert plots.returncode == 1 and "pip install 'riverwatch[plots]'" in plots.stderr, plots.stderr
