"""The early warning through the real service: the Longjiang plume replayed through mosquitto reaches a water
company's route as a forecast notice for a station ahead, before that station's own alert; a kill -9 and a
restart send it no second time."""

from __future__ import annotations

import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.longjiang import single_messages
from simulators.publish import publish
from simulators.scenarios import SCENARIOS
from tests.one_step import one_step
from tests.service_proc import ServiceProcess


def test_a_forecast_notice_reaches_the_water_company_once(
    tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    repo = Path(__file__).resolve().parent.parent
    bureau = HttpReceiver()
    bureau.start()
    scenario = SCENARIOS["longjiang-2012"]()
    cd = [r for r in scenario.readings() if r.parameter == "cd"]
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "forecast-notice"
[thresholds]
files = ["{repo}/thresholds/gb3838-2002.toml", "{repo}/thresholds/longjiang-stations.toml",
    "{one_step(tmp_path)}"]
[notify]
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
[[notify.route]]
url = "{http_receiver.json_url()}"
forecasts = true
[[notify.route]]
url = "{bureau.json_url()}"
""",
    )
    try:
        svc.start()
        luodong_fired = next(r.ts_ns for r in cd if r.station == "luodong" and r.value > 0.005 and r.flag is None)
        first = [r for r in cd if r.ts_ns <= luodong_fired + 24 * 3600 * 10**9]
        publish(list(single_messages(first)), mosquitto.url)
        svc.wait(
            lambda: any(p.json["title"].startswith("Forecast: cadmium at Sancha") for p in http_receiver.posts),
            60,
            "a forecast notice for Sancha",
        )
        notices = [p.json for p in http_receiver.posts if p.json["title"].startswith("Forecast")]
        ahead = [n for n in notices if "Sancha" in n["title"] or "Nuomitan" in n["title"]]
        assert ahead, [n["title"] for n in notices]
        assert "from about" in ahead[0]["title"] and "its limit" in ahead[0]["title"]  # when, and how high
        assert "Over the limit:" in ahead[0]["message"]
        assert not any(p.json["title"].startswith("Forecast") for p in bureau.posts)  # the bureau did not opt in
        fired_sancha = [p for p in http_receiver.posts if "FIRING" in p.json["title"] and "(sancha)" in p.json["title"]]
        assert not fired_sancha  # the warning came before Sancha's own alert
        time.sleep(2)
        sent = sorted((p.json["title"], p.json["message"]) for p in http_receiver.posts if p.status == 200)
        svc.kill9()
        svc.start()
        time.sleep(5)
        again = sorted((p.json["title"], p.json["message"]) for p in http_receiver.posts if p.status == 200)
        assert again == sent  # nothing sent twice after the restart
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
        bureau.stop()
