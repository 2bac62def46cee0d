"""`riverwatch demo`: the Longjiang 2012 cadmium spill through the real service path, with nothing installed.

An embedded amqtt broker on a free loopback port, the embedded store and the console notifier in a
temporary data_dir; the scenario is published as SenML station packs (amqtt relays well under 1k QoS 1
messages/s, so one message per reading would be too slow) through MQTT into the same `Service` that
`riverwatch run` uses.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

from monitor.alerts.evaluator import AlertEvent
from monitor.config import Config, MqttConfig, NotifyConfig, ServiceConfig, ThresholdsConfig
from monitor.service.app import Service
from monitor.thresholds import shipped_path
from simulators.longjiang import longjiang_2012, senml_packs
from simulators.publish import publish

log = logging.getLogger("riverwatch.demo")

# Simulated seconds per real second: the 36 days of the scenario in about 16 s.
DEFAULT_SPEED = 200_000.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(speed: float = DEFAULT_SPEED, data_dir: Path | None = None, settle_timeout_s: float = 60.0) -> int:
    from amqtt.broker import Broker  # noqa: PLC0415  heavy optional broker, demo only

    port = _free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    tmp = None
    if data_dir is None:  # zero-install: nothing left behind
        tmp = tempfile.TemporaryDirectory(prefix="riverwatch-demo-")
        data_dir = Path(tmp.name)
    cfg = Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{port}", protocol="3.1.1", client_id="riverwatch-demo"),
        thresholds=ThresholdsConfig(files=(shipped_path("gb3838-2002.toml"), shipped_path("longjiang-stations.toml"))),
        notify=NotifyConfig(urls=("console://",), utc_offset="+08:00"),
        service=ServiceConfig(data_dir=data_dir, http_listen=""),
        source="(demo)",
    )
    first_alert: list[AlertEvent] = []
    service = Service(cfg, on_alert=first_alert.append)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, ready))
    started = time.monotonic()
    try:
        await ready.wait()
        await asyncio.wait_for(service.ingest.subscribed.wait(), timeout=15)
        scenario = longjiang_2012()
        readings = scenario.readings()
        messages = list(senml_packs(readings))
        print(
            f"riverwatch demo: {scenario.name}, {len(scenario.stations)} stations, {len(readings)} readings "
            f"in {len(messages)} SenML packs over MQTT (embedded broker 127.0.0.1:{port})",
            flush=True,
        )
        await asyncio.to_thread(
            publish,
            messages,
            f"mqtt://127.0.0.1:{port}",
            speed=speed,
            qos=1,
            window=200,
            client_id="riverwatch-demo-publisher",
        )
        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline:
            if service.summary().messages >= len(messages) and service.settled():
                break
            await asyncio.sleep(0.1)
        else:
            log.error("the service did not settle within %.0f s", settle_timeout_s)
            return 1
    finally:
        stop.set()
        await task
        await broker.shutdown()
        if tmp is not None:
            tmp.cleanup()
    s = service.summary()
    print("\n=== riverwatch demo summary ===")
    print(f"messages {s.messages}, readings accepted {s.readings}, rejected {s.rejected}, stored {s.written}")
    print(f"stations {len(s.stations)}: {', '.join(sorted(s.stations))}")
    water = Counter(e.state for e in first_alert if e.category == "water")
    sensor = Counter(e.state for e in first_alert if e.category == "sensor")
    print(
        f"water alerts: {water['unconfirmed']} unconfirmed notices ({water['withdrawn']} withdrawn), "
        f"{water['firing']} confirmed, {water['escalated']} escalated, {water['resolved']} resolved"
    )
    print(f"sensor alerts: {sensor['firing']} raised, {sensor['resolved']} cleared")
    confirmed = [e for e in first_alert if e.category == "water" and e.state == "firing"]
    hit = sorted({e.station for e in confirmed}, key=lambda st: min(e.ts_ns for e in confirmed if e.station == st))
    print(f"stations in alarm, in order: {', '.join(hit) or 'none'}")
    print(f"took {time.monotonic() - started:.1f} s")
    return 0
