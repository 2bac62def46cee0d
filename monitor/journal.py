"""The durable journal: accepted readings are committed here before the broker is acknowledged.

It is a log with consumer cursors (like a Kafka partition): `store` and `rules` each read forward from
their own persisted cursor, so a crash between any two steps replays work instead of losing it. A row is
pruned only when every consumer has passed it and it is older than the dedup window; until then its
(station, parameter, ts) key also absorbs broker redeliveries, so a redelivered reading is neither
stored nor evaluated twice.

SQLite in WAL mode with synchronous=FULL: a commit survives kill -9 and power loss. Appends are batched
by the caller, so one fsync covers many readings.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from monitor.reading import Reading

CONSUMERS = ("store", "rules")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    station TEXT NOT NULL, parameter TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    value REAL NOT NULL, flag TEXT, received_ns INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS readings_key ON readings(station, parameter, ts_ns);
CREATE TABLE IF NOT EXISTS cursors(consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alert_lines(id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside(
    id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, error TEXT NOT NULL,
    station TEXT, parameter TEXT, ts_ns INTEGER, value REAL, flag TEXT);
"""


class JournalError(Exception):
    """The journal cannot take writes (disk full, read-only, corrupt): nothing may be acknowledged."""


def diagnose(directory: Path) -> str:
    """Why a directory may refuse writes, in an operator's words ("" when nothing obvious is wrong).

    SQLite's own messages ("unable to open database file") do not say that the disk is read-only or full.
    """
    try:
        st = os.statvfs(directory)
    except OSError as e:
        return f"{directory}: {e.strerror}"
    if st.f_flag & os.ST_RDONLY:
        return f"{directory} is on a read-only filesystem"
    if st.f_bavail * st.f_frsize < 64 * 1024:
        return f"{directory} has no space left ({st.f_bavail * st.f_frsize} bytes free)"
    return ""


class Journal:
    """Thread-safe: calls come from `asyncio.to_thread` so the event loop never waits on fsync."""

    def __init__(self, path: Path, *, dedup_window_s: float = 600.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._dedup_window_ns = int(dedup_window_s * 1e9)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            for c in CONSUMERS:
                self._db.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (c,))
        except sqlite3.Error as e:
            why = diagnose(path.parent)
            raise JournalError(f"journal {path}: {e}" + (f" ({why})" if why else "")) from e

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        """One caller at a time; any SQLite failure becomes a JournalError, with an open transaction undone."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                why = diagnose(self.path.parent)
                raise JournalError(f"journal {self.path}: {e}" + (f" ({why})" if why else "")) from e

    def probe(self) -> None:
        """Prove the journal takes writes now (a read-only disk opens fine and fails only on the first write)."""
        with self._guarded() as db:
            db.execute("UPDATE cursors SET seq = seq WHERE consumer = 'store'")

    def append(self, readings: Sequence[Reading]) -> int:
        """Commit readings durably; returns how many were new (the rest were redeliveries)."""
        if not readings:
            return 0
        now = time.time_ns()
        rows = [(r.station, r.parameter, r.ts_ns, r.value, r.flag, now) for r in readings]
        with self._guarded() as db:
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO readings(station, parameter, ts_ns, value, flag, received_ns)"
                           " VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
            return db.total_changes - before

    def read(self, consumer: str, limit: int) -> list[tuple[int, Reading]]:
        """The next readings after the consumer's cursor, oldest first."""
        with self._guarded() as db:
            cur = db.execute(
                "SELECT seq, station, parameter, ts_ns, value, flag FROM readings"
                " WHERE seq > (SELECT seq FROM cursors WHERE consumer = ?) ORDER BY seq LIMIT ?",
                (consumer, limit))
            return [(row[0], Reading(*row[1:])) for row in cur]

    def advance(self, consumer: str, seq: int) -> None:
        """Move a consumer past `seq`: its work up to there is confirmed done."""
        with self._guarded() as db:
            db.execute("UPDATE cursors SET seq = max(seq, ?) WHERE consumer = ?", (seq, consumer))

    def set_aside(self, refused: Sequence[tuple[Reading, str]]) -> None:
        """Keep readings the database refused (4xx), with the reason, instead of retrying them forever."""
        now = time.time_ns()
        with self._guarded() as db:
            db.executemany(
                "INSERT INTO set_aside(at_ns, error, station, parameter, ts_ns, value, flag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", [(now, error[:2000], *r) for r, error in refused])

    def append_alert_lines(self, lines: Sequence[str]) -> None:
        """Alert points for the database ride in the journal too, so a database outage loses none."""
        with self._guarded() as db:
            db.executemany("INSERT INTO alert_lines(line) VALUES (?)", [(x,) for x in lines])

    def alert_lines(self, limit: int) -> list[tuple[int, str]]:
        with self._guarded() as db:
            return list(db.execute("SELECT id, line FROM alert_lines ORDER BY id LIMIT ?", (limit,)))

    def release_alert_lines(self, last_id: int) -> None:
        with self._guarded() as db:
            db.execute("DELETE FROM alert_lines WHERE id <= ?", (last_id,))

    def prune(self) -> int:
        """Drop rows every consumer has passed and that are older than the dedup window."""
        horizon = time.time_ns() - self._dedup_window_ns
        with self._guarded() as db:
            cur = db.execute(
                "DELETE FROM readings WHERE seq <= (SELECT min(seq) FROM cursors) AND received_ns < ?",
                (horizon,))
            return cur.rowcount

    def backlog(self, consumer: str) -> int:
        """Readings journaled but not yet done by `consumer`."""
        with self._guarded() as db:
            (n,) = db.execute(
                "SELECT count(*) FROM readings WHERE seq > (SELECT seq FROM cursors WHERE consumer = ?)",
                (consumer,)).fetchone()
            return int(n)

    def set_aside_count(self) -> int:
        with self._guarded() as db:
            (n,) = db.execute("SELECT count(*) FROM set_aside").fetchone()
            return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
