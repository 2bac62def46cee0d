"""The outbox: each transition recorded per target (SQLite under data_dir) before any send, keyed so that the
same transition is never queued twice, and marked delivered only when apprise reports success.

Grouping lives here too, because it must survive a kill -9: a row carries its group (incident id or
"station:<id>"), its change line and incident table, and a not-before time (`next_ns`) set from the target's
group_wait / group_interval when it is queued. The delivery worker takes the row that is due first together
with every undelivered row of its group (`take`) and marks them all delivered in one transaction, so a
restart mid-wait sends each transition once, in one message.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.notify.message import Message, Timing
from monitor.notify.routes import target_id

_COLUMNS = (  # added to outbox files written before grouping: their rows have no group and are sent alone
    ("grp", "TEXT"),
    ("change_line", "TEXT NOT NULL DEFAULT ''"),
    ("group_context", "TEXT NOT NULL DEFAULT ''"),
    ("todo", "TEXT NOT NULL DEFAULT ''"),
    ("language", "TEXT NOT NULL DEFAULT 'en'"),
    ("facts", "TEXT NOT NULL DEFAULT ''"),  # the transition as JSON (Message.facts), for Alertmanager
)
_SELECT = (
    "SELECT id, key, title, body, notify_type, attempts, next_ns, grp, change_line, group_context, todo,"
    " created_ns, language, facts"
)


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    message: Message
    attempts: int
    next_ns: int
    todo: str  # the target's "what to do" lines (monitor.notify.templates), already in `message.body`
    created_ns: int


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
            " delivered_ns INTEGER, last_error TEXT, "
            + "".join(f"{name} {kind}, " for name, kind in _COLUMNS)
            + "UNIQUE(target, key))"
        )
        have = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        for name, kind in _COLUMNS:  # an outbox from before grouping
            if name not in have:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_undelivered ON outbox(target, delivered_ns, grp, next_ns)")

    def add(
        self,
        m: Message,
        targets: Sequence[str] | None = None,
        *,
        timing: Mapping[str, Timing] | None = None,
        todo: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """Queue for the given target ids (all by default); returns how many rows were new.

        `timing` per target sets when a grouped row may go: a new group waits group_wait for more; a group
        delivered less than group_interval ago waits for the rest of that interval; an urgent row never waits
        longer than group_wait. `todo` per target is appended to the body and kept for grouped messages."""
        now = time.time_ns()
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = []
                for t in self._ids if targets is None else targets:
                    lines = "\n".join((todo or {}).get(t, ()))
                    body = m.body + ("\n\n" + lines if lines else "")
                    tm = (timing or {}).get(t)
                    group = m.group if tm is not None and (tm.group_wait_s or tm.group_interval_s) else None
                    due = now if group is None or tm is None else self._due(t, group, tm, m.urgent, now)
                    rows.append(
                        (
                            t,
                            m.key,
                            m.title,
                            body,
                            m.notify_type,
                            now,
                            due,
                            group,
                            m.change,
                            m.context,
                            lines,
                            m.language,
                            m.facts,
                        )
                    )
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox(target, key, title, body, notify_type, created_ns, next_ns,"
                    " grp, change_line, group_context, todo, language, facts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def _due(self, target: str, group: str, timing: Timing, urgent: bool, now: int) -> int:
        """When a new row of this group may go (group_wait and group_interval both 0: grouping is off)."""
        wait = now + int(timing.group_wait_s * 1e9)
        (last,) = self._db.execute(
            "SELECT max(delivered_ns) FROM outbox WHERE target = ? AND grp = ?", (target, group)
        ).fetchone()
        if last is None or now - last >= timing.group_interval_s * 1e9:
            return wait  # a new group (or one quiet for a whole interval): wait for the rest of the burst
        later = last + int(timing.group_interval_s * 1e9)
        return min(later, wait) if urgent else later

    def take(self, target: str) -> list[Row]:
        """What the target's worker sends next: the row due first and, if it has a group, every undelivered row
        of that group (oldest first). [] when nothing is undelivered; check `next_ns` of the first row."""
        with self._lock:
            first = self._db.execute(
                _SELECT + " FROM outbox WHERE target = ? AND delivered_ns IS NULL ORDER BY next_ns, id LIMIT 1",
                (target,),
            ).fetchone()
            if first is None:
                return []
            if first[7] is None:
                return [_row(first)]
            rows = self._db.execute(
                _SELECT + " FROM outbox WHERE target = ? AND delivered_ns IS NULL AND grp = ? ORDER BY id",
                (target, first[7]),
            ).fetchall()
        out = [_row(r) for r in rows]
        due = min(r.next_ns for r in out)
        return [Row(r.id, r.message, r.attempts, due, r.todo, r.created_ns) for r in out]

    def delivered_counts(self) -> tuple[int, int]:
        """(transitions delivered, messages that carried them): a grouped message marks its rows delivered in
        one transaction, at one time, so each (target, delivered_ns) is one message."""
        with self._lock:
            rows, messages = self._db.execute(
                "SELECT count(*), count(DISTINCT target || ':' || delivered_ns) FROM outbox"
                " WHERE delivered_ns IS NOT NULL"
            ).fetchone()
        return int(rows), int(messages)

    def last_queued(self, target: str, alert_id: str) -> int | None:
        """When a message of this alert was last queued for the target (what its repeat_interval counts from)."""
        with self._lock:
            (last,) = self._db.execute(  # keys are "<alert id>#...": a range on the (target, key) index
                "SELECT max(created_ns) FROM outbox WHERE target = ? AND key > ? AND key < ?",
                (target, alert_id + "#", alert_id + "$"),
            ).fetchone()
        return None if last is None else int(last)

    def delivered_facts(self, target: str) -> list[tuple[str, str, str]]:
        """(title, body, facts) of each row delivered to the target with facts, oldest first: what Alertmanager
        was last told of each alert (monitor.notify.alertmanager rebuilds its firing set from them)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT title, body, facts FROM outbox"
                " WHERE target = ? AND delivered_ns IS NOT NULL AND facts != '' ORDER BY id",
                (target,),
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def next_for(self, target: str) -> tuple[int, Message, int, int] | None:
        """The oldest undelivered message of a target: (id, message, attempts, next_try_ns)."""
        with self._lock:
            row = self._db.execute(
                _SELECT + " FROM outbox WHERE target = ? AND delivered_ns IS NULL ORDER BY id LIMIT 1", (target,)
            ).fetchone()
        if row is None:
            return None
        r = _row(row)
        return r.id, r.message, r.attempts, r.next_ns

    def delivered(self, *row_ids: int) -> None:
        """All of them in one transaction: a grouped message is delivered for every transition it carries."""
        now = time.time_ns()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE outbox SET delivered_ns = ?, attempts = attempts + 1 WHERE id = ?",
                    [(now, i) for i in row_ids],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def failed(self, row_id: int, retry_in_s: float, error: str, *more: int) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_ns = ?, last_error = ? WHERE id = ?",
                [(time.time_ns() + int(retry_in_s * 1e9), error[:500], i) for i in (row_id, *more)],
            )

    def pending(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox WHERE delivered_ns IS NULL").fetchone()
            return int(n)

    def orphans(self, known: Sequence[str]) -> dict[str, int]:
        """Undelivered rows per target id not in `known` (a target removed from the config: nobody sends them)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT target, count(*) FROM outbox WHERE delivered_ns IS NULL GROUP BY target"
            ).fetchall()
        skip = set(known)
        return {str(t): int(n) for t, n in rows if t not in skip}

    def drop(self, target: str) -> int:
        """Delete a target's undelivered rows (its delivered ones stay: they still stop a copy); how many."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE target = ? AND delivered_ns IS NULL", (target,))
            return int(cur.rowcount)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(r: tuple[object, ...]) -> Row:
    group = None if r[7] is None else str(r[7])
    m = Message(
        str(r[1]), str(r[2]), str(r[3]), str(r[4]), group, str(r[8]), str(r[9]), language=str(r[12]), facts=str(r[13])
    )
    return Row(int(r[0]), m, int(r[5]), int(r[6]), str(r[10]), int(r[11]))  # type: ignore[call-overload]
