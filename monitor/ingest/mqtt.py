"""Ingest: MQTT messages in, decoded readings journaled, and only then the broker acknowledged.

The session is persistent (fixed client id; clean_session off for 3.1.1, clean_start off with a session
expiry for MQTT 5), so the broker keeps QoS 1 messages while the service is away. aiomqtt acknowledges a
message as soon as it enters its queue, which would lose it on a crash; `PahoControl` turns that off in
paho underneath, takes the messages from paho directly, and acknowledges after the journal commit. The
broker's in-flight window (ReceiveMaximum on MQTT 5, mosquitto's max_inflight_messages on 3.1.1) should be
the backpressure, but mosquitto 2.0 does not keep to it once acknowledgements flow, so `PahoControl` also
pauses reading the socket when more than 4 batches are waiting. The connection loop never gives up; it
backs off, capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import NamedTuple, TypedDict

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import MqttConfig
from monitor.domain.pacing import Backoff
from monitor.domain.reading import Reading
from monitor.ingest.deadletter import DeadLetterSink, TopicSink
from monitor.ingest.decode import Rejection, decode
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics

log = logging.getLogger("riverwatch.ingest")


class Inbound(NamedTuple):
    topic: str
    payload: bytes | bytearray  # bytes from `parse_publish`, a bytearray slice from paho's own path
    mid: int
    qos: int


def parse_publish(command: int, packet: bytes | bytearray, v5: bool) -> Inbound | None:
    """A PUBLISH at QoS 0 or 1 from its fixed-header byte and the rest of the packet; None for anything else
    (other packets, QoS 2, a topic alias, a topic that is not UTF-8, a short packet): paho handles those.

    MQTT 3.1.1 §3.3 and 5.0 §3.3: topic (2-byte length + UTF-8), packet id when QoS > 0, in MQTT 5 a
    properties block (variable-byte length, skipped: riverwatch uses no publish property), then the payload.
    """
    qos = (command >> 1) & 3
    if command & 0xF0 != 0x30 or qos > 1:
        return None
    try:
        n = (packet[0] << 8) | packet[1]
        if n == 0:
            return None
        topic = packet[2 : 2 + n].decode()
        pos = 2 + n
        mid = 0
        if qos:
            mid = (packet[pos] << 8) | packet[pos + 1]
            pos += 2
        if v5:
            length = shift = 0
            while True:
                byte = packet[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80 or shift > 21:
                    break
            pos += length
        if pos > len(packet):
            return None
    except (IndexError, UnicodeDecodeError):
        return None
    return Inbound(topic, bytes(packet[pos:]), mid, qos)


class PahoControl:
    """The one place that reaches into aiomqtt's private paho client: the per-message path, acks, flow control.

    aiomqtt wraps every message in its own object, queues it, and hands it over with an await; paho builds a
    message object with a threading.Condition in it, reads a packet with three or more `recv` calls and
    writes each PUBACK with its own `send`. Measured here, that was 34 CPU-µs per message for aiomqtt and 18
    for paho alone, while the rest of riverwatch's work on a single reading is about 15. So aiomqtt and paho
    keep what they do well (connect, TLS, subscribe, keepalive, errors, reconnects, QoS 2) and a QoS 0/1
    PUBLISH takes a short path: `parse_publish` turns paho's framed packet into an `Inbound` in `inbox`,
    socket reads are buffered (one `recv` per 64 KiB), and a batch's PUBACKs go out as one write after the
    journal commit.

    Manual acknowledgement (aiomqtt PR #346 is not merged) must be switched on before the client connects:
    afterwards the persistent session's backlog would already have been acknowledged on arrival.

    Flow control: mosquitto 2.0 stops honouring the client's Receive Maximum once acknowledgements flow
    (measured here: window 10, 268 messages queued), so the inbox would grow whenever the input outpaces the
    journal. Pausing the socket's reader instead makes TCP hold the broker back: the backlog then waits in the
    broker's queue for our persistent session, not in our memory.
    """

    READ_SIZE = 65536

    def __init__(self, client: aiomqtt.Client, high: int) -> None:
        self._aio = client
        self._paho = client._client
        self._paho.manual_ack_set(True)
        self._paho.on_message = self._on_message
        # Replacing two of paho's methods on this one instance is the point of this class.
        self._sock_recv = self._paho._sock_recv
        self._paho._sock_recv = self._buffered_recv  # type: ignore[method-assign]
        self._handle_packet = self._paho._packet_handle
        self._paho._packet_handle = self._packet_handle  # type: ignore[method-assign]
        self._v5 = self._paho._protocol == mqtt.MQTTv5
        self._buf = b""
        self._pos = 0
        self._fd = -1
        self.high = high
        self.paused = False
        self.inbox: list[Inbound] = []
        self.arrived = asyncio.Event()

    @property
    def disconnected(self) -> asyncio.Future[None]:
        return self._aio._disconnected

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        """paho's own path: QoS 2, and anything `parse_publish` leaves to paho.

        A topic that is not UTF-8 (a broker that does not check) keeps its bytes as surrogates, which the decoder
        refuses as a station or parameter: raising here would drop the connection, and the broker would send
        the same message again, forever."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "surrogateescape")
        self._arrive(Inbound(topic, message.payload, message.mid, message.qos))

    def _arrive(self, message: Inbound) -> None:
        self.inbox.append(message)
        if not self.arrived.is_set():
            self.arrived.set()

    def _packet_handle(self) -> mqtt.MQTTErrorCode:
        """paho's dispatcher for a complete incoming packet, with QoS 0/1 PUBLISH parsed here."""
        packet = self._paho._in_packet
        message = parse_publish(packet["command"], packet["packet"], self._v5)
        if message is None:
            return self._handle_packet()
        self._arrive(message)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _buffered_recv(self, bufsize: int) -> bytes:
        """paho's `_sock_recv`, served from one large read (its errors and b"" at EOF pass through)."""
        if self._pos >= len(self._buf):
            self._buf = self._sock_recv(self.READ_SIZE)
            self._pos = 0
            if not self._buf:
                return b""
        out = self._buf[self._pos : self._pos + bufsize]
        self._pos += len(out)
        return out

    def take_over_reading(self) -> None:
        """Replace aiomqtt's socket reader with ours (same logic, plus the pause), once connected."""
        sock = self._paho.socket()
        if sock is None:
            return
        self._fd = sock.fileno()
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self._read)

    def ack(self, messages: list[Inbound]) -> None:
        """PUBACK every QoS 1 message of a batch in one write (a success PUBACK is the same in 3.1.1 and 5)."""
        acks = b"".join(b"\x40\x02" + m.mid.to_bytes(2, "big") for m in messages if m.qos == 1)
        if acks:
            self._paho._packet_queue(mqtt.PUBACK, acks, 0, 0)
        for m in messages:
            if m.qos == 2:
                self._paho.ack(m.mid, 2)

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
        loop.call_soon(self._read)  # buffered bytes (ours, or TLS's) announce no readiness event

    def _read(self) -> None:
        """aiomqtt's reader callback (read what is there; a failure ends the connection), and the pause."""
        if self.paused:
            return
        try:
            while True:
                self._paho.loop_read()
                if len(self.inbox) > self.high:
                    self.pause_reading()
                    break
                if self._pos < len(self._buf):
                    continue
                # TLS keeps decrypted bytes that announce no readiness event; a plain socket has no pending().
                pending = getattr(self._paho._sock, "pending", None)
                if pending is None or pending() <= 0:
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
                log.warning(
                    "%d more payloads rejected as %s in the last minute (not logged)", count - self.burst, reason
                )
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
    ) -> None:
        self.cfg, self.journal, self.metrics = cfg, journal, metrics
        self.on_journaled = on_journaled
        self.batch = batch
        self.log_rejection = RejectionLog()
        self.dead_letter = dead_letter
        self.subscribed = asyncio.Event()  # set once the first subscription is acknowledged
        self.queue_peak = 0  # most messages ever waiting in the inbox: bounded by flow control

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
                if acker.paused and len(inbox) <= low:
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
                        inbox.clear()
                        acker.disconnected.result()  # raises the MqttError that says why
                        raise aiomqtt.MqttError("disconnected")
                    if not inbox:
                        return  # stopped
                batch = inbox[: self.batch]
                del inbox[: self.batch]
                self.queue_peak = max(self.queue_peak, len(batch) + len(inbox))
                readings = await self._decode(batch, client)
                if committing is not None:
                    await committing  # raises JournalError: neither that batch nor this one is acknowledged
                    backoff.reset()
                committing = asyncio.create_task(self._commit(batch, readings, acker))
                if stop.is_set():
                    await committing
                    committing = None
                    return
        finally:
            stopping.cancel()
            if committing is not None and not committing.done():
                committing.cancel()

    async def _decode(self, batch: list[Inbound], client: aiomqtt.Client) -> list[Reading]:
        now = time.time_ns()
        readings: list[Reading] = []
        for i, m in enumerate(batch):
            if i % 64 == 63:
                await asyncio.sleep(0)  # a batch of packs is tens of ms of decoding: let the store's I/O through
            topic, payload = m.topic, m.payload
            decoded = decode(topic, payload, now)
            readings.extend(decoded.readings)
            if decoded.rejections:
                for rej in decoded.rejections:
                    self.metrics.readings_rejected.labels(rej.reason).inc()
                    self.log_rejection(topic, rej.reason, rej.detail)
                if self.dead_letter is not None:
                    await self._keep_dead_letter(client, topic, payload, decoded.rejections)
        self.metrics.messages_received.inc(len(batch))
        return readings

    async def _commit(self, batch: list[Inbound], readings: list[Reading], acker: PahoControl) -> None:
        new = await asyncio.to_thread(self.journal.append, readings)  # raises JournalError: no ack
        self.metrics.health.ok("journal")
        self.metrics.readings_accepted.inc(new)
        self.metrics.readings_duplicate.inc(len(readings) - new)
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
