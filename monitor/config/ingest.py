"""`[mqtt]`, `[admission]`, `[hj212]` and `[dead_letter]`: how readings come in, and where refusals go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paho.mqtt.client import topic_matches_sub

from monitor.config.section import Section
from monitor.domain.params import SHIPPED


@dataclass(frozen=True)
class MqttConfig:
    url: str = "mqtt://127.0.0.1:1883"
    topics: tuple[str, ...] = ("river/#",)
    client_id: str = "riverwatch"
    qos: int = 1
    # "3.1.1" or "5". 3.1.1 by default: paho's MQTT 5 property parsing costs a third of the CPU per message
    # (bench: 0.135 against 0.204 CPU-s per 1000 readings), and Receive Maximum, MQTT 5's flow control, is not
    # kept by mosquitto 2.0 anyway (ingest pauses its reader instead).
    protocol: str = "3.1.1"
    receive_maximum: int = 1000  # MQTT 5: unacknowledged QoS 1 messages the broker may send at once
    session_expiry_s: int = 7 * 24 * 3600  # MQTT 5: how long the broker keeps our session while we are away
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    embedded: bool = False  # no [mqtt] section: run the embedded broker
    # A reading dated further ahead of the receiving clock is refused as future_timestamp (and raises a clock
    # alert). 5 minutes: an unsynchronised logger's crystal drifts about 2 s a day, so months of drift fit,
    # while a time zone or DST mistake (30 min or more) and a reset RTC never do; delays only make readings late.
    max_clock_skew_s: float = 300.0
    # "ignore": a retained message (a broker's last-known value, re-sent at every subscribe) is acknowledged and
    # dropped; "accept": it is taken, with a stable identity so a reconnect or restart never stores it twice.
    retained: str = "ignore"
    # Memory bound: ingest stops reading the socket (TCP holds the broker back) once this many payload bytes
    # wait in its inbox, and decodes at most batch_max_bytes of payload at a time (docs/architecture.md).
    inbox_max_bytes: int = 8 * 1024 * 1024
    batch_max_bytes: int = 2 * 1024 * 1024
    # Parameter id -> the unit its readings are in when they name none. Empty by default: a reading without a
    # unit is refused (a µg/L logger taken as mg/L reads 1000x too high), except for a parameter with no unit (pH).
    implied_units: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


@dataclass(frozen=True)
class AdmissionConfig:
    """Which series ingest lets in: a made-up station id must not create a series (a cardinality bomb).

    "reject": readings for a station no station file declares are refused as unknown_station. "accept": they
    are taken, but at most new_series_per_hour new (station, parameter) series an hour (the rest: admission).
    With no station file at all, undeclared stations are accepted within the same budget (a start without
    configuration must keep working), and the service logs that it does.
    """

    unknown_stations: str = "reject"
    # 500: 50 stations of 10 parameters coming up at once on a first start without station files, while a
    # bomb of 100,000 ids takes 200 hours to reach InfluxDB's default max-values-per-tag.
    new_series_per_hour: int = 500


@dataclass(frozen=True)
class DeadLetterConfig:
    file: Path | None = None  # JSON lines, rotated at max_bytes to one .1 file
    max_bytes: int = 10 * 1024 * 1024
    topic: str | None = None  # or published (QoS 0) on this MQTT topic
    max_per_second: float = 50.0


@dataclass(frozen=True)
class HJ212Config:
    """The HJ 212 platform server: data loggers connect as TCP clients and stay connected.

    A connection holds at most `connection_buffer_bytes` of data not yet journaled (it is not read further
    until its packets are committed and answered) plus one partial frame of at most `max_frame_bytes`, so
    `max_connections` loggers bound the server's memory whatever they send."""

    enabled: bool = False
    # Loopback by default: an HJ 212 port is the stations' way in, opened to them by the operator on purpose.
    listen: str = "127.0.0.1"
    port: int = 9212
    versions: tuple[str, ...] = ("2017", "2025", "2005")
    # A connection that sends no valid frame for this long is closed. 65 min: loggers that send only hourly
    # data (CN=2061) keep their connection, one that sends nothing or garbage goes within the hour.
    idle_timeout_s: float = 3900.0
    max_connections: int = 1000
    # The longest data segment taken (the frame's length field). The standard says 1024, real loggers send
    # more, and the 4-digit field allows 9999: longer declared lengths are refused without being buffered.
    max_frame_bytes: int = 9999
    connection_buffer_bytes: int = 65_536


def parse_mqtt(s: Section, base: Path) -> MqttConfig:
    url = s.get("url", str, MqttConfig.url)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise s.err("url", f"expected mqtt://host:port or mqtts://host:port, got {parts.scheme}://...")
    if parts.username or parts.password:
        raise s.err("url", "put the user in username and the password in password_env or password_file")
    qos = s.get("qos", int, 1)
    if qos not in (0, 1, 2):
        raise s.err("qos", "must be 0, 1 or 2")
    protocol = s.get("protocol", str, "3.1.1")
    if protocol not in ("5", "3.1.1"):
        raise s.err("protocol", 'must be "5" or "3.1.1"')
    retained = s.get("retained", str, "ignore")
    if retained not in ("ignore", "accept"):
        raise s.err("retained", 'must be "ignore" or "accept"')
    client_id = s.get("client_id", str, "riverwatch")
    if not client_id:
        raise s.err("client_id", "must not be empty: it names the persistent session")
    ca_file, cert_file, key_file = (
        s.path(v, base) if (v := s.get(k, str, None)) else None for k in ("ca_file", "cert_file", "key_file")
    )
    cfg = MqttConfig(
        url=url,
        topics=s.strings("topics", MqttConfig.topics),
        client_id=client_id,
        qos=qos,
        protocol=protocol,
        receive_maximum=int(s.number("receive_maximum", 1000, 1)),
        session_expiry_s=int(s.number("session_expiry_s", MqttConfig.session_expiry_s, 0)),
        keepalive_s=int(s.number("keepalive_s", 30, 5)),
        username=s.get("username", str, None),
        password=s.secret("password", base),
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        max_clock_skew_s=s.number("max_clock_skew_s", 300.0, 1.0),
        retained=retained,
        inbox_max_bytes=int(s.number("inbox_max_bytes", MqttConfig.inbox_max_bytes, 512 * 1024)),
        batch_max_bytes=int(s.number("batch_max_bytes", MqttConfig.batch_max_bytes, 256 * 1024)),
        implied_units=parse_implied_units(s),
    )
    s.done()
    return cfg


def parse_implied_units(s: Section) -> dict[str, str]:
    """`implied_units = { cd = "ug/L" }`: a table, so each parameter's unit is written down; a list ("these send
    the standard unit") would bring back the silent assumption. A shipped parameter's name or alias is read as
    its id and its unit must convert to the standard one; another id is taken as one a threshold file declares
    (if none does, readings of it are refused as before: the safe side)."""
    raw: Any = s.get("implied_units", dict, {})
    out: dict[str, str] = {}
    for name, unit in raw.items():
        key = f"implied_units.{name}"
        if not isinstance(unit, str) or not unit.strip():
            raise s.err(key, f'expected the unit its readings are in, such as "mg/L", got {unit!r}')
        pid = SHIPPED.resolve(name) or name.strip().lower()
        known = SHIPPED.get(pid)
        if known is not None:
            if not known.unit:
                raise s.err(key, f"{pid} has no unit: its readings need none")
            if SHIPPED.unit_factor(pid, unit) is None:
                raise s.err(key, f"unknown unit {unit!r} for {pid} (its unit is {known.unit}, or one convertible)")
        if pid in out:
            raise s.err(key, f"{pid} is named twice")
        out[pid] = unit
    return out


def parse_admission(s: Section) -> AdmissionConfig:
    policy = s.get("unknown_stations", str, "reject")
    if policy not in ("reject", "accept"):
        raise s.err("unknown_stations", 'must be "reject" or "accept"')
    cfg = AdmissionConfig(
        unknown_stations=policy,
        new_series_per_hour=int(s.number("new_series_per_hour", AdmissionConfig.new_series_per_hour, 0)),
    )
    s.done()
    return cfg


HJ212_VERSIONS = ("2017", "2025", "2005")


def parse_hj212(s: Section) -> HJ212Config:
    listen = s.get("listen", str, HJ212Config.listen)
    if not listen or listen.count(":") == 1:  # an IPv6 address has more; "host:port" is the mistake caught
        raise s.err("listen", 'expected a host or address, such as "0.0.0.0" (the port goes in port)')
    port = s.get("port", int, HJ212Config.port)
    if not 0 <= port < 65536:
        raise s.err("port", "must be 0-65535 (0: any free port)")
    versions = s.strings("versions", HJ212Config.versions)
    bad = [v for v in versions if v not in HJ212_VERSIONS]
    if bad or not versions:
        raise s.err("versions", f"must be a non-empty list of {', '.join(repr(v) for v in HJ212_VERSIONS)}")
    max_frame = int(s.number("max_frame_bytes", HJ212Config.max_frame_bytes, 128))
    if max_frame > 9999:
        raise s.err("max_frame_bytes", "must be at most 9999 (the frame's length field has 4 digits)")
    cfg = HJ212Config(
        enabled=bool(s.get("enabled", bool, False)),
        listen=listen,
        port=port,
        versions=tuple(dict.fromkeys(versions)),
        idle_timeout_s=s.number("idle_timeout_s", HJ212Config.idle_timeout_s, 1.0),
        max_connections=int(s.number("max_connections", HJ212Config.max_connections, 1)),
        max_frame_bytes=max_frame,
        connection_buffer_bytes=int(s.number("connection_buffer_bytes", HJ212Config.connection_buffer_bytes, 1024)),
    )
    s.done()
    return cfg


def parse_dead_letter(s: Section, base: Path, mqtt: MqttConfig) -> DeadLetterConfig:
    file, topic = s.get("file", str, None), s.get("topic", str, None)
    if (file is None) == (topic is None):
        raise s.err("file", "set exactly one of file or topic")
    if topic is not None:
        if not topic or "+" in topic or "#" in topic:
            raise s.err("topic", "must be a plain topic name, without wildcards")
        clash = next((t for t in mqtt.topics if mqtt_topic_matches(t, topic)), None)
        if clash is not None:
            raise s.err("topic", f"{topic!r} matches the subscription {clash!r}: dead letters would come back in")
    cfg = DeadLetterConfig(
        file=s.path(file, base) if file else None,
        max_bytes=int(s.number("max_bytes", 10 * 1024 * 1024, 4096)),
        topic=topic,
        max_per_second=s.number("max_per_second", 50.0, 0.1),
    )
    s.done()
    return cfg


def mqtt_topic_matches(subscription: str, topic: str) -> bool:
    """MQTT filter matching (`+` one level, `#` the rest), as the broker applies it."""
    return bool(topic_matches_sub(subscription, topic))
