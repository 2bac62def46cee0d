"""Flap control: a toggling alert becomes one "flapping" message and one resolve once calm, not a storm."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from monitor.alerts.evaluator import AlertBook, Evaluator
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.domain.reading import Reading
from monitor.thresholds import load, shipped_path
from simulators.publish import publish
from tests.service_proc import ServiceProcess
from tests.test_alert_lifecycle import run

T0 = 1326585600
TOGGLING = [
    0.02 if i % 2 == 0 else 0.001 for i in range(10)
]  # over, under, over... every 5 minutes (0.01 would be the check standard)
CALM = [0.001, 0.0012] * 7  # then 70 minutes under the limit (not equal: a stuck analyser is a sensor alert)


def test_flap_guard_on_the_real_rules() -> None:
    shipped = load([shipped_path()])  # one step, clearing at once: the toggling the flap guard is there for
    one_step = dataclasses.replace(shipped.alerts, confirm=1, clear_readings=1, clear_hold_ns=0)
    ev = Evaluator(dataclasses.replace(shipped, alerts=one_step), "III")
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
group_wait = 0  # one message per transition: these tests count them
group_interval = 0
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
                (0, "river/flappy/cd", json.dumps({"unit": "mg/L", "ts": T0 + 300 * i, "value": v}).encode())
                for i, v in enumerate(values)
            ],
            mosquitto.url,
        )
        svc.wait(lambda: svc.metric("riverwatch_readings_evaluated_total") >= len(values), 20, "every reading")
        posts = http_receiver.wait_for(5, timeout=20)
        time.sleep(1)
        titles = [p.json["title"] for p in http_receiver.posts]
        assert len(titles) == 5, titles
        # two steps (the default): each exceedance is an unconfirmed notice that the next reading withdraws
        prefixes = [t.split(":")[0] for t in titles[:3]]
        assert prefixes == ["unconfirmed", "withdrawn", "unconfirmed"], titles
        assert titles[3].startswith("[FLAPPING] withdrawn:")
        assert titles[4].startswith("withdrawn:")
        assert "keeps toggling: its notices are held" in posts[3].json["message"]
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_the_confirmation_of_an_unconfirmed_alert_is_not_a_flip() -> None:
    guard = FlapGuard(max_transitions=1, window_s=3600)
    events = run(AlertBook(), [0, 0.1, 0.2], [0.03, 0.03, 0.03])  # unconfirmed, then firing: one opening
    assert [(e.state, guard.observe(e)) for e in events] == [("unconfirmed", Verdict.SEND), ("firing", Verdict.SEND)]
    assert not guard.is_flapping(events[-1])
