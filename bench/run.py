"""riverwatch benchmark: the service and a Node-RED flow doing the same job, side by side, in one run.

``scripts/bench [--quick] [--runs N] [...]`` (or ``python -m bench``, or ``bench/run.py``) prints a table and
writes the same figures to ``bench/results/latest.json``. Each figure is the median of ``--runs`` runs (at least
3 by default) with the min-max. Runs interleave the systems (riverwatch, then Node-RED, phase by phase) so that
drift of a noisy machine hits both alike.

A trial is one phase of one system on a fresh mosquitto and a fresh VictoriaMetrics (loopback, free ports),
driven by a separate publisher process (``bench/publisher.py``). Every process the harness starts is stopped by
its pid when the trial ends, also on an error, Ctrl-C or SIGTERM.

- throughput: readings from the first publish until VictoriaMetrics has taken the last one in (its
  ``vm_rows_inserted_total``, polled every 50 ms), then verified by exporting the trial's series and counting
  the samples and duplicates. CPU-seconds of the system's process over the same interval, per 1000 readings.
- latency (at ``--rate`` readings/s of single messages): storage markers are polled for in the export after
  ``/internal/force_flush`` every 25 ms; alert markers (10x the cadmium limit, each at a new station) are timed
  until the HTTP receiver behind apprise's ``json://`` gets the notification that names the station.
- memory: RSS of the riverwatch process after 10k and 100k new series (SenML packs of 20, one pack per
  station) are stored and evaluated, minus its RSS after start-up, divided by the series.
- offline: ``bench/offline.py`` (rules + alert lifecycle, no I/O) in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import base_time
from bench.receiver import HttpReceiver
from bench.targets import (
    BENCH,
    REPO,
    BenchMosquitto,
    BenchVictoria,
    NodeRed,
    Riverwatch,
    Target,
    busy_seconds,
    cpu_seconds,
    node_red_version,
    rss_bytes,
)
from simulators.publish import publish

TARGETS = ("riverwatch", "nodered")
LABELS = {"riverwatch": "riverwatch", "nodered": "Node-RED"}
PHASES = ("offline", "latency", "single", "senml", "memory")
POLL_ROWS_S = 0.05
POLL_EXPORT_S = 0.025


@dataclass
class Settings:
    runs: int
    messages: int
    senml_readings: int
    latency_s: float
    rate: float
    alert_rate: float
    store_rate: float
    memory_series: tuple[int, ...]
    offline_series: tuple[int, ...]
    offline_batch: int
    offline_batches: int
    offline_seconds: float
    stations: int
    window: int
    targets: tuple[str, ...]
    phases: tuple[str, ...]
    config_template: str
    quick: bool
    wait_idle: float
    profile: bool


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------- one trial


class Trial:
    """Broker, database and one system under test, all stopped by pid when the `with` block ends."""

    def __init__(self, bench: Bench, phase: str, target: str, run: int) -> None:
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


# ---------------------------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, s: Settings, root: Path, receiver: HttpReceiver, profile_dir: Path) -> None:
        self.s, self.root, self.receiver, self.profile_dir = s, root, receiver, profile_dir
        self.trials: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []

    def record(self, run: int, phase: str, target: str, fn: Callable[[], dict[str, Any]]) -> None:
        began = time.monotonic()
        try:
            result = fn()
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
            log(f"  run {run + 1} {phase:<8} {LABELS[target]:<10} FAILED: {e}")
            self.errors.append({"run": run, "phase": phase, "target": target, "error": str(e)})
            return
        result.update(run=run, phase=phase, target=target, wall_s=time.monotonic() - began)
        self.trials.append(result)
        busy = f", other processes {result['other_cores']:.2f} cores" if result.get("other_cores", 0) >= 0.1 else ""
        log(f"  run {run + 1} {phase:<8} {LABELS[target]:<10} {_brief(result)}  ({result['wall_s']:.0f} s{busy})")

    def wait_idle(self) -> None:
        """With --wait-idle S: wait (at most S s) until other processes use less than a quarter of a core."""
        deadline = time.monotonic() + self.s.wait_idle
        while time.monotonic() < deadline:
            before = busy_seconds()
            time.sleep(1.0)
            if busy_seconds() - before < 0.25:
                return
        if self.s.wait_idle > 0:
            log(f"  the machine stayed busy for {self.s.wait_idle:g} s; measuring anyway")

    def trial(self, run: int, phase: str, target: str) -> None:
        def go() -> dict[str, Any]:
            self.wait_idle()
            with Trial(self, phase, target, run) as t:
                if phase == "latency":
                    return t.latency()
                if phase == "memory":
                    return t.memory()
                return t.throughput(phase)

        self.record(run, phase, target, go)

    def offline(self, run: int) -> None:
        def go() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for series in self.s.offline_series:
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.offline",
                        "--series",
                        str(series),
                        "--batch",
                        str(self.s.offline_batch),
                        "--batches",
                        str(self.s.offline_batches),
                        "--min-seconds",
                        str(self.s.offline_seconds),
                    ],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"bench.offline failed: {proc.stderr.strip()[-1000:]}")
                out[str(series)] = json.loads(proc.stdout)
            out["other_cores"] = max(float(v["other_cores"]) for v in out.values())
            return out

        self.record(run, "offline", "riverwatch", go)

    def run(self, save: Callable[[], None]) -> None:
        s = self.s
        for run in range(s.runs):
            log(f"run {run + 1}/{s.runs}")
            if "offline" in s.phases:
                self.offline(run)
            for phase in ("latency", "single", "senml"):
                if phase in s.phases:
                    for target in s.targets:
                        self.trial(run, phase, target)
            if "memory" in s.phases and "riverwatch" in s.targets:
                self.trial(run, "memory", "riverwatch")
            save()


def _brief(r: dict[str, Any]) -> str:
    if r["phase"] in ("single", "senml"):
        ok = "verified" if r["verified"] else f"NOT VERIFIED: {r['stored']} stored, {r['duplicates']} duplicates"
        return (
            f"{r['readings_per_s']:,.0f} readings/s, {r['cpu_per_1000']:.3f} CPU-s/1000, "
            f"publisher {r['publisher_msgs_per_s']:,.0f} msg/s, {ok}"
        )
    if r["phase"] == "latency":
        st = r["storage"]
        text = f"storage p50 {_ms(st['p50'])} p99 {_ms(st['p99'])} (n={st['n']}, lost {r['storage_lost']})"
        if "alert" in r:
            al = r["alert"]
            text += (
                f"; alert p50 {_ms(al['p50'])} p99 {_ms(al['p99'])} max {_ms(al['max'])} "
                f"(n={al['n']}, lost {r['alert_lost']})"
            )
        return text
    if r["phase"] == "memory":
        return ", ".join(f"{p['series']:,} series: {p['bytes_per_series']:,.0f} B/series" for p in r["points"])
    if r["phase"] == "offline":
        return ", ".join(
            f"{int(k):,} series: {v['readings_per_s']:,.0f} readings/s" for k, v in r.items() if k.isdigit()
        )
    return ""


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:,.0f} ms"


# ---------------------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    phase: str
    get: Callable[[dict[str, Any]], float | None]
    fmt: Callable[[float], str]
    target: str
    higher_is_better: bool


def _num(v: float) -> str:
    return f"{v:,.0f}"


def _secs(v: float) -> str:
    return f"{v * 1000:,.0f} ms" if v < 10 else f"{v:,.1f} s"


def _cpu(v: float) -> str:
    return f"{v:.3f}"


def _mem_point(series_index: int) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        pts = r["points"]
        return float(pts[series_index]["bytes_per_series"]) if len(pts) > series_index else None

    return get


def _offline_get(series: int) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        v = r.get(str(series))
        return float(v["readings_per_s"]) if v else None

    return get


def _lat(kind: str, stat: str) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        v = r.get(kind, {}).get(stat)
        return float(v) if v is not None else None

    return get


def figures(s: Settings) -> list[Figure]:
    out = [
        Figure(
            "throughput_single",
            "throughput, single-reading QoS 1 messages",
            "readings/s",
            "single",
            lambda r: r["readings_per_s"],
            _num,
            ">= Node-RED",
            True,
        ),
        Figure(
            "throughput_senml",
            "throughput, SenML packs of 20",
            "readings/s",
            "senml",
            lambda r: r["readings_per_s"],
            _num,
            ">= 100,000",
            True,
        ),
        Figure(
            "cpu_single",
            "CPU-seconds per 1000 readings, single messages",
            "CPU-s",
            "single",
            lambda r: r["cpu_per_1000"],
            _cpu,
            "",
            False,
        ),
        Figure(
            "cpu_senml",
            "CPU-seconds per 1000 readings, SenML packs",
            "CPU-s",
            "senml",
            lambda r: r["cpu_per_1000"],
            _cpu,
            "",
            False,
        ),
        Figure(
            "storage_p50",
            f"storage latency p50 at {s.rate:,.0f} readings/s",
            "s",
            "latency",
            _lat("storage", "p50"),
            _secs,
            "",
            False,
        ),
        Figure(
            "storage_p99",
            f"storage latency p99 at {s.rate:,.0f} readings/s",
            "s",
            "latency",
            _lat("storage", "p99"),
            _secs,
            "<= 1 s",
            False,
        ),
        Figure(
            "alert_p50",
            f"alert latency p50 at {s.rate:,.0f} readings/s",
            "s",
            "latency",
            _lat("alert", "p50"),
            _secs,
            "",
            False,
        ),
        Figure(
            "alert_p99",
            f"alert latency p99 at {s.rate:,.0f} readings/s",
            "s",
            "latency",
            _lat("alert", "p99"),
            _secs,
            "<= 50 ms",
            False,
        ),
        Figure(
            "alert_max",
            f"alert latency max at {s.rate:,.0f} readings/s",
            "s",
            "latency",
            _lat("alert", "max"),
            _secs,
            "",
            False,
        ),
    ]
    for series in s.offline_series:
        out.append(
            Figure(
                f"rules_{series}",
                f"offline rule evaluation, {series:,} series",
                "readings/s",
                "offline",
                _offline_get(series),
                _num,
                ">= 2,000,000",
                True,
            )
        )
    for i, series in enumerate(s.memory_series):
        out.append(
            Figure(
                f"memory_{series}",
                f"memory per series at {series:,} series",
                "bytes",
                "memory",
                _mem_point(i),
                _num,
                "<= 2,048" if i == len(s.memory_series) - 1 else "",
                False,
            )
        )
    return out


def summarize(fig: Figure, trials: list[dict[str, Any]], target: str) -> dict[str, Any] | None:
    values = [v for r in trials if r["phase"] == fig.phase and r["target"] == target if (v := fig.get(r)) is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def build_report(s: Settings, bench: Bench, started: datetime) -> dict[str, Any]:
    figs: dict[str, Any] = {}
    for fig in figures(s):
        rw, nr = summarize(fig, bench.trials, "riverwatch"), summarize(fig, bench.trials, "nodered")
        if rw is None and nr is None:
            continue
        ratio = rw["median"] / nr["median"] if rw and nr and nr["median"] else None
        figs[fig.key] = {
            "label": fig.label,
            "unit": fig.unit,
            "target": fig.target,
            "higher_is_better": fig.higher_is_better,
            "riverwatch": rw,
            "nodered": nr,
            "ratio": ratio,
        }
    verified = [r["verified"] for r in bench.trials if "verified" in r]
    other = [r["other_cores"] for r in bench.trials if "other_cores" in r]
    return {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "scripts/bench " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "settings": asdict(s),
        "figures": figs,
        "all_throughput_runs_verified": all(verified) if verified else None,
        "other_processes_cores": {"median": statistics.median(other), "max": max(other)} if other else None,
        "errors": bench.errors,
        "trials": bench.trials,
    }


def table(report: dict[str, Any], s: Settings) -> str:
    def cell(fig: Figure, v: dict[str, Any] | None) -> str:
        if v is None:
            return "-"
        if len(v["runs"]) == 1:
            return fig.fmt(v["median"])
        return f"{fig.fmt(v['median'])} ({fig.fmt(v['min'])}–{fig.fmt(v['max'])})"

    rows = [("figure", "riverwatch", "Node-RED", "rw/NR", "target")]
    for fig in figures(s):
        f = report["figures"].get(fig.key)
        if f is None:
            continue
        ratio = f"{f['ratio']:.2f}×" if f["ratio"] is not None else ""
        rows.append(
            (
                fig.label + (f" ({fig.unit})" if fig.unit in ("readings/s", "CPU-s", "bytes") else ""),
                cell(fig, f["riverwatch"]),
                cell(fig, f["nodered"]),
                ratio,
                fig.target,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = report["machine"]
    lines.append("")
    lines.append(
        f"median of {s.runs} runs (min–max); {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['os']}; Python {m['python']}, mosquitto {m['mosquitto']}, VictoriaMetrics "
        f"{m['victoria_metrics']}, Node-RED {m['node_red']} on Node.js {m['node']}"
    )
    other = report["other_processes_cores"]
    if other is not None:
        note = " (the machine was not idle: figures are noisy)" if other["max"] >= 0.25 else ""
        lines.append(
            f"other processes on the machine during measurements: median {other['median']:.2f} cores, "
            f"max {other['max']:.2f}{note}"
        )
    if report["all_throughput_runs_verified"] is False:
        lines.append("WARNING: some throughput runs stored a different number of readings than were published")
    for r in report["trials"]:
        if "profile" in r and r["run"] == 0:
            prof = r["profile"]
            lines.append(
                f"\nriverwatch {r['phase']} run 1, py-spy: share of the samples holding the GIL, by "
                f"function ({prof['waiting_share']:.0%} of them were idle waits; {prof['file']})"
            )
            lines.extend(f"  {share:6.1%}  {frame}" for frame, share in prof["top_self"][:12])
            lines.append("  by file: " + ", ".join(f"{f} {share:.0%}" for f, share in prof["top_files"][:6]))
    for e in report["errors"]:
        lines.append(f"FAILED: run {e['run'] + 1} {e['phase']} {LABELS[e['target']]}: {e['error'].splitlines()[0]}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def first(pattern: str, path: str) -> str:
        with contextlib.suppress(OSError):
            m = re.search(pattern, Path(path).read_text(), re.M)
            if m:
                return m.group(1).strip()
        return "?"

    def dpkg(pkg: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                return out.stdout.strip()
        return "?"

    node = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    mem_kib = first(r"^MemTotal:\s+(\d+)", "/proc/meminfo")
    return {
        "cpu": first(r"^model name\s*:\s*(.+)$", "/proc/cpuinfo"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kib) / 2**20) if mem_kib.isdigit() else "?",
        "os": first(r'^PRETTY_NAME="?([^"\n]+)', "/etc/os-release"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mosquitto": dpkg("mosquitto"),
        "victoria_metrics": dpkg("victoria-metrics"),
        "node": node,
        "node_red": node_red_version(),
    }


# ---------------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, bool]:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts: about 3 minutes on an idle machine")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the table shows the median (default 3)")
    p.add_argument("--messages", type=int, help="single-reading messages per throughput run (default 200000)")
    p.add_argument(
        "--senml-readings",
        type=int,
        help="readings per SenML throughput run (default 1000000: long enough that the run's fixed end,"
        " about 1 s, does not decide the rate)",
    )
    p.add_argument("--latency-seconds", type=float, help="length of a latency run (default 20)")
    p.add_argument("--rate", type=float, default=1000.0, help="readings/s during latency runs (default 1000)")
    p.add_argument("--alert-rate", type=float, default=5.0, help="alert markers/s in latency runs")
    p.add_argument("--store-rate", type=float, default=10.0, help="storage markers/s in latency runs")
    p.add_argument("--memory-series", default="10000,100000", help="series counts for the memory figure")
    p.add_argument("--offline-series", default="1000,100000", help="series counts for offline rule evaluation")
    p.add_argument("--stations", type=int, default=1000, help="stations the throughput load spreads over")
    p.add_argument("--window", type=int, default=2000, help="publisher's most unacknowledged messages")
    p.add_argument("--targets", default=",".join(TARGETS), help="riverwatch,nodered (default both)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"a subset of {','.join(PHASES)}")
    p.add_argument(
        "--config-template",
        default=str(BENCH / "riverwatch.toml"),
        help="riverwatch config with {placeholders} (default bench/riverwatch.toml)",
    )
    p.add_argument("--out", default=str(BENCH / "results" / "latest.json"), help="where the JSON goes")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each trial, wait up to S s for other processes to leave the CPUs idle",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample riverwatch with py-spy during its throughput runs (bench/results/profiles/)",
    )
    p.add_argument("--keep", action="store_true", help="keep the trial directories (logs, data) after the run")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    phases = tuple(x for x in a.phases.split(",") if x)
    if a.runs < 1 or not set(targets) <= set(TARGETS) or not set(phases) <= set(PHASES):
        p.error("--runs must be >= 1; --targets from riverwatch,nodered; --phases from " + ",".join(PHASES))
    s = Settings(
        runs=a.runs,
        messages=a.messages or (20_000 if a.quick else 200_000),
        senml_readings=a.senml_readings or (40_000 if a.quick else 1_000_000),
        latency_s=a.latency_seconds or (5.0 if a.quick else 20.0),
        rate=a.rate,
        alert_rate=a.alert_rate,
        store_rate=a.store_rate,
        memory_series=tuple(int(x) for x in a.memory_series.split(",") if x),
        offline_series=tuple(int(x) for x in a.offline_series.split(",") if x),
        offline_batch=100_000,
        offline_batches=5,
        offline_seconds=0.5 if a.quick else 2.0,
        stations=a.stations,
        window=a.window,
        targets=targets,
        phases=phases,
        config_template=a.config_template,
        quick=a.quick,
        wait_idle=a.wait_idle,
        profile=a.profile,
    )
    return s, Path(a.out), a.keep


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="riverwatch-bench-"))
    try:
        yield root
    finally:
        if keep:
            log(f"trial directories kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    s, out, keep = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    started = datetime.now(UTC)
    with workdir(keep) as root:
        receiver = HttpReceiver()
        receiver.start()
        try:
            bench = Bench(s, root, receiver, out.parent / "profiles")

            def save() -> None:
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(build_report(s, bench, started), indent=2) + "\n")
                tmp.replace(out)

            log(f"riverwatch benchmark: {s.runs} runs{' (quick)' if s.quick else ''}; work in {root}")
            bench.run(save)
        finally:
            receiver.stop()
    report = build_report(s, bench, started)
    save()
    print(table(report, s))
    print(f"\nJSON: {out}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
