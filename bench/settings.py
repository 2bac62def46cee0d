"""What one benchmark run measures (from the command line), the names of the systems and phases, and the log."""

from __future__ import annotations

import sys
from dataclasses import dataclass

TARGETS = ("riverwatch", "nodered")
LABELS = {"riverwatch": "riverwatch", "nodered": "Node-RED"}
PHASES = ("offline", "latency", "single", "senml", "memory")


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
