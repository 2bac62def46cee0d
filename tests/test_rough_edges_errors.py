"""Issue 17, rough edges 5 and 7, on real servers.

5. Errors that waiting will not heal say what to change, in one line: the InfluxDB v2 API pointed at InfluxDB
   1.6.7 (`HTTP 404: b'404 page not found\\n'` became a hint to set `api = "v1"`), a 401 (check the password),
   a wrong broker password (check the [mqtt] keys); a busy HTTP port is exit 2 with one line, no traceback.
7. `replay` has no default broker (it silently sent to mqtt://127.0.0.1:1883) and takes the broker's
   credentials from the environment or a file instead of the URL, where `ps` shows them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.servers import InfluxDB1, Mosquitto, require_binary
from simulators.publish import publish
from tests.service_proc import ServiceProcess

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
USER, PASSWORD = "replayer", "Pa55-w0rd-not-in-ps"


class PasswordMosquitto(Mosquitto):
    """The fixture broker with a password file and no anonymous access (plain TCP)."""

    def _prepare(self) -> None:
        super()._prepare()
        passwords = self.data_dir / "passwords"
        passwords.unlink(missing_ok=True)
        subprocess.run(
            [require_binary("mosquitto_passwd"), "-b", "-c", str(passwords), USER, PASSWORD],
            check=True,
            capture_output=True,
            timeout=30,
        )
        passwords.chmod(0o600)
        conf = self.conf_path.read_text().replace(
            "allow_anonymous true\n", f"allow_anonymous false\npassword_file {passwords}\n"
        )
        self.conf_path.write_text(conf)


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordMosquitto]:
    broker = PasswordMosquitto(tmp_path_factory.mktemp("locked_broker"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def reading(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


def store_lines(svc: ServiceProcess) -> list[str]:
    return [ln for ln in svc.output().splitlines() if "riverwatch.store: store:" in ln]


# -- 5. the database ------------------------------------------------------------------------------------------


def test_the_v2_api_pointed_at_influxdb_1x_says_to_set_api_v1(
    tmp_path: Path, mosquitto: Mosquitto, influxdb1: InfluxDB1
) -> None:
    svc = ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "rough-edges-v2-at-1x"\n'
        f'[influxdb]\nurl = "{influxdb1.url}"\nbucket = "rw"\ntoken_env = "RW17_TOKEN"\n',
        env={"RW17_TOKEN": "t"},
    )
    try:
        svc.start()
        publish([reading("lalang", T0, 0.001)], mosquitto.url)
        svc.wait(lambda: len(store_lines(svc)) >= 2, 30, "two store warnings")
        line = store_lines(svc)[0]
        assert (
            'HTTP 404: 404 page not found (no /api/v2/write here: for InfluxDB 1.x before 1.8 set [influxdb].api = "v1"'
            in line
        ), line
        assert "b'" not in line and "\\n" not in line
        _, health = svc.health()
        assert health["checks"]["store"]["status"] == "degraded", health  # type: ignore[index]
        assert svc.metric("riverwatch_journal_backlog") == 1  # kept for when the config is fixed
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_a_wrong_database_password_says_to_check_it(tmp_path: Path, mosquitto: Mosquitto, influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("rough_edges_401")
    svc = ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "rough-edges-401"\n'
        f'[influxdb]\nurl = "{influxdb1.url}"\napi = "v1"\ndatabase = "rough_edges_401"\n'
        f'username = "{influxdb1.username}"\npassword_env = "RW17_PW"\n',
        env={"RW17_PW": "not-the-password"},
    )
    try:
        svc.start()
        publish([reading("lalang", T0, 0.001)], mosquitto.url)
        svc.wait(lambda: len(store_lines(svc)) >= 1, 30, "a store warning")
        line = store_lines(svc)[0]
        assert "HTTP 401" in line and "check [influxdb].username and password (password_env / password_file)" in line
        assert "not-the-password" not in svc.output()
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_a_wrong_broker_password_names_the_keys_to_check(tmp_path: Path, locked_broker: PasswordMosquitto) -> None:
    svc = ServiceProcess(
        tmp_path,
        f'[mqtt]\nurl = "{locked_broker.url}"\nclient_id = "rough-edges-mqtt-pw"\nusername = "{USER}"\n'
        'password_env = "RW17_MQTT_PW"\n',
        env={"RW17_MQTT_PW": "wrong"},
    )
    try:
        svc.start(wait_connected=False)
        svc.wait(lambda: "authentication failed" in svc.output(), 30, "a refused connection")
        line = next(ln for ln in svc.output().splitlines() if "authentication failed" in ln)
        assert f"user {USER!r}" in line and "check [mqtt].username and password_env / password_file" in line, line
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()


def test_a_busy_http_port_is_exit_2_with_one_line(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        svc = ServiceProcess(tmp_path, f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "rough-edges-busy"\n')
        svc.config.write_text(svc.config.read_text().replace(svc.http, f"127.0.0.1:{port}"))
        proc = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "--config", str(svc.config)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert re.search(
        rf"riverwatch: {re.escape(str(svc.config))}: \[service\]\.http_listen 127\.0\.0\.1:{port}: "
        "address already in use",
        proc.stderr,
    ), proc.stderr


# -- 7. replay ------------------------------------------------------------------------------------------------


def test_replay_has_no_default_broker(tmp_path: Path) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text("ts,station,parameter,value,unit\n2012-01-15T08:00:00+08:00,lalang,cd,0.05,mg/L\n")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(csv)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--mqtt" in proc.stderr, proc.stderr
    assert "replayed" not in proc.stderr


def test_replay_takes_the_broker_password_from_the_environment(
    tmp_path: Path, locked_broker: PasswordMosquitto
) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text(
        "ts,station,parameter,value,unit\n"
        "2012-01-15T08:00:00+08:00,lalang,cd,0.05,mg/L\n2012-01-15T10:00:00+08:00,lalang,cd,0.04,mg/L\n"
    )
    got: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rough-edges-replay-sub")
    sub.username_pw_set(USER, PASSWORD)
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect("127.0.0.1", locked_broker.port)
    sub.subscribe("river/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.5)
        argv = [sys.executable, "-m", "monitor", "replay", str(csv), "--broker", locked_broker.url]
        argv += ["--username", USER, "--password-env", "RW17_BROKER_PW"]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env={**os.environ, "RW17_BROKER_PW": PASSWORD}
        )
        assert proc.returncode == 0, proc.stderr
        assert PASSWORD not in " ".join(argv) and PASSWORD not in proc.stderr + proc.stdout
        assert "judges and notifies them as live readings" in proc.stderr  # it says what it is doing
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(got) == 2, got
        # Without the password the broker refuses it, and replay says so.
        proc = subprocess.run(
            [*argv[:-2], "--password-env", "RW17_UNSET_PW"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2 and "RW17_UNSET_PW is not set" in proc.stderr, proc.stderr
    finally:
        sub.loop_stop()
        sub.disconnect()
