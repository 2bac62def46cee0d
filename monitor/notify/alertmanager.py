"""Alertmanager as a target: `alertmanager://host:port` posts each transition to its v2 API, so a site that
runs Alertmanager gets its routing, inhibition, silences and HA for riverwatch's alerts.

Alertmanager holds state, not messages: an alert is its label set, alive until its `endsAt`. So, as
Prometheus does, every post of a firing alert carries `endsAt` = now + 4 intervals and the worker posts the
firing ones again every interval (`?interval=`, 60 s by default): if riverwatch stops, Alertmanager resolves
them itself a few minutes later; a resolve or withdrawal posts `endsAt` = the reading that ended it. An
escalation changes the `severity` label, so the alert under its old label set is ended in the same post.

The transitions go through the same outbox as apprise targets (each once, marked delivered on HTTP 200,
retried with backoff, counted in riverwatch_notifications_failed_total); what the target was last told of
each alert is rebuilt from the outbox at start, and only alerts the ledger still has open (`active`) are
posted again, so one whose end was silenced does not stay firing in Alertmanager.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from monitor.config.targets import AlertmanagerURL, parse_alertmanager
from monitor.domain.pacing import nap
from monitor.metrics import Metrics
from monitor.notify.outbox import Outbox, Row
from monitor.notify.routes import target_id

log = logging.getLogger("riverwatch.notify")

ENDS = ("resolved", "withdrawn")
VALID_FOR = 4  # intervals a firing post stays valid in Alertmanager without another post
ALERTNAMES = {"water": "RiverwatchWaterQuality", "sensor": "RiverwatchSensor", "forecast": "RiverwatchForecast"}
AmAlert = dict[str, Any]


def labels(f: dict[str, Any]) -> dict[str, str]:
    """What identifies the alert in Alertmanager (and what its routes and inhibit rules match on)."""
    return {
        "alertname": ALERTNAMES.get(str(f["category"]), "Riverwatch"),
        "station": str(f["station"]),
        "parameter": str(f["parameter"]),
        "severity": str(f["severity"]),
        "river": str(f["river"]),
        "category": str(f["category"]),
        "rule": str(f["rule"]),
    }


def am_alert(f: dict[str, Any], title: str, body: str, am: AlertmanagerURL, now_ns: int) -> AmAlert:
    """One transition as Alertmanager's postable alert."""
    ended = f["state"] in ENDS
    out: AmAlert = {
        "labels": labels(f),
        "annotations": {
            "message": title,
            "description": body,
            "value": f"{f['value']:g}",
            "limit": f"{f['limit']:g}",
            "unit": str(f["unit"]),
            "standard": str(f["standard"]),
            "state": str(f["state"]),
            "alert_id": str(f["alert_id"]),
        },
        "startsAt": rfc3339(int(f["started_ns"])),
        "endsAt": rfc3339(int(f["ts_ns"]) if ended else now_ns + int(VALID_FOR * am.interval_s * 1e9)),
    }
    if am.console:
        # the console page (monitor/service/console.py) that lists the alert: its ?alert= is for the reader
        out["generatorURL"] = f"{am.console}/console/?alert={quote(str(f['alert_id']), safe='')}"
    return out


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ended(a: AmAlert, at_ns: int) -> AmAlert:
    """The same alert, ended at `at_ns` (never before it started)."""
    end = max(at_ns, _ns(a["startsAt"]))
    return {**a, "endsAt": rfc3339(end)}


def _ns(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1e9)


class Firing:
    """What the target was last told of each open alert (alert id -> its posted alert)."""

    def __init__(self) -> None:
        self.alerts: dict[str, AmAlert] = {}

    def batch(
        self, rows: Sequence[Row], am: AlertmanagerURL, now_ns: int
    ) -> tuple[list[AmAlert], dict[str, AmAlert | None]]:
        """The alerts to post for these rows (oldest first) and how the firing set changes once posted."""
        posts: list[AmAlert] = []
        changes: dict[str, AmAlert | None] = {}
        for r in rows:
            if not r.message.facts:  # queued before this target took facts: nothing to post
                continue
            f = json.loads(r.message.facts)
            a = am_alert(f, r.message.title, r.message.body, am, now_ns)
            alert_id = str(f["alert_id"])
            before = changes[alert_id] if alert_id in changes else self.alerts.get(alert_id)
            if before is not None and before["labels"] != a["labels"]:  # escalated: a new label set
                posts.append(ended(before, int(f["ts_ns"])))
            posts.append(a)
            changes[alert_id] = None if f["state"] in ENDS else a
        return posts, changes

    def apply(self, changes: dict[str, AmAlert | None]) -> None:
        for alert_id, a in changes.items():
            if a is None:
                self.alerts.pop(alert_id, None)
            else:
                self.alerts[alert_id] = a

    @classmethod
    def rebuilt(cls, delivered: Sequence[tuple[str, str, str]], am: AlertmanagerURL) -> Firing:
        """From the facts the outbox marked delivered (oldest first): the alerts whose last word was firing."""
        firing = cls()
        now = time.time_ns()
        for title, body, facts in delivered:
            f = json.loads(facts)
            if f["state"] in ENDS:
                firing.alerts.pop(str(f["alert_id"]), None)
            else:
                firing.alerts[str(f["alert_id"])] = am_alert(f, title, body, am, now)
        return firing

    def refreshed(
        self, am: AlertmanagerURL, now_ns: int, still_open: Collection[str] | None
    ) -> tuple[list[AmAlert], list[str]]:
        """The firing alerts posted again with a new endsAt, and those the ledger closed meanwhile, ended now."""
        posts, gone = [], []
        valid = rfc3339(now_ns + int(VALID_FOR * am.interval_s * 1e9))
        for alert_id, a in self.alerts.items():
            if still_open is not None and alert_id not in still_open:
                posts.append(ended(a, now_ns))
                gone.append(alert_id)
            else:
                posts.append({**a, "endsAt": valid})
        return posts, gone


async def post(session: aiohttp.ClientSession, am: AlertmanagerURL, alerts: list[AmAlert]) -> str | None:
    """POST /api/v2/alerts; None on success, else why not (one line)."""
    try:
        async with session.post(f"{am.base}/api/v2/alerts", json=alerts, ssl=am.verify) as resp:
            if resp.status == 200:
                return None
            text = (await resp.text(errors="replace")).strip().replace("\n", " ")
            return f"HTTP {resp.status}: {text[:200]}"
    except TimeoutError:
        return "TIMEOUT"
    except aiohttp.ClientError as e:
        return f"{type(e).__name__}: {e}"


async def deliver_alertmanager(
    outbox: Outbox,
    url: str,
    metrics: Metrics,
    wake: asyncio.Event,
    stop: asyncio.Event,
    *,
    timeout_s: float = 60.0,
    connect_timeout_s: float = 10.0,
    retry_cap_s: float = 300.0,
    active: Callable[[], Collection[str]] | None = None,
) -> None:
    """Post one Alertmanager target's transitions in order, and its firing alerts every interval, until `stop`."""
    target = target_id(url)
    am = parse_alertmanager(url)  # the config refused a URL that does not parse
    shown = am.base
    auth = aiohttp.BasicAuth(am.username, am.password or "") if am.username else None
    timeout = aiohttp.ClientTimeout(total=connect_timeout_s + timeout_s, connect=connect_timeout_s, sock_read=timeout_s)
    firing = Firing.rebuilt(await asyncio.to_thread(outbox.delivered_facts, target), am)
    delay = 1.0
    next_refresh = time.monotonic()  # at start: Alertmanager may have forgotten them while riverwatch was down
    async with aiohttp.ClientSession(timeout=timeout, auth=auth) as session:
        while True:
            try:
                rows = await asyncio.to_thread(outbox.take, target)
            except sqlite3.Error as e:
                log.error("notify: outbox %s; retrying in 5 s", e)
                await nap(wake, stop, 5.0)
                if stop.is_set():
                    return
                continue
            now = time.time_ns()
            if not rows or rows[0].next_ns > now:
                if stop.is_set():
                    return
                if firing.alerts and time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + am.interval_s
                    await _refresh(session, am, firing, metrics, shown, active)
                    continue
                wait = min(5.0, max(0.0, next_refresh - time.monotonic())) if firing.alerts else 5.0
                if rows:
                    wait = min(wait, (rows[0].next_ns - now) / 1e9)
                await nap(wake, stop, wait)
                continue
            ids = [r.id for r in rows]
            alerts, changes = firing.batch(rows, am, now)
            problem = await post(session, am, alerts) if alerts else None
            try:
                if problem is None:
                    await asyncio.to_thread(outbox.delivered, *ids)
                else:
                    await asyncio.to_thread(outbox.failed, ids[0], delay, problem, *ids[1:])
            except sqlite3.Error as e:
                log.error("notify: cannot record the delivery in the outbox: %s", e)
            if problem is None:
                firing.apply(changes)
                done = time.time_ns()
                metrics.notifications_sent.inc()
                metrics.health.ok(f"notify:{shown}")
                for r in rows:
                    metrics.delivery_latency.observe((done - r.created_ns) / 1e9)
                log.info(
                    "notify: delivered to Alertmanager %s: %s (%d alert(s))",
                    shown,
                    ", ".join(r.message.key for r in rows),
                    len(alerts),
                )
                delay = 1.0
                continue
            metrics.notifications_failed.inc()
            if problem == "TIMEOUT":
                metrics.notifications_timed_out.inc()
            metrics.health.degrade(f"notify:{shown}", "delivery failing; retrying")
            log.warning("notify: Alertmanager %s failed (%s); retrying in %.0f s", shown, problem, delay)
            if stop.is_set():
                return
            delay = min(delay * 2, retry_cap_s)


async def _refresh(
    session: aiohttp.ClientSession,
    am: AlertmanagerURL,
    firing: Firing,
    metrics: Metrics,
    shown: str,
    active: Callable[[], Collection[str]] | None,
) -> None:
    """Post the firing alerts again; a failure is counted and waits for the next interval."""
    try:
        still_open = await asyncio.to_thread(active) if active is not None else None
    except sqlite3.Error as e:  # the ledger is busy: post them all, the ledger is asked again next time
        log.warning("notify: open alerts not read (%s); posting every firing alert to %s", e, shown)
        still_open = None
    alerts, gone = firing.refreshed(am, time.time_ns(), still_open)
    problem = await post(session, am, alerts)
    if problem is None:
        firing.apply(dict.fromkeys(gone))
        metrics.health.ok(f"notify:{shown}")
        return
    metrics.notifications_failed.inc()
    metrics.health.degrade(f"notify:{shown}", "delivery failing; retrying")
    log.warning("notify: Alertmanager %s: firing alerts not posted again (%s)", shown, problem)
