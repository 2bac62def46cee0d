"""Issue 17, rough edges 2 and 6, as an operator hits them on the command line.

2. A notification URL apprise cannot parse (`dingtalk:/broken`) is a configuration error: `riverwatch run` and
   `riverwatch check --config` exit 2 naming the file and the key (never the URL, which holds the token); a
   target that still cannot send counts every attempt in notifications_failed_total.
6. Read-only commands (`alerts`, `silence list`, `thresholds show`, `report`) need none of the service's
   secrets, and `alerts` without `--config` creates no `./riverwatch-data`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.servers import InfluxDB1, Mosquitto, free_port
from monitor.metrics import Metrics
from monitor.notify.deliver import deliver
from monitor.notify.message import Message
from monitor.notify.outbox import Outbox

REPO = Path(__file__).resolve().parent.parent
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"  # a DingTalk robot token's form


def riverwatch(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RW17_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**clean, **(env or {})},
    )


def config(tmp_path: Path, body: str, mosquitto: Mosquitto | None = None) -> Path:
    mqtt = f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "rough-edges-{free_port()}"\n' if mosquitto else ""
    path = tmp_path / "riverwatch.toml"
    path.write_text(mqtt + body + f'\n[service]\ndata_dir = "data"\nhttp_listen = "127.0.0.1:{free_port()}"\n')
    return path


# -- 2. a bad notification URL -------------------------------------------------------------------------------


def test_run_refuses_a_route_url_apprise_cannot_parse_naming_file_and_key(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = config(tmp_path, '[notify]\n[[notify.route]]\nurl_env = "RW17_DINGTALK"\n', mosquitto)
    proc = riverwatch(tmp_path, "run", "--config", str(cfg), env={"RW17_DINGTALK": f"dingtalk:/{TOKEN}"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{cfg}: [notify.route[0]].url_env:" in line and "dingtalk://" in line, line
    assert TOKEN not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_check_validates_every_url_offline_and_passes_a_good_config(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[notify]\nurls = ["console://", "dingtalk:/broken"]\n')
    proc = riverwatch(tmp_path, "check", "--config", str(cfg))
    assert proc.returncode == 2
    assert f"{cfg}: [notify].urls[1]: not a dingtalk URL" in proc.stderr, proc.stderr

    cfg = config(tmp_path, '[notify]\nurls = ["slack-ish://x"]\n')
    proc = riverwatch(tmp_path, "check", "--config", str(cfg))
    assert proc.returncode == 2 and "[notify].urls[0]: unknown scheme 'slack-ish'" in proc.stderr, proc.stderr

    files = (
        f'[thresholds]\nfiles = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]\n'
    )
    cfg = config(tmp_path, files + '[notify]\n[[notify.route]]\nurl_env = "RW17_DINGTALK"\n')
    proc = riverwatch(tmp_path, "check", "--config", str(cfg), env={"RW17_DINGTALK": f"dingtalk://{TOKEN}/"})
    assert proc.returncode == 0, proc.stderr
    assert "OK (1 notification target(s); 2 threshold file(s), 6 station(s))" in proc.stdout, proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists()  # a check writes nothing


def test_check_finds_a_bad_entry_in_an_apprise_config_file(tmp_path: Path) -> None:
    apprise_file = tmp_path / "apprise.yml"
    apprise_file.write_text(
        f"urls:\n  - json://127.0.0.1:9/ok:\n    tag: all\n  - dingtalk:/{TOKEN}:\n    tag: severity:critical\n"
    )
    cfg = config(tmp_path, '[notify]\napprise_config = "apprise.yml"\n')
    proc = riverwatch(tmp_path, "check", "--config", str(cfg))
    assert proc.returncode == 2
    assert f"{cfg}: [notify].apprise_config: apprise cannot use entry #2 of {apprise_file}" in proc.stderr, proc.stderr
    assert TOKEN not in proc.stderr


def test_check_names_a_threshold_file_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "stations.toml"
    bad.write_text('[stations.s1]\nriver = "Longjiang"\nclass = "VII"\n')
    cfg = config(tmp_path, f'[thresholds]\nfiles = ["{bad}"]\n')
    proc = riverwatch(tmp_path, "check", "--config", str(cfg))
    assert proc.returncode == 2
    assert f"{bad}:" in proc.stderr and "[thresholds].files" in proc.stderr, proc.stderr


def test_a_target_that_cannot_send_counts_every_attempt_as_failed(tmp_path: Path) -> None:
    """A URL apprise cannot add (a plugin missing from an install; the config refuses the rest) used to stop its
    worker at once: the alert sat in the outbox with notifications_failed_total at 0."""
    url = "dingtalk:/broken"
    outbox = Outbox(tmp_path / "outbox.sqlite", [url])
    outbox.add(Message("hg-alert", "[CRITICAL] mercury", "body", "critical"))
    metrics = Metrics()

    async def go() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(deliver(outbox, url, metrics, wake, stop, retry_cap_s=1.0))
        deadline = time.monotonic() + 20
        while metrics.registry.get_sample_value("riverwatch_notifications_failed_total") < 2:
            assert time.monotonic() < deadline, "no failed attempts counted"
            assert not task.done(), "the worker gave up"
            await asyncio.sleep(0.1)
        stop.set()
        wake.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(go())
    assert outbox.pending() == 1  # still owed: a fixed config sends it
    status = metrics.health.report()["checks"]
    assert any(v["status"] == "degraded" for k, v in status.items() if k.startswith("notify:")), status
    outbox.close()


# -- 6. read-only commands -----------------------------------------------------------------------------------


def test_alerts_without_config_creates_nothing_and_says_where_it_looked(tmp_path: Path) -> None:
    proc = riverwatch(tmp_path, "alerts")
    assert proc.returncode == 1
    assert "no alert ledger at riverwatch-data/alerts.sqlite" in proc.stderr and "--config" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert riverwatch(tmp_path, "silence", "list").returncode == 1
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_need_none_of_the_service_secrets(tmp_path: Path, mosquitto: Mosquitto) -> None:
    files = (
        f'[thresholds]\nfiles = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]\n'
    )
    body = (
        files
        + '[notify]\n[[notify.route]]\nurl_env = "RW17_DINGTALK"\n'
        + f'[influxdb]\nurl = "http://127.0.0.1:{free_port()}"\napi = "v1"\ndatabase = "rw"\nusername = "rw"\n'
        + 'password_env = "RW17_INFLUX_PW"\n'
    )
    mqtt = f'[mqtt]\nurl = "{mosquitto.url}"\nusername = "svc"\npassword_env = "RW17_MQTT_PW"\n'
    cfg = config(tmp_path, mqtt + body)
    (tmp_path / "data").mkdir()
    # The ledger the service keeps (here made by a silence added through the CLI, which needs no secret either).
    proc = riverwatch(
        tmp_path,
        *("silence", "add", "--config", str(cfg), "--station", "lalang", "--duration", "2h", "--reason", "r"),
    )
    assert proc.returncode == 0, proc.stderr
    for args in (("alerts", "--active"), ("silence", "list"), ("thresholds", "show", "--station", "lalang")):
        proc = riverwatch(tmp_path, *args, "--config", str(cfg))
        assert proc.returncode == 0, (args, proc.stderr)
        assert "environment variable" not in proc.stderr
    assert "lalang/*" in riverwatch(tmp_path, "silence", "list", "--config", str(cfg)).stdout
    # The service itself still demands them.
    proc = riverwatch(tmp_path, "check", "--config", str(cfg))
    assert proc.returncode == 2 and "RW17_MQTT_PW is not set" in proc.stderr, proc.stderr


def test_report_needs_the_database_password_but_no_notification_token(tmp_path: Path, influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("rough_edges")
    body = (
        '[notify]\n[[notify.route]]\nurl_env = "RW17_DINGTALK"\n'
        + f'[influxdb]\nurl = "{influxdb1.url}"\napi = "v1"\ndatabase = "rough_edges"\n'
        + f'username = "{influxdb1.username}"\npassword_env = "RW17_INFLUX_PW"\n'
    )
    cfg = config(tmp_path, body)
    args = ("report", "--config", str(cfg), "--no-progress")
    proc = riverwatch(tmp_path, *args, env={"RW17_INFLUX_PW": str(influxdb1.password)})
    assert "RW17_DINGTALK" not in proc.stderr, proc.stderr
    # It read the (empty) database with the password: nothing recorded yet is exit 1, not a demand for the
    # robot's token (exit 2).
    assert proc.returncode == 1 and "no readings in InfluxDB" in proc.stderr, proc.stderr
    # The database's password it does need.
    proc = riverwatch(tmp_path, *args)
    assert proc.returncode == 2 and "RW17_INFLUX_PW is not set" in proc.stderr, proc.stderr
