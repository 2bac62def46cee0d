"""Reading threshold files: `check` reports every problem as `path:line: message`, `load` builds the
`ThresholdSet` (or raises `ThresholdError` with those problems), and where the shipped files are."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from monitor.thresholds.check_parameters import ParameterChecker
from monitor.thresholds.check_policy import PolicyChecker
from monitor.thresholds.check_rivers import RiverChecker
from monitor.thresholds.check_rules import RuleChecker
from monitor.thresholds.check_standards import StandardChecker
from monitor.thresholds.check_stations import StationChecker
from monitor.thresholds.checking import SourceFile
from monitor.thresholds.model import DEFAULT_CLASSES, Problem, ThresholdError
from monitor.thresholds.positions import Locator, syntax_problem
from monitor.thresholds.shipped import shipped_path
from monitor.thresholds.thresholdset import ThresholdSet


def _parse(path: str | Path) -> tuple[SourceFile | None, list[Problem]]:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [Problem(name, 1, f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(name, line, "not UTF-8 text (TOML files must be UTF-8)")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [syntax_problem(name, text, exc)]
    return SourceFile(name, data, Locator(text)), []


def _run(paths: Sequence[str | Path]) -> tuple[list[Problem], ThresholdSet]:
    """Check and build in one pass; the set is only meaningful when there are no problems.

    Order matters: the declared parameters first (every other table may name them), then standards (their
    classes and ids are what stations refer to), then stations, then the rivers (their stations must lie on
    the described reaches), then the policies, then the rules (which refer to stations and severity names).
    """
    problems: list[Problem] = []
    files: list[SourceFile] = []
    for p in paths:
        f, unreadable = _parse(p)
        problems.extend(unreadable)
        if f is not None:
            files.append(f)
    parameters = ParameterChecker(problems)
    declared: dict[str, str] = {}
    for f in files:
        parameters.check(f, declared)
    catalogue = parameters.catalogue
    standards = StandardChecker(problems, catalogue)
    for f in files:
        standards.check_top_level(f)
        standards.check(f)
    known = [c for f in files for c in f.classes]
    known_classes = list(dict.fromkeys(known)) or list(DEFAULT_CLASSES)
    result = ThresholdSet(paths=[str(p) for p in paths], catalogue=catalogue)
    seen_standards: dict[str, str] = {}
    for f in files:
        if f.standard is not None:
            line = f.loc.line("standard", "id")
            if f.standard.id in seen_standards:
                problems.append(
                    Problem(
                        f.path,
                        line,
                        f"standard '{f.standard.id}' is already loaded from {seen_standards[f.standard.id]}",
                    )
                )
            else:
                seen_standards[f.standard.id] = f"{f.path}:{line}"
                result.standards.append(f.standard)
    standard_ids = list(seen_standards)
    seen_stations: dict[str, str] = {}
    stations = StationChecker(problems, catalogue)
    for f in files:
        stations.check(f, known_classes, seen_stations, standard_ids)
        result.stations.update(f.stations)
    described: dict[str, str] = {}
    rivers = RiverChecker(problems, catalogue)
    for f in files:
        result.rivers.update(rivers.check(f, described))
    rivers.check_stations(result.rivers, result.stations)
    owners: dict[str, str] = {}
    policies = PolicyChecker(problems, catalogue)
    policies.station_ids, policies.standard_ids = list(result.stations), standard_ids
    for f in files:
        built = policies.check(f, known_classes, owners)
        if built.classes is not None:
            result.classes = built.classes
        if built.screen is not None:
            result.screen = built.screen
        if built.alerts is not None:
            result.alerts = built.alerts
        result.instruments.update(built.instruments)
    tier_names = [n for _, n in result.alerts.tiers]
    rules = RuleChecker(problems, catalogue)
    for f in files:
        result.rules.extend(rules.check(f, list(seen_stations), tier_names))
    rules.check_rule_names(result.rules)
    order = {str(p): i for i, p in reversed(list(enumerate(paths)))}
    problems.sort(key=lambda p: (order.get(p.path, len(order)), p.line))
    return problems, result


def check(paths: Sequence[str | Path]) -> list[Problem]:
    """Every problem in every file, in file then line order; never raises for bad content."""
    return _run(paths)[0]


def load(paths: Sequence[str | Path]) -> ThresholdSet:
    """The thresholds of `paths` (earlier standards take precedence); ThresholdError when check finds problems."""
    problems, result = _run(paths)
    if problems:
        raise ThresholdError(problems)
    return result


__all__ = ["check", "load", "load_or_shipped", "shipped_path"]


def load_or_shipped(configured: Sequence[Path]) -> tuple[list[Path], ThresholdSet]:
    """The configured files, loaded; plus the shipped GB 3838-2002 when none is given or they hold no standard.
    (The shipped instrument defaults need no file here: every ThresholdSet has them beneath its own tables.)

    The paths come back too: a reload reads the same files again.
    """
    files = list(configured)
    loaded = load(files) if files else None
    if loaded is None or not loaded.standards:
        files.append(shipped_path())
        loaded = load(files)
    return files, loaded
