"""The run: the trials in their interleaved order, one line of log each, their results and their errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.receiver import HttpReceiver
from bench.settings import LABELS, Settings, log
from bench.targets import REPO, busy_seconds
from bench.trial import Trial


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
