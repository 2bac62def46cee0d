"""A publisher that returns only when the broker has acknowledged everything it was given.

Two ways a publisher loses data while reporting success (stack-notes.md): a burst with no flow control, and
paho with more than 65,535 outstanding QoS 1 messages, whose ids wrap. This one keeps at most `window`
messages outstanding, counts acknowledgements in on_publish, lets paho resend unacknowledged messages after a
reconnect, and raises RuntimeError instead of returning when acknowledgements stop coming.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sized
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from tqdm import tqdm

from simulators.messages import rfc3339

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


def parse_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, username, password) from `mqtt://[user[:pass]@]host[:port]` (mqtts:// for TLS)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("MQTT URL must start with mqtt:// or mqtts://")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("MQTT URL has a bad port") from None
    if not parts.hostname:
        raise ValueError("MQTT URL has no host")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, scheme in ("mqtts", "ssl"), username, password


class _Tracker:
    """Counts sent and acknowledged messages; paho's network thread updates it, the caller's thread waits on it.

    Counting rather than tracking mids is enough: paho calls on_publish exactly once per message (QoS 0 when
    written, QoS 1 on PUBACK, QoS 2 on PUBCOMP), including messages it resent after a reconnect.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.sent = 0
        self.acked = 0
        self.refused = 0
        self.connected = False
        self.connect_error: str | None = None
        self.last_progress = time.monotonic()

    def on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        with self.cond:
            if reason.is_failure:
                self.connect_error = str(reason)
            else:
                self.connected = True
                self.connect_error = None
                self.last_progress = time.monotonic()
            self.cond.notify_all()

    def on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        with self.cond:
            self.connected = False
            self.cond.notify_all()

    def on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any) -> None:
        with self.cond:
            self.acked += 1
            if reason.is_failure:  # MQTT 5 only: the broker took the message but refused it
                self.refused += 1
            self.last_progress = time.monotonic()
            self.cond.notify_all()

    def will_send(self) -> None:
        """Count a message about to be handed to paho; the stall clock starts when the first one goes out."""
        with self.cond:
            if self.sent == self.acked:
                self.last_progress = time.monotonic()
            self.sent += 1

    def wait(self, limit: int, timeout: float, until: float | None = None) -> None:
        """Block until at most `limit` messages are outstanding (and, with `until`, that monotonic time passed).

        Raises RuntimeError when messages are outstanding and none was acknowledged for `timeout` seconds.
        """
        with self.cond:
            while True:
                now = time.monotonic()
                outstanding = self.sent - self.acked
                if outstanding <= limit and (until is None or now >= until):
                    return
                if outstanding > 0 and now - self.last_progress >= timeout:
                    state = "the broker is disconnected" if not self.connected else "no acknowledgement arrived"
                    raise RuntimeError(f"{outstanding} message(s) unacknowledged after {timeout:g} s: {state}")
                deadline = self.last_progress + timeout if outstanding > 0 else float("inf")
                if until is not None:
                    deadline = min(deadline, until)
                self.cond.wait(max(0.0, min(deadline - now, 1.0)))


def publish(
    messages: Iterable[tuple[int, str, bytes]],
    url: str,
    *,
    speed: float = 0.0,
    qos: int = 1,
    client_id: str | None = None,
    window: int = 1000,
    progress: bool = False,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 30.0,
    unit: str = "msg",
    total: int | None = None,
) -> int:
    """Publish (ts_ns, topic, payload) messages and return their count once every one is acknowledged.

    `speed` X replays X simulated seconds per real second from the first message's ts_ns; 0 is as fast as
    possible. At most `window` messages are outstanding. Raises RuntimeError if the broker cannot be reached,
    refuses the connection, or stops acknowledging for `timeout` seconds (for example because it went away and
    did not come back); error messages name host:port only, never credentials. With `progress`, a bar on
    stderr shows the messages acknowledged, their rate and the simulated time (the ts_ns being sent).
    """
    if not 1 <= window <= 65_535:
        raise ValueError("window must be between 1 and 65535 (message ids must not wrap)")
    if qos not in (0, 1, 2):
        raise ValueError("qos must be 0, 1 or 2")
    if speed < 0:
        raise ValueError("speed must be >= 0")
    host, port, tls, url_user, url_password = parse_url(url)
    username = username if username is not None else url_user
    password = password if password is not None else url_password
    where = f"{host}:{port}"

    tracker = _Tracker()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"riverwatch-pub-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv311,  # what every broker speaks, the embedded amqtt one included
        clean_session=True,
    )
    client.on_connect = tracker.on_connect
    client.on_disconnect = tracker.on_disconnect
    client.on_publish = tracker.on_publish
    client.max_inflight_messages_set(0)  # the window bounds what is outstanding; paho's own limit would only slow us
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set()

    if total is None and isinstance(messages, Sized):
        total = len(messages)
    bar = tqdm(total=total, unit=unit, file=sys.stderr, disable=not progress, desc="publish", dynamic_ncols=True)
    shown = 0
    next_show = 0.0
    try:
        try:
            client.connect(host, port, keepalive=60)
        except OSError as exc:
            raise RuntimeError(f"cannot connect to MQTT broker {where}: {exc.strerror or exc}") from None
        client.loop_start()
        with tracker.cond:
            connected = tracker.cond.wait_for(
                lambda: tracker.connected or tracker.connect_error is not None, timeout=timeout
            )
            if tracker.connect_error is not None:
                raise RuntimeError(f"MQTT broker {where} refused the connection: {tracker.connect_error}")
            if not connected:
                raise RuntimeError(f"no CONNACK from MQTT broker {where} within {timeout:g} s")

        first_ts: int | None = None
        last_ts: int | None = None
        real_start = 0.0
        for ts_ns, topic, payload in messages:
            until = None
            if speed > 0:
                if first_ts is None:
                    first_ts, real_start = ts_ns, time.monotonic()
                until = real_start + (ts_ns - first_ts) / 1e9 / speed
            tracker.wait(window - 1, timeout, until)
            tracker.will_send()
            info = client.publish(topic, payload, qos=qos)
            # QoS > 0 messages stay queued in paho while disconnected and are sent on reconnect; anything else
            # (a full queue, a QoS 0 message with no connection) is a message that will never be acknowledged.
            rc = info.rc
            queued = rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (qos > 0 and rc == MQTTErrorCode.MQTT_ERR_NO_CONN)
            if not queued:
                raise RuntimeError(f"publish to {where} failed: {mqtt.error_string(rc)}")
            acked = tracker.acked
            if progress and acked != shown and time.monotonic() >= next_show:
                next_show = time.monotonic() + 0.1
                bar.set_postfix_str(f"sim {rfc3339(ts_ns)}", refresh=False)
                bar.update(acked - shown)
                shown = acked
            last_ts = ts_ns
        tracker.wait(0, timeout)
        if last_ts is not None:
            bar.set_postfix_str(f"sim {rfc3339(last_ts)}", refresh=False)
        bar.update(tracker.acked - shown)
        if tracker.refused:
            raise RuntimeError(f"MQTT broker {where} refused {tracker.refused} message(s)")
        return tracker.sent
    finally:
        bar.close()
        client.disconnect()
        client.loop_stop()
