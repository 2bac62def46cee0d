"""One trial: a fresh broker, database and system under test, the publisher that loads it, and what it measured."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from bench.load import base_time
from bench.receiver import HttpReceiver
from bench.settings import Settings
from bench.targets import (
    REPO,
    BenchMosquitto,
    BenchVictoria,
    NodeRed,
    Riverwatch,
    Target,
    busy_seconds,
    cpu_seconds,
    rss_bytes,
)
from simulators.publish import publish

POLL_ROWS_S = 0.05
POLL_EXPORT_S = 0.025


class Harness(Protocol):
    """What a trial uses of the run around it (bench.schedule.Bench), which creates the trials."""

    s: Settings
    root: Path
    receiver: HttpReceiver
    profile_dir: Path


class Trial:
    """Broker, database and one system under test, all stopped by pid when the `with` block ends."""

    def __init__(self, bench: Harness, phase: str, target: str, run: int) -> None:
        self.bench, self.phase, self.target_name, self.run = bench, phase, target, run
        self.tag = f"r{run}{phase[:3]}{target[:2]}"
        self.dir = bench.root / self.tag
        self.dir.mkdir(parents=True)
        self.stack = contextlib.ExitStack()
        self.mosquitto = BenchMosquitto(self.dir / "mosquitto")
        self.victoria = BenchVictoria(self.dir / "victoria")
        self.target: Target = (
            Riverwatch(self.dir, self.tag, Path(bench.s.config_template))
            if target == "riverwatch"
            else NodeRed(self.dir, self.tag)
        )
        self._probe = 0

    def __enter__(self) -> Trial:
        with contextlib.ExitStack() as stack:
            stack.push(self.__exit__)
            self.stack.callback(self.mosquitto.stop)
            self.mosquitto.start()
            self.stack.callback(self.victoria.stop)
            self.victoria.start()
            self.stack.callback(self.target.stop)
            self.target.start(self.mosquitto, self.victoria, self.bench.receiver)
            self.wait_ready()
            stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Publish a probe reading until one comes out in the database: the whole path works, subscribed."""
        deadline = time.monotonic() + timeout
        t0 = base_time()
        while True:
            before = self.victoria.rows_inserted()
            payload = json.dumps({"ts": t0 + self._probe, "value": 0.001, "unit": "mg/L"}).encode()
            publish([(0, f"river/{self.tag}probe/cd", payload)], self.mosquitto.url, window=1, timeout=10)
            self._probe += 1
            until = time.monotonic() + 4.0
            while time.monotonic() < until:
                if self.victoria.rows_inserted() > before:
                    time.sleep(0.2)
                    return
                self.target.check_alive()
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no probe reading reached the database through {self.target.label} "
                    f"within {timeout:g} s\n{self.target.log_tail()}"
                )

    def publisher(self, kind: str, prefix: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
        argv = [
            sys.executable,
            "-m",
            "bench.publisher",
            "--port",
            str(self.mosquitto.port),
            "--kind",
            kind,
            "--prefix",
            prefix,
            "--client-id",
            f"pub-{prefix}",
            "--window",
            str(self.bench.s.window),
            *extra,
        ]
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.stack.callback(_reap, proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            _, err = proc.communicate(timeout=30)
            raise RuntimeError(f"publisher failed to start: {err.strip()[-1000:]}")
        return proc, json.loads(line)

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"publisher exited {proc.returncode}: {err.strip()[-1000:]}")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def wait_rows(self, rows0: int, expected: int, timeout: float, proc: subprocess.Popen[str] | None) -> float:
        """Poll until the database took ``expected`` more rows; the time it happened (mid-poll), wall clock."""
        deadline = time.monotonic() + timeout
        prev = time.time()
        while True:
            now = time.time()
            got = self.victoria.rows_inserted() - rows0
            if got >= expected:
                return (prev + now) / 2
            prev = now
            self.target.check_alive()
            if proc is not None and proc.poll() not in (None, 0):
                raise RuntimeError(f"publisher exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.target.label}: {got} of {expected} rows stored after {timeout:.0f} s\n"
                    f"{self.target.log_tail()}"
                )
            time.sleep(POLL_ROWS_S)

    def count_stored(self, prefix: str) -> tuple[int, int]:
        """(samples, duplicates) of the series whose station starts with ``prefix``."""
        self.victoria.flush()
        series = self.victoria.export(f'water_quality_value{{station=~"{prefix}.*"}}')
        samples = sum(len(s["timestamps"]) for s in series)
        distinct = sum(len(set(s["timestamps"])) for s in series)
        return samples, samples - distinct

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU-seconds so far: the machine's busy total, and each process of this trial (the harness included)."""
        assert self.mosquitto.pid is not None and self.victoria.pid is not None
        return {
            "busy": busy_seconds(),
            "target": cpu_seconds(self.target.pid),
            "mosquitto": cpu_seconds(self.mosquitto.pid),
            "victoria": cpu_seconds(self.victoria.pid),
            "harness": sum(os.times()[:2]),
            "wall": time.monotonic(),
        }

    @staticmethod
    def cpu_split(a: dict[str, float], b: dict[str, float], publisher_cpu: float) -> dict[str, float]:
        """CPU-seconds of each process between two snapshots, and what other processes on the machine used."""
        d = {k: b[k] - a[k] for k in a}
        ours = d["target"] + d["mosquitto"] + d["victoria"] + d["harness"] + publisher_cpu
        return {
            "target_s": d["target"],
            "mosquitto_s": d["mosquitto"],
            "victoria_s": d["victoria"],
            "harness_s": d["harness"],
            "publisher_s": publisher_cpu,
            "other_cores": max(0.0, d["busy"] - ours) / max(d["wall"], 1e-9),
        }

    # -- phases --------------------------------------------------------------------------------------------
    def throughput(self, kind: str) -> dict[str, Any]:
        s = self.bench.s
        count = s.messages if kind == "single" else max(1, s.senml_readings // 20)
        prefix = f"{self.tag}s"
        rows0 = self.victoria.rows_inserted()
        spy = self.start_profile(kind) if s.profile and isinstance(self.target, Riverwatch) else None
        cpu0 = self.cpu_snapshot()
        proc, ready = self.publisher(kind, prefix, "--count", str(count), "--stations", str(s.stations))
        readings = int(ready["readings"])
        expected = readings + (int(ready["flagged"]) if self.target.flag_rows else 0)
        t_done = self.wait_rows(rows0, expected, 120 + readings / 500, proc)
        cpu1 = self.cpu_snapshot()
        profile = self.stop_profile(*spy) if spy else None
        rss = rss_bytes(self.target.pid)
        done = self.finish(proc, 120)
        cpu = self.cpu_split(cpu0, cpu1, float(done["cpu_s"]))
        seconds = t_done - float(done["t_first"])
        stored, dups = self.count_stored(prefix)
        return {
            "readings": readings,
            "messages": done["messages"],
            "seconds": seconds,
            "readings_per_s": readings / seconds,
            "cpu_per_1000": cpu["target_s"] / readings * 1000,
            **cpu,
            "publisher_msgs_per_s": done["messages"] / max(done["t_acked"] - done["t_first"], 1e-9),
            "rss_bytes_after": rss,
            "stored": stored,
            "duplicates": dups,
            "verified": stored == readings and dups == 0,
            **({"profile": profile} if profile else {}),
        }

    def start_profile(self, kind: str) -> tuple[subprocess.Popen[bytes], Path]:
        """py-spy sampling the service until :meth:`stop_profile`: only the thread holding the GIL, so the shares are
        of Python CPU time (a thread waiting on fsync or a lock releases the GIL and is not counted)."""
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = self.bench.profile_dir / f"{self.tag}-{kind}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.target.pid),
                "--gil",
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "py-spy.log").open("wb"),
            start_new_session=True,
        )
        self.stack.callback(_reap, proc)
        time.sleep(0.5)  # attached before the first message
        if proc.poll() is not None:
            raise RuntimeError(f"py-spy failed: {(self.dir / 'py-spy.log').read_text(errors='replace')[-500:]}")
        return proc, out

    def stop_profile(self, proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        return {"file": str(out), **top_frames(out)}

    def latency(self) -> dict[str, Any]:
        s = self.bench.s
        prefix, t0 = self.tag, base_time()
        seen: dict[int, float] = {}
        stop = threading.Event()
        errors: list[str] = []

        def poll() -> None:
            selector = f'water_quality_value{{station="{prefix}lat"}}'
            while not stop.is_set():
                t = time.time()
                try:
                    self.victoria.flush()
                    for series in self.victoria.export(selector):
                        for ts in series["timestamps"]:
                            seen.setdefault(int(ts) // 1000 - t0, t)
                except Exception as e:  # reported with the trial
                    errors.append(str(e))
                stop.wait(POLL_EXPORT_S)

        poller = threading.Thread(target=poll, name="export-poller", daemon=True)
        self.stack.callback(poller.join, 5)
        self.stack.callback(stop.set)
        cpu0 = self.cpu_snapshot()
        poller.start()
        proc, _ = self.publisher(
            "paced",
            prefix,
            "--rate",
            str(s.rate),
            "--duration",
            str(s.latency_s),
            "--alert-rate",
            str(s.alert_rate),
            "--store-rate",
            str(s.store_rate),
            "--stations",
            str(min(s.stations, 500)),
            "--t0",
            str(t0),
        )
        done = self.finish(proc, s.latency_s + 120)
        cpu = self.cpu_split(cpu0, self.cpu_snapshot(), float(done["cpu_s"]))
        store_pub = {j: t for kind, j, t in done["markers"] if kind == "store"}
        alert_pub = {j: t for kind, j, t in done["markers"] if kind == "alert"}
        alert_path = f"/alerts/{self.tag}"
        pattern = re.compile(re.escape(prefix) + r"alarm(\d{5})")
        want_alerts = isinstance(self.target, Riverwatch)

        def alerts_received() -> dict[int, float]:
            got: dict[int, float] = {}
            for post in self.bench.receiver.posts:
                if post.path != alert_path or not isinstance(post.json, dict):
                    continue
                m = pattern.search(f"{post.json.get('title', '')}\n{post.json.get('message', '')}")
                if m:
                    got.setdefault(int(m.group(1)), post.received_at)
            return got

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all(j in seen for j in store_pub) and (not want_alerts or len(alerts_received()) >= len(alert_pub)):
                break
            time.sleep(0.1)
        stop.set()
        poller.join(5)
        received = alerts_received()
        result: dict[str, Any] = {
            "readings": done["messages"],
            "cpu_per_1000": cpu["target_s"] / done["messages"] * 1000,
            **cpu,
            "storage": _percentiles([seen[j] - t for j, t in store_pub.items() if j in seen]),
            "storage_lost": sum(j not in seen for j in store_pub),
            "poll_errors": errors[:3],
        }
        if want_alerts:
            result["alert"] = _percentiles([received[j] - t for j, t in alert_pub.items() if j in received])
            result["alert_lost"] = sum(j not in received for j in alert_pub)
        return result

    def memory(self) -> dict[str, Any]:
        assert isinstance(self.target, Riverwatch)
        s = self.bench.s
        pid = self.target.pid
        time.sleep(0.5)
        rss0 = rss_bytes(pid)
        out: dict[str, Any] = {"rss_baseline": rss0, "points": []}
        total = 0
        for i, series in enumerate(s.memory_series):
            packs = max(1, (series - total) // 20)
            prefix = f"{self.tag}m{i}x"
            rows0 = self.victoria.rows_inserted()
            evaluated0 = self.target.metric("riverwatch_readings_evaluated_total")
            proc, ready = self.publisher("senml", prefix, "--count", str(packs), "--stations", str(packs))
            readings = int(ready["readings"])
            self.wait_rows(rows0, readings, 120 + readings / 500, proc)
            self.finish(proc, 60)
            deadline = time.monotonic() + 60
            while self.target.metric("riverwatch_readings_evaluated_total") < evaluated0 + readings:
                if time.monotonic() > deadline:
                    raise RuntimeError("riverwatch did not evaluate every reading within 60 s")
                time.sleep(0.1)
            total += readings
            time.sleep(0.5)
            rss = rss_bytes(pid)
            out["points"].append({"series": total, "rss": rss, "bytes_per_series": (rss - rss0) / total})
        return out


# Leaf frames of threads that wait (thread-pool workers idle on their queue, the event loop in epoll): py-spy
# samples them as running because the wait is in C; they are counted apart, not as work.
WAITING = re.compile(
    r"^(_worker \(concurrent/futures/thread\.py\)|\w*Selector\.select \(selectors\.py\)|"
    r"wait \(threading\.py\)|_wait_for_tstate_lock \(threading\.py\))$"
)


def top_frames(path: Path, n: int = 15) -> dict[str, Any]:
    """Where the service's threads were when sampled: self time per function and per file, waits apart."""
    funcs: dict[str, int] = {}
    files: dict[str, int] = {}
    waiting = total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, num = line.rpartition(" ")
            if not num.isdigit():
                continue
            count = int(num)
            total += count
            leaf = re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])
            leaf = re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+|main)/", "(", leaf)
            if WAITING.match(leaf):
                waiting += count
                continue
            funcs[leaf] = funcs.get(leaf, 0) + count
            file = leaf[leaf.rfind("(") + 1 : -1] if leaf.endswith(")") else leaf
            files[file] = files.get(file, 0) + count

    def top(d: dict[str, int]) -> list[tuple[str, float]]:
        busy = total - waiting
        return [(k, v / busy) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]] if busy else []

    return {
        "samples": total,
        "waiting_share": waiting / total if total else None,
        "top_self": top(funcs),
        "top_files": top(files),
    }


def _reap(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:  # nearest rank
        return v[min(len(v), max(1, math.ceil(p * len(v)))) - 1]

    return {"n": len(v), "p50": q(0.50), "p99": q(0.99), "max": v[-1]}
