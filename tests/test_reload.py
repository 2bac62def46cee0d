"""Threshold files reloaded live: on file change and on SIGHUP, validated first, with no alert lost or doubled."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600
STATION = """
[stations.reload-st]
name = "Reload test station"
river = "Testriver"
river_km = 1.0
class = "{klass}"
"""


def reading(ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), "river/reload-st/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


def test_reload_on_change_and_on_sighup_keeps_the_rules_when_the_file_is_bad(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    gb = tmp_path / "gb3838-2002.toml"
    shutil.copy(REPO / "thresholds" / "gb3838-2002.toml", gb)
    stations = tmp_path / "stations.toml"
    stations.write_text(STATION.format(klass="III"))
    # About reloading, not the two steps: the one-step lifecycle (tests/test_two_step_alerting.py has those).
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "reload"
[thresholds]
files = ["{gb}", "{stations}", "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
urls = ["{http_receiver.json_url()}"]
""",
    )
    try:
        svc.start()
        publish([reading(T0, 0.004)], mosquitto.url)  # under Class III's 0.005
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= 1, 20, "the first reading")
        stations.write_text(STATION.format(klass="I"))  # Class I: 0.001
        svc.wait(lambda: svc.metric("riverwatch_threshold_reloads_total") >= 1, 20, "the reload on file change")
        publish([reading(T0 + 3600, 0.004)], mosquitto.url)
        (post,) = http_receiver.wait_for(1, timeout=20)
        assert "Class I)" in post.json["message"] and "4x the limit" in post.json["title"]

        stations.write_text(STATION.format(klass="I") + '\nclass = "II"\n')  # a duplicate key: refused
        svc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        svc.wait(lambda: "thresholds not reloaded" in svc.output(), 20, "the refused reload")
        assert f"{stations}:" in svc.output()  # path:line of the problem
        status, health = svc.health()
        assert status == 200 and health["checks"]["thresholds"]["status"] == "degraded"
        publish([reading(T0 + 7200, 0.003)], mosquitto.url)  # still over Class I: the old rules stand
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= 3, 20, "the third reading")
        time.sleep(1)
        assert len(http_receiver.posts) == 1  # nothing resolved, nothing fired twice

        stations.write_text(STATION.format(klass="III"))
        svc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        svc.wait(lambda: svc.metric("riverwatch_threshold_reloads_total") >= 2, 20, "the second reload")
        publish([reading(T0 + 10800, 0.003)], mosquitto.url)  # under Class III again: the open alert resolves
        posts = http_receiver.wait_for(2, timeout=20)
        assert "RESOLVED" in posts[1].json["title"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
