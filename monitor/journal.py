"""The durable journal: accepted readings are committed here before the broker is acknowledged.

It is a log with consumer cursors (like a Kafka partition): `store` and `rules` each read forward from
their own persisted cursor, so a crash between any two steps replays work instead of losing it. A row is
pruned only when every consumer has passed it and it is older than the dedup window; until then its
(station, parameter, ts) key also absorbs broker redeliveries, so a redelivered reading is neither
stored nor evaluated twice.

SQLite in WAL mode with synchronous=FULL: a commit survives kill -9 and power loss. Appends are batched
by the caller, so one fsync covers many readings.

The cursors are in a second SQLite file (`journal-cursors.sqlite`), so moving one never waits for an
ingest commit; the journal's own `cursors` table only seeds that file for a journal from before it.

The newest committed rows are also kept in memory (`_Tail`), so consumers that keep up read them from there
instead of from SQLite: reading a row back costs about as much as writing it, and there are two consumers.
The disk stays the truth: a consumer whose cursor is behind the tail (a database outage, a restart) reads
from SQLite, and a batch with redeliveries in it empties the tail instead of guessing which rows it took.
Memory: at most `tail_limit` readings (default 100,000), dropped as soon as every consumer has passed them.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.domain.reading import Reading

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
CREATE TABLE IF NOT EXISTS store_shapes(shape TEXT PRIMARY KEY);
"""

# Columns added to set_aside after its first release (a journal from before them gets them on open):
# `line` a point that is not a reading (alert, screening), `retries` automatic re-sends left, `next_ns` when
# the next is due, `attempts` re-sends so far, `claim` the process re-sending it now (so two never send one).
_SET_ASIDE_COLUMNS = {
    "line": "TEXT",
    "retries": "INTEGER NOT NULL DEFAULT 0",
    "next_ns": "INTEGER NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "claim": "TEXT",
}


@dataclass(frozen=True)
class SetAside:
    """One point the database refused: a reading, or (alert and screening points) its line."""

    id: int
    reading: Reading | None
    line: str | None
    attempts: int
    retries: int
    at_ns: int


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


class _Tail:
    """The newest committed rows, contiguous in seq: every committed row with seq >= `start` is here.

    Chunks are whole appends, (first seq, readings); seqs inside a chunk are consecutive.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.start = 1 << 62  # nothing covered until the first append
        self.firsts: list[int] = []
        self.chunks: list[list[Reading]] = []
        self.arrivals: list[int] = []  # each chunk's received_ns
        self.size = 0

    def add(self, first: int, readings: list[Reading], arrived_ns: int = 0) -> None:
        if self.chunks and first != self.firsts[-1] + len(self.chunks[-1]):
            self.reset(first)  # rows between are on disk only (another writer): cover again from here
        if not self.chunks:
            self.start = first
        self.firsts.append(first)
        self.chunks.append(readings)
        self.arrivals.append(arrived_ns)
        self.size += len(readings)
        while self.size > self.limit and len(self.chunks) > 1:
            self._drop_first()

    def reset(self, next_seq: int) -> None:
        """Forget everything; cover again from `next_seq` (the disk has rows this tail cannot vouch for)."""
        self.firsts, self.chunks, self.arrivals, self.size = [], [], [], 0
        self.start = next_seq

    def _drop_first(self) -> None:
        self.size -= len(self.chunks[0])
        self.start = self.firsts[1] if len(self.firsts) > 1 else self.firsts[0] + len(self.chunks[0])
        del self.firsts[0], self.chunks[0], self.arrivals[0]

    def covers(self, after: int) -> bool:
        return after + 1 >= self.start

    def slices(self, after: int, limit: int) -> list[tuple[int, list[Reading]]]:
        """Up to `limit` readings after seq `after`, as (seq of the first, readings) slices of the chunks."""
        out: list[tuple[int, list[Reading]]] = []
        n = 0
        i = max(bisect.bisect_right(self.firsts, after) - 1, 0)
        while i < len(self.chunks) and n < limit:
            first, chunk = self.firsts[i], self.chunks[i]
            skip = max(after + 1 - first, 0)
            part = chunk[skip : skip + limit - n]
            if part:
                out.append((first + skip, part))
                n += len(part)
            i += 1
        return out

    def arrival(self, after: int) -> int | None:
        """When the first reading after seq `after` was committed; None past the newest."""
        i = max(bisect.bisect_right(self.firsts, after) - 1, 0)
        if i < len(self.chunks) and after + 1 >= self.firsts[i] + len(self.chunks[i]):
            i += 1  # `after` is the chunk's last reading: the next chunk's
        return self.arrivals[i] if i < len(self.chunks) else None

    def release(self, upto: int) -> None:
        """Drop whole chunks every consumer has passed."""
        while self.chunks and self.firsts[0] + len(self.chunks[0]) - 1 <= upto:
            self._drop_first()


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class Journal:
    """Thread-safe: calls come from `asyncio.to_thread` so the event loop never waits on fsync."""

    def __init__(self, path: Path, *, dedup_window_s: float = 600.0, tail_limit: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.cursor_path = path.with_name(f"{path.stem}-cursors{path.suffix}")
        self._dedup_window_ns = int(dedup_window_s * 1e9)
        self._lock = threading.Lock()  # the readings database (held through fsyncs)
        self._clock = threading.Lock()  # the cursors database
        self._mem = threading.Lock()  # the tail and the in-memory cursors: innermost, never held around another
        self._tail = _Tail(tail_limit)
        self._alert_lines_maybe = True  # False once known empty: the store asks before every batch
        try:
            self._db = _open(path)
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(set_aside)")}
            for column, kind in _SET_ASIDE_COLUMNS.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE set_aside ADD COLUMN {column} {kind}")
            seeded = self.cursor_path.exists()
            # The cursors live in a database of their own: a consumer moving its cursor must not wait for an
            # ingest commit (measured: 30-190 ms per move under load, twice per store batch).
            self._cdb = _open(self.cursor_path)
            self._cdb.execute("CREATE TABLE IF NOT EXISTS cursors(consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
            if not seeded:  # a journal from before the split: carry its cursors over
                for c, seq in self._db.execute("SELECT consumer, seq FROM cursors").fetchall():
                    self._cdb.execute("INSERT OR IGNORE INTO cursors VALUES (?, ?)", (c, seq))
            for c in CONSUMERS:
                self._db.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (c,))  # the row probe() writes
                self._cdb.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (c,))
            self._cursors = dict(self._cdb.execute("SELECT consumer, seq FROM cursors").fetchall())
        except sqlite3.Error as e:
            why = diagnose(path.parent)
            raise JournalError(f"journal {path}: {e}" + (f" ({why})" if why else "")) from e

    @contextlib.contextmanager
    def _guarded(self, cursors: bool = False) -> Iterator[sqlite3.Connection]:
        """One caller at a time; any SQLite failure becomes a JournalError, with an open transaction undone."""
        db, lock = (self._cdb, self._clock) if cursors else (self._db, self._lock)
        with lock:
            try:
                yield db
            except sqlite3.Error as e:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                why = diagnose(self.path.parent)
                raise JournalError(f"journal {self.path}: {e}" + (f" ({why})" if why else "")) from e

    def probe(self) -> None:
        """Prove the journal takes writes now (a read-only disk opens fine and fails only on the first write)."""
        with self._guarded() as db:
            db.execute("UPDATE cursors SET seq = seq WHERE consumer = 'store'")
        with self._guarded(cursors=True) as db:
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
            db.executemany(
                "INSERT OR IGNORE INTO readings(station, parameter, ts_ns, value, flag, received_ns)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            (last,) = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone() or (0,)
            db.execute("COMMIT")
            new = db.total_changes - before
            with self._mem:
                if new == len(rows):  # one writer, AUTOINCREMENT: the batch took the seqs last-n+1 .. last
                    self._tail.add(last - new + 1, list(readings), now)
                else:
                    self._tail.reset(last + 1)
            return new

    def read(self, consumer: str, limit: int) -> list[tuple[int, Reading]]:
        """The next readings after the consumer's cursor, oldest first, each with its seq."""
        return [(first + i, r) for first, part in self._next(consumer, limit, 0) for i, r in enumerate(part)]

    def take(self, consumer: str, limit: int, after: int = 0) -> tuple[list[Reading], int]:
        """The next readings after the consumer's cursor (and after `after`, work done but not yet recorded),
        oldest first, with the seq of the last one (0 when there are none); no pair per reading."""
        readings: list[Reading] = []
        last = 0
        for first, part in self._next(consumer, limit, after):
            readings += part
            last = first + len(part) - 1
        return readings, last

    def arrival(self, consumer: str, after: int = 0) -> int | None:
        """When the consumer's next reading was received (time.time_ns at its commit): the oldest arrival of
        the batch `take` gives it, what says whether readings came late (monitor.notify.pipeline)."""
        with self._mem:
            after = max(after, self._cursors[consumer])
            if self._tail.covers(after):
                return self._tail.arrival(after)
        with self._guarded() as db:
            row = db.execute("SELECT received_ns FROM readings WHERE seq > ? ORDER BY seq LIMIT 1", (after,)).fetchone()
        return None if row is None else int(row[0])

    def _next(self, consumer: str, limit: int, after: int) -> list[tuple[int, list[Reading]]]:
        """(seq of the first, readings) runs: slices of the tail when it covers them (no wait for a commit's
        fsync), else one row at a time from SQLite."""
        with self._mem:
            after = max(after, self._cursors[consumer])
            if self._tail.covers(after):
                return self._tail.slices(after, limit)
        with self._guarded() as db:
            rows = db.execute(
                "SELECT seq, station, parameter, ts_ns, value, flag FROM readings WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [(row[0], [Reading(*row[1:])]) for row in rows]

    def advance(self, consumer: str, seq: int) -> None:
        """Move a consumer past `seq`: its work up to there is confirmed done."""
        with self._guarded(cursors=True) as db:
            db.execute("UPDATE cursors SET seq = max(seq, ?) WHERE consumer = ?", (seq, consumer))
            with self._mem:
                self._cursors[consumer] = max(self._cursors[consumer], seq)
                self._tail.release(min(self._cursors.values()))

    def set_aside(
        self, refused: Sequence[tuple[Reading, str]], *, retries: int = 0, first_retry_s: float = 1.0
    ) -> None:
        """Keep readings the database refused (4xx), with the reason, instead of retrying them forever.

        `retries` automatic re-sends are left to them (a proxy's 400 passes; a bad point does not), the first
        after `first_retry_s`; after that only `riverwatch store redrive` sends them again.
        """
        now = time.time_ns()
        due = now + int(first_retry_s * 1e9)
        with self._guarded() as db:
            db.executemany(
                "INSERT INTO set_aside(at_ns, error, station, parameter, ts_ns, value, flag, retries, next_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(now, error[:2000], *r, retries, due) for r, error in refused],
            )

    def set_aside_lines(
        self, refused: Sequence[tuple[str, str]], *, retries: int = 0, first_retry_s: float = 1.0
    ) -> None:
        """Alert and screening points the database refused, kept as their lines (see `set_aside`)."""
        now = time.time_ns()
        due = now + int(first_retry_s * 1e9)
        with self._guarded() as db:
            db.executemany(
                "INSERT INTO set_aside(at_ns, error, line, retries, next_ns) VALUES (?, ?, ?, ?, ?)",
                [(now, error[:2000], line, retries, due) for line, error in refused],
            )

    def claim_set_aside(
        self,
        claim: str,
        limit: int,
        *,
        due_ns: int | None = None,
        since_ns: int = 0,
        after_id: int = 0,
        stale: Sequence[str] = (),
    ) -> list[SetAside]:
        """Take up to `limit` set-aside points for re-sending, oldest first, so no other process sends them too.

        `due_ns`: only those with automatic re-sends left whose time has come (the store's own retries);
        None: every one set aside at or after `since_ns` (a redrive). `stale` claims (of processes that died
        while re-sending) count as free.
        """
        free = "(claim IS NULL" + "".join(" OR claim = ?" for _ in stale) + ")"
        where = f"{free} AND at_ns >= ? AND id > ?"
        if due_ns is not None:
            where += " AND retries > 0 AND next_ns <= ?"
        args: list[object] = [*stale, since_ns, after_id] + ([due_ns] if due_ns is not None else [])
        with self._guarded() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                f"UPDATE set_aside SET claim = ? WHERE id IN (SELECT id FROM set_aside WHERE {where}"
                " ORDER BY id LIMIT ?)",
                (claim, *args, limit),
            )
            rows = db.execute(
                "SELECT id, station, parameter, ts_ns, value, flag, line, attempts, retries, at_ns FROM set_aside"
                " WHERE claim = ? ORDER BY id",
                (claim,),
            ).fetchall()
            db.execute("COMMIT")
        return [
            SetAside(row[0], None if row[6] is not None else Reading(*row[1:6]), row[6], row[7], row[8], row[9])
            for row in rows
        ]

    def settle_set_aside(
        self, claim: str, written: Sequence[int], refused: Sequence[tuple[int, str, int, int]]
    ) -> None:
        """After a re-send: drop what the database took; the rest, with (id, error, retries left, next try ns),
        stays set aside and free for the next claim."""
        with self._guarded() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM set_aside WHERE id = ?", [(i,) for i in written])
            db.executemany(
                "UPDATE set_aside SET error = ?, retries = ?, next_ns = ?, attempts = attempts + 1, claim = NULL"
                " WHERE id = ?",
                [(error[:2000], retries, next_ns, i) for i, error, retries, next_ns in refused],
            )
            db.execute("UPDATE set_aside SET claim = NULL WHERE claim = ?", (claim,))
            db.execute("COMMIT")

    def set_aside_claims(self) -> list[str]:
        with self._guarded() as db:
            return [c for (c,) in db.execute("SELECT DISTINCT claim FROM set_aside WHERE claim IS NOT NULL")]

    def release_claims(self, claims: Sequence[str]) -> None:
        """Free the points of processes that died while re-sending them."""
        with self._guarded() as db:
            db.executemany("UPDATE set_aside SET claim = NULL WHERE claim = ?", [(c,) for c in claims])

    def set_aside_state(self) -> tuple[int, int, int | None, str]:
        """(points set aside, of which with automatic re-sends left, the earliest due ns, the newest error)."""
        with self._guarded() as db:
            n, auto, due = db.execute(
                "SELECT count(*), coalesce(sum(retries > 0), 0), min(CASE WHEN retries > 0 THEN next_ns END)"
                " FROM set_aside"
            ).fetchone()
            last = db.execute("SELECT error FROM set_aside ORDER BY id DESC LIMIT 1").fetchone()
            return int(n), int(auto), due, last[0] if last else ""

    def shapes(self) -> set[str]:
        """Point shapes (measurement, tag and field keys) the database has accepted."""
        with self._guarded() as db:
            return {s for (s,) in db.execute("SELECT shape FROM store_shapes")}

    def add_shapes(self, shapes: Sequence[str]) -> None:
        with self._guarded() as db:
            db.executemany("INSERT OR IGNORE INTO store_shapes VALUES (?)", [(s,) for s in shapes])

    def append_alert_lines(self, lines: Sequence[str]) -> None:
        """Alert points for the database ride in the journal too, so a database outage loses none."""
        with self._guarded() as db:
            db.executemany("INSERT INTO alert_lines(line) VALUES (?)", [(x,) for x in lines])
            self._alert_lines_maybe = True

    def alert_lines(self, limit: int) -> list[tuple[int, str]]:
        if not self._alert_lines_maybe:
            return []
        with self._guarded() as db:
            rows = list(db.execute("SELECT id, line FROM alert_lines ORDER BY id LIMIT ?", (limit,)))
            if not rows:
                self._alert_lines_maybe = False
            return rows

    def release_alert_lines(self, last_id: int) -> None:
        with self._guarded() as db:
            db.execute("DELETE FROM alert_lines WHERE id <= ?", (last_id,))

    def prune(self) -> int:
        """Drop rows every consumer has passed and that are older than the dedup window."""
        horizon = time.time_ns() - self._dedup_window_ns
        with self._mem:
            done = min(self._cursors.values())  # durable: a cursor moves in memory only after its commit
        with self._guarded() as db:
            cur = db.execute("DELETE FROM readings WHERE seq <= ? AND received_ns < ?", (done, horizon))
            return cur.rowcount

    def backlog(self, consumer: str) -> int:
        """Readings journaled but not yet done by `consumer`."""
        with self._mem:
            after = self._cursors[consumer]
        with self._guarded() as db:
            (n,) = db.execute("SELECT count(*) FROM readings WHERE seq > ?", (after,)).fetchone()
            return int(n)

    def set_aside_count(self) -> int:
        with self._guarded() as db:
            (n,) = db.execute("SELECT count(*) FROM set_aside").fetchone()
            return int(n)

    def close(self) -> None:
        with self._lock, self._clock:
            self._db.close()
            self._cdb.close()
