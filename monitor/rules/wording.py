"""How the rules write numbers, times and units into an alert's reason."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.domain.params import PARAMETERS


def number(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def iso_minutes(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def unit_suffix(parameter: str) -> str:
    """ " mg/L": the parameter's unit with its leading space, or "" when it has none."""
    p = PARAMETERS.get(parameter)
    return f" {p.unit}" if p is not None and p.unit else ""
