"""The load generator: a separate process that publishes QoS 1 messages faster than the systems under test read them.

``python -m bench.publisher --port P --kind single|senml|paced ...``

Why not paho: a paho publisher in Python spends most of a core on its own bookkeeping and would share the
machine's two cores with the service it measures. This one speaks just enough MQTT 3.1.1 over a plain socket
(CONNECT, PUBLISH QoS 1, PUBACK): every packet is encoded before the clock starts, and sending is a
``sendall`` of a chunk. It is harness code, not a client anyone should run against a real broker.

Two ways a publisher loses data while reporting success (stack-notes.md): a burst with no flow control, and
packet ids that wrap past 65,535 while still outstanding. This one keeps at most ``--window`` messages
unacknowledged, checks that PUBACKs come back in order for the ids it sent, and exits 1 when they stop.

It prints two JSON lines on stdout: ``{"event": "ready", ...}`` once connected (with the totals the harness must
wait for) and ``{"event": "done", ...}`` when every message is acknowledged (wall-clock times, markers' send times).
"""

from __future__ import annotations

import argparse
import json
import resource
import select
import socket
import sys
import time

from bench.load import Message, base_time, bulk, paced

CONNACK, PUBACK = 0x20, 0x40


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str) -> bytes:
    # protocol "MQTT" level 4 (3.1.1), flags: clean session; keepalive 0 (we never idle while connected)
    body = _utf8("MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big") + _utf8(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, pid: int) -> bytes:
    body = _utf8(topic) + pid.to_bytes(2, "big") + payload
    return bytes([0x32]) + _remaining_length(len(body)) + body  # PUBLISH, QoS 1, no retain


def packet_id(seq: int) -> int:
    return seq % 65535 + 1


class Publisher:
    def __init__(self, host: str, port: int, client_id: str, window: int, timeout: float) -> None:
        if not 1 <= window <= 30_000:
            raise ValueError("window must be between 1 and 30000 (packet ids must not wrap while outstanding)")
        self.window, self.timeout = window, timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self.sent = self.acked = 0
        self.sock.sendall(connect_packet(client_id))
        kind, body = self._read_packet(blocking=True)
        if kind != CONNACK or len(body) < 2 or body[1] != 0:
            raise RuntimeError(f"broker refused the connection: packet {kind:#x} {body.hex()}")
        self.sock.setblocking(False)
        self.last_progress = time.monotonic()

    def _read_packet(self, blocking: bool) -> tuple[int, bytes]:
        while True:
            if len(self._buf) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self._buf):
                    b = self._buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    i = -1
                if i > 0 and len(self._buf) >= i + length:
                    kind, body = self._buf[0] & 0xF0, bytes(self._buf[i : i + length])
                    del self._buf[: i + length]
                    return kind, body
            if not blocking:
                return -1, b""
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the broker closed the connection")
            self._buf += chunk

    def poll_acks(self, wait: float) -> None:
        """Read what PUBACKs have arrived, waiting up to ``wait`` s for the first one."""
        readable, _, _ = select.select([self.sock], [], [], max(wait, 0.0))
        if readable:
            try:
                chunk: bytes | None = self.sock.recv(1 << 20)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                raise RuntimeError("the broker closed the connection")
            if chunk:
                self._buf += chunk
        while True:
            kind, body = self._read_packet(blocking=False)
            if kind == -1:
                break
            if kind != PUBACK:
                continue
            pid = int.from_bytes(body[:2], "big")
            if pid != packet_id(self.acked):
                raise RuntimeError(f"PUBACK for packet id {pid}, expected {packet_id(self.acked)}")
            self.acked += 1
            self.last_progress = time.monotonic()
        if self.sent > self.acked and time.monotonic() - self.last_progress > self.timeout:
            raise RuntimeError(f"{self.sent - self.acked} messages unacknowledged for {self.timeout:g} s")

    def send(self, packets: list[bytes]) -> None:
        data = memoryview(b"".join(packets))
        while data:
            try:
                n = self.sock.send(data)
                data = data[n:]
            except BlockingIOError:
                select.select([self.sock], [self.sock], [], 0.05)
                self.poll_acks(0)
        self.sent += len(packets)

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        self.sock.close()


def run(args: argparse.Namespace) -> dict[str, object]:
    t0 = args.t0 or base_time()
    if args.kind == "paced":
        messages = paced(args.prefix, args.rate, args.duration, args.stations, t0, args.alert_rate, args.store_rate)
    else:
        messages = bulk(args.kind, args.prefix, args.count, args.stations, t0)
    packets = [publish_packet(m.topic, m.payload, packet_id(i)) for i, m in enumerate(messages)]
    pub = Publisher(args.host, args.port, args.client_id, args.window, args.timeout)
    print(
        json.dumps(
            {
                "event": "ready",
                "messages": len(messages),
                "readings": sum(m.readings for m in messages),
                "flagged": sum(m.flagged for m in messages),
                "t0": t0,
            }
        ),
        flush=True,
    )
    markers: list[tuple[str, int, float]] = []
    try:
        t_first = time.time()
        if args.kind == "paced":
            _paced(pub, messages, packets, args.rate, markers)
        else:
            chunk = max(1, min(args.chunk, args.window))
            while pub.sent < len(packets):
                room = min(args.window - (pub.sent - pub.acked), chunk, len(packets) - pub.sent)
                if room > 0:
                    pub.send(packets[pub.sent : pub.sent + room])
                    pub.poll_acks(0)
                else:
                    pub.poll_acks(1.0)
        t_sent = time.time()
        while pub.acked < pub.sent:
            pub.poll_acks(1.0)
        t_acked = time.time()
    finally:
        pub.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "event": "done",
        "messages": pub.sent,
        "acked": pub.acked,
        "t_first": t_first,
        "t_sent": t_sent,
        "t_acked": t_acked,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "markers": markers,
    }


def _paced(
    pub: Publisher, messages: list[Message], packets: list[bytes], rate: float, markers: list[tuple[str, int, float]]
) -> None:
    start = time.monotonic()
    n = len(packets)
    while pub.sent < n:
        due = min(n, int((time.monotonic() - start) * rate) + 1)
        due = min(due, pub.acked + pub.window)
        if due > pub.sent:
            first = pub.sent
            now = time.time()
            markers.extend((m.marker[0], m.marker[1], now) for m in messages[first:due] if m.marker is not None)
            pub.send(packets[first:due])
        next_due = start + (pub.sent + 0.5) / rate  # wake half a message early; the loop sends what is due
        pub.poll_acks(min(max(next_due - time.monotonic(), 0.0), 0.05))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.publisher", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", default="rw-bench-pub")
    p.add_argument("--kind", choices=("single", "senml", "paced"), required=True)
    p.add_argument("--prefix", required=True, help="station name prefix of this trial")
    p.add_argument("--count", type=int, default=0, help="messages (single, senml)")
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--t0", type=int, default=0, help="first reading time, epoch s (default: a day ago)")
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s (paced)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds (paced)")
    p.add_argument("--alert-rate", type=float, default=5.0, help="alert markers/s (paced)")
    p.add_argument("--store-rate", type=float, default=10.0, help="storage markers/s (paced)")
    p.add_argument("--window", type=int, default=2000, help="most messages unacknowledged at once")
    p.add_argument("--chunk", type=int, default=500, help="messages per send() in bulk mode")
    p.add_argument("--timeout", type=float, default=60.0, help="give up when no PUBACK comes for this long")
    args = p.parse_args(argv)
    try:
        result = run(args)
    except (OSError, RuntimeError, ValueError) as e:
        print(f"bench.publisher: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
