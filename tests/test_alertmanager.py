"""Alertmanager as a target (issue 17, part 2), against Debian's real prometheus-alertmanager: the real service
and mosquitto, a cadmium exceedance over MQTT, the alert as Alertmanager lists it, posted again while it fires,
and its resolve as the resolved notification Alertmanager sends on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Alertmanager, Mosquitto, free_port
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600  # 2012-01-15T00:00:00Z, 08:00 in Guangxi
CONSOLE = "http://riverwatch.example:9108"


def cd(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


@pytest.fixture
def service(tmp_path: Path, mosquitto: Mosquitto, alertmanager: Alertmanager) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "alertmanager-{free_port()}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "{one_step(tmp_path)}"]

[notify]
group_wait = 0
group_interval = 0
urls = ["{alertmanager.target_url}?interval=1&console={CONSOLE}"]
""",
    )
    svc.start()
    yield svc
    svc.stop()


def lalang(am: Alertmanager) -> list[dict[str, Any]]:
    return [a for a in am.alerts() if a["labels"].get("station") == "lalang" and a["labels"].get("parameter") == "cd"]


def wait(what: str, predicate: Any, svc: ServiceProcess, timeout: float = 20.0) -> Any:
    found = None

    def check() -> bool:
        nonlocal found
        found = predicate()
        return bool(found)

    svc.wait(check, timeout, what)
    return found


def test_an_exceedance_is_listed_by_alertmanager_kept_firing_and_ended_by_its_resolve(
    service: ServiceProcess, mosquitto: Mosquitto, alertmanager: Alertmanager, http_receiver: HttpReceiver
) -> None:
    publish([cd("lalang", T0, 0.03)], mosquitto.url)  # 6x the Class III limit of 0.005 mg/L
    (alert,) = wait("the alert in Alertmanager", lambda: lalang(alertmanager), service)
    assert alert["labels"] == {
        "alertname": "RiverwatchWaterQuality",
        "station": "lalang",
        "parameter": "cd",
        "severity": "serious",
        "river": "Longjiang",
        "category": "water",
        "rule": "instantaneous",
    }
    notes = alert["annotations"]
    assert (notes["value"], notes["limit"], notes["unit"]) == ("0.03", "0.005", "mg/L")
    assert notes["standard"] == "GB 3838-2002 Class III"
    assert notes["state"] == "firing" and notes["alert_id"].startswith("lalang/cd/")
    assert "Lalang hydropower station" in notes["message"] and "6x the limit" in notes["message"], notes["message"]
    assert alert["startsAt"] == "2012-01-15T00:00:00.000Z"
    assert alert["generatorURL"] == f"{CONSOLE}/console/?alert={quote(notes['alert_id'], safe='')}"
    assert alert["status"]["state"] == "active"
    first_end = alert["endsAt"]

    # Each post is valid for 4 intervals (4 s here): still listed well after that, with a later endsAt.
    time.sleep(6)
    (again,) = lalang(alertmanager)
    assert again["endsAt"] > first_end and again["startsAt"] == alert["startsAt"]
    (fired,) = http_receiver.wait_for(1, timeout=10)
    assert fired.path == "/am" and fired.json["status"] == "firing"

    publish([cd("lalang", T0 + 3600, 0.001)], mosquitto.url)  # compliant: resolved (one-step clearing)
    wait("the alert gone from Alertmanager", lambda: not lalang(alertmanager), service)
    posts = http_receiver.wait_for(2, timeout=10)
    resolved = [p for p in posts if p.json["status"] == "resolved"]
    assert resolved, [p.json["status"] for p in posts]
    (ended,) = resolved[0].json["alerts"]
    assert ended["labels"]["station"] == "lalang" and ended["labels"]["severity"] == "serious"
    assert ended["endsAt"] == "2012-01-15T01:00:00Z"  # the reading that resolved it
    assert service.metric("riverwatch_notifications_sent_total") == 2  # the firing and the resolve, once each
    assert service.metric("riverwatch_notifications_failed_total") == 0


def test_a_down_alertmanager_is_retried_and_counted_then_gets_the_alert(
    service: ServiceProcess, mosquitto: Mosquitto, alertmanager: Alertmanager
) -> None:
    alertmanager.stop()
    try:
        publish([cd("lalang", T0, 0.03)], mosquitto.url)
        service.wait(lambda: service.metric("riverwatch_notifications_failed_total") >= 2, 20, "failed posts")
        assert service.metric("riverwatch_notifications_sent_total") == 0
    finally:
        alertmanager.start()
    (alert,) = wait("the alert after Alertmanager is back", lambda: lalang(alertmanager), service, timeout=30)
    assert alert["labels"]["severity"] == "serious"
    assert service.metric("riverwatch_notifications_sent_total") == 1


def test_an_escalation_ends_the_alert_under_its_old_severity(
    service: ServiceProcess, mosquitto: Mosquitto, alertmanager: Alertmanager
) -> None:
    publish([cd("lalang", T0, 0.03)], mosquitto.url)  # 6x: serious
    wait("the serious alert", lambda: lalang(alertmanager), service)
    publish([cd("lalang", T0 + 3600, 0.15)], mosquitto.url)  # 30x: critical, a new label set in Alertmanager
    (alert,) = wait(
        "only the critical alert",
        lambda: (
            [a for a in lalang(alertmanager) if a["labels"]["severity"] == "critical"]
            if len(lalang(alertmanager)) == 1
            else []
        ),
        service,
    )
    assert alert["annotations"]["state"] == "escalated" and alert["startsAt"] == "2012-01-15T00:00:00.000Z"
    time.sleep(2)  # posted again meanwhile: the serious one stays ended
    assert [a["labels"]["severity"] for a in lalang(alertmanager)] == ["critical"]


def test_an_alert_whose_resolve_was_silenced_is_ended_in_alertmanager(
    service: ServiceProcess, mosquitto: Mosquitto, alertmanager: Alertmanager
) -> None:
    publish([cd("lalang", T0, 0.03)], mosquitto.url)
    wait("the alert in Alertmanager", lambda: lalang(alertmanager), service)
    silence = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "silence",
            "add",
            "--config",
            str(service.config),
            "--station",
            "lalang",
            "--duration",
            "2h",
            "--reason",
            "analyser maintenance",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=service.workdir,
    )
    assert silence.returncode == 0, silence.stderr
    publish([cd("lalang", T0 + 3600, 0.001)], mosquitto.url)  # resolved, but the message is silenced
    service.wait(lambda: "resolved" in service.output() and "muted: silence" in service.output(), 20, "the resolve")
    # Not told of the end, Alertmanager would keep it while riverwatch posts it; the ledger has it closed.
    wait("the alert ended in Alertmanager", lambda: not lalang(alertmanager), service, timeout=10)


def test_a_restarted_service_keeps_posting_what_fires(
    service: ServiceProcess, mosquitto: Mosquitto, alertmanager: Alertmanager
) -> None:
    publish([cd("lalang", T0, 0.03)], mosquitto.url)
    wait("the alert in Alertmanager", lambda: lalang(alertmanager), service)
    service.kill9()
    service.start()
    time.sleep(6)  # past the 4 s a post is valid for: only posts of the restarted service keep it
    (alert,) = lalang(alertmanager)
    assert alert["labels"]["severity"] == "serious" and "Lalang" in alert["annotations"]["message"]
    assert service.metric("riverwatch_notifications_sent_total") == 0  # no transition sent twice


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("alertmanager://127.0.0.1", "needs a host and a port"),
        ("alertmanager:/127.0.0.1:9093", "expected alertmanager://"),
        ("alertmanager://127.0.0.1:9093?interval=0", "interval must be 1-3600 s"),
        ("alertmanagers://127.0.0.1:9093?resolve=5m", "unknown option 'resolve'"),
    ],
)
def test_a_bad_alertmanager_url_is_a_config_error_naming_the_key(tmp_path: Path, url: str, says: str) -> None:
    cfg = tmp_path / "riverwatch.toml"
    cfg.write_text('[notify]\n[[notify.route]]\nurl_env = "RW_AM_URL"\n\n[service]\ndata_dir = "data"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "RW_AM_URL": url.replace("127.0.0.1", "am-user:s3cret@127.0.0.1")},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{cfg}: [notify.route[0]].url_env:" in line and "Alertmanager URL" in line and says in line, line
    assert "s3cret" not in proc.stderr + proc.stdout


def test_a_good_alertmanager_url_passes_the_check(tmp_path: Path) -> None:
    cfg = tmp_path / "riverwatch.toml"
    cfg.write_text('[notify]\nurls = ["alertmanagers://am.example:9093/prefix?interval=30&verify=no"]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
