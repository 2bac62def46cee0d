"""Grouping by incident through the service (real mosquitto, real HTTP receiver): transitions of one incident
within group_wait go to a target as one message; a later change goes after group_interval; a kill -9 in the
middle of a wait loses nothing and sends nothing twice."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver, ReceivedPost
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
H = 3600
REPO = Path(__file__).resolve().parent.parent
NAMES = {"lalang": "Lalang", "yemao": "Yemao", "luodong": "Luodong"}


def reading(station: str, hours: float, value: float) -> tuple[int, str, bytes]:
    ts = T0 + hours * H
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


def plume() -> list[tuple[int, str, bytes]]:
    """Three stations of the Longjiang confirmed over the cadmium limit, one after the other downstream."""
    out = []
    for i, station in enumerate(("lalang", "yemao", "luodong")):
        start = 8 * i
        out += [reading(station, start, 0.001), reading(station, start + 2, 0.015), reading(station, start + 4, 0.016)]
    return out


@pytest.fixture
def bureau() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.stop()


def service(
    tmp_path: Path, mosquitto: Mosquitto, bureau: HttpReceiver, name: str, wait: str, interval: str
) -> ServiceProcess:
    return ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "grouping-{name}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]

[notify]
urls = []
utc_offset = "+08:00"

[[notify.route]]
url = "{bureau.json_url()}"
categories = ["water"]
group_wait = "{wait}"
group_interval = "{interval}"
""",
    )


def carried(p: ReceivedPost) -> int:
    """How many transitions a message carries: a grouped title says "(+N more)"."""
    more = re.search(r"\(\+(\d+) more\)$", p.json["title"])
    return 1 + int(more.group(1)) if more else 1


def outbox_rows(tmp_path: Path) -> list[tuple[str, int | None, int]]:
    db = sqlite3.connect(f"file:{tmp_path / 'data' / 'outbox.sqlite'}?mode=ro", uri=True)
    try:
        return [(str(k), d, int(a)) for k, d, a in db.execute("SELECT key, delivered_ns, attempts FROM outbox")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def test_one_incident_crossing_three_stations_is_one_message_then_a_later_change_a_second(
    tmp_path: Path, mosquitto: Mosquitto, bureau: HttpReceiver
) -> None:
    svc = service(tmp_path, mosquitto, bureau, "three", "4s", "6s")
    svc.start()
    try:
        publish(plume(), mosquitto.url)
        (first,) = bureau.wait_for(1, timeout=30)
        time.sleep(2)
        assert len(bureau.posts) == 1, [p.json["title"] for p in bureau.posts]  # one message, not three
        body, title = first.json["message"], first.json["title"]
        changes = body.split("\n\n")[0].splitlines()
        assert len(changes) == 3 and title.endswith("(+2 more)"), body
        for line, name in zip(changes, NAMES.values(), strict=True):  # what changed leads, oldest first
            assert line.startswith(name) and "over the limit" in line, body
        assert "Incident" in body and all(name in body.split("\n\n")[1] for name in NAMES.values()), body
        sent_at = time.monotonic()
        # Luodong calms: its resolve is a later change of the same incident, after group_interval
        publish([reading("luodong", 22, 0.001), reading("luodong", 24, 0.001)], mosquitto.url)
        second = bureau.wait_for(2, timeout=30)[1]
        assert time.monotonic() - sent_at >= 3.0  # held for the rest of the 6 s interval, not sent at once
        assert "RESOLVED" in second.json["title"] and "Luodong" in second.json["title"], second.json
        svc.wait(lambda: all(d is not None for _, d, _ in outbox_rows(tmp_path)), 10, "the resolve marked delivered")
        rows = outbox_rows(tmp_path)
        assert len(rows) == 4 and all(a == 1 for _, _, a in rows), rows
    finally:
        svc.stop()


def test_a_kill_9_in_the_middle_of_a_group_wait_sends_each_transition_once(
    tmp_path: Path, mosquitto: Mosquitto, bureau: HttpReceiver
) -> None:
    svc = service(tmp_path, mosquitto, bureau, "kill9", "8s", "8s")
    svc.start()
    try:
        publish(plume(), mosquitto.url)
        svc.wait(lambda: len(outbox_rows(tmp_path)) == 3, 20, "three transitions waiting in the outbox")
        assert bureau.posts == []  # still within group_wait
        svc.kill9()
        svc.start()
        bureau.wait_for(1, timeout=30)
        time.sleep(3)
        posts = bureau.posts
        assert sum(carried(p) for p in posts) == 3, [p.json["title"] for p in posts]  # each transition, once
        text = "\n".join(p.json["title"] + "\n" + p.json["message"] for p in posts)
        assert all(name in text for name in NAMES.values()), text
        rows = outbox_rows(tmp_path)
        assert len(rows) == 3 and all(d is not None and a == 1 for _, d, a in rows), rows
    finally:
        svc.stop()
