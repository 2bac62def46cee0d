"""Ingest: MQTT messages in, decoded readings journaled, and only then the broker acknowledged.

The session is persistent (fixed client id; clean_session off for 3.1.1, clean_start off with a session
expiry for MQTT 5), so the broker keeps QoS 1 messages while the service is away. aiomqtt acknowledges a
message as soon as it enters its queue, which would lose it on a crash; `ManualAck` turns that off in
paho underneath and acknowledges after the journal commit. The broker's in-flight window (ReceiveMaximum
on MQTT 5, mosquitto's max_inflight_messages on 3.1.1) is the backpressure: while a batch is being
committed, the broker stops sending. The connection loop never gives up; it backs off, capped.
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
from monitor.decode import decode
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.pacing import Backoff
from monitor.reading import Reading

log = logging.getLogger("riverwatch.ingest")


class ManualAck:
    """The one place that reaches into aiomqtt's private paho client (aiomqtt PR #346 is not merged).

    Must be created before the client connects: afterwards the persistent session's backlog would
    already have been acknowledged on arrival.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = client._client
        self._paho.manual_ack_set(True)

    def ack(self, message: aiomqtt.Message) -> None:
        if message.qos > 0:
            self._paho.ack(message.mid, message.qos)


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
                 *, batch: int = 500) -> None:
        self.cfg, self.journal, self.metrics = cfg, journal, metrics
        self.on_journaled = on_journaled
        self.batch = batch
        self.log_rejection = RejectionLog()
        self.subscribed = asyncio.Event()  # set once the first subscription is acknowledged

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume and reconnect until `stop`; returns after the current batch is journaled."""
        backoff = Backoff(first=0.5, cap=30.0)
        shown = f"{self.cfg.host}:{self.cfg.port}"
        while not stop.is_set():
            client = _client(self.cfg)
            acker = ManualAck(client)
            try:
                async with client:
                    self.metrics.mqtt_connects.inc()
                    self.metrics.health.ok("mqtt")
                    log.info("connected to %s as %s", shown, self.cfg.client_id)
                    backoff.reset()
                    # The persistent session's backlog arrives before the SUBACK: consume first.
                    consumer = asyncio.create_task(self._consume(client, acker, stop))
                    await client.subscribe([(t, self.cfg.qos) for t in self.cfg.topics], timeout=math.inf)
                    self.subscribed.set()
                    await consumer
            except aiomqtt.MqttError as e:
                if stop.is_set():
                    break
                delay = backoff.step()
                self.metrics.health.degrade("mqtt", f"broker {shown}: {e}")
                log.warning("broker %s: %s; reconnecting in %.1f s", shown, e, delay)
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

    async def _consume(self, client: aiomqtt.Client, acker: ManualAck, stop: asyncio.Event) -> None:
        messages = client.messages
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(anext(messages))
                await asyncio.wait([nxt, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    return
                batch = [nxt.result()]
                while len(batch) < self.batch and len(messages) > 0:
                    batch.append(await anext(messages))
                await self._handle(batch, acker)
                if stop.is_set():
                    return
        finally:
            stopping.cancel()

    async def _handle(self, batch: list[aiomqtt.Message], acker: ManualAck) -> None:
        now = time.time_ns()
        readings: list[Reading] = []
        for m in batch:
            payload = m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload).encode()
            decoded = decode(m.topic.value, bytes(payload), now)
            readings.extend(decoded.readings)
            for rej in decoded.rejections:
                self.metrics.readings_rejected.labels(rej.reason).inc()
                self.log_rejection(m.topic.value, rej.reason, rej.detail)
        self.metrics.messages_received.inc(len(batch))
        new = await asyncio.to_thread(self.journal.append, readings)  # raises JournalError: no ack
        self.metrics.health.ok("journal")
        self.metrics.readings_accepted.inc(new)
        self.metrics.readings_duplicate.inc(len(readings) - new)
        for m in batch:
            acker.ack(m)
        if new:
            self.on_journaled()
