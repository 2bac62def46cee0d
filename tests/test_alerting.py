"""Alerts a bureau can act on, on real processes: routing, incidents with arrival estimates, silences,
acknowledgements and repeats, through the `riverwatch` commands a duty officer would type."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
DAY = 86400
REPO = Path(__file__).resolve().parent.parent


def single(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


@pytest.fixture
def receivers() -> Iterator[dict[str, HttpReceiver]]:
    made = {name: HttpReceiver() for name in ("county", "province", "water_company")}
    for r in made.values():
        r.start()
    yield made
    for r in made.values():
        r.stop()


@pytest.fixture
def service(
    tmp_path: Path, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver], request: pytest.FixtureRequest
) -> Iterator[ServiceProcess]:
    repo = Path(__file__).resolve().parent.parent
    r = receivers
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "alerting-{request.node.name[:40]}"

[thresholds]
files = ["{repo}/thresholds/gb3838-2002.toml", "{repo}/thresholds/longjiang-stations.toml",
    "{one_step(tmp_path)}"]

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = []
utc_offset = "+08:00"
repeat_interval_s = 2
front_velocity_km_per_day = 10

[[notify.route]]
url = "{r["county"].json_url()}"
rivers = ["Longjiang"]

[[notify.route]]
url = "{r["province"].json_url()}"
min_severity = "serious"

[[notify.route]]
url = "{r["water_company"].json_url()}"
intakes = true
""",
    )
    svc.start()
    yield svc
    svc.stop()


def riverwatch(svc: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(svc.config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=svc.workdir,
    )


def test_routing_and_an_incident_with_arrival_estimates(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    county, province, company = receivers["county"], receivers["province"], receivers["water_company"]
    publish([single("lalang", T0, 0.006)], mosquitto.url)  # 1.2x: a warning
    county.wait_for(1, timeout=20)
    company.wait_for(1, timeout=20)  # the front is upstream of the Liuzhou intake: it concerns the company
    publish([single("yemao", T0 + 2 * DAY, 0.03)], mosquitto.url)  # 6x: serious; 25 km in 2 days
    (p,) = province.wait_for(1, timeout=20)
    text = p.json["message"]
    assert "Incident: longjiang/cd/" in text
    assert "Front velocity: 12.5 km/day (observed between lalang and yemao)" in text
    # Liuzhou Hexi intake is 135 km below Yemao: 10.8 days after 2012-01-17 08:00 +08:00.
    assert (
        "Expected at Liuzhou Hexi" in text and "(liuzhou-hexi, water intake) around 2012-01-28 03:12+08:00" in text
    ), text
    publish([single("luodong", T0 + 4 * DAY, 0.03)], mosquitto.url)
    posts = county.wait_for(3, timeout=20)
    assert "stations hit so far: Lalang" in posts[2].json["message"] and "Yemao" in posts[2].json["message"]
    time.sleep(1)
    assert len(province.posts) == 2  # the warning at Lalang never reached the provincial office
    assert all("[WARNING]" not in x.json["title"] for x in province.posts)
    # Alerts are listed for the duty officer.
    out = riverwatch(service, "alerts", "--active").stdout
    assert re.search(r"yemao/cd/\S+\s+firing\s+water\s+serious", out), out


def test_silence_ack_and_repeats(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    county = receivers["county"]
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    proc = riverwatch(
        service,
        "silence",
        "add",
        "--station",
        "lalang",
        "--until",
        until,
        "--reason",
        "analyser maintenance",
        "--by",
        "li",
    )
    assert proc.returncode == 0, proc.stderr
    publish([single("lalang", T0, 0.05)], mosquitto.url)
    service.wait(lambda: service.metric("riverwatch_notifications_silenced_total") >= 1, 20, "a silenced alert")
    assert county.posts == []
    assert "lalang" in riverwatch(service, "silence", "list").stdout

    publish([single("yemao", T0, 0.05)], mosquitto.url)  # 10x: serious
    first = county.wait_for(1, timeout=20)[0]
    alert_id = re.search(r"Alert: (\S+),", first.json["message"]).group(1)  # type: ignore[union-attr]
    repeats = county.wait_for(2, timeout=20)  # repeat_interval_s = 2: still firing, nobody acknowledged
    assert repeats[1].json["title"].startswith("[STILL FIRING]")
    proc = riverwatch(service, "ack", alert_id, "--by", "wang")
    assert proc.returncode == 0, proc.stderr
    time.sleep(0.5)
    settled = len(county.posts)
    time.sleep(5)
    assert len(county.posts) == settled  # acknowledged: no more repeats
    publish([single("yemao", T0 + 3600, 0.2)], mosquitto.url)  # 40x: an escalation still notifies
    posts = county.wait_for(settled + 1, timeout=20)
    assert "ESCALATED" in posts[-1].json["title"]
    listing = riverwatch(service, "alerts")
    assert re.search(rf"{re.escape(alert_id)}\s+escalated\s+water\s+critical.*wang", listing.stdout), listing
    assert riverwatch(service, "ack", "no/such/alert", "--by", "wang").returncode == 2
    assert service.terminate()[0] == 0


def test_kill_9_between_alert_and_delivery_sends_exactly_one_notification(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "alerting-kill9"
[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
retry_cap_s = 1
""",
    )
    try:
        http_receiver.fail_next(10_000, status=500)  # the bureau's gateway is down
        svc.start()
        publish([single("kill9-station", T0, 0.05)], mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_notifications_failed_total") >= 2, 20, "failed deliveries")
        svc.kill9()
        http_receiver.recover()
        svc.start()
        delivered = http_receiver.wait_for(1, timeout=20, delivered_only=True)
        time.sleep(2)
        ok = [p for p in http_receiver.posts if p.status == 200]
        assert len(ok) == 1, [p.json["title"] for p in ok]
        assert "kill9-station" in delivered[0].json["title"] and "FIRING" in delivered[0].json["title"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_longjiang_incident_arrival_estimates_match_the_ground_truth(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    """The simulated Longjiang plume through the real service: the duty officer's thread names one incident,
    and once the front is past Sancha its arrival at Nuomitan is right to within half a day."""
    from simulators.longjiang import single_messages
    from simulators.scenarios import SCENARIOS

    repo = Path(__file__).resolve().parent.parent
    scenario = SCENARIOS["longjiang-2012"]()
    truth = {
        e.station: e.start_ns for e in scenario.ground_truth().episodes if e.parameter == "cd" and e.klass == "III"
    }
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "alerting-longjiang"
[thresholds]
files = ["{repo}/thresholds/gb3838-2002.toml", "{repo}/thresholds/longjiang-stations.toml",
    "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
""",
    )
    try:
        svc.start()
        publish(list(single_messages([r for r in scenario.readings() if r.parameter == "cd"])), mosquitto.url)
        svc.wait(
            lambda: any("FIRING" in p.json["title"] and "(nuomitan)" in p.json["title"] for p in http_receiver.posts),
            60,
            "the alert at Nuomitan",
        )
        firing = [p.json for p in http_receiver.posts if "FIRING" in p.json["title"]]
        incidents = {re.search(r"Incident: (\S+) on", m["message"]).group(1) for m in firing}  # type: ignore[union-attr]
        assert len(incidents) == 1, incidents
        at_sancha = next(m["message"] for m in firing if "(sancha)" in m["title"])
        assert re.search(r"stations hit so far: Lalang.*Yemao.*Luodong.*Sancha", at_sancha), at_sancha
        eta = re.search(r"Expected at .*\(nuomitan\) around (\S+ \S+),", at_sancha).group(1)  # type: ignore[union-attr]
        eta_ns = int(datetime.fromisoformat(eta).timestamp() * 1e9)
        error_h = (eta_ns - truth["nuomitan"]) / 3.6e12
        print(f"\nETA at Nuomitan from Sancha: {eta}, error {error_h:+.1f} h")
        assert abs(error_h) <= 12
        assert not any("(liuzhou-hexi)" in m["title"] for m in firing)  # the intake stayed compliant
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_a_restart_neither_repeats_nor_forgets_an_open_alert(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "alerting-restart"
[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
""",
    )
    try:
        svc.start()
        publish([single("restart-station", T0, 0.05)], mosquitto.url)
        http_receiver.wait_for(1, timeout=20)
        assert svc.terminate()[0] == 0
        svc.start()
        publish([single("restart-station", T0 + 3600, 0.06)], mosquitto.url)  # still over: the same alert
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= 1, 20, "the reading evaluated")
        time.sleep(1)
        assert len(http_receiver.posts) == 1  # not fired again
        svc.kill9()
        svc.start()
        publish([single("restart-station", T0 + 7200, 0.001)], mosquitto.url)  # back under: it resolves
        posts = http_receiver.wait_for(2, timeout=20)
        assert "RESOLVED" in posts[1].json["title"]
        first_id = re.search(r"Alert: (\S+),", posts[0].json["message"]).group(1)  # type: ignore[union-attr]
        assert f"Alert: {first_id}," in posts[1].json["message"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
