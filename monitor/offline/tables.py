"""The tables of backtest and report, as aligned text and (monitor.offline.htmlfile) HTML, and how times,
durations and latencies are written in them.

Times are shown in one fixed offset per run (--utc-offset, else this machine's, as notifications do), and
each table's title or note says what its numbers mean, so a table pasted into a mail stands on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from monitor.domain.params import PARAMETERS
from monitor.notify.render import parse_offset
from monitor.offline.dataset import NS_PER_HOUR, NS_PER_MIN, Dataset, Exceedance
from monitor.offline.replay import Run
from monitor.offline.scoring import AlertSpan, Score
from monitor.offline.tallies import SeriesStats
from monitor.offline.variants import Variant


@dataclass
class Table:
    """A titled table that prints as aligned text and renders as HTML (monitor.offline.htmlfile)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    right: set[int] = field(default_factory=set)  # right-aligned column indices

    def text(self) -> str:
        widths = [max([len(h)] + [len(r[i]) for r in self.rows]) for i, h in enumerate(self.header)]

        def fmt(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in self.right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [self.title, fmt(self.header)] + [fmt(r) for r in self.rows]
        if not self.rows:
            lines.append("  (none)")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def tz_of(offset: str | None) -> timezone:
    """`+08:00` -> a fixed offset; None -> this machine's local offset (as notifications do)."""
    tz = parse_offset(offset)
    if isinstance(tz, timezone):
        return tz
    local = datetime.now().astimezone().tzinfo
    return local if isinstance(local, timezone) else UTC


def when(ts_ns: int | None, tz: timezone) -> str:
    if ts_ns is None:
        return "-"
    return datetime.fromtimestamp(ts_ns / 1e9, tz).strftime("%Y-%m-%d %H:%M")


def offset_label(tz: timezone) -> str:
    off = tz.utcoffset(None) or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def duration(ns: int) -> str:
    """A human duration: "40 min", "2 h 05 min", "3 d 4 h"."""
    minutes = round(abs(ns) / NS_PER_MIN)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h" + (f" {minutes % 60:02d} min" if minutes % 60 else "")
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def cycles_text(cycles: float | None) -> str:
    return "-" if cycles is None else f"{cycles:+.2f}"


def latency_text(ns: int | None) -> str:
    if ns is None:
        return "missed"
    return ("-" if ns < 0 else "+") + duration(ns)


def station_label(station: str) -> str:
    """How the summary names a station: its id, capitalised when it is a plain word ("Lalang")."""
    return station.capitalize() if re.fullmatch(r"[a-z][a-z-]*", station) else station


def unit_suffix(parameter: str) -> str:
    p = PARAMETERS.get(parameter)
    return f" {p.unit}" if p is not None and p.unit else ""


def _rule_label(a: AlertSpan) -> str:
    key = a.alert_id.split("/")[2] if a.alert_id.count("/") == 3 else ""
    return f"{a.rule} ({key})" if key and key != a.rule else a.rule


def variant_tables(sc: Score, v: Variant, ds: Dataset, default_class: str, tz: timezone) -> list[Table]:
    """A variant's alerts by severity, false alerts and missed exceedances, and detection latency per station."""
    return score_tables(
        sc, f"variant {v.name!r}: {v.describe()}", [name for _, name in v.thresholds.alerts.tiers], ds, tz
    )


def score_tables(sc: Score, title: str, order: Sequence[str], ds: Dataset, tz: timezone) -> list[Table]:
    """The tables of one set of scored alerts (a variant's, or the ledger's for a report)."""
    sev = sc.by_severity()
    order = [*order, *sorted(s for s in sev if s not in order)]
    ref = "the ground truth" if sc.reference == "truth" else "the measured readings (no ground truth)"
    tol = duration(sc.tolerance_ns)
    summary = Table(
        title,
        [
            "water alerts",
            *order,
            "escalations",
            "sensor alerts",
            "notices",
            "withdrawn",
            "false alerts",
            "missed exceedances",
        ],
        [
            [
                str(len(sc.water)),
                *(str(sev.get(s, 0)) for s in order),
                str(sum(a.escalations for a in sc.water)),
                str(len(sc.sensor)),
                str(len(sc.notices)),
                str(len(sc.withdrawn)),
                str(len(sc.false_alerts)),
                f"{len(sc.missed)} of {len(sc.detections)}",
            ]
        ],
        note=(
            "water alerts: confirmed alerts about the river, by the highest severity each reached; sensor alerts: "
            "about the instrument (stuck, gap, out of range, below the detection limit, no data), never counted "
            "as false or true; notices: unconfirmed first notices (withdrawn: the next reading did not confirm "
            f"them); false = open only outside every exceedance of the station's class limit in {ref}, widened "
            f"by {tol} on both sides; missed = no confirmed alert open within that window"
        ),
        right=set(range(7 + len(order))),
    )
    rows = []
    for (station, parameter), d in sorted(sc.first_latency().items(), key=lambda kv: kv[1].exceedance.start_ns):
        e = d.exceedance
        a = d.first_alert
        n = d.first_notice or a
        rows.append(
            [
                station,
                parameter,
                e.klass,
                when(e.start_ns, tz),
                when(n.notice_ns if n else None, tz),
                latency_text(d.notice_latency_ns),
                cycles_text(d.cycles(d.notice_latency_ns)),
                when((a.confirmed_ns or a.started_ns) if a else None, tz),
                latency_text(d.latency_ns),
                cycles_text(d.cycles(d.latency_ns)),
                duration(d.cycle_ns) if d.cycle_ns else "-",
                _rule_label(a) if a else "-",
                a.severity if a else "-",
            ]
        )
    kind = "true" if sc.reference == "truth" else "measured"
    lat = Table(
        f"detection latency per station (first notice and confirmed alert − first {kind} crossing of the "
        f"station's class limit; times {offset_label(tz)})",
        [
            "station",
            "param",
            "class",
            "crossing",
            "first notice",
            "latency",
            "cycles",
            "alert",
            "latency",
            "cycles",
            "cycle",
            "rule",
            "severity",
        ],
        rows,
        note="cycles: the latency in analyser cycles of the series (the median time between its readings); "
        "negative latency: before the crossing (an early warning)",
        right={5, 6, 8, 9, 10},
    )
    out = [summary, lat] if sc.detections else [summary]
    if sc.false_alerts:
        out.append(
            Table(
                f"false alerts of {sc.run_name!r}",
                ["alert", "rule", "fired", "resolved", "severity", "peak"],
                [
                    [
                        a.alert_id,
                        _rule_label(a),
                        when(a.started_ns, tz),
                        when(a.resolved_ns, tz),
                        a.severity,
                        f"{a.peak_value:.4g}{unit_suffix(a.parameter)}",
                    ]
                    for a in sc.false_alerts[:200]
                ],
                note=f"{len(sc.false_alerts) - 200} more in the alerts file" if len(sc.false_alerts) > 200 else "",
            )
        )
    if sc.missed:
        out.append(
            Table(
                f"missed exceedances of {sc.run_name!r}",
                ["station", "param", "class", "from", "back", "lasted"],
                [
                    [
                        d.exceedance.station,
                        d.exceedance.parameter,
                        d.exceedance.klass,
                        when(d.exceedance.start_ns, tz),
                        when(d.exceedance.back_ns, tz),
                        duration(d.exceedance.end(ds.end_ns) - d.exceedance.start_ns),
                    ]
                    for d in sc.missed[:200]
                ],
            )
        )
    return out


def screened_table(runs: Sequence[Run]) -> Table | None:
    reasons = sorted({r for run in runs for r in run.screened})
    if not reasons:
        return None
    return Table(
        "readings the screens set aside (not alarmed on)",
        ["variant", *reasons],
        [[run.variant.name, *(str(run.screened.get(r, 0)) for r in reasons)] for run in runs],
        right=set(range(1, len(reasons) + 1)),
    )


def comparison_table(scores: Sequence[Score]) -> Table:
    """One row per variant: the trade-off between false alerts, notices and latency an engineer picks from."""
    rows = []
    for sc in scores:
        first = list(sc.first_latency().values())
        lats = [d.latency_ns for d in first if d.latency_ns is not None]
        worst_notice = [c for d in first if (c := d.cycles(d.notice_latency_ns)) is not None]
        worst_alert = [c for d in first if (c := d.cycles(d.latency_ns)) is not None]
        rows.append(
            [
                sc.run_name,
                str(len(sc.water)),
                str(len(sc.false_alerts)),
                str(len(sc.notices)),
                str(len(sc.withdrawn)),
                str(len(sc.sensor)),
                f"{len(sc.missed)}/{len(sc.detections)}",
                latency_text(int(np.median(lats))) if lats else "-",
                latency_text(max(lats)) if lats else "-",
                cycles_text(max(worst_notice)) if worst_notice else "-",
                cycles_text(max(worst_alert)) if worst_alert else "-",
            ]
        )
    return Table(
        "variants side by side (one row per variant)",
        [
            "variant",
            "alerts",
            "false",
            "notices",
            "withdrawn",
            "sensor",
            "missed",
            "median latency",
            "worst latency",
            "worst notice (cycles)",
            "worst alert (cycles)",
        ],
        rows,
        note="alerts: confirmed water alerts; latency: confirmed alert − true crossing, per station's first crossing",
        right=set(range(1, 11)),
    )


def time_above_table(stats: SeriesStats, truth: list[Exceedance] | None, end_ns: int) -> Table:
    """Hours each series spent above each class limit: measured from the readings, and true where known."""
    true_h: dict[tuple[str, str, str], float] = {}
    for e in truth or []:
        key = (e.station, e.parameter, e.klass)
        true_h[key] = true_h.get(key, 0.0) + (e.end(end_ns) - e.start_ns) / NS_PER_HOUR
    rows = []
    for si, st in enumerate(stats.ds.stations):
        for pi, pa in enumerate(stats.ds.parameters):
            s = si * stats.P + pi
            if not stats.has[s].any():
                continue
            cells = []
            for k, klass in enumerate(stats.classes):
                if not stats.has[s, k]:
                    cells.append("-")
                    continue
                h = stats.above_s[s, k] / 3600
                cell = f"{h:.1f}"
                if truth is not None:
                    cell += f" ({true_h.get((st, pa, klass), 0.0):.1f})"
                cells.append(cell)
            if any(c not in ("-", "0.0", "0.0 (0.0)") for c in cells):
                rows.append([st, pa, *cells])
    note = (
        f"each valid reading stands until the next one of its series (at most {duration(stats.hold_ns)}); "
        "flagged instrument checks are left out"
    )
    if truth is not None:
        note += "; in brackets: the true hours from the ground truth"
    return Table(
        "hours above each class limit (series never above any are left out)",
        ["station", "param", *stats.classes],
        rows,
        note=note,
        right=set(range(2, 2 + len(stats.classes))),
    )


def summary_sentence(first: Score, other: Score) -> str:
    """ "3 fewer false alarms on the baseline, Lalang caught 40 minutes later": one variant against the first."""
    parts = []
    df = len(other.false_alerts) - len(first.false_alerts)
    parts.append(
        f"{abs(df)} {'fewer' if df < 0 else 'more'} false alarm{'s' if abs(df) != 1 else ''} "
        f"({len(other.false_alerts)} against {len(first.false_alerts)})"
        if df
        else f"as many false alarms ({len(first.false_alerts)})"
    )
    dm = len(other.missed) - len(first.missed)
    if dm:
        parts.append(f"{abs(dm)} {'fewer' if dm < 0 else 'more'} missed exceedance{'s' if abs(dm) != 1 else ''}")
    base, mine = first.first_latency(), other.first_latency()
    params = {k[1] for k in base} | {k[1] for k in mine}
    moves, same = [], 0
    for key in sorted(set(base) & set(mine), key=lambda k: base[k].exceedance.start_ns):
        name = station_label(key[0]) + (f" {key[1]}" if len(params) > 1 else "")
        a, b = base[key].latency_ns, mine[key].latency_ns
        if a is None and b is None:
            continue
        if a is None:
            moves.append(f"{name} now caught")
        elif b is None:
            moves.append(f"{name} now missed")
        elif abs(b - a) < NS_PER_MIN:
            same += 1
        else:
            moves.append(f"{name} caught {duration(b - a)} {'later' if b > a else 'earlier'}")
    if moves:
        parts.append(
            ", ".join(moves) + (f"; {same} other station{'s' if same != 1 else ''} at the same time" if same else "")
        )
    elif same:
        parts.append("every station caught at the same time")
    return f"{other.run_name} against {first.run_name}: " + ", ".join(parts) + "."
