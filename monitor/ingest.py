"""Ingest: MQTT messages in, decoded readings journaled, and only then the broker acknowledged.

The session is persistent (fixed client id; clean_session off for 3.1.1, clean_start off with a session
expiry for MQTT 5), so the broker keeps QoS 1 messages while the service is away. aiomqtt acknowledges a
message as soon as it enters its queue, which would lose it on a crash; `PahoControl` turns that off in
paho underneath and acknowledges after the journal commit. The broker's in-flight window (ReceiveMaximum
on MQTT 5, mosquitto's max_inflight_messages on 3.1.1) should be the backpressure, but mosquitto 2.0
does not keep to it once acknowledgements flow, so `PahoControl` also pauses reading the socket when
more than 4 batches are waiting. The connection loop never gives up; it backs off, capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import MqttConfig
from monitor.deadletter import DeadLetterSink, TopicSink
from monitor.decode import Rejection, decode
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.pacing import Backoff
from monitor.reading import Reading

log = logging.getLogger("riverwatch.ingest")


class PahoControl:
    """The one place that reaches into aiomqtt's private paho client: manual acks and read flow control.

    Manual acknowledgement (aiomqtt PR #346 is not merged) must be switched on before the client connects:
    afterwards the persistent session's backlog would already have been acknowledged on arrival.

    Flow control: mosquitto 2.0 stops honouring the client's Receive Maximum once acknowledgements flow
    (measured here: window 10, 268 messages queued), so aiomqtt's unbounded queue would grow whenever the
    input outpaces the journal. Pausing the socket's reader instead makes TCP hold the broker back: the
    backlog then waits in the broker's queue for our persistent session, not in our memory.
    """

    def __init__(self, client: aiomqtt.Client, high: int) -> None:
        self._aio = client
        self._paho = client._client
        self._paho.manual_ack_set(True)
        self._fd = -1
        self.high = high
        self.paused = False

    def take_over_reading(self) -> None:
        """Replace aiomqtt's socket reader with ours (same logic, plus the pause), once connected."""
        sock = self._paho.socket()
        if sock is None:
            return
        self._fd = sock.fileno()
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self._read)

    def ack(self, message: aiomqtt.Message) -> None:
        if message.qos > 0:
            self._paho.ack(message.mid, message.qos)

    def pause_reading(self) -> None:
        sock = self._paho.socket()
        if self.paused or sock is None or sock.fileno() != self._fd:
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        self.paused = True

    def resume_reading(self) -> None:
        if not self.paused:
            return
        self.paused = False
        sock = self._paho.socket()
        if sock is None or sock.fileno() != self._fd:
            return  # closed or reconnected meanwhile: aiomqtt registered the new socket itself
        loop = asyncio.get_running_loop()
        loop.add_reader(self._fd, self._read)
        loop.call_soon(self._read)  # TLS may hold decrypted bytes that no readiness event will announce

    def _read(self) -> None:
        """aiomqtt's reader callback (read what is there; a failure ends the connection), and the pause."""
        if self.paused:
            return
        try:
            while True:
                self._paho.loop_read()
                if len(self._aio.messages) > self.high:
                    self.pause_reading()
                    break
                sock = self._paho._sock
                if not (hasattr(sock, "pending") and sock.pending() > 0):
                    break
        except Exception as exc:
            disconnected = self._aio._disconnected
            if not disconnected.done():
                disconnected.set_exception(exc)


class RejectionLog:
    """Log each rejection with its topic, but at most `burst` lines per reason per minute."""

    def __init__(self, burst: int = 5) -> None:
        self.burst = burst
        self._window: dict[str, tuple[float, int]] = {}

    def __call__(self, topic: str, reason: str, detail: str) -> None:
        now = time.monotonic()
        start, count = self._window.get(reason, (now, 0))
        if now - start > 60:
            if count > self.burst:
                log.warning("%d more payloads rejected as %s in the last minute (not logged)", count - self.burst,
                            reason)
            start, count = now, 0
        count += 1
        self._window[reason] = (start, count)
        if count <= self.burst:
            log.warning("rejected payload on topic %r: %s: %s", topic[:200], reason, detail)


# CONNACK codes that mean "these credentials": MQTT 5 (134 bad user name or password, 135 not authorized,
# which mosquitto also sends for a wrong password) and MQTT 3.1.1 (4, 5).
_AUTH_CODES = frozenset({134, 135, 4, 5})


def explain(e: aiomqtt.MqttError, cfg: MqttConfig) -> str:
    """An operator's reading of a connection failure: paho's codes and timeouts do not name the cause."""
    rc = getattr(e, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(e, aiomqtt.MqttCodeError) and code in _AUTH_CODES:
        who = f"user {cfg.username!r}" if cfg.username else "an anonymous client"
        return f"authentication failed for {who}: the broker refused the credentials ({e})"
    text = str(e)
    if cfg.tls and "timed out" in text.lower() and not cfg.cert_file:
        return (f"{text} during the TLS connection; if the broker requires a client certificate, set cert_file"
                " and key_file")
    return text


def _client(cfg: MqttConfig) -> aiomqtt.Client:
    tls = None
    if cfg.tls:
        tls = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        if cfg.cert_file:
            tls.load_cert_chain(str(cfg.cert_file), str(cfg.key_file) if cfg.key_file else None)
    common = dict(hostname=cfg.host, port=cfg.port, identifier=cfg.client_id, username=cfg.username,
                  password=cfg.password, keepalive=cfg.keepalive_s, tls_context=tls, timeout=10)
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.receive_maximum
        return aiomqtt.Client(**common, protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                              properties=props)
    return aiomqtt.Client(**common, protocol=aiomqtt.ProtocolVersion.V311, clean_session=False)


class Ingest:
    def __init__(self, cfg: MqttConfig, journal: Journal, metrics: Metrics, on_journaled: Callable[[], None],
                 *, batch: int = 500, dead_letter: DeadLetterSink | None = None) -> None:
        self.cfg, self.journal, self.metrics = cfg, journal, metrics
        self.on_journaled = on_journaled
        self.batch = batch
        self.log_rejection = RejectionLog()
        self.dead_letter = dead_letter
        self.subscribed = asyncio.Event()  # set once the first subscription is acknowledged
        self.queue_peak = 0  # most messages ever waiting in aiomqtt's queue: bounded by flow control

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume and reconnect until `stop`; returns after the current batch is journaled."""
        backoff = Backoff(first=0.5, cap=30.0)
        shown = f"{self.cfg.host}:{self.cfg.port}"
        while not stop.is_set():
            client = _client(self.cfg)
            acker = PahoControl(client, high=4 * self.batch)
            try:
                async with client:
                    self.metrics.mqtt_connects.inc()
                    self.metrics.health.ok("mqtt")
                    log.info("connected to %s as %s", shown, self.cfg.client_id)
                    acker.take_over_reading()
                    # The persistent session's backlog arrives before the SUBACK: consume first.
                    consumer = asyncio.create_task(self._consume(client, acker, stop, backoff))
                    subscribing = asyncio.create_task(
                        client.subscribe([(t, self.cfg.qos) for t in self.cfg.topics], timeout=math.inf))
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

    async def _consume(self, client: aiomqtt.Client, acker: PahoControl, stop: asyncio.Event,
                       backoff: Backoff) -> None:
        """Batches until stop; the backoff resets only once a batch is journaled (a connection alone proves
        nothing when the disk is full, and would make the reconnects a storm)."""
        messages = client.messages
        stopping = asyncio.ensure_future(stop.wait())
        low = self.batch
        try:
            while True:
                if acker.paused and len(messages) <= low:
                    acker.resume_reading()
                nxt = asyncio.ensure_future(anext(messages))
                await asyncio.wait([nxt, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    return
                batch = [nxt.result()]
                while len(batch) < self.batch and len(messages) > 0:
                    batch.append(await anext(messages))
                self.queue_peak = max(self.queue_peak, len(batch) + len(messages))
                await self._handle(batch, acker, client)
                backoff.reset()
                if stop.is_set():
                    return
        finally:
            stopping.cancel()

    async def _handle(self, batch: list[aiomqtt.Message], acker: PahoControl, client: aiomqtt.Client) -> None:
        now = time.time_ns()
        readings: list[Reading] = []
        for m in batch:
            payload = bytes(m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload).encode())
            decoded = decode(m.topic.value, payload, now)
            readings.extend(decoded.readings)
            for rej in decoded.rejections:
                self.metrics.readings_rejected.labels(rej.reason).inc()
                self.log_rejection(m.topic.value, rej.reason, rej.detail)
            if decoded.rejections and self.dead_letter is not None:
                await self._keep_dead_letter(client, m.topic.value, payload, decoded.rejections)
        self.metrics.messages_received.inc(len(batch))
        new = await asyncio.to_thread(self.journal.append, readings)  # raises JournalError: no ack
        self.metrics.health.ok("journal")
        self.metrics.readings_accepted.inc(new)
        self.metrics.readings_duplicate.inc(len(readings) - new)
        for m in batch:
            acker.ack(m)
        if new:
            self.on_journaled()

    async def _keep_dead_letter(self, client: aiomqtt.Client, topic: str, payload: bytes,
                                rejections: list[Rejection]) -> None:
        assert self.dead_letter is not None
        rec = self.dead_letter.keep(topic, payload, rejections)
        if rec is not None and isinstance(self.dead_letter, TopicSink):
            # QoS 0: a QoS 1 publish would wait for a PUBACK that a paused reader cannot read.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.dead_letter.topic, rec, qos=0)
