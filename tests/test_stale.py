"""Stale data marked (issue 19 item 3), through `riverwatch run` on a real mosquitto with a real HTTP receiver.

A data logger back from a week offline re-sends its history: an exceedance three days old is news for the station
operator, labelled as such, and not a page for the bureau. What the history leaves firing is still news for
everyone: the first readings that arrive on time send it to the bureau, once, marked as reported late."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import REPO, ServiceProcess

DAY = 86400


def _config(mosquitto: Mosquitto, receiver: HttpReceiver, tmp_path: Path, stale_after: str) -> str:
    return f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "stale-{stale_after}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "{one_step(tmp_path)}"]

[notify]
group_wait = 0
group_interval = 0
stale_after = "{stale_after}"
urls = ["{receiver.json_url("bureau")}"]

[[notify.route]]
url = "{receiver.json_url("operator")}"
stations = ["sancha"]
stale = true
"""


def _cd(ts: float, value: float) -> tuple[int, str, bytes]:
    return 0, "river/sancha/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


def _titles(receiver: HttpReceiver, path: str) -> list[str]:
    """The water alerts' titles (the station's silence since its history is a sensor alert of its own)."""
    return [p.json["title"] for p in receiver.posts if p.path == f"/{path}" and "SENSOR" not in p.json["title"]]


def test_a_resent_history_goes_to_the_operator_labelled_and_what_it_left_firing_reaches_the_bureau_on_time(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    receiver = HttpReceiver()
    receiver.start()
    svc = ServiceProcess(tmp_path, _config(mosquitto, receiver, tmp_path, "6h"))
    now = time.time()
    try:
        svc.start()
        # Three days ago: over the limit (0.005 mg/L), back under, over again; nothing since.
        history = [_cd(now - 3 * DAY + 3600 * i, v) for i, v in enumerate([0.02, 0.001, 0.03])]
        publish(history, mosquitto.url)
        svc.wait(lambda: len(_titles(receiver, "operator")) >= 3, 20, "the history's three transitions")
        time.sleep(1.0)  # nothing else is coming for either target
        operator, bureau = _titles(receiver, "operator"), _titles(receiver, "bureau")
        assert len(operator) == 3 and all(t.startswith("[STALE] ") for t in operator), operator
        assert bureau == []
        body = next(p.json["message"] for p in receiver.posts if p.path == "/operator")
        assert "Stale data: from a reading of" in body and "re-sending its history" in body

        publish([_cd(now, 0.04)], mosquitto.url)  # on time, still over the limit: no transition of its own
        svc.wait(lambda: len(_titles(receiver, "bureau")) >= 1, 20, "the alert reported late")
        time.sleep(1.0)
        bureau = _titles(receiver, "bureau")
        assert len(bureau) == 1 and bureau[0].startswith("[REPORTED LATE] "), bureau
        assert "FIRING: cadmium (cd) at Sancha" in bureau[0]
        assert len(_titles(receiver, "operator")) == 3  # it had the stale notice: nothing twice
    finally:
        svc.stop()
        receiver.stop()


def test_without_stale_after_a_history_is_sent_to_everyone_as_before(tmp_path: Path, mosquitto: Mosquitto) -> None:
    receiver = HttpReceiver()
    receiver.start()
    svc = ServiceProcess(tmp_path, _config(mosquitto, receiver, tmp_path, "0s"))
    try:
        svc.start()
        publish([_cd(time.time() - 3 * DAY, 0.02)], mosquitto.url)
        svc.wait(lambda: len(_titles(receiver, "operator")) >= 1, 20, "the firing alert")
        time.sleep(1.0)
        bureau = _titles(receiver, "bureau")
        assert len(bureau) == 1 and "FIRING: cadmium (cd) at Sancha" in bureau[0] and "STALE" not in bureau[0]
        assert len(_titles(receiver, "operator")) == 1  # `stale = true` adds stale notices, takes nothing away
    finally:
        svc.stop()
        receiver.stop()
