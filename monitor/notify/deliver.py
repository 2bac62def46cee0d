"""Delivery: one worker per target sends its outbox rows in order with capped exponential backoff, so a dead
target delays only itself and nothing here ever blocks ingest.

Timeouts are the target's own: apprise reads `rto` (read) and `cto` (connect) from the URL, 4 s each by
default, and a target that answers 200 after its read timeout has the message but counts as failed, so the
retry sends it a copy (measured: a receiver answering after 5 s got 2 copies per message with apprise's 4 s).
A URL without them gets `[notify].timeout_s` / `connect_timeout_s`; apprise's whole-call limit sits above
both, so it never abandons a send that its plugin is still waiting on.

Grouping: the worker takes the row due first with the other undelivered rows of its group (Outbox.take) and
sends them as one message (monitor.notify.group); on success all of them are marked delivered at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Collection
from urllib.parse import parse_qsl, urlsplit

import apprise

from monitor.config.targets import is_alertmanager
from monitor.domain.pacing import nap
from monitor.metrics import Metrics
from monitor.notify.alertmanager import deliver_alertmanager
from monitor.notify.group import compose
from monitor.notify.outbox import Outbox
from monitor.notify.routes import private_url, target_id

log = logging.getLogger("riverwatch.notify")


async def deliver(
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
    """Send one target's messages in order until `stop`; then one last try of what is due, and return.

    An alertmanager:// target has its own sender (monitor.notify.alertmanager); `active` (the ledger's open
    alert ids) tells it which firing alerts to post again."""
    if is_alertmanager(url):
        await deliver_alertmanager(
            outbox,
            url,
            metrics,
            wake,
            stop,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            retry_cap_s=retry_cap_s,
            active=active,
        )
        return
    target = target_id(url)
    shown = private_url(url)
    ap = apprise.Apprise()
    timed, call_limit = with_timeouts(url, timeout_s, connect_timeout_s)
    # The config refuses a URL apprise cannot parse (monitor.config.targets); one that still fails here (a
    # plugin missing from this install) fails every send, counted and retried like any other failure.
    usable = ap.add(timed)
    if not usable:
        log.error("notify: %s is not a URL apprise understands; its messages stay in the outbox", shown)
        metrics.health.degrade(f"notify:{shown}", "invalid apprise URL")
    delay = 1.0
    while True:
        try:
            rows = await asyncio.to_thread(outbox.take, target)
        except sqlite3.Error as e:  # the outbox's disk is full or read-only: wait, the messages are still there
            log.error("notify: outbox %s; retrying in 5 s", e)
            await nap(wake, stop, 5.0)
            if stop.is_set():
                return
            continue
        now = time.time_ns()
        if not rows or rows[0].next_ns > now:
            if stop.is_set():
                return
            await nap(wake, stop, 5.0 if not rows else min(5.0, (rows[0].next_ns - now) / 1e9))
            continue
        ids = [r.id for r in rows]
        title, body, notify_type = compose(rows)
        result = (
            await ap.async_notify(body=body, title=title, notify_type=notify_type, timeout=call_limit)
            if usable
            else False
        )
        try:
            if result:
                await asyncio.to_thread(outbox.delivered, *ids)
            else:
                await asyncio.to_thread(outbox.failed, ids[0], delay, _status(result), *ids[1:])
        except sqlite3.Error as e:
            # Sent (or not) but not recorded: it may be sent once more after the disk recovers.
            log.error("notify: cannot record the delivery in the outbox: %s", e)
        if result:
            done = time.time_ns()
            metrics.notifications_sent.inc()
            metrics.health.ok(f"notify:{shown}")
            for r in rows:
                metrics.delivery_latency.observe((done - r.created_ns) / 1e9)
            log.info(
                "notify: delivered to %s: %s (%d transition(s), attempt %d, %.1f s after queued)",
                target,
                ", ".join(r.message.key for r in rows),
                len(rows),
                max(r.attempts for r in rows) + 1,
                (done - min(r.created_ns for r in rows)) / 1e9,
            )
            delay = 1.0
            continue
        metrics.notifications_failed.inc()
        if _status(result) == "TIMEOUT" or _timed_out(result):
            metrics.notifications_timed_out.inc()
        metrics.health.degrade(f"notify:{shown}", "delivery failing; retrying" if usable else "invalid apprise URL")
        log.warning(
            "notify: %s failed (%s); retrying in %.0f s", shown, _status(result) if usable else "invalid URL", delay
        )
        if stop.is_set():
            return
        delay = min(delay * 2, retry_cap_s)


def with_timeouts(url: str, read_s: float, connect_s: float) -> tuple[str, float]:
    """The URL with `rto` / `cto` added where it sets none, and a whole-call limit above both (s)."""
    query = dict(parse_qsl(urlsplit(url).query))
    read = float(query.get("rto") or read_s)
    connect = float(query.get("cto") or connect_s)
    add = [f"{k}={v:g}" for k, v in (("rto", read_s), ("cto", connect_s)) if k not in query]
    if add:
        base, _, fragment = url.partition("#")
        url = base + ("&" if "?" in base else "?") + "&".join(add) + (f"#{fragment}" if fragment else "")
    return url, connect + read + 5.0


def _timed_out(result: object) -> bool:
    """apprise reports a plugin's read timeout as a plain failure; its log says why."""
    try:
        return any("timed out" in str(entry).lower() for entry in getattr(result, "call_logs", lambda: [])())
    except Exception:  # the logs are a diagnostic, never a reason to stop delivering
        return False


def _status(result: object) -> str:
    return str(getattr(getattr(result, "status", None), "name", "FAILURE"))
