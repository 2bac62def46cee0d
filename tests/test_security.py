"""Security as an operator meets it: `riverwatch run` as a subprocess against a real mosquitto with TLS (a CA and
certificates that the test generates), a password file and, optionally, required client certificates.

Readings land over `mqtts://` with the password from `password_env` or `password_file`; a wrong password is a
clear log line (broker and cause, no traceback), /healthz says degraded, and the service keeps trying; and,
driven through connect, a bad payload, an alert, failing notifications and SIGTERM, no secret (MQTT password,
InfluxDB token, the credentials in apprise URLs) appears in stdout, stderr, /metrics or /healthz.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto, Victoria, free_port, require_binary
from tests.certs import Pki, make_pki

T0 = 1326585600  # 2012-01-15T08:00:00+08:00
SVC_USER, SVC_PASSWORD = "svc", "Mq77-S3cr3t-svc-pw"
PUB_USER, PUB_PASSWORD = "sensor", "Mq77-S3cr3t-pub-pw"


class SecureMosquitto(Mosquitto):
    """The fixture broker with its listener switched to TLS, a password file and no anonymous access."""

    def __init__(self, data_dir: Path, pki: Pki, users: dict[str, str], *, require_certificate: bool = False) -> None:
        super().__init__(data_dir)
        self.pki, self.users, self.require_certificate = pki, users, require_certificate
        self.password_file = self.data_dir / "passwords"

    @property
    def url(self) -> str:
        return f"mqtts://{self.host}:{self.port}"

    def _prepare(self) -> None:
        super()._prepare()
        passwd = require_binary("mosquitto_passwd")
        self.password_file.unlink(missing_ok=True)
        for i, (user, password) in enumerate(self.users.items()):
            subprocess.run(
                [passwd, "-b", *(["-c"] if i == 0 else []), str(self.password_file), user, password],
                check=True,
                capture_output=True,
                timeout=30,
            )
        self.password_file.chmod(0o600)
        listener = f"listener {self.port} {self.host}\n"
        conf = self.conf_path.read_text()
        assert listener in conf and "allow_anonymous true\n" in conf
        conf = conf.replace(
            listener,
            listener
            + (
                f"cafile {self.pki.ca_cert}\ncertfile {self.pki.server_cert}\nkeyfile {self.pki.server_key}\n"
                f"require_certificate {'true' if self.require_certificate else 'false'}\n"
            ),
        )
        conf = conf.replace("allow_anonymous true\n", f"allow_anonymous false\npassword_file {self.password_file}\n")
        self.conf_path.write_text(conf)

    def connection_attempts(self) -> int:
        return self.log_path.read_text(errors="replace").count("New connection from")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki, require_certificate: bool) -> Iterator[SecureMosquitto]:
    broker = SecureMosquitto(
        tmp_path_factory.mktemp("mosquitto_tls"),
        pki,
        {SVC_USER: SVC_PASSWORD, PUB_USER: PUB_PASSWORD},
        require_certificate=require_certificate,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureMosquitto]:
    yield from _broker(tmp_path_factory, pki, require_certificate=False)


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureMosquitto]:
    yield from _broker(tmp_path_factory, pki, require_certificate=True)


# -- a TLS publisher and the service as a subprocess --------------------------------------------------------------


def publish_tls(broker: SecureMosquitto, messages: list[tuple[str, bytes]], *, client_cert: bool = False) -> None:
    """Publish at QoS 1 over TLS as the sensor user; returns once the broker acknowledged every message."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv311)
    client.username_pw_set(PUB_USER, PUB_PASSWORD)
    client.tls_set(
        ca_certs=str(broker.pki.ca_cert),
        certfile=str(broker.pki.client_cert) if client_cert else None,
        keyfile=str(broker.pki.client_key) if client_cert else None,
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected():
            assert time.monotonic() < deadline, "test publisher could not connect over TLS"
            time.sleep(0.02)
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def single(station: str, parameter: str, ts: float, value: object, unit: str = "mg/L") -> tuple[str, bytes]:
    return f"river/{station}/{parameter}", json.dumps({"ts": ts, "value": value, "unit": unit}).encode()


class Svc:
    """`python -m monitor run --config CFG` with stdout and stderr kept apart."""

    def __init__(self, tmp: Path, config: str, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.http = f"127.0.0.1:{free_port()}"
        self.cfg = tmp / "riverwatch.toml"
        self.cfg.write_text(config.replace("@HTTP@", self.http))
        self.stdout_path, self.stderr_path = tmp / "service.stdout", tmp / "service.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.cfg)],
                cwd=tmp,
                stdout=out,
                stderr=err,
                env={**os.environ, **env},
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"service exited ({self.proc.returncode}) while waiting for {what}:\n{self.output()[-4000:]}"
            )
            try:
                if predicate():
                    return
            except OSError:
                pass  # /metrics not up yet
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout} s waiting for {what}\n{self.output()[-4000:]}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=12)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Svc]]:
    started: list[Svc] = []

    def go(config: str, env: dict[str, str] | None = None) -> Svc:
        svc = Svc(tmp_path, config, env or {})
        started.append(svc)
        return svc

    yield go
    for svc in started:
        svc.kill()


def mqtt_section(
    broker: SecureMosquitto,
    client_id: str,
    *,
    password: str = 'password_env = "RW_SEC_MQTT_PW"',
    client_cert: bool = False,
) -> str:
    cert = f'cert_file = "{broker.pki.client_cert}"\nkey_file = "{broker.pki.client_key}"\n' if client_cert else ""
    return (
        f'[mqtt]\nurl = "{broker.url}"\ntopics = ["river/#"]\nclient_id = "{client_id}"\nqos = 1\n'
        f'username = "{SVC_USER}"\n{password}\nca_file = "{broker.pki.ca_cert}"\n{cert}'
    )


SERVICE = '\n[notify]\nurls = ["console://"]\n\n[service]\ndata_dir = "data"\nhttp_listen = "@HTTP@"\n'


def assert_no_secret(svc: Svc, secrets: list[str], *extra: str) -> None:
    texts = {"stdout+stderr": svc.output(), **{f"extra {i}": t for i, t in enumerate(extra)}}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"secret {secret[:3]}... appears in {where}"


# -- 2. TLS and authentication -----------------------------------------------------------------------------------


def test_tls_with_ca_file_and_password_env_a_reading_lands(
    tls_broker: SecureMosquitto, start: Callable[..., Svc]
) -> None:
    svc = start(mqtt_section(tls_broker, "rw-sec-tls") + SERVICE, {"RW_SEC_MQTT_PW": SVC_PASSWORD})
    svc.wait_until(lambda: svc.metric("riverwatch_mqtt_connects_total") >= 1, 20, "a TLS connection")
    publish_tls(tls_broker, [single("sec-tls", "cd", T0, 0.001), single("sec-tls", "do", T0, 8.2)])
    svc.wait_until(lambda: svc.metric("riverwatch_readings_written_total") >= 2, 20, "2 readings in the store")
    assert svc.metric("riverwatch_readings_accepted_total") == 2
    status, health = svc.get("/healthz")
    assert status == 200 and json.loads(health)["checks"]["mqtt"]["status"] == "ok"
    assert f"connected to 127.0.0.1:{tls_broker.port}" in svc.output()
    assert_no_secret(svc, [SVC_PASSWORD], svc.get("/metrics")[1], health)
    assert svc.terminate() == 0, svc.output()[-3000:]
    assert "Traceback" not in svc.output()


def test_required_client_certificate_and_password_file_a_reading_lands(
    mtls_broker: SecureMosquitto, start: Callable[..., Svc], tmp_path: Path
) -> None:
    (tmp_path / "mqtt.pw").write_text(SVC_PASSWORD + "\n")
    config = mqtt_section(mtls_broker, "rw-sec-mtls", password='password_file = "mqtt.pw"', client_cert=True)
    svc = start(config + SERVICE)
    svc.wait_until(lambda: svc.metric("riverwatch_mqtt_connects_total") >= 1, 20, "a mutual-TLS connection")
    publish_tls(mtls_broker, [single("sec-mtls", "pb", T0, 0.002)], client_cert=True)
    svc.wait_until(lambda: svc.metric("riverwatch_readings_written_total") >= 1, 20, "the reading in the store")
    assert svc.metric("riverwatch_readings_accepted_total") == 1
    assert_no_secret(svc, [SVC_PASSWORD], svc.get("/metrics")[1], svc.get("/healthz")[1])
    assert svc.terminate() == 0, svc.output()[-3000:]


def test_required_client_certificate_missing_is_a_clear_error_and_retried(
    mtls_broker: SecureMosquitto, start: Callable[..., Svc]
) -> None:
    svc = start(mqtt_section(mtls_broker, "rw-sec-nocert") + SERVICE, {"RW_SEC_MQTT_PW": SVC_PASSWORD})
    before = mtls_broker.connection_attempts()
    svc.wait_until(lambda: mtls_broker.connection_attempts() >= before + 2, 40, "2 connection attempts")
    assert svc.metric("riverwatch_mqtt_connects_total") == 0
    assert json.loads(svc.get("/healthz")[1])["checks"]["mqtt"]["status"] == "degraded"
    assert svc.terminate() == 0, svc.output()[-3000:]
    out = svc.output()
    lines = [ln for ln in out.splitlines() if f"127.0.0.1:{mtls_broker.port}" in ln]
    assert any(re.search(r"(?i)certificate", ln) for ln in lines), (
        f"no line names the broker and the missing client certificate:\n{out[-3000:]}"
    )
    assert "Traceback" not in out, out[-3000:]


def broker_lines(out: str, port: int) -> list[str]:
    """The connection attempts' lines that name the broker (the start-up summary names it too)."""
    return [ln for ln in out.splitlines() if f"127.0.0.1:{port}" in ln and "riverwatch.ingest" in ln]


def test_untrusted_server_certificate_is_refused_clearly_and_retried(
    tls_broker: SecureMosquitto, start: Callable[..., Svc], tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other-ca")
    config = mqtt_section(tls_broker, "rw-sec-untrusted").replace(str(tls_broker.pki.ca_cert), str(other.ca_cert))
    svc = start(config + SERVICE, {"RW_SEC_MQTT_PW": SVC_PASSWORD})
    svc.wait_until(lambda: len(broker_lines(svc.output(), tls_broker.port)) >= 3, 20, "3 refused attempts")
    assert svc.metric("riverwatch_mqtt_connects_total") == 0
    line = broker_lines(svc.output(), tls_broker.port)[0]
    assert re.search(r"(?i)certificate|ssl|tls", line), line
    assert "Traceback" not in svc.output()
    assert svc.terminate() == 0, svc.output()[-3000:]


def test_wrong_password_is_a_clear_error_degrades_health_and_is_retried(
    tls_broker: SecureMosquitto, start: Callable[..., Svc]
) -> None:
    wrong = "Wr0ng-S3cr3t-pw"
    svc = start(mqtt_section(tls_broker, "rw-sec-wrongpw") + SERVICE, {"RW_SEC_MQTT_PW": wrong})
    before = tls_broker.connection_attempts()
    svc.wait_until(lambda: tls_broker.connection_attempts() >= before + 2, 20, "2 connection attempts")
    status, body = svc.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "degraded", body
    assert health["checks"]["mqtt"]["status"] == "degraded", body
    # The connect attempts keep coming (capped backoff), with a clear line for each.
    seen = tls_broker.connection_attempts()
    svc.wait_until(lambda: tls_broker.connection_attempts() >= seen + 2, 20, "2 more connection attempts")
    assert svc.metric("riverwatch_mqtt_connects_total") == 0
    assert_no_secret(svc, [wrong, SVC_PASSWORD], svc.get("/metrics")[1], svc.get("/healthz")[1])
    assert svc.terminate() == 0, svc.output()[-3000:]
    out = svc.output()
    assert_no_secret(svc, [wrong, SVC_PASSWORD])
    assert "Traceback" not in out
    lines = broker_lines(out, tls_broker.port)
    assert len(lines) >= 3, out[-3000:]
    # mosquitto answers a wrong password with CONNACK 135 "Not authorized" (MQTT 5) or 5 (3.1.1), which is
    # also its answer to an ACL refusal: the operator must be told it is the credentials.
    auth = [ln for ln in lines if re.search(r"(?i)authenticat|user ?name or password", ln)]
    assert len(auth) == len(lines), f"no clear 'authentication failed' line naming the broker:\n{out[-3000:]}"


# -- 3. no secret anywhere, through a whole run ------------------------------------------------------------------


def test_no_secret_in_any_output_through_connect_bad_payload_alert_failure_and_shutdown(
    tls_broker: SecureMosquitto,
    victoria: Victoria,
    http_receiver: HttpReceiver,
    start: Callable[..., Svc],
    tmp_path: Path,
) -> None:
    influx_token = "Infl-T0ken-S3cr3t-6c1f"
    receiver_pass, dead_pass = "S3cr3tPass", "S3cr3tPass2"
    secrets = [SVC_PASSWORD, influx_token, receiver_pass, dead_pass]
    (tmp_path / "influx.token").write_text(influx_token + "\n")
    good = f"json://user:{receiver_pass}@127.0.0.1:{http_receiver.port}/alerts"
    dead = f"json://user:{dead_pass}@127.0.0.1:1/x"
    config = (
        mqtt_section(tls_broker, "rw-sec-secrets")
        + f"""
[influxdb]
url = "{victoria.influx_url}"
org = "bureau"
bucket = "water"
token_file = "influx.token"
flush_interval_s = 0.2

[notify]
urls = ["{good}", "{dead}"]
timeout_s = 2
retry_cap_s = 1

[service]
data_dir = "data"
http_listen = "@HTTP@"
"""
    )
    http_receiver.fail_next(1, status=500)
    svc = start(config, {"RW_SEC_MQTT_PW": SVC_PASSWORD})
    svc.wait_until(lambda: svc.metric("riverwatch_mqtt_connects_total") >= 1, 20, "connect")
    snapshots = [svc.get("/healthz")[1], svc.get("/metrics")[1]]
    publish_tls(
        tls_broker,
        [
            ("river/sec-all/cd", b"not json"),  # a bad payload
            single("sec-all", "cd", T0, -1),  # rejected: negative
            single("sec-all", "cd", T0, 41, "ug/L"),  # 8.2 x the class III limit: an alert to both targets
        ],
    )
    svc.wait_until(lambda: svc.metric("riverwatch_readings_written_total") >= 1, 20, "the reading in the database")
    (post,) = http_receiver.wait_for(1, timeout=20, delivered_only=True)[-1:]
    assert "sec-all" in post.json["title"]
    svc.wait_until(
        lambda: svc.metric("riverwatch_notifications_failed_total") >= 3,
        20,
        "failed notifications (one 500, the dead target at least twice)",
    )
    assert svc.metric("riverwatch_readings_rejected_total") == 2
    snapshots += [svc.get("/healthz")[1], svc.get("/metrics")[1]]
    assert svc.terminate() == 0, svc.output()[-3000:]
    out = svc.output()
    assert "rejected payload on topic 'river/sec-all/cd'" in out  # the run really went through its error paths
    assert re.search(r"notify: .* failed", out), out[-3000:]
    assert_no_secret(svc, secrets, *snapshots)
