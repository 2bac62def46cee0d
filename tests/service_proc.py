"""`riverwatch run` as a real subprocess, for tests that cross a process boundary or break things."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.servers import free_port

REPO = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """Start, stop, kill -9 and restart the service on one config and data_dir; read /metrics and /healthz."""

    def __init__(self, workdir: Path, config_body: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.http = f"127.0.0.1:{free_port()}"
        self.config = workdir / "riverwatch.toml"
        self.config.write_text(config_body + f'\n[service]\ndata_dir = "data"\nhttp_listen = "{self.http}"\n')
        self.log = workdir / "service.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait_connected: bool = True, timeout: float = 20.0) -> None:
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts + 1}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self.starts += 1
        if wait_connected:
            self.wait(lambda: self.metric("riverwatch_mqtt_connects_total") >= 1, timeout, "an MQTT connection")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:  # not listening (yet, or any more)
            return 0, ""

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (all label sets); 0 when the service does not answer yet."""
        text = self.get("/metrics")[1]
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if (line.startswith(name + " ") or line.startswith(name + "{"))
        )

    def health(self) -> tuple[int, dict[str, object]]:
        status, body = self.get("/healthz")
        return status, json.loads(body)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll until `predicate()`; returns the seconds it took. Fails with the service's log tail."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"service exited ({self.proc.returncode}) waiting for {what}:\n{self.output()[-4000:]}"
                )
            if predicate():
                return time.monotonic() - started
            time.sleep(0.05)
        if self.running():  # the stacks of a service that is stuck say where
            self.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{self.output()[-8000:]}")

    def terminate(self, timeout: float = 12.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """Finaliser: whatever state the test left it in, the process is gone afterwards."""
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()
