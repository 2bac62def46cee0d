"""The figures of the table and the JSON: what each one takes from a trial's result, how it prints, its target."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.settings import Settings


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
