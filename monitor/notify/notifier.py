"""Notify: alert transitions become messages a bureau can act on, delivered through apprise.

Three small stages, each testable alone (after Alertmanager's notify pipeline):
- `render` writes the title and body (English or Chinese) with the numbers that matter;
- the `Outbox` (SQLite under data_dir) records each message per target before any send, keyed so that the
  same transition is never queued twice, and marks it delivered only when apprise reports success;
- one `deliver` worker per target sends in order with capped exponential backoff, so a dead target delays
  only itself, and nothing here ever blocks ingest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import apprise
from apprise.decorators import notify as apprise_plugin

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.config import SEVERITIES, NotifyConfig, RouteConfig
from monitor.domain.pacing import nap
from monitor.domain.params import PARAMETERS
from monitor.metrics import Metrics
from monitor.thresholds import Station

log = logging.getLogger("riverwatch.notify")
# apprise logs DingTalk tokens and WeCom keys in full at DEBUG.
if logging.getLogger("apprise").getEffectiveLevel() < logging.INFO:
    logging.getLogger("apprise").setLevel(logging.INFO)


@apprise_plugin(on="console", name="riverwatch console")
def _console(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
    """The default sink: the console, through the same apprise path as every real target."""
    print(f"\n*** {title}\n{body}\n", file=sys.stdout, flush=True)
    return True


@dataclass(frozen=True, slots=True)
class Message:
    key: str  # alert id + state: the same transition is queued once, however often it is evaluated
    title: str
    body: str
    notify_type: str  # apprise's info / success / warning / failure


_SEVERITY_ZH = {"warning": "一般", "serious": "严重", "critical": "特别严重"}
_STATE_ZH = {"firing": "告警", "escalated": "升级", "resolved": "解除"}
_NOTIFY_TYPE = {"firing": "warning", "escalated": "failure", "resolved": "success"}


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def _unit(parameter: str) -> str:
    unit = PARAMETERS[parameter].unit if parameter in PARAMETERS else ""
    return f" {unit}" if unit else ""


def _when(ts_ns: int, tz: tzinfo, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz).isoformat(sep=" ", timespec=timespec)


def station_tz(st: Station | None, default: tzinfo) -> tzinfo:
    """Times are shown in the station's own time zone when its file names one (IANA or +08:00)."""
    if st is None or not st.timezone:
        return default
    if st.timezone[0] in "+-":
        return parse_offset(st.timezone)
    try:
        return ZoneInfo(st.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def parse_offset(text: str | None) -> timezone:
    """`+08:00` style offsets; None means the machine's local offset."""
    if not text:
        local = datetime.now().astimezone().utcoffset() or timedelta(0)
        return timezone(local)
    sign = -1 if text.startswith("-") else 1
    hours, _, minutes = text.lstrip("+-").partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))


def render(
    e: AlertEvent,
    language: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    incident: Incident | None = None,
    default_km_per_day: float = 12.0,
    repeat: bool = False,
    flapping: bool = False,
) -> Message:
    p = PARAMETERS.get(e.parameter)
    st = stations.get(e.station)
    tz = station_tz(st, tz)
    unit = _unit(e.parameter)
    code = f", HJ 212 {p.hj212}" if p and p.hj212 else ""
    excess = (e.value - e.limit.value) / e.limit.value if e.limit.kind == "max" and e.limit.value else None
    # The ratio is S/C, not C/S, for a minimum and for a range's lower bound (DO, pH below 6).
    below = e.limit.kind == "min" or (e.limit.kind == "range" and e.limit.low is not None and e.value < e.limit.low)
    if language == "zh":
        sname = f"{st.name_zh or st.name}（{e.station}）" if st else e.station
        pname = p.name_zh if p else e.parameter
        title = (
            f"[{_SEVERITY_ZH.get(e.severity, e.severity)}] {_STATE_ZH[e.state]}：{sname} {pname}（{e.parameter}）"
            f" {_num(e.value)}{unit}，为标准限值的 {_num(e.ratio)} 倍"
        )
        lines = [
            f"站点：{sname}"
            + (f"，{st.river} 河 {_num(st.river_km)} km" if st and st.river and st.river_km is not None else ""),
            f"指标：{pname}（{e.parameter}{code}）",
            f"监测值：{_num(e.value)}{unit}，监测时间 {_when(e.ts_ns, tz)}",
            f"标准限值：{e.limit.describe()}",
            f"限值与浓度之比（S/C）：{_num(e.ratio)}" if below else f"浓度与限值之比（C/S）：{_num(e.ratio)}",
        ]
        if excess is not None:
            lines.append(f"超标倍数（(C−S)/S）：{_num(excess)}" if excess > 0 else "超标倍数（(C−S)/S）：未超标")
        lines += [
            f"级别：{_SEVERITY_ZH.get(e.severity, e.severity)}",
            f"状态：{_STATE_ZH[e.state]}",
            f"告警编号：{e.alert_id}，开始于 {_when(e.started_ns, tz)}，峰值 {_num(e.peak_value)}{unit}"
            f"（{_num(e.peak_ratio)} 倍限值）",
        ]
    else:
        sname = f"{st.name} ({e.station})" if st and st.name else e.station
        pname = p.name if p else e.parameter
        verb = {"firing": "FIRING", "escalated": "ESCALATED", "resolved": "RESOLVED"}[e.state]
        title = (
            f"[{e.severity.upper()}] {verb}: {pname} ({e.parameter}) at {sname}: {_num(e.value)}{unit},"
            f" {_num(e.ratio)}x the limit"
        )
        lines = [
            f"Station: {sname}"
            + (f", {st.river} river km {_num(st.river_km)}" if st and st.river and st.river_km is not None else ""),
            f"Parameter: {pname} ({e.parameter}{code})",
            f"Measured: {_num(e.value)}{unit} at {_when(e.ts_ns, tz)}",
            f"Limit: {e.limit.describe()}",
            f"Ratio (value/limit): {_num(e.ratio)}"
            if not below
            else f"Ratio (limit/value, a minimum): {_num(e.ratio)}",
            f"Severity: {e.severity}",
            f"State: {e.state}",
            f"Alert: {e.alert_id}, since {_when(e.started_ns, tz)}, peak {_num(e.peak_value)}{unit}"
            f" ({_num(e.peak_ratio)}x)",
        ]
    if incident is not None:
        lines += _incident_lines(e, incident, language, stations, tz, default_km_per_day)
    if repeat:
        title = ("[仍在告警] " if language == "zh" else "[STILL FIRING] ") + title
    if flapping:
        title = ("[频繁波动，按告警保持] " if language == "zh" else "[FLAPPING, held as firing] ") + title
        lines.append(
            "该告警在短时间内反复触发与解除，已按告警保持，平稳后再通知解除。"
            if language == "zh"
            else "This alert keeps toggling: it is held as firing, and its resolve is sent once it has calmed."
        )
    key = f"{e.alert_id}#{e.state}#{e.ts_ns}" + (f"#repeat{time.time_ns()}" if repeat else "")
    return Message(key, title, "\n".join(lines), _NOTIFY_TYPE[e.state])


def _incident_lines(
    e: AlertEvent, inc: Incident, language: str, stations: Mapping[str, Station], tz: tzinfo, default_km_per_day: float
) -> list[str]:
    """The incident, the stations hit so far, the front velocity and the arrival estimates ahead of it."""
    hits = sorted(inc.hits, key=lambda h: h.river_km)
    v, source = inc.velocity(default_km_per_day)
    ahead = inc.arrivals(stations, default_km_per_day) if e.state != "resolved" else []

    def name(sid: str, zh: bool) -> str:
        st = stations.get(sid)
        return (st.name_zh or st.name if zh else st.name) if st and st.name else sid

    if language == "zh":
        lines = [
            f"事件：{inc.id}（{inc.river}），已超标站点："
            + "；".join(f"{name(h.station, True)}（{_num(h.river_km)} km，{_when(h.first_ns, tz)}）" for h in hits)
        ]
        if ahead:
            origin = "观测值" if source.startswith("observed") else "配置值"
            lines.append(f"污染团前锋速度：{_num(v)} km/天（{origin}）")
        lines += [
            f"预计到达 {name(a.station.id, True)}（{a.station.id}{'，取水口' if a.station.intake else ''}）："
            f"约 {_when(a.eta_ns, station_tz(a.station, tz), 'minutes')}，距前锋 {_num(a.distance_km)} km"
            for a in ahead
        ]
        return lines
    lines = [
        f"Incident: {inc.id} on the {inc.river}; stations hit so far: "
        + ", ".join(f"{name(h.station, False)} (km {_num(h.river_km)}, {_when(h.first_ns, tz)})" for h in hits)
    ]
    if ahead:
        lines.append(f"Front velocity: {_num(v)} km/day ({source})")
    lines += [
        f"Expected at {name(a.station.id, False)} ({a.station.id}{', water intake' if a.station.intake else ''})"
        f" around {_when(a.eta_ns, station_tz(a.station, tz), 'minutes')}, {_num(a.distance_km)} km"
        for a in ahead
    ]
    return lines


@dataclass(frozen=True)
class Target:
    """One notification target and what it wants: a route's filters, or apprise config tags."""

    url: str = field(repr=False)
    route: RouteConfig | None = None
    tags: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        return target_id(self.url)

    def wants(self, e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> bool:
        if self.tags:  # apprise semantics: any of the target's tags
            return bool(self.tags & event_tags(e, stations, incident))
        r = self.route
        if r is None:
            return True
        st = stations.get(e.station)
        return (
            (not r.rivers or (st is not None and st.river in r.rivers))
            and (not r.stations or e.station in r.stations)
            and (not r.parameters or e.parameter in r.parameters)
            and (r.min_severity is None or _rank(e.severity) >= _rank(r.min_severity))
            and (not r.intakes or concerns_intake(e, stations, incident))
        )


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def concerns_intake(e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> bool:
    """At a water intake, or on a river where the front is still upstream of one."""
    st = stations.get(e.station)
    if st is not None and st.intake:
        return True
    if incident is None or not incident.hits:
        return False
    front = max(h.river_km for h in incident.hits)
    return any(
        s.intake and s.river == incident.river and s.river_km is not None and s.river_km > front
        for s in stations.values()
    )


def event_tags(e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> set[str]:
    """Tags an apprise config file can route on: all, river:NAME, station:ID, parameter:ID, severity:S,
    min:S (for S at or below the alert's severity: `min:serious` gets serious and critical), intake."""
    st = stations.get(e.station)
    tags = {"all", f"station:{e.station}", f"parameter:{e.parameter}", f"severity:{e.severity}"}
    tags |= {f"min:{s}" for s in SEVERITIES[: _rank(e.severity) + 1]}
    if st is not None and st.river:
        tags.add(f"river:{st.river.lower()}")
    if concerns_intake(e, stations, incident):
        tags.add("intake")
    return {t.lower() for t in tags}


def make_targets(cfg: NotifyConfig) -> list[Target]:
    targets = [Target(u) for u in cfg.urls] + [Target(r.url, route=r) for r in cfg.routes]
    if cfg.apprise_config is not None:
        ac = apprise.AppriseConfig()
        ac.add(str(cfg.apprise_config))
        for server in ac.services():
            targets.append(Target(server.url(privacy=False), tags=frozenset(str(t).lower() for t in server.tags)))
    unique: dict[str, Target] = {}
    for t in targets:  # one worker per URL, or a message would go out twice
        if t.id in unique:
            log.warning("notify: %s is configured more than once; the first entry is used", private_url(t.url))
        unique.setdefault(t.id, t)
    return list(unique.values())


def target_id(url: str) -> str:
    """A stable id for a target that does not store its credentials."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def private_url(url: str) -> str:
    """The URL as it may appear in logs: apprise's privacy form, never tokens or passwords."""
    plugin = apprise.Apprise.instantiate(url)
    return plugin.url(privacy=True) if plugin else url.split(":", 1)[0] + "://(invalid)"


class Outbox:
    """Durable queue of messages per target. Thread-safe: called from the loop and from to_thread."""

    def __init__(self, path: Path, targets: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ids = [target_id(u) for u in targets]  # the URLs' ids: the outbox stores no credentials
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL,"
            " key TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, notify_type TEXT NOT NULL,"
            " created_ns INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ns INTEGER NOT NULL,"
            " delivered_ns INTEGER, last_error TEXT, UNIQUE(target, key))"
        )

    def add(self, m: Message, targets: Sequence[str] | None = None) -> int:
        """Queue for the given target ids (all by default); returns how many rows were new."""
        now = time.time_ns()
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox(target, key, title, body, notify_type, created_ns, next_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (t, m.key, m.title, m.body, m.notify_type, now, now)
                    for t in (self._ids if targets is None else targets)
                ],
            )
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def next_for(self, target: str) -> tuple[int, Message, int, int] | None:
        """The oldest undelivered message of a target: (id, message, attempts, next_try_ns)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, key, title, body, notify_type, attempts, next_ns FROM outbox"
                " WHERE target = ? AND delivered_ns IS NULL ORDER BY id LIMIT 1",
                (target,),
            ).fetchone()
        if row is None:
            return None
        return row[0], Message(row[1], row[2], row[3], row[4]), row[5], row[6]

    def delivered(self, row_id: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET delivered_ns = ?, attempts = attempts + 1 WHERE id = ?", (time.time_ns(), row_id)
            )

    def failed(self, row_id: int, retry_in_s: float, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ns = ?, last_error = ? WHERE id = ?",
                (time.time_ns() + int(retry_in_s * 1e9), error[:500], row_id),
            )

    def pending(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox WHERE delivered_ns IS NULL").fetchone()
            return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def deliver(
    outbox: Outbox,
    url: str,
    metrics: Metrics,
    wake: asyncio.Event,
    stop: asyncio.Event,
    *,
    timeout_s: float = 15.0,
    retry_cap_s: float = 300.0,
) -> None:
    """Send one target's messages in order until `stop`; then one last try of what is due, and return."""
    target = target_id(url)
    shown = private_url(url)
    ap = apprise.Apprise()
    if not ap.add(url):
        log.error("notify: %s is not a URL apprise understands; its messages stay in the outbox", shown)
        metrics.health.degrade(f"notify:{shown}", "invalid apprise URL")
        return
    delay = 1.0
    while True:
        try:
            item = await asyncio.to_thread(outbox.next_for, target)
        except sqlite3.Error as e:  # the outbox's disk is full or read-only: wait, the messages are still there
            log.error("notify: outbox %s; retrying in 5 s", e)
            await nap(wake, stop, 5.0)
            if stop.is_set():
                return
            continue
        now = time.time_ns()
        if item is None or item[3] > now:
            if stop.is_set():
                return
            await nap(wake, stop, 5.0 if item is None else min(5.0, (item[3] - now) / 1e9))
            continue
        row_id, msg, _attempts, _ = item
        result = await ap.async_notify(body=msg.body, title=msg.title, notify_type=msg.notify_type, timeout=timeout_s)
        try:
            if result:
                await asyncio.to_thread(outbox.delivered, row_id)
            else:
                await asyncio.to_thread(outbox.failed, row_id, delay, _status(result))
        except sqlite3.Error as e:
            # Sent (or not) but not recorded: it may be sent once more after the disk recovers.
            log.error("notify: cannot record the delivery in the outbox: %s", e)
        if result:
            metrics.notifications_sent.inc()
            metrics.health.ok(f"notify:{shown}")
            delay = 1.0
            continue
        metrics.notifications_failed.inc()
        metrics.health.degrade(f"notify:{shown}", "delivery failing; retrying")
        log.warning("notify: %s failed (%s); retrying in %.0f s", shown, _status(result), delay)
        if stop.is_set():
            return
        delay = min(delay * 2, retry_cap_s)


def _status(result: object) -> str:
    return str(getattr(getattr(result, "status", None), "name", "FAILURE"))
