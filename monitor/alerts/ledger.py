"""The alert ledger: what was raised, how it developed, who silenced or acknowledged what, and when.

SQLite under data_dir, shared by the running service and the `riverwatch alerts / silence / ack` commands
(WAL lets them read and write while the service runs). Every action by a person goes to the audit table.
The service reads silences and acknowledgements from here before it queues a notification, so a silence
added from the command line takes effect on the next transition without a restart.

It also keeps what the alert path holds in memory and a restart must not lose: the open incidents (their
hits, hence the observed front velocity) and the flap state of the series that toggled recently. Both are
written with the alert record of the transition that changed them, in one transaction, after the outbox.
Schema versions (`PRAGMA user_version`): 1 alerts, silences, audit; 2 adds incidents, incident_hits and
flaps; 3 adds each alert's category and `evaluated_ns`, the newest reading evaluated for an open alert (so a
late reading after a restart cannot move it); 4 adds incident_state (an incident's forecaster, the forecast
notices it sent and its time bounds, as JSON). An older file is upgraded in place when the service or a
command opens it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapState, SeriesKey
from monitor.alerts.incidents import Hit, Incident
from monitor.thresholds import Limit

SCHEMA_VERSION = 4
ENDED = ("resolved", "withdrawn")  # states after which an alert is no longer open

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts(
    alert_id TEXT PRIMARY KEY, station TEXT NOT NULL, parameter TEXT NOT NULL, rule TEXT NOT NULL,
    state TEXT NOT NULL, severity TEXT NOT NULL, started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    resolved_ns INTEGER, value REAL NOT NULL, limit_value REAL NOT NULL, peak_value REAL NOT NULL,
    peak_ratio REAL NOT NULL, incident_id TEXT, last_sent_ns INTEGER, acked_by TEXT, acked_ns INTEGER,
    flapping INTEGER NOT NULL DEFAULT 0, evaluated_ns INTEGER, category TEXT NOT NULL DEFAULT 'water');
CREATE INDEX IF NOT EXISTS alerts_active ON alerts(state, updated_ns);
CREATE TABLE IF NOT EXISTS silences(
    id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, parameter TEXT, starts_ns INTEGER NOT NULL,
    until_ns INTEGER NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL, created_ns INTEGER NOT NULL,
    expired_ns INTEGER);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents(
    id TEXT PRIMARY KEY, river TEXT NOT NULL, parameter TEXT NOT NULL, opened_ns INTEGER NOT NULL,
    closed_ns INTEGER);
CREATE TABLE IF NOT EXISTS incident_hits(
    incident_id TEXT NOT NULL, station TEXT NOT NULL, river_km REAL NOT NULL, first_ns INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY(incident_id, station));
CREATE TABLE IF NOT EXISTS incident_state(
    incident_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flaps(
    station TEXT NOT NULL, parameter TEXT NOT NULL, rule TEXT NOT NULL, flips TEXT NOT NULL,
    flapping INTEGER NOT NULL, last_ns INTEGER NOT NULL, held TEXT, PRIMARY KEY(station, parameter, rule));
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
    evaluated_ns: int | None = None  # the newest reading evaluated while open (None: only its transitions)
    category: str = "water"

    @property
    def last_evaluated_ns(self) -> int:
        """The newest reading that moved or was judged for this alert: what `AlertBook.restore` takes."""
        return max(self.updated_ns, self.evaluated_ns or 0)


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
        self._migrate()

    def _migrate(self) -> None:
        """Create or upgrade the schema; every step keeps the rows an older version wrote."""
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version >= SCHEMA_VERSION:
                return
            self._db.executescript(_SCHEMA)  # IF NOT EXISTS: new tables only, existing rows untouched
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(alerts)")}
            if "flapping" not in columns:  # written before flap control
                self._db.execute("ALTER TABLE alerts ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0")
            if "evaluated_ns" not in columns:  # written before version 3
                self._db.execute("ALTER TABLE alerts ADD COLUMN evaluated_ns INTEGER")
                self._db.execute("ALTER TABLE alerts ADD COLUMN category TEXT NOT NULL DEFAULT 'water'")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
    def record(
        self,
        e: AlertEvent,
        incident_id: str | None = None,
        flapping: bool = False,
        *,
        incident: Incident | None = None,
        flap_key: SeriesKey | None = None,
        flap: FlapState | None = None,
    ) -> None:
        """Upsert an alert from one of its transitions, with the incident and the flap state as they are after it
        (`flap_key` with `flap` None: the guard forgot the series)."""
        rule = getattr(e, "rule", "instantaneous")
        resolved = e.ts_ns if e.state in ENDED else None
        if incident is not None:
            incident_id = incident_id or incident.id
        with self._tx() as db:
            if incident is not None:
                _write_incident(db, incident, e.ts_ns if incident.ended else None)
            if flap_key is not None:
                _write_flap(db, flap_key, flap)
            db.execute(
                "INSERT INTO alerts(alert_id, station, parameter, rule, state, severity, started_ns, updated_ns,"
                " resolved_ns, value, limit_value, peak_value, peak_ratio, incident_id, flapping, category)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                    _real(e.value),
                    _real(e.limit.value),
                    _real(e.peak_value),
                    _real(e.peak_ratio),
                    incident_id,
                    int(flapping),
                    e.category,
                ),
            )

    def evaluated(self, marks: dict[str, int]) -> None:
        """The newest reading evaluated per open alert (`Evaluator.evaluated`), after its batch's transitions."""
        if not marks:
            return
        with self._tx() as db:
            db.executemany(
                "UPDATE alerts SET evaluated_ns = max(coalesce(evaluated_ns, 0), ?) WHERE alert_id = ?",
                [(ts, aid) for aid, ts in marks.items()],
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

    def save_incidents(self, incidents: Sequence[Incident], now_ns: int) -> None:
        """Incidents whose forecaster or notices changed, or that ended (at `now_ns`, reading time), in one
        transaction: after the outbox holds the batch's forecast notices."""
        if not incidents:
            return
        with self._tx() as db:
            for inc in incidents:
                _write_incident(db, inc, now_ns if inc.ended else None)

    def open_incidents(self) -> list[Incident]:
        """The incidents open at the last stop: their hits, their alerts still open, and their saved state
        (forecaster, notices sent; rebuilt by `Incidents.restore`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT i.id, i.river, i.parameter, i.opened_ns, s.state FROM incidents i"
                " LEFT JOIN incident_state s ON s.incident_id = i.id WHERE i.closed_ns IS NULL ORDER BY i.opened_ns"
            ).fetchall()
            out = []
            for iid, river, parameter, opened, state in rows:
                hits = [
                    Hit(*h)
                    for h in self._db.execute(
                        "SELECT station, river_km, first_ns FROM incident_hits WHERE incident_id = ? ORDER BY seq",
                        (iid,),
                    )
                ]
                alerts = {
                    a
                    for (a,) in self._db.execute(
                        "SELECT alert_id FROM alerts WHERE incident_id = ? AND state NOT IN ('resolved', 'withdrawn')",
                        (iid,),
                    )
                }
                saved = json.loads(state) if state else None
                if alerts or saved:  # all resolved, but not for incident_end yet: it goes on
                    out.append(Incident(iid, river, parameter, opened, hits, alerts, saved=saved))
        return out

    def flap_states(self) -> list[FlapState]:
        """The flap state of every series the guard still knew of at the last stop."""
        with self._lock:
            rows = self._db.execute(
                "SELECT station, parameter, rule, flips, flapping, last_ns, held FROM flaps ORDER BY last_ns"
            ).fetchall()
        return [
            FlapState((st, p, r), tuple(json.loads(flips)), bool(f), _event_from_json(held) if held else None, last)
            for st, p, r, flips, f, last, held in rows
        ]

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
                "UPDATE alerts SET acked_by = ?, acked_ns = ?"
                " WHERE alert_id = ? AND state NOT IN ('resolved', 'withdrawn')",
                (by, time.time_ns(), alert_id),
            )
            if cur.rowcount == 0:
                known = db.execute("SELECT state FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
                raise LedgerError(f"alert {alert_id} is already {known[0]}" if known else f"no alert {alert_id}")
            self._audit(db, by, "ack", f"alert {alert_id}", "")
        return self.get(alert_id)

    def get(self, alert_id: str) -> AlertRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no alert {alert_id}")
        return _alert_record(row)

    def alerts(self, active_only: bool = False, since_ns: int | None = None) -> list[AlertRecord]:
        q, args = "SELECT * FROM alerts WHERE 1 = 1", []
        if active_only:
            q += " AND state NOT IN ('resolved', 'withdrawn')"
        if since_ns is not None:
            q += " AND updated_ns >= ?"
            args.append(since_ns)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY started_ns, alert_id", args).fetchall()
        return [_alert_record(r) for r in rows]

    def audit_log(self) -> list[tuple[int, str, str, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT at_ns, actor, action, subject, detail FROM audit ORDER BY id").fetchall()
        return [(int(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]

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


def _real(x: float) -> float:
    """SQLite keeps NaN as NULL, which a NOT NULL column refuses (and the rules loop would retry forever): a
    sensor or no-data alert has no meaningful value, so it is kept as 0."""
    return x if math.isfinite(x) else 0.0


def _alert_record(row: Any) -> AlertRecord:
    stored = AlertRecord(*row)  # flapping as SQLite keeps it: 0 or 1
    return replace(stored, flapping=bool(stored.flapping))


def _write_incident(db: sqlite3.Connection, inc: Incident, closed_ns: int | None) -> None:
    db.execute(
        "INSERT INTO incidents(id, river, parameter, opened_ns, closed_ns) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET closed_ns = excluded.closed_ns",
        (inc.id, inc.river, inc.parameter, inc.opened_ns, closed_ns),
    )
    db.executemany(
        "INSERT OR IGNORE INTO incident_hits(incident_id, station, river_km, first_ns, seq) VALUES (?, ?, ?, ?, ?)",
        [(inc.id, h.station, h.river_km, h.first_ns, i) for i, h in enumerate(inc.hits)],
    )
    db.execute(
        "INSERT OR REPLACE INTO incident_state(incident_id, state) VALUES (?, ?)",
        (inc.id, json.dumps(inc.state_json(), default=_json_number)),
    )


def _json_number(x: object) -> object:
    """numpy scalars in a forecaster's state."""
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(type(x).__name__)


def _write_flap(db: sqlite3.Connection, key: SeriesKey, st: FlapState | None) -> None:
    if st is None:
        db.execute("DELETE FROM flaps WHERE station = ? AND parameter = ? AND rule = ?", key)
        return
    db.execute(
        "INSERT OR REPLACE INTO flaps(station, parameter, rule, flips, flapping, last_ns, held)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, json.dumps(list(st.flips)), int(st.flapping), st.last_ns, _event_json(st.held) if st.held else None),
    )


def _event_json(e: AlertEvent) -> str:
    """A held resolve, whole: it is sent as it was when the series calms, even after a restart."""
    return json.dumps(asdict(e))


def _event_from_json(text: str) -> AlertEvent:
    d: dict[str, Any] = json.loads(text)
    return AlertEvent(**{**d, "limit": Limit(**d["limit"])})
