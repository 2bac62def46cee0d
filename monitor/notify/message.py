"""A notification as the outbox keeps it, and the key that makes each transition go out once."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent
from monitor.thresholds import Station


@dataclass(frozen=True, slots=True)
class Message:
    key: str  # alert id + state: the same transition is queued once, however often it is evaluated
    title: str
    body: str
    notify_type: str  # apprise's info / success / warning / failure
    # Grouping (monitor.notify.group): the incident id or "station:<id>" (None: always sent alone), the
    # transition's line in a grouped message and the incident's table as it stood, both rendered when queued.
    group: str | None = None
    change: str = ""
    context: str = ""
    urgent: bool = False  # critical, or at an intake: never waits longer than group_wait
    language: str = "en"  # of the texts: a grouped message is worded in it
    facts: str = ""  # the transition as JSON (event_facts), for targets that take fields, not text (Alertmanager)


@dataclass(frozen=True, slots=True)
class Timing:
    """A target's grouping times (s): 0 sends each transition as soon as it is queued."""

    group_wait_s: float = 0.0
    group_interval_s: float = 0.0


def message_key(e: AlertEvent, repeat: bool = False) -> str:
    """(alert id, state, reading time): each state of an alert is queued once; a repeat is a new message."""
    return f"{e.alert_id}#{e.state}#{e.ts_ns}" + (f"#repeat{time.time_ns()}" if repeat else "")


def group_key(e: AlertEvent, incident_id: str | None) -> str:
    """Transitions of one incident go together; outside incidents, those of one station."""
    return incident_id if incident_id else f"station:{e.station}"


def event_facts(e: AlertEvent, stations: Mapping[str, Station]) -> str:
    """What a structured target needs of a transition, as it stood when queued (JSON: the outbox keeps text)."""
    st = stations.get(e.station)
    lim = e.limit
    standard = f"{lim.standard} Class {lim.klass}" if lim.klass else lim.standard
    return json.dumps(
        {
            "alert_id": e.alert_id,
            "state": e.state,
            "station": e.station,
            "station_name": st.name if st is not None else e.station,
            "river": st.river if st is not None else "",
            "intake": bool(st is not None and st.intake),
            "parameter": e.parameter,
            "category": e.category,
            "severity": e.severity,
            "rule": e.rule,
            "value": e.value,
            "limit": lim.value,
            "unit": lim.unit,
            "standard": standard,
            "ratio": e.ratio,
            "started_ns": e.started_ns,
            "ts_ns": e.ts_ns,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
