"""The one place that reaches into aiomqtt's private paho client: a short path for QoS 0/1 PUBLISH, batched
acknowledgements after the journal commit, and flow control that bounds ingest's memory in messages and bytes.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import aiomqtt
import paho.mqtt.client as mqtt


class Inbound(NamedTuple):
    topic: str
    payload: bytes | bytearray  # bytes from `parse_publish`, a bytearray slice from paho's own path
    mid: int
    qos: int
    retain: bool = False  # the broker's stored last value, re-sent at each subscription


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
    return Inbound(topic, bytes(packet[pos:]), mid, qos, bool(command & 1))


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

    def __init__(self, client: aiomqtt.Client, high: int, max_bytes: int = 8 * 1024 * 1024) -> None:
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
        self.max_bytes = max_bytes
        self.paused = False
        self.pauses = 0
        self.inbox: list[Inbound] = []
        self.inbox_bytes = 0  # payload bytes in the inbox
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
        self._arrive(Inbound(topic, message.payload, message.mid, message.qos, bool(message.retain)))

    def _arrive(self, message: Inbound) -> None:
        self.inbox.append(message)
        self.inbox_bytes += len(message.payload)
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

    def take(self, most: int, most_bytes: int) -> list[Inbound]:
        """The next batch: at most `most` messages and, past the first, at most `most_bytes` of payload."""
        inbox = self.inbox
        n = size = 0
        for m in inbox:
            if n >= most or (n and size + len(m.payload) > most_bytes):
                break
            n += 1
            size += len(m.payload)
        batch = inbox[:n]
        del inbox[:n]
        self.inbox_bytes -= size
        return batch

    def drop_all(self) -> None:
        self.inbox.clear()
        self.inbox_bytes = 0

    def full(self) -> bool:
        return len(self.inbox) > self.high or self.inbox_bytes > self.max_bytes

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
        self.pauses += 1

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
                if self.full():
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
