"""Two steps, as stations work, through the service (real mosquitto, real HTTP receivers): an unconfirmed notice
then the alert, a one-off withdrawn, a 0.0 inside a plume that does not resolve, a late reading after a restart
that does not resolve, and routes that take unconfirmed notices or not."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
H = 3600
REPO = Path(__file__).resolve().parent.parent


def reading(station: str, hours: float, value: float) -> tuple[int, str, bytes]:
    ts = T0 + hours * H
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


@pytest.fixture
def receivers() -> Iterator[dict[str, HttpReceiver]]:
    made = {name: HttpReceiver() for name in ("operator", "bureau", "sensors")}
    for r in made.values():
        r.start()
    yield made
    for r in made.values():
        r.stop()


@pytest.fixture
def service(
    tmp_path: Path, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver], request: pytest.FixtureRequest
) -> Iterator[ServiceProcess]:
    r = receivers
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "twostep-{request.node.name[:40]}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = []
utc_offset = "+08:00"

[[notify.route]]
url = "{r["operator"].json_url()}"
unconfirmed = true

[[notify.route]]
url = "{r["bureau"].json_url()}"
categories = ["water"]

[[notify.route]]
url = "{r["sensors"].json_url()}"
categories = ["sensor"]
unconfirmed = true
""",
    )
    svc.start()
    yield svc
    svc.stop()


def titles(r: HttpReceiver) -> list[str]:
    return [p.json["title"] for p in r.posts]


def send(mosquitto: Mosquitto, *readings: tuple[str, float, float]) -> None:
    for station, hours, value in readings:  # one at a time, as a station reports
        publish([reading(station, hours, value)], mosquitto.url)


def test_an_exceedance_is_unconfirmed_then_firing_and_a_zero_in_the_plume_does_not_resolve(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    operator, bureau, sensors = receivers["operator"], receivers["bureau"], receivers["sensors"]
    send(mosquitto, ("luodong", 0, 0.001), ("luodong", 2, 0.001), ("luodong", 4, 0.015))  # 3x at 12:00
    (first,) = operator.wait_for(1, timeout=20)
    assert (
        first.json["title"] == "unconfirmed: cadmium at Luodong hydropower station 0.015 mg/L (3x); re-check at 14:00"
    ), first.json
    time.sleep(1)
    assert bureau.posts == []  # a bureau's route acts on confirmed alerts only
    send(mosquitto, ("luodong", 6, 0.2))  # 40x: confirmed, critical
    fired = bureau.wait_for(1, timeout=20)[0].json
    assert fired["title"].startswith("[CRITICAL] FIRING: ") and "Luodong" in fired["title"], fired
    assert operator.wait_for(2, timeout=20)[1].json["title"] == fired["title"]
    send(mosquitto, ("luodong", 8, 0.0), ("luodong", 10, 0.2), ("luodong", 12, 0.001))
    time.sleep(2)
    assert len(bureau.posts) == 1  # a single 0.0 inside the plume, and one calm reading: still firing
    send(mosquitto, ("luodong", 14, 0.001))  # two calm readings, one cycle apart
    resolved = bureau.wait_for(2, timeout=20)[1].json
    assert "RESOLVED" in resolved["title"] and "2012-01-15 22:00:00+08:00" in resolved["message"], resolved
    assert sensors.posts == []  # water alerts do not reach the sensor desk


def test_a_one_off_is_withdrawn_and_only_the_operator_hears_of_it(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    operator, bureau = receivers["operator"], receivers["bureau"]
    send(mosquitto, ("yemao", 0, 0.001), ("yemao", 2, 0.015), ("yemao", 4, 0.001))
    posts = operator.wait_for(2, timeout=20)
    assert (
        posts[0]
        .json["title"]
        .startswith("unconfirmed: cadmium at Yemao hydropower station 0.015 mg/L (3x); re-check at 12:00")
    )
    assert (
        posts[1].json["title"]
        == "withdrawn: cadmium at Yemao hydropower station 10:00 not confirmed by the 12:00 reading"
    )
    time.sleep(1)
    assert bureau.posts == []
    service.wait(
        lambda: service.metric('riverwatch_alert_transitions_total{category="water",state="withdrawn"}') >= 1,
        10,
        "the withdrawal counted as a water transition",
    )


def test_a_late_reading_after_a_restart_does_not_resolve(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    bureau = receivers["bureau"]
    send(mosquitto, ("lalang", 0, 0.03), ("lalang", 2, 0.03), ("lalang", 4, 0.03), ("lalang", 6, 0.03))
    bureau.wait_for(1, timeout=20)
    service.wait(lambda: service.metric("riverwatch_readings_evaluated_total") >= 4, 20, "four readings evaluated")
    time.sleep(1)
    service.stop()
    service.start()
    send(mosquitto, ("lalang", 3, 0.001), ("lalang", 5, 0.001))  # late: before the 6 h reading evaluated
    service.wait(lambda: service.metric("riverwatch_readings_evaluated_total") >= 2, 20, "the late readings evaluated")
    time.sleep(2)
    assert [t for t in titles(bureau) if "RESOLVED" in t] == []
    send(mosquitto, ("lalang", 8, 0.001), ("lalang", 10, 0.001))
    posts = bureau.wait_for(2, timeout=20)
    assert "RESOLVED" in posts[1].json["title"]


def test_a_reading_just_under_the_limit_and_rising_is_the_first_step_and_the_next_over_confirms(
    service: ServiceProcess, mosquitto: Mosquitto, receivers: dict[str, HttpReceiver]
) -> None:
    operator, bureau = receivers["operator"], receivers["bureau"]
    flat = [0.00200, 0.00202, 0.00199, 0.00201, 0.00198, 0.00200, 0.00202, 0.00199, 0.00201, 0.00200, 0.00198]
    rise = [0.0028, 0.0034, 0.0039, 0.0044, 0.0049]  # quiet series: only 0.0049 is within its noise
    send(mosquitto, *(("luodong", 2.0 * k, v) for k, v in enumerate(flat + rise)))
    (first,) = operator.wait_for(1, timeout=30)
    title = first.json["title"]
    assert title.startswith("rising toward the limit: cadmium at Luodong hydropower station 0.0049 mg/L"), title
    assert "re-check at" in title and "unconfirmed" not in title, title  # never worded as an exceedance
    time.sleep(1)
    assert bureau.posts == []
    send(mosquitto, ("luodong", 2.0 * len(flat + rise), 0.0055))  # the next reading over: confirmed at once
    fired = bureau.wait_for(1, timeout=20)[0].json
    assert "FIRING" in fired["title"] and "Luodong" in fired["title"], fired
