"""The HJ 212 platform server: data loggers connect over TCP, stay connected, and get 9014 only once journaled.

A logger re-sends an upload it got no 9014 for, so the reply is the acknowledgement, as a PUBACK is for MQTT:
it is written only after `journal.append` returned (fsync), and the journal's unique key absorbs the copy a
lost reply causes. Packets of every connection go to one committer, which journals what is waiting in one
commit (loggers reporting at the same minute share an fsync).

Per frame: the CRC (else 9011 QnRtn 9), the MN known from the station files (else QnRtn 4), the PW right
(else QnRtn 3); a rejected packet is counted (`hj212_packets_total{result}`, `readings_rejected{reason}`),
dead-lettered on topic `hj212/<MN>`, and the connection stays up. Accepted packets decode through
`hj212_decode` and pass the same admission as MQTT ingest.

Memory: a connection is not read again until what it sent is committed and answered, so it holds at most one
read (`connection_buffer_bytes`, plus asyncio's own buffer of twice that) and one partial frame
(`max_frame_bytes`, the FrameReader's bound); `max_connections` bounds the rest. A connection with no valid
frame for `idle_timeout_s` (silent, or garbage only) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from monitor.config import AdmissionConfig, HJ212Config
from monitor.domain.hj212 import (
    CRC,
    QNRTN_CRC,
    QNRTN_MN,
    QNRTN_PW,
    Frame,
    FrameError,
    FrameReader,
    HJ212Error,
    Packet,
    Reassembler,
    parse_segment,
    reply_data_ack,
    reply_request,
)
from monitor.domain.pacing import Backoff
from monitor.domain.params import Catalogue
from monitor.domain.reading import Reading
from monitor.domain.rejection import Rejection
from monitor.ingest.admission import Admission
from monitor.ingest.clock import ClockFault
from monitor.ingest.deadletter import DeadLetterSink
from monitor.ingest.hj212_decode import DATA_COMMANDS, decode_packet
from monitor.ingest.mqtt import RejectionLog
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.rules.timeofday import zone
from monitor.thresholds.model import Station

log = logging.getLogger("riverwatch.hj212")

DEFAULT_TIMEZONE = "Asia/Shanghai"  # DataTime without a station time zone: China Standard Time
COMMIT_READINGS = 20_000  # most readings journaled per commit (more wait for the next)


@dataclass(frozen=True)
class Logger:
    """A data logger as the station files describe it; `password` None when its source cannot be read."""

    station: str
    mn: str
    password: str | None
    tz: tzinfo
    problem: str = ""


def loggers(stations: Mapping[str, Station]) -> dict[str, Logger]:
    """MN -> logger, passwords read now from each station's pw_env / pw_file (a reload reads them again)."""
    out: dict[str, Logger] = {}
    for st in stations.values():
        if not st.mn:
            continue
        password: str | None = None
        problem = ""
        if st.pw_env:
            password = os.environ.get(st.pw_env)
            if password is None:
                problem = f"station {st.id}: pw_env {st.pw_env} is not set"
        elif st.pw_file:
            try:
                password = Path(st.pw_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                problem = f"station {st.id}: cannot read pw_file {st.pw_file}: {getattr(e, 'strerror', e)}"
        else:
            problem = f"station {st.id}: no pw_env or pw_file"
        out[st.mn] = Logger(st.id, st.mn, password, zone(st.timezone or DEFAULT_TIMEZONE), problem)
    return out


@dataclass
class _Pending:
    """One accepted packet waiting for the journal; `done` is True once committed, False if not."""

    readings: list[Reading]
    replies: list[bytes]
    result: str  # counted once journaled: accepted, rejected (no reading kept) or other (none carried)
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _shown(text: str | None, limit: int = 64) -> str:
    """An MN or a peer's field, safe for a topic and a log line."""
    if not text:
        return "?"
    clean = "".join(ch if ch.isprintable() and ch not in "/+#" else "_" for ch in text[:limit])
    return clean or "?"


class HJ212Server:
    def __init__(
        self,
        cfg: HJ212Config,
        journal: Journal,
        metrics: Metrics,
        on_journaled: Callable[[], None],
        stations: Callable[[], Mapping[str, Station]],
        catalogue: Callable[[], Catalogue],
        dead_letter: DeadLetterSink | None = None,
        *,
        admission: AdmissionConfig | None = None,
        on_clock_fault: Callable[[ClockFault], None] | None = None,
        max_clock_skew_s: float = 300.0,
    ) -> None:
        """`stations`, `catalogue`: the thresholds in force now (a reload's new loggers and passwords take
        effect from their next packet); `on_clock_fault`: as for MQTT ingest, once per series per packet."""
        self.cfg, self.journal, self.metrics = cfg, journal, metrics
        self.on_journaled = on_journaled
        self.stations, self.catalogue = stations, catalogue
        self.dead_letter = dead_letter
        self.on_clock_fault = on_clock_fault
        self.max_skew_ns = int(max_clock_skew_s * 1e9)
        self.admission = Admission(admission or AdmissionConfig(), lambda: self.stations().keys())
        self.log_rejection = RejectionLog()
        self.port = 0  # the bound port once listening (cfg.port 0: a free one)
        self.listening = asyncio.Event()
        self.connections = 0
        self.connections_peak = 0
        self._by_mn: dict[str, Logger] = {}
        self._stations_seen: object = None
        self._newest: dict[tuple[str, str], int] = {}  # (station, parameter) -> newest DataTime accepted
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._reassembler = Reassembler()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Listen (retrying a busy port with a clear error) and serve until `stop`; what was received is
        journaled and answered before it returns, the connections are closed after."""
        shown = f"{self.cfg.listen}:{self.cfg.port}"
        backoff = Backoff(first=1.0, cap=30.0)
        committer = asyncio.create_task(self._commit_loop())
        server: asyncio.Server | None = None
        try:
            while not stop.is_set():
                try:
                    server = await asyncio.start_server(
                        self._connection,
                        self.cfg.listen,
                        self.cfg.port,
                        limit=self.cfg.connection_buffer_bytes,
                        reuse_address=True,
                    )
                    break
                except OSError as e:
                    delay = backoff.step()
                    why = f"[hj212] cannot listen on {shown}: {e.strerror or e}"
                    if e.errno == 98:
                        why += " (another process has the port: another riverwatch, or the old platform?)"
                    self.metrics.health.fail("hj212", why)
                    log.error("%s; HJ 212 loggers cannot connect; retrying in %.0f s", why, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
            if server is None:
                return
            self.port = int(server.sockets[0].getsockname()[1])
            self.metrics.health.ok("hj212")
            self.listening.set()
            log.info("HJ 212 server listening on %s:%d (versions %s)", self.cfg.listen, self.port, self.cfg.versions)
            await stop.wait()
        finally:
            if server is not None:
                server.close()
            # Whatever was received is journaled and answered; then the connections go.
            self._closing = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            for _ in range(3):
                await asyncio.sleep(0)  # the handlers whose packets were just committed write their replies
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), timeout=1.0)
            log.info("HJ 212 server stopped")

    _closing = False

    # -- one connection --------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if self.connections >= self.cfg.max_connections or self._closing:
            log.warning("HJ 212: %s refused: %d connections already ([hj212].max_connections)", where, self.connections)
            writer.close()
            return
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        self.connections_peak = max(self.connections_peak, self.connections)
        loop = asyncio.get_running_loop()
        frames = FrameReader(self.cfg.max_frame_bytes)
        last_good = loop.time()
        why = "closed by the logger"
        try:
            while True:
                left = last_good + self.cfg.idle_timeout_s - loop.time()
                if left <= 0:
                    why = f"no valid frame for {self.cfg.idle_timeout_s:.0f} s ([hj212].idle_timeout_s)"
                    break
                try:
                    data = await asyncio.wait_for(reader.read(self.cfg.connection_buffer_bytes), timeout=left)
                except TimeoutError:
                    continue  # the loop head says why
                if not data:
                    break  # a frame cut off mid-way is dropped with the connection: the logger re-sends it
                waiting: list[_Pending] = []
                for item in frames.feed(data):
                    if isinstance(item, FrameError):
                        self._count("bad_frame")
                        self.metrics.readings_rejected.labels(item.reason).inc()
                        self.log_rejection(f"hj212/{where}", item.reason, item.detail)
                        if self.dead_letter is not None and item.raw.startswith(b"##"):  # a frame gone wrong
                            self.dead_letter.keep(f"hj212/{where}", item.raw, [Rejection(item.reason, item.detail)])
                        continue
                    if item.crc_ok:
                        last_good = loop.time()
                    waiting.extend(self._frame(item, writer))
                if waiting:
                    self._queue.extend(waiting)
                    self._wake.set()
                    for p in waiting:
                        if await p.done:
                            for reply in p.replies:
                                writer.write(reply)
                await writer.drain()  # a logger that does not read its replies is not read either
        except (ConnectionError, OSError) as e:
            why = f"connection error: {e}"
        finally:
            self.connections -= 1
            self._handlers.discard(task)
            log.info("HJ 212: %s disconnected: %s", where, why)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    def _frame(self, frame: Frame, writer: asyncio.StreamWriter) -> list[_Pending]:
        """Check one frame; a refusal is answered, counted and dead-lettered here, the accepted packets are
        returned to be journaled (their 9014 goes out after the commit)."""
        fields: dict[str, str] = {}
        try:
            packet: Packet | None = parse_segment(frame.segment)
        except HJ212Error as e:
            packet, error, fields = None, e, e.fields
        if packet is not None:
            fields = {"QN": packet.qn or "", "MN": packet.mn, "PW": packet.pw}
        if not frame.crc_ok:
            self._refuse(frame, fields, "bad_crc", CRC, "the CRC does not match the data segment")
            if fields.get("MN"):
                writer.write(self._request_reply(fields, QNRTN_CRC, packet))
            return []
        if packet is None:
            self._refuse(frame, fields, "bad_packet", error.reason, error.detail)
            return []
        if packet.version not in self.cfg.versions:
            detail = f"HJ 212-{packet.version} is not in [hj212].versions"
            self._refuse(frame, fields, "bad_packet", "hj212_version", detail)
            return []
        logger = self._logger(packet.mn)
        if logger is None:
            self._refuse(frame, fields, "unknown_mn", "hj212_unknown_mn", f"no station file has mn = {packet.mn!r}")
            writer.write(self._request_reply(fields, QNRTN_MN, packet))
            return []
        if logger.password is None or not hmac.compare_digest(packet.pw.encode(), logger.password.encode()):
            detail = f"wrong PW for the logger of station {logger.station}"
            if logger.password is None:
                detail += f" (its password cannot be read: {logger.problem})"
            self._refuse(frame, fields, "bad_password", "hj212_password", detail)
            writer.write(self._request_reply(fields, QNRTN_PW, packet))
            return []
        now = time.time_ns()
        for dropped in self._reassembler.expire(now):
            self._count("rejected")
            self.metrics.readings_rejected.labels(dropped.reason).inc()
            self.log_rejection(f"hj212/{_shown(dropped.fields.get('MN'))}", dropped.reason, dropped.detail)
        # A split upload's part without a DataTime waits in the reassembler: its 9014 waits with it.
        return [self._decode(frame, ready, logger, now) for ready in self._reassembler.release(packet, now)]

    def _decode(self, frame: Frame, packet: Packet, logger: Logger, now: int) -> _Pending:
        replies = [reply_data_ack(packet.qn, packet.mn, packet.pw, version=packet.version)] if packet.wants_ack else []
        if packet.cn not in DATA_COMMANDS:  # a notice or a heartbeat: answered in turn, nothing to store
            return _Pending([], replies, "other")
        decoded = decode_packet(
            packet,
            logger.station,
            catalogue=self.catalogue(),
            tz=logger.tz,
            newest=self._newest_of,
            now_ns=now,
            max_skew_ns=self.max_skew_ns,
        )
        kept, refused = self.admission.admit(decoded.readings) if decoded.readings else ([], [])
        rejections = decoded.rejections + refused if refused else decoded.rejections
        if rejections:
            faults: dict[tuple[str, str], ClockFault] = {}
            for rej in rejections:
                self.metrics.readings_rejected.labels(rej.reason).inc()
                self.log_rejection(f"hj212/{_shown(packet.mn)}", rej.reason, rej.detail)
                if rej.reason == "future_timestamp" and rej.station and rej.parameter and rej.ts_ns is not None:
                    faults[(rej.station, rej.parameter)] = ClockFault(rej.station, rej.parameter, rej.ts_ns, now)
            self._keep_dead_letter(frame, packet.mn, rejections)
            if self.on_clock_fault is not None:
                for fault in faults.values():
                    self.on_clock_fault(fault)
        for r in kept:
            key = (r.station, r.parameter)
            if r.ts_ns > self._newest.get(key, -1):
                self._newest[key] = r.ts_ns
        return _Pending(kept, replies, "accepted" if kept else "rejected" if rejections else "other")

    def _newest_of(self, station: str, parameter: str) -> int | None:
        return self._newest.get((station, parameter))

    def _logger(self, mn: str) -> Logger | None:
        stations = self.stations()
        if stations is not self._stations_seen:  # a reload: read the loggers and their passwords again
            self._by_mn = loggers(stations)
            self._stations_seen = stations
            problems = [lg.problem for lg in self._by_mn.values() if lg.problem]
            for p in problems:
                log.error("HJ 212: %s: its logger's packets are refused (QnRtn 3)", p)
            if problems:
                self.metrics.health.degrade("hj212", "; ".join(problems)[:500])
            else:
                self.metrics.health.ok("hj212")
        return self._by_mn.get(mn)

    def _request_reply(self, fields: Mapping[str, str], qn_rtn: int, packet: Packet | None) -> bytes:
        """9011 with QnRtn, naming the upload as far as it could be read."""
        version = packet.version if packet is not None else "2017"
        return reply_request(
            fields.get("QN") or None, fields.get("MN", ""), fields.get("PW", ""), qn_rtn, version=version
        )

    def _refuse(self, frame: Frame, fields: Mapping[str, str], result: str, reason: str, detail: str) -> None:
        self._count(result)
        self.metrics.readings_rejected.labels(reason).inc()
        self.log_rejection(f"hj212/{_shown(fields.get('MN'))}", reason, detail)
        self._keep_dead_letter(frame, fields.get("MN"), [Rejection(reason, detail)])

    def _keep_dead_letter(self, frame: Frame, mn: str | None, rejections: list[Rejection]) -> None:
        if self.dead_letter is None:
            return
        # A TopicSink's record would need the MQTT client: HJ 212 dead letters are kept by a FileSink only.
        self.dead_letter.keep(f"hj212/{_shown(mn)}", frame.raw, rejections)

    def _count(self, result: str) -> None:
        self.metrics.hj212_packets.labels(result).inc()

    # -- the journal -----------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        """Journal what every connection has waiting, one commit at a time; a refused commit answers
        nobody (the loggers re-send) and is not retried here."""
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[_Pending] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].readings) <= COMMIT_READINGS):
                p = self._queue.pop(0)
                batch.append(p)
                size += len(p.readings)
            readings = [r for p in batch for r in p.readings]
            try:
                new = await asyncio.to_thread(self.journal.append, readings)
            except JournalError as e:
                self.metrics.health.fail("journal", str(e))
                log.error("%s; %d HJ 212 packets not acknowledged (their loggers re-send)", e, len(batch))
                for p in batch:
                    self._count("not_journaled")
                    if not p.done.done():
                        p.done.set_result(False)
                await asyncio.sleep(backoff.step())
                continue
            backoff.reset()
            self.metrics.health.ok("journal")
            self.metrics.readings_accepted.inc(new)
            self.metrics.readings_duplicate.inc(len(readings) - new)
            for p in batch:
                self._count(p.result)
                if not p.done.done():
                    p.done.set_result(True)
            if new:
                self.on_journaled()
