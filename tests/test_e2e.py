"""The whole service as a user runs it: `riverwatch run` as a subprocess on a real mosquitto, a real
VictoriaMetrics (InfluxDB v2 write API) and a real HTTP receiver behind apprise's json://."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto, Victoria
from simulators.publish import publish
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600  # 2012-01-15T08:00:00+08:00


def config(mosquitto: Mosquitto, victoria: Victoria, receiver: HttpReceiver, client_id: str) -> str:
    return f"""
[mqtt]
url = "{mosquitto.url}"
topics = ["river/#"]
client_id = "{client_id}"
qos = 1

[influxdb]
url = "{victoria.influx_url}"
org = "bureau"
bucket = "water"
token_env = "RW_TEST_TOKEN"
flush_interval_s = 0.2

[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{receiver.json_url()}"]
"""


@pytest.fixture
def service(
    tmp_path: Path,
    mosquitto: Mosquitto,
    victoria: Victoria,
    http_receiver: HttpReceiver,
    request: pytest.FixtureRequest,
) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        tmp_path,
        config(mosquitto, victoria, http_receiver, f"rw-{request.node.name}"[:60]),
        env={"RW_TEST_TOKEN": "secret-token-value"},
    )
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()


def single(station: str, parameter: str, ts: float, value: object, unit: str = "mg/L") -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/{parameter}", json.dumps({"ts": ts, "value": value, "unit": unit}).encode()


def stop(svc: ServiceProcess) -> float:
    code, took = svc.terminate()
    assert code == 0, svc.output()
    return took


def test_readings_land_exactly_once_with_their_timestamps_despite_bad_payloads(
    service: ServiceProcess, mosquitto: Mosquitto, victoria: Victoria, http_receiver: HttpReceiver
) -> None:
    station = "e2e-exact"
    good = [single(station, "cd", T0 + 600 * i, round(0.0001 * (i % 30), 6)) for i in range(300)]
    bad = [
        (0, f"river/{station}/cd", b"not json"),
        (0, f"river/{station}/cd", json.dumps({"unit": "mg/L", "value": "0.003"}).encode()),
        (0, f"river/{station}/cd", json.dumps({"unit": "mg/L", "value": -1}).encode()),
        (0, f"river/{station}/unobtainium", json.dumps({"value": 1}).encode()),
        (0, f"river/{station}/cd", json.dumps({"value": 1, "unit": "furlongs"}).encode()),
        (0, f"river/{station}/cd", b'{"unit": "mg/L", "value": NaN}'),
    ]
    stream = good[:100] + bad[:3] + good[100:200] + bad[3:] + good[200:]
    publish(stream, mosquitto.url, window=50)

    service.wait(lambda: service.metric("riverwatch_readings_written_total") >= 300, 30, "300 readings written")
    points = victoria.series_points("water_quality_value", station=station, parameter="cd")
    expected = [((T0 + 600 * i) * 1000, round(0.0001 * (i % 30), 6)) for i in range(300)]
    assert points == expected  # each exactly once, with its own timestamp and value
    metrics = service.get("/metrics")[1]
    for reason, n in [
        ("malformed", 1),
        ("not_finite", 1),
        ("not_numeric", 1),
        ("negative", 1),
        ("unknown_parameter", 1),
        ("unknown_unit", 1),
    ]:
        assert f'riverwatch_readings_rejected_total{{reason="{reason}"}} {float(n)}' in metrics
    assert "rejected payload on topic 'river/e2e-exact/unobtainium'" in service.output()
    assert http_receiver.posts == []  # nothing here is over a limit
    status, body = service.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "secret-token-value" not in service.output()
    assert stop(service) < 10


def test_one_notification_per_exceedance_and_one_when_resolved(
    service: ServiceProcess, mosquitto: Mosquitto, victoria: Victoria, http_receiver: HttpReceiver
) -> None:
    station = "e2e-alert"
    # The first reading over the limit is an unconfirmed notice with the numbers that matter ...
    publish([single(station, "cd", T0, 41, "ug/L")], mosquitto.url)
    (post,) = http_receiver.wait_for(1, timeout=20)
    text = post.json["title"] + "\n" + post.json["message"]
    for needle in (station, "cadmium", "0.041 mg/L", "0.005 mg/L", "GB 3838-2002", "Class III", "8.2", "2012-01-15"):
        assert needle in text, f"{needle!r} missing from:\n{text}"
    assert text.startswith("unconfirmed:"), text
    # ... the next one confirms it: the alert, once.
    publish([single(station, "cd", T0 + 3600, 0.031)], mosquitto.url)
    posts = http_receiver.wait_for(2, timeout=20)
    assert "firing" in posts[1].json["message"] and "6.2" in posts[1].json["title"], posts[1].json

    # More exceeding readings do not notify again; a higher tier escalates once.
    publish([single(station, "cd", T0 + 3600 * k, 0.03 + 0.001 * k) for k in range(2, 6)], mosquitto.url)
    # 30x twice: from serious to critical (one such reading between 7x and 0.4x would be screened as a spike)
    publish([single(station, "cd", T0 + 3600 * 6, 0.15), single(station, "cd", T0 + 3600 * 6.5, 0.16)], mosquitto.url)
    posts = http_receiver.wait_for(3, timeout=20)
    assert "escalated" in posts[2].json["message"]
    # One compliant reading does not clear it; the second, an analyser cycle later, does.
    publish([single(station, "cd", T0 + 3600 * 7, 0.002)], mosquitto.url)
    time.sleep(1.0)
    assert len(http_receiver.posts) == 3
    publish([single(station, "cd", T0 + 3600 * 8, 0.001)], mosquitto.url)
    posts = http_receiver.wait_for(4, timeout=20)
    assert "resolved" in posts[3].json["message"].lower()
    time.sleep(1.0)
    assert len(http_receiver.posts) == 4
    # The transitions are in the database too (measurement `alert`), for dashboards.
    alerts = {
        (row["metric"]["state"], row["metric"]["severity"], row["metric"]["category"]): row["values"]
        for row in victoria.export(f'alert_ratio{{station="{station}"}}')
    }
    assert alerts == {
        ("unconfirmed", "serious", "water"): [pytest.approx(8.2)],
        ("firing", "serious", "water"): [pytest.approx(6.2)],
        ("escalated", "critical", "water"): [pytest.approx(30.0)],
        ("resolved", "critical", "water"): [pytest.approx(0.2)],
    }
    assert victoria.series_points("alert_limit", station=station, state="firing") == [((T0 + 3600) * 1000, 0.005)]
    assert stop(service) < 10


def test_a_failing_notification_target_is_retried_and_does_not_block_ingest(
    service: ServiceProcess, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    http_receiver.fail_next(2, status=500)
    publish([single("e2e-retry", "cd", T0, 0.05)], mosquitto.url)
    publish([single("e2e-retry", "do", T0 + 60 * i, 8.0) for i in range(200)], mosquitto.url)
    service.wait(lambda: service.metric("riverwatch_readings_written_total") >= 201, 30, "readings written")
    delivered = http_receiver.wait_for(1, timeout=20, delivered_only=True)
    assert [p.status for p in http_receiver.posts] == [500, 500, 200]
    assert "e2e-retry" in delivered[-1].json["title"]
    assert service.metric("riverwatch_notifications_failed_total") == 2
    assert stop(service) < 10


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nqos = 7\n')
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert f"{cfg}: [mqtt].qos: must be 0, 1 or 2" in proc.stderr
