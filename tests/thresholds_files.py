"""Shared by the threshold tests: the shipped files, a small standard, and writing a file to check."""

from __future__ import annotations

import textwrap
from pathlib import Path

from monitor.thresholds import Problem, shipped_path

GB = shipped_path()

LONGJIANG = shipped_path("longjiang-stations.toml")


STANDARD = """\
[standard]
id = "T"
classes = ["I", "II", "III"]
"""


def write(tmp_path: Path, text: str, name: str = "t.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]
