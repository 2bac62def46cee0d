"""The shipped threshold files: where this install keeps them, and the instrument defaults read from one.

The instrument defaults (thresholds/instruments.toml) sit beneath every file a user loads, so instrument
screening and sensor health are on without any configuration; they are read once per process.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import site
import sys
import sysconfig
import tomllib
from pathlib import Path

from monitor.thresholds.check_screens import ScreenChecker
from monitor.thresholds.checking import SourceFile
from monitor.thresholds.model import InstrumentSettings, Problem, ThresholdError
from monitor.thresholds.positions import Locator

INSTRUMENTS = "instruments.toml"


def shipped_path(name: str = "gb3838-2002.toml") -> Path:
    """A shipped threshold file, wherever this install keeps the thresholds folder.

    Looked for as package data (monitor/_thresholds), next to the package (a checkout), then where pip puts
    the wheel's data-files (share/riverwatch/thresholds under sys.prefix, the install scheme's data path, or
    the user base for --user installs). When none has it, the checkout location is returned so that the
    "cannot read" problem names a sensible path.
    """
    candidates: list[Path] = []
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        packaged = importlib.resources.files("monitor") / "_thresholds" / name
        if isinstance(packaged, Path):
            candidates.append(packaged)
    repo = Path(__file__).resolve().parents[2] / "thresholds" / name  # monitor/thresholds/ -> the checkout
    candidates.append(repo)
    data = Path("share") / "riverwatch" / "thresholds" / name
    prefixes = [sys.prefix, sysconfig.get_path("data"), site.USER_BASE]
    candidates += [Path(prefix) / data for prefix in dict.fromkeys(p for p in prefixes if p)]
    for c in candidates:
        if c.is_file():
            return c
    return repo


@functools.cache
def instrument_defaults() -> dict[str, InstrumentSettings]:
    """The shipped `[instruments.<p>]` tables. A missing or broken file is an install fault: ThresholdError,
    never silently no screening."""
    path = shipped_path(INSTRUMENTS)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdError([Problem(str(path), 1, f"shipped instrument defaults unreadable: {exc}")]) from exc
    problems: list[Problem] = []
    checker = ScreenChecker(problems)
    checker._f = SourceFile(str(path), data, Locator(text))
    tables = checker._instrument_tables(data.get("instruments"), ("instruments",))
    if problems:
        raise ThresholdError(problems)
    return tables
