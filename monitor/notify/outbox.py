"""The outbox: each message recorded per target (SQLite under data_dir) before any send, keyed so that the same
transition is never queued twice, and marked delivered only when apprise reports success."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from monitor.notify.render import Message
from monitor.notify.routes import target_id


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
