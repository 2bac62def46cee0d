"""Issue 17, rough edge 1: `silence add --parameter cadmium` printed "silence 5" and silenced nothing (stored as
`cadmium`, matched against `cd`); unknown stations and parameters were taken without a word; `--until tomorrow`
hinted "tomorrow+08:00"; there was no `--duration`. On a real service, broker and receiver."""

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

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600  # 2012-01-15T08:00:00+08:00


def cd(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


@pytest.fixture
def service(tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "rough-edges-silence"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "{one_step(tmp_path)}"]

[notify]
group_wait = 0
group_interval = 0
urls = ["{http_receiver.json_url()}"]
""",
    )
    svc.start()
    yield svc
    svc.stop()


def silence(svc: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "silence", *args, "--config", str(svc.config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=svc.workdir,
    )


def test_a_silence_by_parameter_name_silences_that_parameter(
    service: ServiceProcess, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    until = (datetime.now(UTC) + timedelta(hours=6)).isoformat(timespec="minutes")
    proc = silence(
        service, "add", "--station", "lalang", "--parameter", "cadmium", "--until", until, "--reason", "maintenance"
    )
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"silence \d+: lalang/cd until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(maintenance\)", proc.stdout), proc
    publish([cd("lalang", T0, 0.05)], mosquitto.url)  # 10x the Class III limit
    service.wait(lambda: service.metric("riverwatch_notifications_silenced_total") >= 1, 20, "a silenced alert")
    publish([cd("yemao", T0, 0.05)], mosquitto.url)  # not silenced: reaches the receiver
    (post,) = http_receiver.wait_for(1, timeout=20)
    assert "yemao" in post.json["title"], post.json
    time.sleep(1)
    assert all("lalang" not in p.json["title"] for p in http_receiver.posts)
    assert service.terminate()[0] == 0


def test_unknown_stations_parameters_and_times_are_refused_with_a_hint(service: ServiceProcess) -> None:
    add = ("add", "--reason", "r")
    proc = silence(service, *add, "--station", "lalangg", "--duration", "1h")
    assert proc.returncode == 2 and "--station 'lalangg': no such station" in proc.stderr, proc.stderr
    assert "did you mean lalang?" in proc.stderr
    proc = silence(service, *add, "--station", "lalang", "--parameter", "cadmum", "--duration", "1h")
    assert proc.returncode == 2 and "--parameter 'cadmum': unknown parameter; did you mean cd?" in proc.stderr, proc
    proc = silence(service, *add, "--station", "lalang", "--until", "tomorrow")
    assert proc.returncode == 2 and "tomorrow+08:00" not in proc.stderr, proc.stderr
    assert re.search(r"--until 'tomorrow' is not an ISO 8601 time: e\.g\. \d{4}-\d\d-\d\dT08:00\+08:00", proc.stderr)
    assert "--duration" in proc.stderr
    proc = silence(service, *add, "--station", "lalang", "--until", "2031-01-01T08:00")
    assert proc.returncode == 2 and "e.g. 2031-01-01T08:00+08:00" in proc.stderr, proc.stderr
    proc = silence(service, *add, "--station", "lalang", "--until", "2020-01-01T08:00+08:00")
    assert proc.returncode == 2 and "in the past" in proc.stderr, proc.stderr
    proc = silence(service, *add, "--station", "lalang", "--duration", "6 hours")
    assert proc.returncode == 2 and "not a duration" in proc.stderr, proc.stderr
    # The Chinese name resolves as well; nothing refused above was stored.
    proc = silence(service, *add, "--station", "lalang", "--parameter", "镉", "--until", "2031-01-01T08:00+08:00")
    assert proc.returncode == 0, proc.stderr
    listing = silence(service, "list").stdout.splitlines()
    assert len(listing) == 1 and "lalang/cd 2" in listing[0], listing
