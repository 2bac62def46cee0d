"""Ingest: MQTT messages in, decoded readings journaled, and only then the broker acknowledged.

The session is persistent (fixed client id; clean_session off for 3.1.1, clean_start off with a session
expiry for MQTT 5), so the broker keeps QoS 1 messages while the service is away. aiomqtt acknowledges a
message as soon as it enters its queue, which would lose it on a crash; `PahoControl` turns that off in
paho underneath, takes the messages from paho directly, and acknowledges after the journal commit. The
broker's in-flight window (ReceiveMaximum on MQTT 5, mosquitto's max_inflight_messages on 3.1.1) should be
the backpressure, but mosquitto 2.0 does not keep to it once acknowledgements flow, so `PahoControl` also
pauses reading the socket when more than 4 batches, or more than `[mqtt].inbox_max_bytes` of payload, are
waiting, and decodes at most `[mqtt].batch_max_bytes` of payload at a time: that bounds ingest's memory
under the worst input (maximum-size SenML packs) whatever the broker holds. The connection loop never gives
up; it backs off, capped.

Before the journal: retained messages are ignored or taken once (`retained`), readings without a time get
a receipt time unique per series (`clock`), readings dated too far ahead are refused as future_timestamp and
reported per series to `on_clock_fault`, and undeclared stations pass `admission` or are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable, Collection
from typing import TypedDict

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import AdmissionConfig, MqttConfig
from monitor.domain.pacing import Backoff
from monitor.domain.params import SHIPPED, Catalogue
from monitor.domain.reading import Reading
from monitor.ingest.admission import Admission
from monitor.ingest.clock import ClockFault, ReceiptClock
from monitor.ingest.deadletter import DeadLetterSink, TopicSink
from monitor.ingest.decode import Rejection, decode
from monitor.ingest.paho import Inbound, PahoControl
from monitor.ingest.retained import Memo, RetainedMemo, digest
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics

log = logging.getLogger("riverwatch.ingest")


class RejectionLog:
    """Log each rejection with its topic, but at most `burst` lines per reason per minute."""

    def __init__(self, burst: int = 5) -> None:
        self.burst = burst
        self._window: dict[str, tuple[float, int]] = {}

    def __call__(self, topic: str, reason: str, detail: str) -> None:
        if self._due(reason, f"payloads rejected as {reason}"):
            log.warning("rejected payload on topic %r: %s: %s", topic[:200], reason, detail)

    def warn(self, topic: str, why: str, detail: str) -> None:
        """A reading taken with something ignored, under the same per-minute bound (its own window)."""
        if self._due(f"warning:{why}", f"readings taken with a warning ({why})"):
            log.warning("reading on topic %r taken with a warning: %s", topic[:200], detail)

    def _due(self, key: str, what: str) -> bool:
        now = time.monotonic()
        start, count = self._window.get(key, (now, 0))
        if now - start > 60:
            if count > self.burst:
                log.warning("%d more %s in the last minute (not logged)", count - self.burst, what)
            start, count = now, 0
        count += 1
        self._window[key] = (start, count)
        return count <= self.burst


# CONNACK codes that mean "these credentials": MQTT 5 (134 bad user name or password, 135 not authorized,
# which mosquitto also sends for a wrong password) and MQTT 3.1.1 (4, 5).
_AUTH_CODES = frozenset({134, 135, 4, 5})


def explain(e: aiomqtt.MqttError, cfg: MqttConfig) -> str:
    """An operator's reading of a connection failure: paho's codes and timeouts do not name the cause."""
    rc = getattr(e, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(e, aiomqtt.MqttCodeError) and code in _AUTH_CODES:
        who = f"user {cfg.username!r}" if cfg.username else "an anonymous client"
        return (
            f"authentication failed for {who}: the broker refused the credentials ({e}); check [mqtt].username "
            "and password_env / password_file"
        )
    text = str(e)
    if cfg.tls and "timed out" in text.lower() and not cfg.cert_file:
        return (
            f"{text} during the TLS connection; if the broker requires a client certificate, set cert_file and key_file"
        )
    return text


class _ClientArgs(TypedDict):
    """The arguments of `aiomqtt.Client` that both protocol versions share."""

    hostname: str
    port: int
    identifier: str
    username: str | None
    password: str | None
    keepalive: int
    tls_context: ssl.SSLContext | None
    timeout: float


def _client(cfg: MqttConfig) -> aiomqtt.Client:
    tls = None
    if cfg.tls:
        tls = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        if cfg.cert_file:
            tls.load_cert_chain(str(cfg.cert_file), str(cfg.key_file) if cfg.key_file else None)
    common = _ClientArgs(
        hostname=cfg.host,
        port=cfg.port,
        identifier=cfg.client_id,
        username=cfg.username,
        password=cfg.password,
        keepalive=cfg.keepalive_s,
        tls_context=tls,
        timeout=10,
    )
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.receive_maximum
        return aiomqtt.Client(**common, protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props)
    return aiomqtt.Client(**common, protocol=aiomqtt.ProtocolVersion.V311, clean_session=False)


class Ingest:
    def __init__(
        self,
        cfg: MqttConfig,
        journal: Journal,
        metrics: Metrics,
        on_journaled: Callable[[], None],
        *,
        batch: int = 500,
        dead_letter: DeadLetterSink | None = None,
        stations: Callable[[], Collection[str]] = tuple,
        admission: AdmissionConfig | None = None,
        catalogue: Callable[[], Catalogue] = lambda: SHIPPED,
        on_clock_fault: Callable[[ClockFault], None] | None = None,
    ) -> None:
        """`stations`: the declared station ids now (the thresholds in force, which a reload replaces);
        `catalogue`: the parameter catalogue now; `on_clock_fault`: called in the event loop, once per series
        per batch (with its latest future time), for readings refused as future_timestamp."""
        self.cfg, self.journal, self.metrics = cfg, journal, metrics
        self.on_journaled = on_journaled
        self.batch = batch
        self.log_rejection = RejectionLog()
        self.dead_letter = dead_letter
        self.subscribed = asyncio.Event()  # set once the first subscription is acknowledged
        self.queue_peak = 0  # most messages ever waiting in the inbox: bounded by flow control
        self.inbox_peak_bytes = 0  # most payload bytes ever waiting in the inbox
        self.admission = Admission(admission or AdmissionConfig(), stations)
        self.catalogue = catalogue
        self.on_clock_fault = on_clock_fault
        self.receipts = ReceiptClock()
        self.max_skew_ns = int(cfg.max_clock_skew_s * 1e9)
        self.retained = RetainedMemo(journal.path.with_name("retained.json")) if cfg.retained == "accept" else None

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume and reconnect until `stop`; returns after the current batch is journaled."""
        backoff = Backoff(first=0.5, cap=30.0)
        shown = f"{self.cfg.host}:{self.cfg.port}"
        while not stop.is_set():
            client = _client(self.cfg)
            acker = PahoControl(client, high=4 * self.batch, max_bytes=self.cfg.inbox_max_bytes)
            try:
                async with client:
                    self.metrics.mqtt_connects.inc()
                    self.metrics.health.ok("mqtt")
                    log.info("connected to %s as %s", shown, self.cfg.client_id)
                    acker.take_over_reading()
                    # The persistent session's backlog arrives before the SUBACK: consume first.
                    consumer = asyncio.create_task(self._consume(client, acker, stop, backoff))
                    subscribing = asyncio.create_task(
                        client.subscribe([(t, self.cfg.qos) for t in self.cfg.topics], timeout=math.inf)
                    )
                    # If the consumer fails first (the journal refuses the backlog), stop waiting for a SUBACK
                    # that a paused reader would never read.
                    await asyncio.wait([consumer, subscribing], return_when=asyncio.FIRST_COMPLETED)
                    if not subscribing.done():
                        subscribing.cancel()
                        consumer.result()  # the consumer's error, if it failed
                        break  # it returned: stopped before the SUBACK came
                    subscribing.result()
                    self.subscribed.set()
                    await consumer
            except aiomqtt.MqttError as e:
                if stop.is_set():
                    break
                delay = backoff.step()
                why = explain(e, self.cfg)
                self.metrics.health.degrade("mqtt", f"broker {shown}: {why}")
                log.warning("broker %s: %s; reconnecting in %.1f s", shown, why, delay)
            except JournalError as e:
                # Nothing of this batch was acknowledged: the broker redelivers it after we reconnect.
                delay = backoff.step()
                self.metrics.health.fail("journal", str(e))
                log.error("%s; not acknowledging, reconnecting in %.1f s", e, delay)
            else:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        log.info("ingest stopped")

    async def _consume(self, client: aiomqtt.Client, acker: PahoControl, stop: asyncio.Event, backoff: Backoff) -> None:
        """Batches until stop; the backoff resets only once a batch is journaled (a connection alone proves
        nothing when the disk is full, and would make the reconnects a storm).

        Two stages overlap: while one batch is committed (fsync, in a thread), the next is decoded. Commits
        stay one at a time and in order, and each batch is acknowledged only after its own commit.
        """
        inbox = acker.inbox
        stopping = asyncio.ensure_future(stop.wait())
        low = self.batch
        committing: asyncio.Task[None] | None = None
        try:
            while True:
                if acker.paused and len(inbox) <= low and acker.inbox_bytes <= acker.max_bytes // 2:
                    acker.resume_reading()
                if not inbox:
                    if committing is not None:  # nothing to decode meanwhile: finish the commit first
                        await committing
                        committing = None
                        backoff.reset()
                        continue
                    acker.arrived.clear()
                    arrived = asyncio.ensure_future(acker.arrived.wait())
                    await asyncio.wait((arrived, stopping, acker.disconnected), return_when=asyncio.FIRST_COMPLETED)
                    arrived.cancel()
                    if acker.disconnected.done():
                        # Unacknowledged: the broker sends these again to our persistent session.
                        acker.drop_all()
                        acker.disconnected.result()  # raises the MqttError that says why
                        raise aiomqtt.MqttError("disconnected")
                    if not inbox:
                        return  # stopped
                waiting = acker.inbox_bytes
                batch = acker.take(self.batch, self.cfg.batch_max_bytes)
                self.queue_peak = max(self.queue_peak, len(batch) + len(inbox))
                self.inbox_peak_bytes = max(self.inbox_peak_bytes, waiting)
                self.metrics.ingest_inbox_bytes.set(waiting)
                self.metrics.ingest_paused.inc(acker.pauses)
                acker.pauses = 0
                readings, retained = await self._decode(batch, client)
                if committing is not None:
                    await committing  # raises JournalError: neither that batch nor this one is acknowledged
                    backoff.reset()
                committing = asyncio.create_task(self._commit(batch, readings, retained, acker))
                if stop.is_set():
                    await committing
                    committing = None
                    return
        finally:
            stopping.cancel()
            if committing is not None and not committing.done():
                committing.cancel()

    async def _decode(self, batch: list[Inbound], client: aiomqtt.Client) -> tuple[list[Reading], dict[str, Memo]]:
        """The readings to journal, and the retained payloads among them (to remember around the commit)."""
        now = time.time_ns()
        catalogue = self.catalogue()
        implied = self.cfg.implied_units
        readings: list[Reading] = []
        retained: dict[str, Memo] = {}
        faults: dict[tuple[str, str], ClockFault] = {}
        for i, m in enumerate(batch):
            if i % 64 == 63:
                await asyncio.sleep(0)  # a batch of packs is tens of ms of decoding: let the store's I/O through
            topic, payload = m.topic, m.payload
            if m.retain:
                when = self._retained_time(topic, payload, now, retained)
                if when is None:
                    continue  # acknowledged with the batch, never journaled
                decoded = decode(
                    topic, payload, when, catalogue=catalogue, max_skew_ns=self.max_skew_ns, implied_units=implied
                )
            else:
                decoded = decode(
                    topic,
                    payload,
                    now,
                    catalogue=catalogue,
                    max_skew_ns=self.max_skew_ns,
                    stamp=self.receipts.stamp,
                    implied_units=implied,
                )
            if decoded.warnings:  # a reading's unknown keys: taken, but the logger's author should know
                self.metrics.reading_warnings.labels("unknown_key").inc(len(decoded.warnings))
                for warning in decoded.warnings:
                    self.log_rejection.warn(topic, "unknown_key", warning)
            kept, refused = self.admission.admit(decoded.readings) if decoded.readings else ([], [])
            readings.extend(kept)
            rejections = decoded.rejections + refused if refused else decoded.rejections
            if rejections:
                for rej in rejections:
                    self.metrics.readings_rejected.labels(rej.reason).inc()
                    self.log_rejection(topic, rej.reason, rej.detail)
                    if rej.reason == "future_timestamp" and rej.station and rej.parameter and rej.ts_ns is not None:
                        faults[(rej.station, rej.parameter)] = ClockFault(rej.station, rej.parameter, rej.ts_ns, now)
                if self.dead_letter is not None:
                    await self._keep_dead_letter(client, topic, payload, rejections)
        self.metrics.messages_received.inc(len(batch))
        if self.on_clock_fault is not None:
            for fault in faults.values():
                self.on_clock_fault(fault)
        return readings, retained

    def _retained_time(self, topic: str, payload: bytes | bytearray, now: int, pending: dict[str, Memo]) -> int | None:
        """The receipt time for a retained message, or None to drop it: ignored, or taken already."""
        if self.retained is None:
            self.metrics.retained_ignored.labels("ignored").inc()
            return None
        d = digest(payload)
        memo = pending.get(topic) or self.retained.get(topic)
        if memo is not None and memo.digest == d:
            if memo.taken:
                self.metrics.retained_ignored.labels("taken").inc()
                return None
            when = memo.ts_ns  # remembered, maybe not journaled: the same time, so the journal knows it
        else:
            when = now
        memo = Memo(d, when, False)
        pending[topic] = memo
        self.retained.remember(topic, memo)
        return when

    async def _commit(
        self, batch: list[Inbound], readings: list[Reading], retained: dict[str, Memo], acker: PahoControl
    ) -> None:
        memo = self.retained
        if retained and memo is not None:
            # Before the journal: a crash between the two re-uses the same times, which the journal recognises.
            await asyncio.to_thread(memo.write, memo.snapshot())
        new = await asyncio.to_thread(self.journal.append, readings)  # raises JournalError: no ack
        self.metrics.health.ok("journal")
        self.metrics.readings_accepted.inc(new)
        self.metrics.readings_duplicate.inc(len(readings) - new)
        if retained and memo is not None:
            memo.mark_taken(list(retained))
            await asyncio.to_thread(memo.write, memo.snapshot())
        acker.ack(batch)
        if new:
            self.on_journaled()

    async def _keep_dead_letter(
        self, client: aiomqtt.Client, topic: str, payload: bytes | bytearray, rejections: list[Rejection]
    ) -> None:
        assert self.dead_letter is not None
        rec = self.dead_letter.keep(topic, payload, rejections)
        if rec is not None and isinstance(self.dead_letter, TopicSink):
            # QoS 0: a QoS 1 publish would wait for a PUBACK that a paused reader cannot read.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.dead_letter.topic, rec, qos=0)
