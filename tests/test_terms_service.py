"""Through the service, with a real broker and a real HTTP receiver: a bureau whose messages are configured in
Chinese gets them wholly in Chinese (a grouped message too), in the emergency plans' levels, saying how to
acknowledge."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess
from tests.test_terms import latin

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
DAY = 86400
REPO = Path(__file__).resolve().parent.parent


def single(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"ts": ts, "value": value, "unit": "mg/L"}).encode()


@pytest.fixture
def service(tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "terms-zh"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml",
    "{one_step(tmp_path)}"]

[notify]
urls = []
language = "zh"
utc_offset = "+08:00"

[[notify.route]]
url = "{http_receiver.json_url()}"
""",
    )
    svc.start()
    yield svc
    svc.stop()


def test_a_chinese_route_gets_wholly_chinese_messages(
    service: ServiceProcess, mosquitto: Mosquitto, http_receiver: HttpReceiver
) -> None:
    publish([single("sancha", T0, 0.02)], mosquitto.url)  # 4x the Class III limit: a warning
    publish([single("liuzhou-hexi", T0 + DAY, 0.15)], mosquitto.url)  # 30x: critical, below the confluence
    # One grouped message for the incident, or one message each: every one wholly Chinese.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        posts = [p.json for p in http_receiver.posts]
        text = "\n".join(f"{p['title']}\n{p['message']}" for p in posts)
        if "三岔" in text and "柳州河西水厂取水口" in text:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"both alerts within 40 s: {posts}")
    assert "蓝色预警（Ⅳ级，一般）" in text and "橙色预警（Ⅱ级，重大）" in text, text
    assert "龙江 80 公里处" in text and "确认：riverwatch ack " in text, text
    assert "特别严重" not in text
    for p in posts:
        assert not latin(p["title"]) and not latin(p["message"]), (latin(p["title"]), latin(p["message"]), p)
