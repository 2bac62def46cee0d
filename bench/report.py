"""The JSON report of a run, the table printed from it, and the machine it ran on."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import Figure, figures, summarize
from bench.schedule import Bench
from bench.settings import LABELS, Settings
from bench.targets import node_red_version


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
