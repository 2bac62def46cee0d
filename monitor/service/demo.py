"""`riverwatch demo`: the Longjiang 2012 cadmium spill through the real service path, with nothing installed.

An embedded amqtt broker on a free loopback port, the embedded store and the console notifier in a
temporary data_dir; the scenario is published as SenML station packs (amqtt relays well under 1k QoS 1
messages/s, so one message per reading would be too slow) through MQTT into the same `Service` that
`riverwatch run` uses. `--hj212`: the same scenario through the HJ 212 path instead, one data logger per station
(simulators/hj212) connected to the service's HJ 212 server on a free port, each waiting for its 9014.
`--console HOST:PORT`: the duty officer's console on that address, with a one-off `duty` user whose password is
printed, at an hour of river time per second by default (the incident unfolds over about ten minutes), and the
service kept running after the scenario until Ctrl-C, so the alerts can be acknowledged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import signal
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

from monitor.alerts.evaluator import AlertEvent
from monitor.config import Config, HJ212Config, MqttConfig, NotifyConfig, ServiceConfig, ThresholdsConfig
from monitor.config.console import ConsoleConfig, ConsoleUser
from monitor.config.notify import GROUP_WAIT_S
from monitor.service.app import Service
from monitor.service.console_auth import hash_password
from monitor.service.console_command import write_users
from monitor.thresholds import ThresholdSet, load, shipped_path
from simulators.hj212 import send_all, station_mn, uploads
from simulators.longjiang import longjiang_2012, senml_packs
from simulators.publish import publish

log = logging.getLogger("riverwatch.demo")

# Simulated seconds per real second: the 36 days of the scenario in about 16 s.
DEFAULT_SPEED = 200_000.0
CONSOLE_SPEED = 3600.0  # with --console: an hour of river time per second, for a duty officer to watch
CONSOLE_USER = "duty"
DEMO_PW_ENV = "RIVERWATCH_DEMO_HJ212_PW"  # the demo's loggers' password, set in the demo's own process only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_loggers(thresholds: ThresholdSet) -> ThresholdSet:
    """Every station with a data logger (MN "RW<ID>", password from DEMO_PW_ENV), as a station file would say."""
    os.environ.setdefault(DEMO_PW_ENV, "123456")
    stations = {
        sid: dataclasses.replace(st, mn=station_mn(st), pw_env=DEMO_PW_ENV) for sid, st in thresholds.stations.items()
    }
    return dataclasses.replace(thresholds, stations=stations)


async def run_demo(
    speed: float = DEFAULT_SPEED,
    data_dir: Path | None = None,
    settle_timeout_s: float = 60.0,
    hj212: bool = False,
    console: str = "",
) -> int:
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
    files = (shipped_path("gb3838-2002.toml"), shipped_path("longjiang-stations.toml"))
    hj212_port = _free_port() if hj212 else 0
    # 10 s of real time at 200,000x: 20 ms; --speed 0 (as fast as it goes) groups as the default pace does
    paced_s = GROUP_WAIT_S * DEFAULT_SPEED / (speed if speed > 0 else DEFAULT_SPEED) / 500
    console_cfg, password = _console(data_dir, console)
    cfg = Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{port}", protocol="3.1.1", client_id="riverwatch-demo"),
        thresholds=ThresholdsConfig(files=files),
        # Grouping at the demo's pace: at 200,000x an analyser cycle (2 h) passes in 36 ms, so a wait of 20 ms
        # puts one cycle's transitions of an incident into one message, as 10 s does in real time.
        notify=NotifyConfig(
            urls=("console://",),
            utc_offset="+08:00",
            group_wait_s=paced_s,
            group_interval_s=paced_s,
        ),
        service=ServiceConfig(data_dir=data_dir, http_listen=console),
        hj212=HJ212Config(enabled=hj212, port=hj212_port),
        console=console_cfg,
        source="(demo)",
    )
    first_alert: list[AlertEvent] = []
    thresholds = _with_loggers(load(list(files))) if hj212 else None
    service = Service(cfg, thresholds=thresholds, on_alert=first_alert.append)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, ready))
    started = time.monotonic()
    try:
        await ready.wait()
        await asyncio.wait_for(service.ingest.subscribed.wait(), timeout=15)
        if console:
            print(
                f"riverwatch demo: console at http://{console}/console/ - "
                f"log in as {CONSOLE_USER}, password {password}",
                flush=True,
            )
        scenario = longjiang_2012()
        readings = scenario.readings()
        if hj212:
            assert thresholds is not None
            by_station, skipped = uploads(readings)
            expected = sum(u.readings for ups in by_station.values() for u in ups)
            print(
                f"riverwatch demo: {scenario.name}, {len(by_station)} HJ 212 data loggers, {expected} readings in "
                f"{sum(map(len, by_station.values()))} CN=2011 uploads to 127.0.0.1:{hj212_port} "
                f"({sum(skipped.values())} readings without an HJ 212 code left out)",
                flush=True,
            )
            await send_all(by_station, thresholds.stations, "127.0.0.1", hj212_port, speed=speed)
        else:
            messages = list(senml_packs(readings))
            expected = len(messages)
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
            done = service.summary().readings if hj212 else service.summary().messages
            if done >= expected and service.settled():
                break
            await asyncio.sleep(0.1)
        else:
            log.error("the service did not settle within %.0f s", settle_timeout_s)
            return 1
        carried, sent = service.outbox.delivered_counts()
        if console:
            await _hold(console)
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
    print(f"notifications: {sent} messages carrying {carried} transitions (grouped by incident)")
    confirmed = [e for e in first_alert if e.category == "water" and e.state == "firing"]
    hit = sorted({e.station for e in confirmed}, key=lambda st: min(e.ts_ns for e in confirmed if e.station == st))
    print(f"stations in alarm, in order: {', '.join(hit) or 'none'}")
    print(f"took {time.monotonic() - started:.1f} s")
    return 0


def _console(data_dir: Path, listen: str) -> tuple[ConsoleConfig, str]:
    """The console with a one-off duty user in the demo's data_dir, and its password (off without --console)."""
    if not listen:
        return ConsoleConfig(), ""
    password = secrets.token_urlsafe(9)
    path = data_dir / "console-users.toml"
    write_users(path, {CONSOLE_USER: ConsoleUser(CONSOLE_USER, hash_password(password), "duty")})
    return ConsoleConfig(enabled=True, users_file=path), password


async def _hold(listen: str) -> None:
    """After the scenario: keep the console up until Ctrl-C (or SIGTERM), for the alerts to be acknowledged."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    print(
        f"riverwatch demo: the scenario is over; the console stays at http://{listen}/console/ until Ctrl-C", flush=True
    )
    try:
        await done.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
