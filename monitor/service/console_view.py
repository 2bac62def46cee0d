"""What the console shows, as one JSON document: rivers with their stations coloured by state, the alerts
open now and recently ended, the open incidents, the silences, and who did what to each alert.

Built from the alert ledger (what `riverwatch alerts` lists) and the thresholds in force, so the page and
the command line never disagree. A station's state is the worst of its open alerts: a confirmed water
alert ("alert") before an instrument's fault ("sensor": its readings are not to be trusted either way)
before an unconfirmed first notice ("notice").
"""

from __future__ import annotations

from typing import Any

from monitor.alerts.ledger import AlertRecord, Ledger
from monitor.thresholds import ThresholdSet

HISTORY = 50  # ended alerts shown, newest first
AUDIT = 40  # people's actions shown, newest first
STATE_ORDER = ("ok", "notice", "sensor", "alert")


def station_state(alerts: list[AlertRecord]) -> str:
    """The worst state among a station's open alerts."""
    worst = "ok"
    for a in alerts:
        if a.category == "sensor":
            s = "sensor"
        elif a.state in ("firing", "escalated"):
            s = "alert"
        else:
            s = "notice"
        if STATE_ORDER.index(s) > STATE_ORDER.index(worst):
            worst = s
    return worst


def console_state(ts: ThresholdSet, ledger: Ledger, now_ns: int) -> dict[str, Any]:
    records = ledger.alerts()
    active = [a for a in records if a.state not in ("resolved", "withdrawn")]
    ended = sorted((a for a in records if a not in active), key=lambda a: a.updated_ns, reverse=True)[:HISTORY]
    silences = ledger.silences()
    audit = ledger.audit_log()
    actions: dict[str, list[dict[str, Any]]] = {}
    for at, actor, action, subject, detail in audit:
        if subject.startswith("alert "):
            actions.setdefault(subject[6:], []).append({"at_ns": at, "by": actor, "action": action, "detail": detail})
    by_station: dict[str, list[AlertRecord]] = {}
    for a in active:
        by_station.setdefault(a.station, []).append(a)
    silenced = {s.station for s in silences if s.starts_ns <= now_ns}

    def alert(a: AlertRecord) -> dict[str, Any]:
        st = ts.stations.get(a.station)
        p = ts.catalogue.get(a.parameter)
        return {
            "id": a.alert_id,
            "station": a.station,
            "station_name": st.name if st and st.name else a.station,
            "station_name_zh": st.name_zh if st else "",
            "parameter": a.parameter,
            "parameter_name": p.name if p else a.parameter,
            "parameter_name_zh": p.name_zh if p else "",
            "unit": p.unit if p else "",
            "rule": a.rule,
            "state": a.state,
            "category": a.category,
            "severity": a.severity,
            "started_ns": a.started_ns,
            "updated_ns": a.updated_ns,
            "resolved_ns": a.resolved_ns,
            "value": a.value,
            "limit": a.limit_value,
            "peak_value": a.peak_value,
            "peak_ratio": a.peak_ratio,
            "incident": a.incident_id,
            "acked_by": a.acked_by,
            "acked_ns": a.acked_ns,
            "flapping": a.flapping,
            "silenced": ledger.silence_for(a.station, a.parameter, now_ns) is not None,
            "actions": actions.get(a.alert_id, []),
        }

    rivers: dict[str, dict[str, Any]] = {}
    for sid, st in sorted(ts.stations.items(), key=lambda kv: (kv[1].river, kv[1].river_km or 0.0, kv[0])):
        desc = ts.rivers.get(st.river)
        r = rivers.setdefault(
            st.river,
            {
                "name": st.river or "-",
                "name_zh": desc.name_zh if desc else "",
                "dams": [{"km": d.km, "name": d.name} for d in desc.dams] if desc else [],
                "tributaries": [{"km": t.km, "name": t.name, "name_zh": t.name_zh} for t in desc.tributaries]
                if desc
                else [],
                "stations": [],
            },
        )
        r["stations"].append(
            {
                "id": sid,
                "name": st.name or sid,
                "name_zh": st.name_zh,
                "km": st.river_km,
                "intake": st.intake,
                "state": station_state(by_station.get(sid, [])),
                "silenced": sid in silenced,
            }
        )
    # Alerts of stations no threshold file declares (every station admitted) still show, apart.
    loose = sorted(set(by_station) - set(ts.stations))
    if loose:
        rivers.setdefault("", {"name": "-", "name_zh": "", "dams": [], "tributaries": [], "stations": []})
        rivers[""]["stations"] += [
            {"id": s, "name": s, "name_zh": "", "km": None, "intake": False, "state": station_state(by_station[s])}
            for s in loose
        ]
    incidents = [
        {
            "id": inc.id,
            "river": inc.river,
            "parameter": inc.parameter,
            "parameter_name": _pname(ts, inc.parameter),
            "parameter_name_zh": _pname(ts, inc.parameter, zh=True),
            "opened_ns": inc.opened_ns,
            "hits": [{"station": h.station, "km": h.river_km, "first_ns": h.first_ns} for h in inc.hits],
            "alerts": sorted(inc.open_alerts),
        }
        for inc in ledger.open_incidents()
    ]
    return {
        "now_ns": now_ns,
        "rivers": list(rivers.values()),
        "water": [alert(a) for a in active if a.category != "sensor"],
        "sensor": [alert(a) for a in active if a.category == "sensor"],
        "history": [alert(a) for a in ended],
        "incidents": incidents,
        "silences": [
            {
                "id": s.id,
                "station": s.station,
                "parameter": s.parameter,
                "starts_ns": s.starts_ns,
                "until_ns": s.until_ns,
                "reason": s.reason,
                "by": s.created_by,
            }
            for s in silences
        ],
        "audit": [
            {"at_ns": at, "by": actor, "action": action, "subject": subject, "detail": detail}
            for at, actor, action, subject, detail in reversed([x for x in audit if x[1] != "riverwatch"][-AUDIT:])
        ],
    }


def _pname(ts: ThresholdSet, pid: str, zh: bool = False) -> str:
    p = ts.catalogue.get(pid)
    return "" if p is None else (p.name_zh if zh else p.name)
