"""A threshold file with the one-step lifecycle (`confirm = 1`, clearing at the first compliant reading), for
service tests about routing, incidents, silences and restarts rather than about the two steps."""

from __future__ import annotations

from pathlib import Path


def one_step(folder: Path) -> str:
    path = folder / "one-step-alerts.toml"
    path.write_text('[alerts]\nconfirm = 1\nclear_readings = 1\nclear_hold = "0s"\n')
    return str(path)
