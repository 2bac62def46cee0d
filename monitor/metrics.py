"""Counters for /metrics and the component health behind /healthz.

A registry per service instance (not prometheus_client's global one) so tests and the demo can run
several services in one process.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from monitor.domain.rejection import REASONS

# riverwatch_hj212_packets_total{result}: accepted (readings journaled, 9014 sent when asked); bad_crc (QnRtn 9),
# unknown_mn (4), bad_password (3), bad_frame (not a frame: garbage, a length over max_frame_bytes, no CR LF),
# bad_packet (a frame whose segment does not parse, or a version not taken), rejected (no reading of it kept),
# not_journaled (the journal refused the commit: not answered, the logger re-sends), other (a command that
# carries no readings).
HJ212_RESULTS = (
    "accepted",
    "bad_crc",
    "unknown_mn",
    "bad_password",
    "bad_frame",
    "bad_packet",
    "rejected",
    "not_journaled",
    "other",
)


def package_version() -> str:
    """The installed distribution's version; "unknown" when run from a tree that was never installed."""
    try:
        return metadata.version("riverwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


class Health:
    """Named checks. `fail` makes the service unhealthy (503): it cannot accept data safely.
    `degrade` is reported but stays 200: data is still accepted and journaled (e.g. the database is down).
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[str, str, float]] = {}

    def ok(self, name: str) -> None:
        self._state[name] = ("ok", "", time.time())

    def degrade(self, name: str, why: str) -> None:
        if self._state.get(name, ("",))[0] != "degraded":
            self._state[name] = ("degraded", why, time.time())

    def fail(self, name: str, why: str) -> None:
        self._state[name] = ("unhealthy", why, time.time())

    def status(self) -> str:
        states = {s for s, _, _ in self._state.values()}
        return "unhealthy" if "unhealthy" in states else "degraded" if "degraded" in states else "ok"

    def report(self) -> dict[str, object]:
        return {
            "status": self.status(),
            "checks": {k: {"status": s, "detail": d, "since": t} for k, (s, d, t) in sorted(self._state.items())},
        }


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.health = Health()
        self._active_keys: set[tuple[str, str]] = set()
        r = self.registry
        self.messages_received = Counter("riverwatch_messages_received", "MQTT messages received", registry=r)
        self.readings_accepted = Counter("riverwatch_readings_accepted", "Readings accepted and journaled", registry=r)
        self.readings_duplicate = Counter(
            "riverwatch_readings_duplicate", "Readings already journaled (broker redeliveries)", registry=r
        )
        self.readings_rejected = Counter(
            "riverwatch_readings_rejected", "Payloads or records rejected", ["reason"], registry=r
        )
        for reason in REASONS:
            self.readings_rejected.labels(reason)
        self.reading_warnings = Counter(
            "riverwatch_reading_warnings",
            "Readings accepted with something ignored (unknown keys), by why",
            ["why"],
            registry=r,
        )
        self.reading_warnings.labels("unknown_key")
        self.retained_ignored = Counter(
            "riverwatch_retained_ignored",
            "Retained messages acknowledged and dropped ([mqtt].retained = ignore, or one already taken)",
            ["why"],
            registry=r,
        )
        self.ingest_inbox_bytes = Gauge(
            "riverwatch_ingest_inbox_bytes", "Payload bytes received and not yet decoded (bounded)", registry=r
        )
        self.ingest_paused = Counter(
            "riverwatch_ingest_paused", "Times ingest stopped reading the broker to bound its memory", registry=r
        )
        self.readings_written = Counter("riverwatch_readings_written", "Readings confirmed by the database", registry=r)
        self.readings_set_aside = Counter(
            "riverwatch_readings_set_aside", "Readings the database refused (4xx), kept in the journal", registry=r
        )
        self.store_retries = Counter("riverwatch_store_retries", "Failed writes that will be retried", registry=r)
        self.set_aside_pending = Gauge(
            "riverwatch_set_aside_pending",
            "Points set aside now (refused by the database, not yet re-sent)",
            registry=r,
        )
        self.set_aside_resent = Counter(
            "riverwatch_set_aside_resent", "Set-aside points the database took on a later re-send", registry=r
        )
        self.readings_evaluated = Counter("riverwatch_readings_evaluated", "Readings checked by the rules", registry=r)
        self.alerts = Counter("riverwatch_alerts", "Alert transitions", ["state"], registry=r)
        self.alert_transitions = Counter(
            "riverwatch_alert_transitions",
            "Alert transitions by category (water: about the river; sensor: about the instrument) and state",
            ["category", "state"],
            registry=r,
        )
        self.notifications_sent = Counter("riverwatch_notifications_sent", "Notifications delivered", registry=r)
        self.notifications_silenced = Counter(
            "riverwatch_notifications_silenced", "Transitions not notified because a silence covered them", registry=r
        )
        self.notifications_failed = Counter(
            "riverwatch_notifications_failed", "Notification attempts that failed (retried)", registry=r
        )
        self.notifications_timed_out = Counter(
            "riverwatch_notifications_timed_out",
            "Notification attempts with no answer within the target's timeouts (retried: the target may get a copy)",
            registry=r,
        )
        self.reloads = Counter("riverwatch_threshold_reloads", "Threshold files reloaded", registry=r)
        self.mqtt_connects = Counter("riverwatch_mqtt_connects", "Successful broker connections", registry=r)
        self.hj212_packets = Counter(
            "riverwatch_hj212_packets",
            "HJ 212 packets received from data loggers, by result (accepted, or why not)",
            ["result"],
            registry=r,
        )
        for result in HJ212_RESULTS:
            self.hj212_packets.labels(result)
        self.journal_backlog = Gauge("riverwatch_journal_backlog", "Readings journaled but not yet stored", registry=r)
        self.notify_backlog = Gauge(
            "riverwatch_notify_backlog", "Notifications not yet delivered to the configured targets", registry=r
        )
        # Rows of targets removed from the config: never sent, so not backlog; until `riverwatch outbox drop`.
        self.notify_orphaned = Gauge(
            "riverwatch_notify_orphaned",
            "Undelivered notifications of targets no longer configured (riverwatch outbox list / drop)",
            registry=r,
        )
        self.delivery_latency = Histogram(
            "riverwatch_delivery_latency_seconds",
            "From queued to delivered, per message",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.active_alerts = Gauge("riverwatch_active_alerts", "Open alerts", ["category", "severity"], registry=r)
        # exposed as riverwatch_build_info{version, python} 1: which build answers, for dashboards and bug reports
        self.build_info = Info("riverwatch_build", "The running riverwatch and its Python", registry=r)
        self.build_info.info({"version": package_version(), "python": platform.python_version()})

    def bind_backlogs(
        self,
        journal_backlog: Callable[[], float],
        notify_backlog: Callable[[], float],
        notify_orphaned: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.journal_backlog.set_function(journal_backlog)
        self.notify_backlog.set_function(notify_backlog)
        self.notify_orphaned.set_function(notify_orphaned)

    def set_active_alerts(self, counts: dict[tuple[str, str], int]) -> None:
        """Replace every (category, severity) count, so a series whose alerts all closed drops to 0, not stale."""
        for key in self._active_keys - counts.keys():
            self.active_alerts.labels(*key).set(0)
        for key, n in counts.items():
            self.active_alerts.labels(*key).set(n)
        self._active_keys |= counts.keys()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
