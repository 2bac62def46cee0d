"""Points the database refused: kept in the journal's `set_aside`, re-sent automatically while the refusal
looks passing, and on demand (`riverwatch store redrive`) once an operator fixed the cause.

How a passing 400 is told from a bad point: a point whose shape (measurement, tag and field keys) the
database has accepted before is refused for a reason outside it (a proxy, a limit an operator can raise),
so it gets `retries` automatic re-sends with capped backoff; a point of a shape never accepted waits for a
redrive. Every re-send claims its rows first (one SQLite transaction), so the service and a redrive never
send the same point twice, and a row leaves `set_aside` only after a 2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.domain.reading import Reading
from monitor.journal import Journal, SetAside
from monitor.metrics import Metrics
from monitor.store.batches import Writer, isolate
from monitor.store.lineprotocol import LineProtocolError, line_shape, reading_line, reading_shape

log = logging.getLogger("riverwatch.store")

CLAIM = f"{os.getpid()}:{secrets.token_hex(6)}"  # this process, as written on the rows it is re-sending
HEALTH = "set_aside"


def claim_alive(claim: str) -> bool:
    """A claim of a process that no longer runs is stale (its rows were never settled)."""
    pid_text, _, _ = claim.partition(":")
    if claim == CLAIM:
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():  # our pid, another token: a previous run (pid 1 in a container, say)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _line(row: SetAside) -> str:
    return row.line if row.line is not None else reading_line(row.reading)  # type: ignore[arg-type]


def _shape(line: str) -> str:
    with contextlib.suppress(LineProtocolError):
        return line_shape(line)
    return ""


@dataclass
class Resent:
    written: int = 0  # points the database took (and that left set_aside)
    readings: int = 0  # of them, readings (the rest are alert and screening points)
    refused: int = 0
    error: str = ""


async def resend(
    journal: Journal, writer: Writer, rows: Sequence[SetAside], *, automatic: bool, retry_cap_s: float
) -> Resent:
    """Send claimed rows again and settle them: written ones leave `set_aside`, refused ones stay.

    Automatic re-sends probe first (a proxy still refusing costs two requests), and bisect on a row's last
    automatic try; RetryableError frees the rows untouched and propagates.
    """
    lines = [_line(r) for r in rows]
    last_try = automatic and any(r.retries <= 1 for r in rows)
    try:
        refused = await isolate(writer, lines, probe=rows[0].attempts * (len(rows) // 3 + 1), probes=not last_try)
    except BaseException:
        await asyncio.to_thread(journal.settle_set_aside, CLAIM, [], [])
        raise
    bad = dict(refused)
    now = time.time_ns()
    kept = []
    for i, error in refused:
        r = rows[i]
        retries = max(r.retries - 1, 0) if automatic else r.retries
        kept.append((r.id, error, retries, now + int(min(2.0 ** (r.attempts + 1), retry_cap_s) * 1e9)))
    written = [r for i, r in enumerate(rows) if i not in bad]
    await asyncio.to_thread(journal.settle_set_aside, CLAIM, [r.id for r in written], kept)
    readings = sum(1 for r in written if r.reading is not None)
    return Resent(len(written), readings, len(kept), refused[0][1] if refused else "")


class SetAsideKeeper:
    """The drain's side of `set_aside`: what is refused goes in, what is due comes out again, and /healthz
    says "degraded" with how many points wait while any do."""

    def __init__(
        self, journal: Journal, writer: Writer, metrics: Metrics, *, retries: int, retry_cap_s: float, batch: int
    ) -> None:
        self.journal, self.writer, self.metrics = journal, writer, metrics
        self.retries, self.retry_cap_s, self.batch = retries, retry_cap_s, batch
        self.known: set[str] = set()
        self.next_due: int | None = None
        self._shown = ""

    async def start(self) -> None:
        """Free the rows of a re-send that died with its process; load what the database accepted before."""
        claims = await asyncio.to_thread(self.journal.set_aside_claims)
        stale = [c for c in claims if not claim_alive(c)]
        if stale:
            await asyncio.to_thread(self.journal.release_claims, stale)
        self.known = await asyncio.to_thread(self.journal.shapes)
        await self.refresh()

    async def accepted(self, shapes: set[str]) -> None:
        new = shapes - self.known
        if new:
            await asyncio.to_thread(self.journal.add_shapes, sorted(new))
            self.known |= new

    async def hold_readings(self, refused: Sequence[tuple[Reading, str]]) -> None:
        passing = [x for x in refused if reading_shape(x[0]) in self.known]
        other = [x for x in refused if reading_shape(x[0]) not in self.known]
        if passing:
            await asyncio.to_thread(self.journal.set_aside, passing, retries=self.retries)
        if other:
            await asyncio.to_thread(self.journal.set_aside, other)
        self.metrics.readings_set_aside.inc(len(refused))
        await self.refresh()

    async def hold_lines(self, refused: Sequence[tuple[str, str]]) -> None:
        passing = [x for x in refused if _shape(x[0]) in self.known]
        other = [x for x in refused if _shape(x[0]) not in self.known]
        if passing:
            await asyncio.to_thread(self.journal.set_aside_lines, passing, retries=self.retries)
        if other:
            await asyncio.to_thread(self.journal.set_aside_lines, other)
        await self.refresh()

    async def retry_due(self) -> None:
        """Re-send what is due, one batch; cheap when nothing is (the earliest due time is kept in memory)."""
        now = time.time_ns()
        if self.next_due is None or self.next_due > now:
            return
        rows = await asyncio.to_thread(self.journal.claim_set_aside, CLAIM, self.batch, due_ns=now)
        if rows:
            done = await resend(self.journal, self.writer, rows, automatic=True, retry_cap_s=self.retry_cap_s)
            if done.written:
                self.metrics.set_aside_resent.inc(done.written)
                self.metrics.readings_written.inc(done.readings)
                log.info("store: %d set-aside points written again (%d refused again)", done.written, done.refused)
        await self.refresh()

    async def refresh(self) -> None:
        """/healthz and the gauge from the journal: degraded while anything is set aside, saying how many."""
        n, auto, due, error = await asyncio.to_thread(self.journal.set_aside_state)
        self.next_due = due
        self.metrics.set_aside_pending.set(n)
        if n == 0:
            if self._shown:
                self.metrics.health.ok(HEALTH)
                self._shown = ""
            return
        when = datetime.fromtimestamp(due / 1e9, UTC).strftime("%H:%M:%SZ") if due else ""
        detail = (
            f"{n} points set aside by {self.writer.name} (newest: {error[:200]}); "
            + (f"{auto} re-sent automatically from {when}; " if auto else "")
            + "`riverwatch store redrive` re-sends them once the cause is fixed"
        )
        if detail != self._shown:
            self.metrics.health.ok(HEALTH)  # degrade() keeps the first reason: a new count replaces it
            self.metrics.health.degrade(HEALTH, detail)
            self._shown = detail


async def redrive(journal: Journal, writer: Writer, *, since_ns: int = 0, batch: int = 5000) -> Resent:
    """Every set-aside point (set aside at or after `since_ns`) sent once more; what the database takes leaves
    `set_aside`, what it refuses again stays (with the new error) for the next redrive."""
    claims = await asyncio.to_thread(journal.set_aside_claims)
    stale = [c for c in claims if not claim_alive(c)]
    total = Resent()
    after = 0
    while True:
        rows = await asyncio.to_thread(
            journal.claim_set_aside, CLAIM, batch, since_ns=since_ns, after_id=after, stale=stale
        )
        if not rows:
            return total
        after = rows[-1].id
        done = await resend(journal, writer, rows, automatic=False, retry_cap_s=30.0)
        total.written += done.written
        total.readings += done.readings
        total.refused += done.refused
        total.error = total.error or done.error
