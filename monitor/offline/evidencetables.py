"""The backtest's tables of what a bureau must trust (monitor.offline.evidence): notices per station and week,
resolves inside a plume, the fault behind each false alarm, and the blinding faults with their sensor alerts.

Each table says in its note what it counts, so that a table pasted into a mail stands on its own.
"""

from __future__ import annotations

from collections import Counter
from datetime import timezone

from monitor.offline.evidence import ANNOUNCE_CYCLES, Blinding, Evidence
from monitor.offline.tables import Table, cycles_text, duration, offset_label, when
from simulators.faults import BLINDING, Fault
from simulators.sensors import ANALYSERS

_MAX_ROWS = 100


def evidence_tables(ev: Evidence, name: str, tz: timezone, faults_known: bool) -> list[Table]:
    """The tables of one variant's evidence; the fault tables only when the data's faults are known."""
    out = [notices_table(ev, name), plume_table(ev, name, tz)]
    if faults_known:
        out += [causes_table(ev, name, tz), *blinding_tables(ev, name, tz)]
    return out


def notices_table(ev: Evidence, name: str) -> Table:
    sc = ev.score
    by_station = Counter(a.station for a in sc.notices)
    withdrawn = Counter(a.station for a in sc.withdrawn)
    confirmed = Counter(a.station for a in sc.notices if a.confirmed)
    rows = [
        [
            st,
            str(by_station[st]),
            str(withdrawn[st]),
            str(confirmed[st]),
            str(max(weeks, default=0)),
            " ".join(str(w) for w in weeks),
        ]
        for st, weeks in ev.notices_per_week.items()
    ]
    return Table(
        f"unconfirmed notices of {name!r} per station (water; most in 7 days: {ev.max_notices_per_week})",
        ["station", "notices", "withdrawn", "confirmed", "most in 7 days", "per 7 days from the start"],
        rows,
        note="a notice is a water alert's first message before it is confirmed; withdrawn: the next reading(s) "
        "did not confirm it; confirmed: it became the alert",
        right={1, 2, 3, 4},
    )


def plume_table(ev: Evidence, name: str, tz: timezone) -> Table:
    rows = [
        [
            a.alert_id,
            when(d.exceedance.start_ns, tz),
            when(a.resolved_ns, tz),
            when(d.exceedance.back_ns, tz),
        ]
        for a, d in ev.plume_resolves[:_MAX_ROWS]
    ]
    return Table(
        f"resolves inside a plume of {name!r}: {len(ev.plume_resolves)}",
        ["alert", "true crossing", "resolved", "truly back"],
        rows,
        note="a confirmed water alert resolved while the truth still violated the station's class limit "
        f"(times {offset_label(tz)})",
    )


def _fault_text(f: Fault | None) -> str:
    if f is None:
        return "none (the river's own noise near the limit)"
    if f.kind == "calibration":
        return f"calibration check ({'flagged' if f.flagged else 'unflagged'})"
    if f.kind == "drift":
        relative = f.parameter not in ANALYSERS or ANALYSERS[f.parameter].relative_drift
        return f"drift ({f.size:+.0%})" if relative else f"drift ({f.size:+.2f})"
    if f.kind == "spike":
        relative = f.parameter not in ANALYSERS or ANALYSERS[f.parameter].relative_drift
        return f"spike (x{f.size:.3g})" if relative else f"spike ({f.size:+.2f})"
    return f.kind.replace("_", " ")


def causes_table(ev: Evidence, name: str, tz: timezone) -> Table:
    kinds = Counter((f.kind if f else "none") for a, f in ev.causes if a.confirmed)
    rows = [
        [
            a.alert_id,
            "alert" if a.confirmed else "notice",
            when(a.notice_ns, tz),
            _fault_text(f),
            when(f.start_ns, tz) if f else "-",
        ]
        for a, f in ev.causes[:_MAX_ROWS]
    ]
    summary = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
    return Table(
        f"what caused each false alert and false notice of {name!r} (false alerts by cause: {summary})",
        ["alert", "was", "first message", "injected fault of that series", "fault from"],
        rows,
        note=f"the fault whose time (and {ANNOUNCE_CYCLES} cycles after it) holds the first message"
        + (f"; {len(ev.causes) - _MAX_ROWS} more not shown" if len(ev.causes) > _MAX_ROWS else ""),
    )


def blinding_tables(ev: Evidence, name: str, tz: timezone) -> list[Table]:
    per_kind = []
    for kind in sorted(BLINDING):
        mine = [b for b in ev.blinding if b.fault.kind == kind]
        due = [b for b in mine if not b.short and not b.hidden]
        announced = [b for b in due if b.alert is not None]
        delays = [b.delay_ns / b.cycle_ns for b in announced if b.delay_ns is not None and b.cycle_ns]
        hidden = [b for b in mine if not b.short and b.hidden]
        later = [b.later_ns / b.cycle_ns for b in hidden if b.later_ns is not None and b.cycle_ns]
        per_kind.append(
            [
                kind.replace("_", " "),
                str(len(mine)),
                str(len(mine) - len(due) - len(hidden)),
                f"{len(announced)}/{len(due)}",
                cycles_text(max(delays)) if delays else "-",
                f"{len(later)}/{len(hidden)}",
                cycles_text(sorted(later)[len(later) // 2]) if later else "-",
            ]
        )
    summary = Table(
        f"blinding faults of {name!r} announced by a sensor alert within {ANNOUNCE_CYCLES} cycles: "
        f"{len(ev.blinding_announced)}/{len(ev.blinding_due)}",
        ["fault", "injected", "short", "announced", "slowest (cycles)", "hidden: announced", "median (cycles)"],
        per_kind,
        note=f"short: over within {ANNOUNCE_CYCLES} cycles (the next reading shows the river again), not counted; "
        "announced: a sensor alert of that station and parameter (or station-wide) open before the deadline; "
        f"hidden: the series' clean readings make the same pattern within {ANNOUNCE_CYCLES} cycles more than once "
        "a year, so no screen can tell it in time without a false sensor alert a year: announced before the fault "
        "ended, and the median delay",
        right={1, 2, 3, 4, 5, 6},
    )
    missing = [b for b in ev.blinding_due if b.alert is None]
    rows = [_blind_row(b, tz) for b in missing[:_MAX_ROWS]]
    silent = Table(
        f"blinding faults of {name!r} not announced in time: {len(missing)}",
        ["fault", "station", "param", "from", "lasted", "cycle"],
        rows,
        note=f"times {offset_label(tz)}" + (f"; {len(missing) - _MAX_ROWS} more" if len(missing) > _MAX_ROWS else ""),
    )
    return [summary, silent]


def _blind_row(b: Blinding, tz: timezone) -> list[str]:
    f = b.fault
    return [
        f.kind.replace("_", " "),
        f.station,
        f.parameter,
        when(f.start_ns, tz),
        duration(f.end_ns - f.start_ns),
        duration(b.cycle_ns) if b.cycle_ns else "-",
    ]
