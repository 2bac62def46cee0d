"""`riverwatch thresholds show`: what applies at one station, and the file and line each piece comes from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monitor.domain.params import PARAMETERS
from monitor.thresholds.load import load
from monitor.thresholds.model import CLEAR_HOLD_CYCLE, LIMIT_RULES, AlertPolicy, RuleSpec, Station, merged_settings
from monitor.thresholds.notation import fmt_number, format_duration
from monitor.thresholds.thresholdset import ThresholdSet


def show(paths: Sequence[str | Path], station: str, default_class: str = "III") -> str:
    """`riverwatch thresholds show --station ID`: the effective limits and rules at a station, with origins.

    Raises ThresholdError when the files do not check clean (the same problems `check` prints).
    """
    return explain(load(paths), station, default_class)


def describe_rule(rule: RuleSpec) -> str:
    """One line per rule for `show` and logs: what it watches and with which settings."""
    what = ", ".join(rule.parameters) if rule.parameters else "every parameter"
    where = []
    if rule.stations:
        where.append("stations " + ", ".join(rule.stations))
    if rule.intake is not None:
        where.append("intake stations" if rule.intake else "non-intake stations")
    parts: list[str] = []
    if rule.kind == "persistence":
        if rule.readings:
            parts.append(f"{rule.readings} readings in a row")
        if rule.duration_ns:
            parts.append(f"for {format_duration(rule.duration_ns)}")
        parts = ["above the limit " + " and ".join(parts)]
    elif rule.kind == "mean":
        parts.append(
            f"rolling {format_duration(rule.window_ns)} mean against the limit (the mean limit where "
            "the standard has one)"
        )
        if rule.min_readings > 1:
            parts.append(f"at least {rule.min_readings} readings")
    elif rule.kind == "rate":
        units = {PARAMETERS[p].unit for p in rule.parameters if p in PARAMETERS}
        unit = f" {rule.unit}" if rule.unit else (f" {units.pop()}" if len(units) == 1 else " (parameter unit)")
        parts.append(f"rising ≥ {fmt_number(rule.rise_per_hour)}{unit} per hour over {format_duration(rule.window_ns)}")
        if rule.above:
            parts.append(f"from {fmt_number(rule.above)} × the limit")
        parts.append(f"at least {rule.min_readings} readings")
    elif rule.kind == "no_data":
        every = format_duration(rule.interval_ns) if rule.interval_ns else "the station's expect interval"
        parts.append(
            f"silent {fmt_number(rule.factor)} × {every}" + (" (whole station)" if rule.scope == "station" else "")
        )
    if rule.severity:
        parts.append(f"severity {rule.severity}")
    if rule.clear_ratio is not None or rule.clear_hold_ns is not None:
        parts.append(
            f"clears below {fmt_number(rule.clear_ratio if rule.clear_ratio is not None else 1.0)} × limit"
            + (f" for {format_duration(rule.clear_hold_ns)}" if rule.clear_hold_ns else "")
        )
    label = rule.kind if rule.name == rule.kind else f"{rule.kind} '{rule.name}'"
    scope = f" at {'; '.join(where)}" if where else ""
    return f"{label}: {what}{scope}: {', '.join(parts) if parts else 'each reading against the limit'}"


def explain(ts: ThresholdSet, station: str, default_class: str = "III") -> str:
    """The text of `show` for a loaded set."""
    st = ts.stations.get(station)
    out: list[str] = []
    if st is None:
        out.append(f"station {station}: not in any station file; the defaults below apply")
    else:
        names = " / ".join(x for x in (st.name, st.name_zh) if x)
        place = f", {st.river} km {fmt_number(st.river_km)}" if st.river and st.river_km is not None else ""
        out.append(f"station {station}: {names}{place}    ({st.origin})")
        facts = [f"water body {st.water_body}"]
        if st.intake:
            facts.append("drinking-water intake")
        if st.timezone:
            facts.append(f"time zone {st.timezone}")
        if st.coordinates:
            facts.append(f"at {st.coordinates[0]:.5f}, {st.coordinates[1]:.5f}")
        out.append("  " + ", ".join(facts))
    klass, where = ts.class_of(station, default_class)
    out.append(f"  class {klass}    from {where}")
    stds = ts.standards_for(station)
    if st is not None and st.standards:
        out.append(f"  standards {', '.join(s.id for s in stds)}    from {st.lines.get('standard', st.origin)}")
    else:
        out.append(
            f"  standards {', '.join(s.id for s in stds) or '(none loaded)'}    (all loaded, earlier files first)"
        )
    out.append("")
    out.append("limits (in each parameter's standard unit)")
    params = list(dict.fromkeys([p for s in stds for p in s.items] + (list(st.overrides) if st else [])))
    limited: list[str] = []
    for pid in params:
        spec = ts.spec(station, pid, default_class)
        if spec is None:
            continue
        limited.append(pid)
        for lim in spec.limits:
            out.append(f"  {pid:<8} {lim.describe():<58} {lim.origin}")
        if spec.depends_on:
            assumed = (
                f"; assumed {fmt_number(spec.assumed)} until measured"
                if spec.assumed is not None
                else f"; band {spec.default + 1} until {spec.depends_on} is measured"
            )
            out.append(f"  {'':<8} (band chosen by the latest {spec.depends_on} reading at the station{assumed})")
        if spec.mean is not None:
            for lim in spec.mean.limits:
                out.append(
                    f"  {pid:<8} rolling {format_duration(spec.mean_window_ns)} mean ≤ {lim.describe():<40} "
                    f"{lim.origin}"
                )
    if not limited:
        out.append("  (no evaluable limit)")
    out.append("")
    out.append("rules")
    limit_rules = [r for r in ts.rules if r.kind in LIMIT_RULES and _rule_at(r, station, st)]
    others = [r for r in ts.rules if r.kind not in LIMIT_RULES and _rule_at(r, station, st)]
    if not any(not r.parameters for r in limit_rules):
        covered = {p for r in limit_rules for p in r.parameters}
        rest = [p for p in limited if p not in covered]
        if rest and not covered:
            out.append("  instantaneous: every parameter with a limit: each reading against the limit    (built in)")
        elif rest:
            out.append(f"  instantaneous: {', '.join(rest)}: each reading against the limit    (built in)")
    for r in [*limit_rules, *others]:
        out.append(f"  {describe_rule(r)}    {r.origin}")
    for pid in limited:
        spec = ts.spec(station, pid, default_class)
        if spec is not None and spec.mean is not None:
            out.append(
                f"  mean (from the standard): {pid}: rolling {format_duration(spec.mean_window_ns)} mean "
                f"against its mean limit    {spec.origin}"
            )
    if st is not None and st.expect:
        for pid, every in st.expect.items():
            out.append(
                f"  no_data (expected): {pid} every {format_duration(every)}    "
                f"{st.lines.get(f'expect.{pid}', st.origin)}"
            )
    out.append("")
    out.append("screening")
    sc = ts.screen
    out.append(
        f"  ignored flags: {', '.join(sorted(sc.ignore_flags))}    {sc.origins.get('ignore_flags', '(built in)')}"
    )
    out.append(
        f"  suspect flags: {', '.join(sorted(sc.suspect_flags))}    {sc.origins.get('suspect_flags', '(built in)')}"
    )
    out.append(
        f"  below detection limit flags: {', '.join(sorted(sc.dl_flags))}    "
        f"{sc.origins.get('below_dl_flags', '(built in)')}"
    )
    for pid in dict.fromkeys([*limited, *ts.instruments, *(st.instruments if st else {})]):
        settings = merged_settings(ts.screen_layers(station, pid))  # as the files set them: no defaults
        if settings:
            shown = ", ".join(f"{k} {v if not isinstance(v, float) else fmt_number(v)}" for k, v in settings.items())
            origin = (st.lines.get(f"instruments.{pid}") if st else None) or (
                "[instruments] "
                if pid in ts.instruments
                else "[screen]"
                if ts.screen.origins
                else "thresholds/instruments.toml (shipped)"
            )
            out.append(f"  {pid}: {shown}    {origin}")
    out.append("")
    out.append("alerts")
    al = ts.alerts
    out.append(
        "  severity by ratio: "
        + ", ".join(f"{n} ≥ {fmt_number(t)}" for t, n in al.tiers)
        + f"    {al.origins.get('severity', '(built in)')}"
    )
    for (scope, sid), bounds in sorted(al.tiers_by.items()):
        out.append(
            f"  severity for {scope} {sid}: "
            + ", ".join(f"{n} ≥ {fmt_number(t)}" for t, (_, n) in zip(bounds, al.tiers, strict=True))
            + f"    {al.origins.get('severity_by', '(built in)')}"
        )
    confirm = "at the first reading over the limit" if al.confirm == 1 else f"after {al.confirm} readings in a row"
    out.append(f"  confirmed {confirm} (before that: unconfirmed)    {al.origins.get('confirm', '(built in)')}")
    if al.clear_hold_ns == CLEAR_HOLD_CYCLE:
        hold = " held for one analyser cycle"
    else:
        hold = f" held for {format_duration(al.clear_hold_ns)}" if al.clear_hold_ns else ""
    calm = "1 reading" if al.clear_readings == 1 else f"{al.clear_readings} readings in a row"
    out.append(
        f"  clears after {calm} below {fmt_number(al.clear_ratio)} × limit{hold}"
        + f"    {al.origins.get('clear_ratio', al.origins.get('clear_hold', '(built in)'))}"
    )
    out.extend(_trend_lines(al))
    return "\n".join(out) + "\n"


def _trend_lines(al: AlertPolicy) -> list[str]:
    """The trend keys in words, so an engineer sees what a near-limit notice and the clear band mean."""
    o = al.origins
    near = (
        f"  first step under the limit: within {fmt_number(al.near_band)} noise sigmas of it and rising by"
        f" {fmt_number(al.near_rise)} standard errors over {al.trend_readings} readings"
        if al.near_band > 0
        else "  first step under the limit: off (near_band = 0)"
    )
    clear = (
        f"  not calm within {fmt_number(al.clear_band)} noise sigmas under the limit (at most half of it)"
        if al.clear_band > 0
        else "  clear band: off (clear_band = 0)"
    )
    sudden = (
        f"  a first exceedance {fmt_number(al.sudden_band)} sigmas above the series' level needs one more reading"
        if al.sudden_band > 0
        else "  sudden jumps: confirmed like any exceedance (sudden_band = 0)"
    )
    return [
        f"{near}    {o.get('near_band', '(built in)')}",
        f"{clear}    {o.get('clear_band', '(built in)')}",
        f"{sudden}    {o.get('sudden_band', '(built in)')}",
    ]


def _rule_at(rule: RuleSpec, station: str, st: Station | None) -> bool:
    if rule.stations and station not in rule.stations:
        return False
    return rule.intake is None or (st is not None and st.intake) == rule.intake
