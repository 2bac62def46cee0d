"""The processes of one trial: a broker, a database, and the system under test (riverwatch or Node-RED).

The servers come from ``bench/servers.py`` (real processes on free ports of 127.0.0.1, stopped by pid). Every
process here is a child of the harness, started in its own session, and stopped by its pid: SIGTERM, then
SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.receiver import HttpReceiver
from bench.servers import HOST, Mosquitto, ServerError, Victoria, free_port, http_request, terminate

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
NODE_RED = BENCH / "peers" / "node_modules" / "node-red" / "red.js"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchMosquitto(Mosquitto):
    """mosquitto with persistence as operators run it: saved at shutdown, not every second.

    ``Mosquitto`` saves its database every second (``autosave_interval 1``) so that crash tests lose little; with
    a backlog of 200k queued messages that rewrite would be what the benchmark measures.
    """

    def _prepare(self) -> None:
        super()._prepare()
        conf = self.conf_path.read_text()
        self.conf_path.write_text(re.sub(r"(?m)^autosave_interval .*$", "autosave_interval 1800", conf))


# ---------------------------------------------------------------------------------------------- /proc readings


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busy_seconds() -> float:
    """CPU-seconds the whole machine spent busy (all cores, all processes) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


# ---------------------------------------------------------------------------------------------- VictoriaMetrics


class BenchVictoria(Victoria):
    """VictoriaMetrics with the reads the harness needs."""

    def rows_inserted(self) -> int:
        """Rows taken in through the InfluxDB line protocol so far (one per field of each line)."""
        status, body = http_request("GET", f"{self.url}/metrics", timeout=5.0)
        if status != 200:
            raise ServerError(f"victoria-metrics /metrics: HTTP {status}")
        m = re.search(rb'^vm_rows_inserted_total\{type="influx"\} (\d+)', body, re.M)
        return int(m.group(1)) if m else 0

    def flush(self) -> None:
        http_request("GET", f"{self.url}/internal/force_flush", timeout=10.0)

    def export(self, selector: str) -> list[dict[str, Any]]:
        """Every sample of the series matching ``selector`` (call :meth:`flush` first to see the last second)."""
        q = urllib.parse.urlencode({"match[]": selector})
        status, body = http_request("GET", f"{self.url}/api/v1/export?{q}", timeout=60.0)
        if status != 200:
            raise ServerError(f"victoria-metrics export {selector}: HTTP {status}: {body[:300]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- the systems


class Target:
    """A system under test run as a child process of the harness."""

    name = "target"
    label = "target"
    #: whether the database gets an extra row (the ``exceeded`` field) for each flagged reading
    flag_rows = False

    def __init__(self, workdir: Path, tag: str) -> None:
        self.workdir, self.tag = workdir, tag
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, mosquitto: Mosquitto, victoria: Victoria, receiver: HttpReceiver) -> None:
        """Start the system against this trial's broker, database and notification receiver; return once ready."""
        raise NotImplementedError

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.label} exited with code {self.proc.returncode}\n{self.log_tail()}")

    def stop(self, timeout: float = 12.0) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout)
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Riverwatch(Target):
    name = "riverwatch"
    label = "riverwatch"

    def __init__(self, workdir: Path, tag: str, template: Path) -> None:
        super().__init__(workdir, tag)
        self.template = template
        self.http = f"{HOST}:{free_port()}"

    def start(self, mosquitto: Mosquitto, victoria: Victoria, receiver: HttpReceiver) -> None:
        cfg = self.workdir / "riverwatch.toml"
        text = self.template.read_text()
        for key, value in {
            "mqtt_url": mosquitto.url,
            "client_id": f"rw-bench-{self.tag}",
            "influx_url": victoria.url,
            "notify_url": receiver.json_url(f"alerts/{self.tag}"),
            "http_listen": self.http,
        }.items():
            text = text.replace("{" + key + "}", value)
        cfg.write_text(text)
        env = {**os.environ, "RW_BENCH_TOKEN": "bench-token", "PYTHONUNBUFFERED": "1"}
        self._spawn([sys.executable, "-m", "monitor", "run", "--config", str(cfg)], env, self.workdir)
        deadline = time.monotonic() + 30
        while self.metric("riverwatch_mqtt_connects_total") < 1:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"riverwatch did not connect to the broker within 30 s\n{self.log_tail()}")
            time.sleep(0.1)

    def metric(self, name: str) -> float:
        """Sum of a counter on the service's /metrics (0 while it is not answering yet)."""
        try:
            status, body = http_request("GET", f"http://{self.http}/metrics", timeout=5.0)
        except OSError:
            return 0.0
        if status != 200:
            return 0.0
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total


class NodeRed(Target):
    name = "nodered"
    label = "Node-RED"
    flag_rows = True

    def start(self, mosquitto: Mosquitto, victoria: Victoria, receiver: HttpReceiver) -> None:
        node = shutil.which("node")
        if node is None or not NODE_RED.exists():
            raise RuntimeError("Node-RED is not installed: run scripts/bench (it installs node-red into bench/peers)")
        flow = self.workdir / "flow.json"
        shutil.copyfile(BENCH / "nodered" / "flow.json", flow)
        env = {
            **os.environ,
            "RW_BENCH_NR_PORT": str(free_port()),
            "RW_BENCH_FLOW_FILE": str(flow),
            "RW_BENCH_MQTT_PORT": str(mosquitto.port),
            "RW_BENCH_CLIENT_ID": f"nr-bench-{self.tag}",
            "RW_BENCH_WRITE_URL": f"{victoria.url}/api/v2/write?org=bench&bucket=water&precision=ns",
        }
        self._spawn(
            [
                node,
                str(NODE_RED),
                "--userDir",
                str(self.workdir),
                "--settings",
                str(BENCH / "nodered" / "settings.js"),
                str(flow),
            ],
            env,
            self.workdir,
        )
        deadline = time.monotonic() + 60
        while "Connected to broker" not in self.log.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Node-RED did not connect to the broker within 60 s\n{self.log_tail()}")
            time.sleep(0.1)


def node_red_version() -> str:
    try:
        return str(json.loads((NODE_RED.parent / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"
