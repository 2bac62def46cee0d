"""The alert ledger: what was raised, how it developed, who silenced or acknowledged what, and when.

SQLite under data_dir, shared by the running service and the `riverwatch alerts / silence / ack` commands
(WAL lets them read and write while the service runs). Every action by a person goes to the audit table.
The service reads silences and acknowledgements from here before it queues a notification, so a silence
added from the command line takes effect on the next transition without a restart.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from monitor.alerts.evaluator import AlertEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts(
    alert_id TEXT PRIMARY KEY, station TEXT NOT NULL, parameter TEXT NOT NULL, rule TEXT NOT NULL,
    state TEXT NOT NULL, severity TEXT NOT NULL, started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    resolved_ns INTEGER, value REAL NOT NULL, limit_value REAL NOT NULL, peak_value REAL NOT NULL,
    peak_ratio REAL NOT NULL, incident_id TEXT, last_sent_ns INTEGER, acked_by TEXT, acked_ns INTEGER,
    flapping INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts(state, updated_ns);
CREATE TABLE IF NOT EXISTS silences(
    id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, parameter TEXT, starts_ns INTEGER NOT NULL,
    until_ns INTEGER NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL, created_ns INTEGER NOT NULL,
    expired_ns INTEGER);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert_id: str
    station: str
    parameter: str
    rule: str
    state: str
    severity: str
    started_ns: int
    updated_ns: int
    resolved_ns: int | None
    value: float
    limit_value: float
    peak_value: float
    peak_ratio: float
    incident_id: str | None
    last_sent_ns: int | None
    acked_by: str | None
    acked_ns: int | None
    flapping: bool


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    station: str
    parameter: str | None
    starts_ns: int
    until_ns: int
    reason: str
    created_by: str
    created_ns: int
    expired_ns: int | None

    def covers(self, station: str, parameter: str, at_ns: int) -> bool:
        return (
            self.station == station
            and self.parameter in (None, parameter)
            and self.starts_ns <= at_ns < self.until_ns
            and self.expired_ns is None
        )


class LedgerError(Exception):
    pass


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- the service's side ------------------------------------------------------------------------------
    def record(self, e: AlertEvent, incident_id: str | None = None, flapping: bool = False) -> None:
        """Upsert an alert from one of its transitions."""
        rule = getattr(e, "rule", "instantaneous")
        resolved = e.ts_ns if e.state == "resolved" else None
        with self._tx() as db:
            db.execute(
                "INSERT INTO alerts(alert_id, station, parameter, rule, state, severity, started_ns, updated_ns,"
                " resolved_ns, value, limit_value, peak_value, peak_ratio, incident_id, flapping)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(alert_id) DO UPDATE SET state = excluded.state, severity = excluded.severity,"
                " updated_ns = excluded.updated_ns, resolved_ns = excluded.resolved_ns, value = excluded.value,"
                " peak_value = excluded.peak_value, peak_ratio = excluded.peak_ratio,"
                " incident_id = coalesce(excluded.incident_id, alerts.incident_id), flapping = excluded.flapping",
                (
                    e.alert_id,
                    e.station,
                    e.parameter,
                    rule,
                    e.state,
                    e.severity,
                    e.started_ns,
                    e.ts_ns,
                    resolved,
                    e.value,
                    e.limit.value,
                    e.peak_value,
                    e.peak_ratio,
                    incident_id,
                    int(flapping),
                ),
            )

    def mark_sent(self, alert_id: str, at_ns: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE alerts SET last_sent_ns = ? WHERE alert_id = ?", (at_ns, alert_id))

    def silence_for(self, station: str, parameter: str, at_ns: int) -> Silence | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM silences WHERE station = ? AND (parameter IS NULL OR parameter = ?)"
                " AND expired_ns IS NULL AND starts_ns <= ? AND until_ns > ? ORDER BY until_ns DESC LIMIT 1",
                (station, parameter, at_ns, at_ns),
            ).fetchall()
        return Silence(*rows[0]) if rows else None

    # -- the people's side (CLI) ---------------------------------------------------------------------------
    def add_silence(
        self, station: str, parameter: str | None, until_ns: int, reason: str, by: str, starts_ns: int | None = None
    ) -> int:
        now = time.time_ns()
        if until_ns <= now:
            raise LedgerError("--until is in the past")
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO silences(station, parameter, starts_ns, until_ns, reason, created_by,"
                " created_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (station, parameter, starts_ns or now, until_ns, reason, by, now),
            )
            sid = int(cur.lastrowid or 0)
            self._audit(
                db,
                by,
                "silence add",
                f"silence {sid}",
                f"station={station} parameter={parameter or '*'} until={until_ns} reason={reason}",
            )
        return sid

    def expire_silence(self, sid: int, by: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE silences SET expired_ns = ? WHERE id = ? AND expired_ns IS NULL", (time.time_ns(), sid)
            )
            if cur.rowcount == 0:
                raise LedgerError(f"no active silence {sid}")
            self._audit(db, by, "silence expire", f"silence {sid}", "")

    def silences(self, include_expired: bool = False) -> list[Silence]:
        now = time.time_ns()
        with self._lock:
            rows = self._db.execute("SELECT * FROM silences ORDER BY id").fetchall()
        out = [Silence(*r) for r in rows]
        return out if include_expired else [s for s in out if s.expired_ns is None and s.until_ns > now]

    def ack(self, alert_id: str, by: str) -> AlertRecord:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE alerts SET acked_by = ?, acked_ns = ? WHERE alert_id = ? AND state != 'resolved'",
                (by, time.time_ns(), alert_id),
            )
            if cur.rowcount == 0:
                known = db.execute("SELECT state FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
                raise LedgerError(f"alert {alert_id} is already resolved" if known else f"no alert {alert_id}")
            self._audit(db, by, "ack", f"alert {alert_id}", "")
        return self.get(alert_id)

    def get(self, alert_id: str) -> AlertRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no alert {alert_id}")
        return AlertRecord(*row[:-1], flapping=bool(row[-1]))

    def alerts(self, active_only: bool = False, since_ns: int | None = None) -> list[AlertRecord]:
        q, args = "SELECT * FROM alerts WHERE 1 = 1", []
        if active_only:
            q += " AND state != 'resolved'"
        if since_ns is not None:
            q += " AND updated_ns >= ?"
            args.append(since_ns)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY started_ns, alert_id", args).fetchall()
        return [AlertRecord(*r[:-1], flapping=bool(r[-1])) for r in rows]

    def audit_log(self) -> list[tuple[int, str, str, str, str]]:
        with self._lock:
            return [
                tuple(r)
                for r in self._db.execute("SELECT at_ns, actor, action, subject, detail FROM audit ORDER BY id")
            ]  # type: ignore[misc]

    def note(self, actor: str, action: str, subject: str, detail: str) -> None:
        """An automatic action worth an audit line (a notification suppressed by a silence, say)."""
        with self._tx() as db:
            self._audit(db, actor, action, subject, detail)

    @staticmethod
    def _audit(db: sqlite3.Connection, actor: str, action: str, subject: str, detail: str) -> None:
        db.execute(
            "INSERT INTO audit(at_ns, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time_ns(), actor, action, subject, detail),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
