"""The store: readings and alerts leave the journal for the time-series database here.

Three writers share one small interface (`write(lines)` raising Retryable or BadBatch): InfluxDB v2
through influxdb-client's async API, InfluxDB 1.x through its `/write`, and the embedded SQLite store used
when `[influxdb]` is absent; the lines themselves come from monitor.store.lineprotocol. `Drain` is the
journal consumer that batches by size and time, retries what can succeed later with capped backoff, and
sets aside what the database refuses (4xx; monitor.store.setaside re-sends it while the refusal looks
passing, and on `riverwatch store redrive`), so one bad batch cannot wedge the pipeline and neither a
database outage nor a proxy's burst of 400s loses anything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from monitor.domain.pacing import Backoff, nap
from monitor.domain.reading import Reading
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.store.batches import BadBatchError, RetryableError, Writer, isolate
from monitor.store.lineprotocol import (
    MEASUREMENT,
    LineProtocolError,
    line_shape,
    reading_line,
    reading_shape,
    split_line,
)
from monitor.store.setaside import SetAsideKeeper

__all__ = ["BadBatchError", "Drain", "EmbeddedStore", "InfluxV1Writer", "InfluxV2Writer", "RetryableError", "Writer"]

log = logging.getLogger("riverwatch.store")


def _classify(status: int, body: object, api: str) -> Exception:
    """Only a malformed batch is refused for good. Auth (401/403) and a missing database or bucket (404) are
    configuration an operator fixes while the journal holds the data; 413 and 5xx are retried too. The
    message is one line, with what to change where the status says it (issue 17: a v2 writer pointed at
    InfluxDB 1.x logged `HTTP 404: b'404 page not found\\n'` forever)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())[:300]
    if status in (400, 422):
        return BadBatchError(f"HTTP {status}: {text}")
    return RetryableError(f"HTTP {status}: {text}{_hint(status, text, api)}")


def _hint(status: int, text: str, api: str) -> str:
    """What an operator changes in [influxdb] for a refusal that waiting will not heal."""
    if status in (401, 403):
        what = (
            "token (token_env / token_file)" if api == "v2" else "username and password (password_env / password_file)"
        )
        return f" (check [influxdb].{what}; readings stay journaled meanwhile)"
    if status == 404 and api == "v2" and "page not found" in text:
        return ' (no /api/v2/write here: for InfluxDB 1.x before 1.8 set [influxdb].api = "v1" and database)'
    if status == 404:
        where = "bucket and org" if api == "v2" else "database (CREATE DATABASE, or [influxdb].database)"
        return f" (check [influxdb].{where})"
    return ""


class InfluxV2Writer:
    """InfluxDB 2.x / VictoriaMetrics through influxdb-client's async API (one POST per batch)."""

    name = "influxdb"

    def __init__(self, url: str, org: str, bucket: str, token: str, timeout_s: float = 10.0) -> None:
        self._url, self._org, self._bucket, self._token = url, org, bucket, token
        self._timeout_ms = int(timeout_s * 1000)
        self._client: InfluxDBClientAsync | None = None

    async def write(self, lines: Sequence[str]) -> None:
        if self._client is None:  # the async client must be made inside the running loop
            self._client = InfluxDBClientAsync(
                url=self._url, token=self._token, org=self._org, timeout=self._timeout_ms
            )
        try:
            await self._client.write_api().write(
                bucket=self._bucket,
                org=self._org,
                record="\n".join(lines),
                # the client's enum constants are plain str, its annotation says WritePrecision
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as e:
            raise _classify(int(e.status or 0), e.body or e.reason, "v2") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise RetryableError(f"{type(e).__name__}: {e}") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class InfluxV1Writer:
    """InfluxDB 1.x (1.6 has no /api/v2): POST /write?db=&rp=&precision=ns with basic auth."""

    name = "influxdb-v1"

    def __init__(
        self,
        url: str,
        database: str,
        retention_policy: str = "",
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self._url = url.rstrip("/") + "/write"
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"} if username else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def write(self, lines: Sequence[str]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self._url, params=self._params, headers=self._headers, data="\n".join(lines).encode()
            ) as resp:
                if resp.status >= 300:
                    raise _classify(resp.status, await resp.text(), "v1")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise RetryableError(f"{type(e).__name__}: {e}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class EmbeddedStore:
    """SQLite under data_dir, for zero-install use. Idempotent per (measurement, series, ts) like InfluxDB."""

    name = "embedded"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS points(line_key TEXT NOT NULL, ts_ns INTEGER NOT NULL,"
            " fields TEXT NOT NULL, PRIMARY KEY(line_key, ts_ns))"
        )

    async def write(self, lines: Sequence[str]) -> None:
        await asyncio.to_thread(self._write, lines)

    def _write(self, lines: Sequence[str]) -> None:
        rows = []
        for line in lines:
            key, fields, ts = _split_line(line)
            rows.append((key, int(ts), fields))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise RetryableError(f"embedded store {self.path}: {e}") from None

    def count(self, measurement: str = MEASUREMENT) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM points WHERE line_key LIKE ?", (measurement + ",%",)).fetchone()
        return int(n)

    async def close(self) -> None:
        self._db.close()


def _split_line(line: str) -> tuple[str, str, str]:
    """A line the store cannot split is a bad batch: the database would refuse it too."""
    try:
        return split_line(line)
    except LineProtocolError as e:
        raise BadBatchError(str(e)) from None


async def write_isolating(writer: Writer, readings: Sequence[Reading]) -> list[tuple[Reading, str]]:
    """Write a batch; the readings the database refuses, with the reason (see monitor.store.batches.isolate).

    RetryableError propagates.
    """
    refused = await isolate(writer, [reading_line(r) for r in readings])
    return [(readings[i], error) for i, error in refused]


def _accepted_shapes(readings: Sequence[Reading], refused: Sequence[tuple[Reading, str]]) -> set[str]:
    """The shapes of the readings a write took (what later tells a passing 400 from a bad point)."""
    if refused:
        bad = {id(r) for r, _ in refused}
        return {reading_shape(r) for r in readings if id(r) not in bad}
    shapes = set()
    if any(not r.flag for r in readings):
        shapes.add(reading_shape(Reading("", "", 0, 0.0, None)))
    if any(r.flag for r in readings):
        shapes.add(reading_shape(Reading("", "", 0, 0.0, "flag")))
    return shapes


async def _write_alert_lines(journal: Journal, writer: Writer, keeper: SetAsideKeeper, limit: int) -> None:
    """Alert and screening points, in rounds of `limit` until none wait; what the database refuses is set
    aside like a reading (and re-sent like one)."""
    for _ in range(20):  # a bound per batch, so readings keep moving behind a flood of screening points
        rows = await asyncio.to_thread(journal.alert_lines, limit)
        if not rows:
            return
        lines = [line for _, line in rows]
        refused = await isolate(writer, lines)
        if refused:
            log.error(
                "store: %s refused %d of %d alert/screening points: %s",
                writer.name,
                len(refused),
                len(rows),
                refused[0][1],
            )
            await keeper.hold_lines([(lines[i], error) for i, error in refused])
        bad = {i for i, _ in refused}
        firsts = {line.split(",", 1)[0]: line for i, line in enumerate(lines) if i not in bad}
        await keeper.accepted({line_shape(line) for line in firsts.values()})
        await asyncio.to_thread(journal.release_alert_lines, rows[-1][0])
        if len(rows) < limit:
            return


class Drain:
    """The store's journal consumer: readings to the database, in order, each released only after a 2xx.

    Memory is one batch whatever the backlog: the journal on disk absorbs a database outage. If the
    database confirmed a batch but the journal cannot record that (disk full), the confirmation is kept in
    memory and the batch is not sent again: a database without per-key overwrite (VictoriaMetrics without
    dedup) would otherwise store it twice.
    """

    def __init__(
        self,
        journal: Journal,
        writer: Writer,
        metrics: Metrics,
        wake: asyncio.Event,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 0.5,
        retry_cap_s: float = 30.0,
        bad_request_retries: int = 8,
    ) -> None:
        self.journal, self.writer, self.metrics, self.wake = journal, writer, metrics, wake
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.backoff = Backoff(cap=retry_cap_s)
        self.keeper = SetAsideKeeper(
            journal, writer, metrics, retries=bad_request_retries, retry_cap_s=retry_cap_s, batch=batch_size
        )
        self._started = False
        self.confirmed = 0  # highest seq the database confirmed, whether or not the cursor records it yet
        self._pruned_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`; then keep writing while it succeeds and return at the first failure or when empty."""
        while True:
            try:
                if await self._batch(stop):
                    return
                self.backoff.reset()
                continue
            except RetryableError as e:
                self.metrics.store_retries.inc()
                self.metrics.health.degrade("store", f"{self.writer.name}: {e}")
                if stop.is_set():
                    left = await asyncio.to_thread(self.journal.backlog, "store")
                    log.warning("store: %s; %d readings stay journaled for the next start", e, left)
                    return
                delay = self.backoff.step()
                log.warning("store: %s; retrying in %.1f s", e, delay)
            except JournalError as e:
                self.metrics.health.fail("journal", str(e))
                if stop.is_set():
                    return
                delay = self.backoff.step()
                log.error("store: %s; retrying in %.1f s", e, delay)
            await nap(None, stop, delay)

    async def _read(self) -> tuple[list[Reading], int]:
        return await asyncio.to_thread(self.journal.take, "store", self.batch_size, self.confirmed)

    async def _batch(self, stop: asyncio.Event) -> bool:
        """One batch; True when stopped and the journal is empty."""
        if not self._started:
            await self.keeper.start()
            self._started = True
        await self._release()
        try:
            await _write_alert_lines(self.journal, self.writer, self.keeper, self.batch_size)
        except RetryableError as e:
            log.warning("store: alert points: %s; retrying with the next batch", e)
        await self.keeper.retry_due()
        readings, last = await self._read()
        if not readings:
            if stop.is_set():
                return True
            await nap(self.wake, stop, self.flush_interval_s)
            return False
        if len(readings) < self.batch_size and not stop.is_set():
            # A partial batch waits one flush interval for company, then goes anyway.
            await nap(None, stop, self.flush_interval_s)
            more, more_last = await self._read()
            if more:
                readings, last = more, more_last
        refused = await write_isolating(self.writer, readings)
        if refused:
            (first, error) = refused[0]
            log.error(
                "store: %s refused %d of %d readings (first: %s/%s at %d ns: %s); set aside in the journal",
                self.writer.name,
                len(refused),
                len(readings),
                first.station,
                first.parameter,
                first.ts_ns,
                error,
            )
            await self.keeper.hold_readings(refused)
        await self.keeper.accepted(_accepted_shapes(readings, refused) if len(refused) < len(readings) else set())
        self.confirmed = last
        self.metrics.readings_written.inc(len(readings) - len(refused))
        self.metrics.health.ok("store")
        await self._release()
        return False

    async def _release(self) -> None:
        if self.confirmed:
            await asyncio.to_thread(self.journal.advance, "store", self.confirmed)
            # Pruning walks the rows still inside the dedup window: every few seconds, not every batch.
            if time.monotonic() - self._pruned_at >= 5.0:
                await asyncio.to_thread(self.journal.prune)
                self._pruned_at = time.monotonic()
