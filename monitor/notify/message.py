"""A notification as the outbox keeps it, and the key that makes each transition go out once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent


@dataclass(frozen=True, slots=True)
class Message:
    key: str  # alert id + state: the same transition is queued once, however often it is evaluated
    title: str
    body: str
    notify_type: str  # apprise's info / success / warning / failure


def message_key(e: AlertEvent, repeat: bool = False) -> str:
    """(alert id, state, reading time): each state of an alert is queued once; a repeat is a new message."""
    return f"{e.alert_id}#{e.state}#{e.ts_ns}" + (f"#repeat{time.time_ns()}" if repeat else "")
