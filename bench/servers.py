"""Real servers on loopback: mosquitto, VictoriaMetrics and InfluxDB 1.6, for the benchmark and the tests.

Every server is a real process bound to a free port on 127.0.0.1 only, with its data in a directory the caller
owns. ``start()`` polls until the server answers and raises :class:`ServerError` with the tail of the server's
log if it does not. ``stop()`` sends SIGTERM to the pid, waits 5 s and then sends SIGKILL.

Each start-up flag is explained where it is set: each one prevents a silent loss of data.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    """A server could not be started, did not become ready, or a binary is missing."""


class HTTPStatusError(ServerError):
    """An HTTP request to a server got a non-2xx answer."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = START_TIMEOUT) -> None:
    """Poll until something accepts TCP connections on ``host:port``; raise :class:`ServerError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise ServerError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def require_binary(path: str) -> str:
    """Return the absolute path of a server binary, or raise with the fix (scripts/test installs the servers)."""
    found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise ServerError(f"{path} is not installed: run scripts/test or scripts/bench (they install the servers)")
    return found


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[int, bytes]:
    """Plain urllib request that returns ``(status, body)`` for every HTTP answer, errors included."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child we started, wait up to ``timeout`` s, then SIGKILL it and wait again."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class ServerProcess:
    """One server binary run as a child process, restartable on the same port with the same data."""

    name: ClassVar[str] = "server"
    binary: ClassVar[str] = ""

    def __init__(self, data_dir: Path | str, port: int | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        #: stdout and stderr of the process, appended across restarts.
        self.output_path = self.data_dir / f"{self.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None
        #: seconds the last ``start()`` took until the server answered.
        self.startup_seconds = 0.0

    # -- to override -------------------------------------------------------------------------------------------
    def _argv(self, binary: str) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files before the process starts."""

    def _ready(self) -> bool:
        return port_open(self.host, self.port)

    def _after_start(self) -> None:
        """Runs once the server is ready."""

    @property
    def log_files(self) -> list[Path]:
        return [self.output_path]

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        binary = require_binary(self.binary)
        self._prepare()
        began = time.monotonic()
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(
                self._argv(binary),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own session: a Ctrl-C in the terminal reaches pytest only, whose finaliser stops the server.
                start_new_session=True,
            )
        deadline = began + self.start_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise ServerError(f"{self.name} exited with code {code} during start-up\n{self.log_tail()}")
            try:
                if self._ready():
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"{self.name} not ready on {self.host}:{self.port} after {self.start_timeout:.0f} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - began
        self._after_start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the pid (the server saves its state), wait up to ``timeout`` s, then SIGKILL."""
        if self.proc is not None:
            terminate(self.proc, timeout)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the pid: a crash, with no chance to save state."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        self.proc = None

    def restart(self) -> None:
        """Graceful stop, then start on the same port with the same data directory."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in self.log_files:
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- last {lines} lines of {path} ---\n{tail}")
        return "\n".join(parts) or f"(no log written yet in {self.data_dir})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid} dir={self.data_dir}>"


class Mosquitto(ServerProcess):
    """mosquitto 2.0 with persistence, so persistent sessions survive ``restart()`` (same port, same db file).

    ``max_queued_messages`` is raised from its default of 1000, which would silently drop the backlog of a
    persistent session; ``max_inflight_messages 20`` is the default window for MQTT 3.1.1 clients, explicit.
    ``kill()`` loses at most the last ``autosave_interval`` (1 s) of broker state.
    """

    name = "mosquitto"
    binary = "/usr/sbin/mosquitto"

    def __init__(self, data_dir: Path | str, port: int | None = None, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__(data_dir, port, start_timeout)
        self.conf_path = self.data_dir / "mosquitto.conf"
        self.log_path = self.data_dir / "mosquitto.log"
        self.persistence_path = self.data_dir / "mosquitto.db"
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_files(self) -> list[Path]:
        return [self.output_path, self.log_path]

    def _prepare(self) -> None:
        self._prepare_log_offset()
        # Run as root, mosquitto 2.0 switches to the user "mosquitto", who cannot write the tmp dir: stay ourselves.
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.conf_path.write_text(
            f"user {user}\n"
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "persistence_file mosquitto.db\n"
            "autosave_interval 1\n"
            "max_queued_messages 10000000\n"
            "max_inflight_messages 20\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        )

    def _argv(self, binary: str) -> list[str]:
        return [binary, "-c", str(self.conf_path)]

    def _prepare_log_offset(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def _ready(self) -> bool:
        # An open port alone could be someone else's socket: also wait for this start's "... running" log line.
        if not self.log_path.exists():
            return False
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            started = b" running" in log.read()
        return started and port_open(self.host, self.port)


class Victoria(ServerProcess):
    """VictoriaMetrics 1.79 single node.

    Flags: ``-retentionPeriod=100y`` (the default of one month silently drops old timestamps, e.g. 2012),
    ``-search.latencyOffset=0s`` (the default hides the last 30 s), ``-search.disableCache`` (the response cache
    can hide backfilled samples from ``/api/v1/query*``), and no ``-dedup.minScrapeInterval``, so duplicate
    samples stay visible in :meth:`export` (the way to prove "exactly once").

    Line protocol ``water_quality,station=s1 value=7.1,ph=7 TS`` becomes the series
    ``water_quality_value{station="s1"}`` and ``water_quality_ph{station="s1"}``: tags become labels,
    ``{measurement}_{field}`` the metric name. String fields are NOT dropped (measured on 1.79): ``note="x"``
    becomes a series ``water_quality_note`` whose value is 0, so send no string fields. Booleans become 1/0,
    integers (``7i``) floats. A line that does not parse is skipped with HTTP 204 and only a log line, so
    VictoriaMetrics cannot prove escaping (use :class:`InfluxDB1` for that).
    Timestamps are truncated to milliseconds (``-influxTrimTimestamp`` default 1ms).
    """

    name = "victoria-metrics"
    binary = "/usr/bin/victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def influx_url(self) -> str:
        """Base URL for an InfluxDB v2 client (it POSTs ``/api/v2/write?org=..&bucket=..&precision=ns``).

        VictoriaMetrics ignores org, bucket and the token; ``/write?db=NAME`` (v1) adds a label ``db="NAME"``.
        """
        return self.url

    def _argv(self, binary: str) -> list[str]:
        return [
            binary,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.data_dir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]

    def _ready(self) -> bool:
        status, body = http_request("GET", f"{self.url}/health", timeout=1.0)
        return status == 200 and body.strip() == b"OK"

    def write_lines(self, lines: str | list[str], precision: str = "ns") -> None:
        """POST line protocol to ``/api/v2/write``. VictoriaMetrics answers 204 even for lines it can't parse."""
        data = lines if isinstance(lines, str) else "\n".join(lines)
        url = f"{self.url}/api/v2/write?org=test&bucket=test&precision={precision}"
        status, body = http_request("POST", url, data.encode())
        if status // 100 != 2:
            raise HTTPStatusError("POST", url, status, body.decode(errors="replace"))

    def force_flush(self) -> None:
        """Make every sample received so far visible to searches and exports."""
        url = f"{self.url}/internal/force_flush"
        status, body = http_request("GET", url)
        if status // 100 != 2:
            raise HTTPStatusError("GET", url, status, body.decode(errors="replace"))

    def export(self, match: str) -> list[dict[str, Any]]:
        """``force_flush()`` then ``/api/v1/export?match[]=MATCH`` over all time; one dict per JSON line.

        Each dict is ``{"metric": {"__name__": ..., label: value}, "values": [float], "timestamps": [ms]}``.
        One series can come back as several lines (one per storage part): use :meth:`series_points` to merge.
        """
        self.force_flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        url = f"{self.url}/api/v1/export?{query}"
        status, body = http_request("GET", url)
        if status != 200:
            raise HTTPStatusError("GET", url, status, body.decode(errors="replace"))
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def series_points(self, metric_name: str, **labels: str) -> list[tuple[int, float]]:
        """All ``(timestamp_ms, value)`` of series ``metric_name{labels...}``, sorted by time, duplicates kept."""
        selector = ",".join(f'{key}="{_promql_escape(str(val))}"' for key, val in labels.items())
        points: list[tuple[int, float]] = []
        for row in self.export(f"{metric_name}{{{selector}}}"):
            points.extend((int(ts), float(val)) for ts, val in zip(row["timestamps"], row["values"], strict=True))
        points.sort(key=lambda point: point[0])
        return points


def _promql_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class InfluxDB1(ServerProcess):
    """InfluxDB 1.6.7 (Debian): ``/write`` and InfluxQL ``/query`` only, no ``/api/v2`` (that came in 1.8).

    It rejects unparsable lines and field-type conflicts with HTTP 400, so it is the server to test escaping and
    4xx handling against. With ``auth=True`` the first start creates the admin ``username``/``password``.
    """

    name = "influxd"
    binary = "/usr/bin/influxd"

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        start_timeout: float = START_TIMEOUT,
        *,
        auth: bool = False,
        username: str = "admin",
        password: str = "riverwatch-test-pw",
    ) -> None:
        super().__init__(data_dir, port, start_timeout)
        self.rpc_port = free_port()
        self.auth = auth
        self.username: str | None = username if auth else None
        self.password: str | None = password if auth else None
        self.conf_path = self.data_dir / "influxdb.conf"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        d = self.data_dir
        # Debian's 1.6.7 names the usage-report switch reporting-enabled; upstream 1.x reads reporting-disabled.
        self.conf_path.write_text(
            f"""\
reporting-disabled = true
reporting-enabled = false
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  logging-enabled = false

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[ifql]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
"""
        )

    def _argv(self, binary: str) -> list[str]:
        return [binary, "run", "-config", str(self.conf_path)]

    def _ready(self) -> bool:
        status, _ = http_request("GET", f"{self.url}/ping", timeout=1.0)
        return status == 204

    def _after_start(self) -> None:
        if self.auth:
            # With auth on and no user yet, InfluxDB lets exactly this statement through without credentials.
            # Before then, any other query answers 403 "create admin user first or disable authentication".
            status, _ = self._query_raw("SHOW USERS", None, self.username, self.password)
            if status == 403:
                assert self.password is not None
                pw = self.password.replace("\\", "\\\\").replace("'", "\\'")
                self.query(f"CREATE USER {self.username} WITH PASSWORD '{pw}' WITH ALL PRIVILEGES", user="")

    def _auth_headers(self, user: str | None, password: str | None) -> dict[str, str]:
        # Basic auth: InfluxDB 1.x reads u/p from the URL query or this header, never from a form body.
        if user is None:
            user, password = self.username, self.password
        if not user:
            return {}
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _query_raw(self, q: str, db: str | None, user: str | None, password: str | None) -> tuple[int, bytes]:
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._auth_headers(user, password)}
        return http_request("POST", f"{self.url}/query", urllib.parse.urlencode(params).encode(), headers)

    def query(
        self, q: str, db: str | None = None, user: str | None = None, password: str | None = None
    ) -> dict[str, Any]:
        """POST InfluxQL to ``/query`` (admin credentials by default, ``user=""`` for none); the parsed JSON.

        A non-2xx answer (401 bad credentials, 400 bad query) raises :class:`HTTPStatusError`; an error inside a
        statement comes back as HTTP 200 with ``results[i]["error"]``, which this raises too.
        """
        status, body = self._query_raw(q, db, user, password)
        text = body.decode(errors="replace")
        if status // 100 != 2:
            raise HTTPStatusError("POST", f"{self.url}/query q={q!r}", status, text)
        result: dict[str, Any] = json.loads(text)
        errors = [r["error"] for r in result.get("results", []) if "error" in r]
        if errors:
            raise HTTPStatusError("POST", f"{self.url}/query q={q!r}", status, "; ".join(errors))
        return result

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def write(
        self,
        db: str,
        lines: str | list[str],
        precision: str = "ns",
        user: str | None = None,
        password: str | None = None,
    ) -> tuple[int, str]:
        """POST line protocol to ``/write?db=DB``; returns ``(status, body)`` without raising (204 is success)."""
        data = lines if isinstance(lines, str) else "\n".join(lines)
        params = urllib.parse.urlencode({"db": db, "precision": precision})
        headers = self._auth_headers(user, password)
        status, body = http_request("POST", f"{self.url}/write?{params}", data.encode(), headers)
        return status, body.decode(errors="replace")

    def points(self, q: str, db: str) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows as dicts (column name to value), all series concatenated."""
        rows: list[dict[str, Any]] = []
        for result in self.query(q, db=db).get("results", []):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series["values"]:
                    rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return rows


class Alertmanager(ServerProcess):
    """Prometheus Alertmanager 0.25 (Debian's ``prometheus-alertmanager``), one node, its own config and storage.

    ``--cluster.listen-address=`` (empty) turns gossip off: a single node on loopback needs no peers, and the
    default would listen on 0.0.0.0:9094. The config sends every alert to one webhook (``webhook_url``, e.g. a
    :class:`bench.receiver.HttpReceiver`) with ``send_resolved`` on and short group times, so a test sees the
    firing and the resolved notification within seconds; without a webhook the receiver is a null one.
    """

    name = "alertmanager"
    binary = "/usr/bin/prometheus-alertmanager"

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        start_timeout: float = START_TIMEOUT,
        webhook_url: str | None = None,
    ) -> None:
        super().__init__(data_dir, port, start_timeout)
        self.webhook_url = webhook_url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def target_url(self) -> str:
        """The riverwatch notification URL of this Alertmanager."""
        return f"alertmanager://{self.host}:{self.port}"

    def _prepare(self) -> None:
        receiver = f"    webhook_configs:\n      - url: '{self.webhook_url}'\n        send_resolved: true\n"
        (self.data_dir / "alertmanager.yml").write_text(
            "route:\n"
            "  receiver: test\n"
            "  group_by: ['...']\n"  # each alert its own group: one notification per alert
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: test\n" + (receiver if self.webhook_url else "")
        )

    def _argv(self, binary: str) -> list[str]:
        return [
            binary,
            f"--config.file={self.data_dir / 'alertmanager.yml'}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def _ready(self) -> bool:
        status, _ = http_request("GET", f"{self.url}/-/ready", timeout=1.0)
        return status == 200

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, silenced and inhibited; not the resolved ones): the alerts it holds."""
        query = urllib.parse.urlencode(filters)
        url = f"{self.url}/api/v2/alerts" + (f"?{query}" if query else "")
        status, body = http_request("GET", url)
        if status != 200:
            raise HTTPStatusError("GET", url, status, body.decode(errors="replace"))
        result: list[dict[str, Any]] = json.loads(body)
        return result
