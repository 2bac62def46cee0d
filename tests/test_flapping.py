"""Flap control: a toggling alert becomes one "flapping" message and one resolve once calm, not a storm."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from monitor.alerts.evaluator import Evaluator
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.domain.reading import Reading
from monitor.thresholds import load, shipped_path
from simulators.publish import publish
from tests.service_proc import ServiceProcess

T0 = 1326585600
TOGGLING = [0.01 if i % 2 == 0 else 0.001 for i in range(10)]  # over, under, over... every 5 minutes
CALM = [0.001] * 14  # then 70 minutes under the limit


def test_flap_guard_on_the_real_rules() -> None:
    ev = Evaluator(load([shipped_path()]), "III")
    guard = FlapGuard(max_transitions=3, window_s=3600)
    readings = [Reading("s", "cd", (T0 + 300 * i) * 10**9, v) for i, v in enumerate(TOGGLING + CALM)]
    verdicts = []
    for r in readings:
        for e in ev.process([r]):
            verdicts.append((e.state, guard.observe(e)))
        for e in guard.calmed(r.ts_ns):
            verdicts.append((e.state + " (calm)", guard.observe(e)))
    assert verdicts[:4] == [
        ("firing", Verdict.SEND),
        ("resolved", Verdict.SEND),
        ("firing", Verdict.SEND),
        ("resolved", Verdict.START),
    ]
    assert {v for _, v in verdicts[4:-1]} == {Verdict.HOLD}
    assert verdicts[-1] == ("resolved (calm)", Verdict.SEND)


def test_flapping_input_through_the_service(tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "flapping"
[notify]
urls = ["{http_receiver.json_url()}"]
flap_max_transitions = 3
flap_window_s = 3600
""",
    )
    try:
        svc.start()
        values = TOGGLING + CALM
        publish(
            [
                (0, "river/flappy/cd", json.dumps({"ts": T0 + 300 * i, "value": v}).encode())
                for i, v in enumerate(values)
            ],
            mosquitto.url,
        )
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= len(values), 20, "every reading")
        posts = http_receiver.wait_for(5, timeout=20)
        time.sleep(1)
        titles = [p.json["title"] for p in http_receiver.posts]
        assert len(titles) == 5, titles
        assert ["FIRING" in titles[0], "RESOLVED" in titles[1], "FIRING" in titles[2]] == [True, True, True]
        assert titles[3].startswith("[FLAPPING, held as firing]")
        assert "RESOLVED" in titles[4] and "FLAPPING" not in titles[4]
        assert "keeps toggling: it is held as firing" in posts[3].json["message"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
