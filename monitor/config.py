"""Configuration: the TOML file of interface.md, validated up front into typed sections.

Every error names the file and the key (`riverwatch.toml: [mqtt].qos: ...`) so `riverwatch run` can exit 2
with one line. Secrets are read from the environment or a file named in the config, never stored in it,
and never appear in messages.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paho.mqtt.client import topic_matches_sub

log = logging.getLogger("riverwatch.config")


class ConfigError(Exception):
    pass


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
class InfluxConfig:
    url: str
    api: str = "v2"
    org: str = ""
    bucket: str = ""
    token: str = field(default="", repr=False)
    database: str = ""
    retention_policy: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    batch_size: int = 5000
    flush_interval_s: float = 0.5  # p99 publish-to-queryable stays under 1 s at low rates
    timeout_s: float = 10.0
    retry_cap_s: float = 30.0
    # Automatic re-sends of a point refused with a 400 whose shape the database accepted before (a proxy's
    # fault, a limit an operator raises); with the backoff doubling from 1 s up to retry_cap_s, 8 cover
    # about 2 minutes. Then only `riverwatch store redrive` sends it again.
    bad_request_retries: int = 8


@dataclass(frozen=True)
class ThresholdsConfig:
    files: tuple[Path, ...] = ()
    default_class: str = "III"


@dataclass(frozen=True)
class RouteConfig:
    """One target that gets only what concerns it; an empty filter matches everything."""

    url: str = field(repr=False)
    rivers: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    min_severity: str | None = None
    intakes: bool = False  # only alerts at a water intake or whose incident is heading for one
    categories: tuple[str, ...] = ("water", "sensor")  # water alerts (about the river), sensor alerts (the instrument)
    # Unconfirmed first notices and their withdrawals: for the station operator who can check the analyser
    # before the next cycle, not for a bureau that acts on confirmed alerts; a route opts in.
    unconfirmed: bool = False
    # Early-warning forecast notices ("Forecast: cadmium at the Hexi intake from about 2 Feb 14:00"): for the
    # water company of an intake ahead of a plume; a route opts in.
    forecasts: bool = False


ALERT_CATEGORIES = ("water", "sensor")


SEVERITIES = ("warning", "serious", "critical")


@dataclass(frozen=True)
class NotifyConfig:
    urls: tuple[str, ...] = field(default=("console://",), repr=False)
    routes: tuple[RouteConfig, ...] = ()
    apprise_config: Path | None = None  # apprise's own YAML/TEXT file; its tags route (see notify.event_tags)
    language: str = "en"
    utc_offset: str | None = None  # "+08:00": how reading times are shown; None: the machine's local offset
    # Per target, unless its URL sets apprise's own `rto` / `cto`: how long an answer may take (read) and a
    # connection (connect). A target that answers after the read timeout gets a copy on the retry, and
    # DingTalk / WeCom robots under load answer in tens of seconds; a long wait delays only that target.
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    retry_cap_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0  # re-send a firing, unacknowledged alert this often (wall clock)
    front_velocity_km_per_day: float = 12.0  # for arrival estimates until two stations have been hit
    flap_max_transitions: int = 4  # more transitions than this within flap_window_s (reading time): flapping
    flap_window_s: float = 3600.0


@dataclass(frozen=True)
class ServiceConfig:
    data_dir: Path = Path("./riverwatch-data")
    http_listen: str = "127.0.0.1:9108"  # "" disables the HTTP endpoint
    ingest_batch: int = 2000  # most messages decoded and journaled per commit (fewer when fewer wait)


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


@dataclass(frozen=True)
class ForecastConfig:
    """`[forecast]`: when an incident's forecast is issued and when it becomes a notice (reading time).

    Durations in ns; the alerts layer takes them as `monitor.alerts.forecast_notice.ForecastSettings`."""

    interval_ns: int = 3600 * 10**9  # at most one forecast per hour of readings (and one per transition)
    incident_end_ns: int = 48 * 3600 * 10**9  # all stations resolved this long: the incident ends
    horizon_ns: int = 72 * 3600 * 10**9  # a forecast exceedance starting within this is notified
    update_moved_ns: int = 6 * 3600 * 10**9  # notified again when the start moves by more than this
    update_peak_ratio: float = 0.25  # ... or the peak by more than this share


@dataclass(frozen=True)
class Config:
    mqtt: MqttConfig = MqttConfig(embedded=True)
    influxdb: InfluxConfig | None = None
    thresholds: ThresholdsConfig = ThresholdsConfig()
    notify: NotifyConfig = NotifyConfig()
    service: ServiceConfig = ServiceConfig()
    dead_letter: DeadLetterConfig | None = None
    admission: AdmissionConfig = AdmissionConfig()
    forecast: ForecastConfig = ForecastConfig()
    hj212: HJ212Config = HJ212Config()
    source: str = "(defaults)"


class _Section:
    """Typed access to one TOML table that remembers which keys were used, to flag unknown ones."""

    def __init__(self, file: str, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: [{name}] must be a table")
        self.file, self.name, self.data, self.used = file, name, data, set[str]()

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: [{self.name}].{key}: {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.err(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.err(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = float(self.get(key, (int, float), default))
        if value < minimum:
            raise self.err(key, f"must be at least {minimum}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key, list, list(default))
        if not all(isinstance(v, str) and v for v in value):
            raise self.err(key, "expected a list of non-empty strings")
        return tuple(value)

    def secret(self, key: str, base: Path, warn_inline: bool = True) -> str | None:
        """`<key>_env` names an environment variable, `<key>_file` a file. An inline value works, with a
        warning: config files get copied, committed and pasted into tickets."""
        env, file = self.get(f"{key}_env", str, None), self.get(f"{key}_file", str, None)
        inline = self.get(key, str, None)
        if sum(x is not None for x in (env, file, inline)) > 1:
            raise self.err(key, f"set only one of {key}, {key}_env and {key}_file")
        if inline is not None:
            if not warn_inline:
                return inline
            log.warning(
                "%s: [%s].%s: a secret written in the config file; use %s_env or %s_file instead",
                self.file,
                self.name,
                key,
                key,
                key,
            )
            return inline
        if env is not None:
            if env not in os.environ:
                raise self.err(f"{key}_env", f"environment variable {env} is not set")
            return os.environ[env]
        if file is not None:
            try:
                return (base / file).read_text().strip()
            except OSError as e:
                raise self.err(f"{key}_file", f"cannot read {base / file}: {e.strerror}") from None
        return None

    def path(self, value: str, base: Path) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.err(unknown[0], "unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        bool: "true or false",
        dict: "a table",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def load_config(path: str | Path | None) -> Config:
    """Read and validate a config file; None gives the zero-install defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    base = p.resolve().parent
    file = str(p)
    known = {"mqtt", "influxdb", "thresholds", "notify", "service", "dead_letter", "admission", "hj212", "forecast"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{file}: [{key}]: unknown section (expected one of {', '.join(sorted(known))})")
    mqtt = _mqtt(_Section(file, "mqtt", data["mqtt"]), base) if "mqtt" in data else MqttConfig(embedded=True)
    return Config(
        mqtt=mqtt,
        influxdb=_influx(_Section(file, "influxdb", data["influxdb"]), base) if "influxdb" in data else None,
        thresholds=_thresholds(_Section(file, "thresholds", data.get("thresholds", {})), base),
        notify=_notify(_Section(file, "notify", data.get("notify", {})), base),
        service=_service(_Section(file, "service", data.get("service", {})), base),
        dead_letter=_dead_letter(_Section(file, "dead_letter", data["dead_letter"]), base, mqtt)
        if "dead_letter" in data
        else None,
        admission=_admission(_Section(file, "admission", data.get("admission", {}))),
        forecast=_forecast(_Section(file, "forecast", data.get("forecast", {}))),
        hj212=_hj212(_Section(file, "hj212", data.get("hj212", {}))),
        source=file,
    )


def _mqtt(s: _Section, base: Path) -> MqttConfig:
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
    )
    s.done()
    return cfg


def _admission(s: _Section) -> AdmissionConfig:
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


def _hj212(s: _Section) -> HJ212Config:
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


def _influx(s: _Section, base: Path) -> InfluxConfig:
    url = s.get("url", str, None)
    if not url or urlsplit(url).scheme not in ("http", "https"):
        raise s.err("url", "expected http(s)://host:port")
    api = s.get("api", str, "v2")
    if api not in ("v1", "v2"):
        raise s.err("api", 'must be "v2" (InfluxDB 2.x and compatible) or "v1" (InfluxDB 1.x /write)')
    cfg = InfluxConfig(
        url=url,
        api=api,
        org=s.get("org", str, ""),
        bucket=s.get("bucket", str, ""),
        token=s.secret("token", base) or "",
        database=s.get("database", str, ""),
        retention_policy=s.get("retention_policy", str, ""),
        username=s.get("username", str, ""),
        password=s.secret("password", base) or "",
        batch_size=int(s.number("batch_size", 5000, 1)),
        flush_interval_s=s.number("flush_interval_s", 0.5, 0.01),
        timeout_s=s.number("timeout_s", 10.0, 0.1),
        retry_cap_s=s.number("retry_cap_s", 30.0, 0.1),
        bad_request_retries=int(s.number("bad_request_retries", 8, 0)),
    )
    if api == "v2" and not cfg.bucket:
        raise s.err("bucket", 'required with api = "v2"')
    if api == "v1" and not cfg.database:
        raise s.err("database", 'required with api = "v1"')
    s.done()
    return cfg


def _thresholds(s: _Section, base: Path) -> ThresholdsConfig:
    files = tuple(s.path(f, base) for f in s.strings("files", ()))
    for f in files:
        if not f.is_file():
            raise s.err("files", f"no such file: {f}")
    klass = s.get("default_class", str, "III")
    if klass not in ("I", "II", "III", "IV", "V"):
        raise s.err("default_class", "must be one of I, II, III, IV, V")
    s.done()
    return ThresholdsConfig(files=files, default_class=klass)


def _notify(s: _Section, base: Path) -> NotifyConfig:
    routes = tuple(
        _route(_Section(s.file, f"notify.route[{i}]", r), base) for i, r in enumerate(s.get("route", list, []))
    )
    apprise_file = s.get("apprise_config", str, None)
    apprise_path = s.path(apprise_file, base) if apprise_file else None
    if apprise_path is not None and not apprise_path.is_file():
        raise s.err("apprise_config", f"no such file: {apprise_path}")
    default_urls = ("console://",) if not routes and apprise_path is None else ()
    urls = s.strings("urls", default_urls)
    language = s.get("language", str, "en")
    if language not in ("en", "zh"):
        raise s.err("language", 'must be "en" or "zh"')
    offset = s.get("utc_offset", str, None)
    if offset is not None and not re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", offset):
        raise s.err("utc_offset", 'expected an offset such as "+08:00"')
    cfg = NotifyConfig(
        urls=urls,
        routes=routes,
        apprise_config=apprise_path,
        language=language,
        utc_offset=offset,
        timeout_s=s.number("timeout_s", 60.0, 0.1),
        connect_timeout_s=s.number("connect_timeout_s", 10.0, 0.1),
        retry_cap_s=s.number("retry_cap_s", 300.0, 0.1),
        repeat_interval_s=s.number("repeat_interval_s", 4 * 3600.0, 1.0),
        front_velocity_km_per_day=s.number("front_velocity_km_per_day", 12.0, 0.001),
        flap_max_transitions=int(s.number("flap_max_transitions", 4, 2)),
        flap_window_s=s.number("flap_window_s", 3600.0, 1.0),
    )
    s.done()
    return cfg


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "min": 60 * 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


def _duration(s: _Section, key: str, default_ns: int, minimum_ns: int = 0) -> int:
    """ "48h", "90min", "1d12h" (or a number of seconds) in ns."""
    raw = s.get(key, (str, int, float), None)
    if raw is None:
        return default_ns
    if isinstance(raw, int | float):
        ns = int(raw * 10**9)
    else:
        text = raw.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise s.err(key, f'expected a duration such as "48h", "90min" or "1d12h", got "{raw}"')
        ns = int(sum(float(n) * _UNIT_NS[u] for n, u in parts))
    if ns < minimum_ns:
        raise s.err(key, f"must be at least {minimum_ns / 1e9:g} s")
    return ns


def _forecast(s: _Section) -> ForecastConfig:
    d = ForecastConfig()
    cfg = ForecastConfig(
        interval_ns=_duration(s, "interval", d.interval_ns, 60 * 10**9),
        incident_end_ns=_duration(s, "incident_end", d.incident_end_ns, 3600 * 10**9),
        horizon_ns=_duration(s, "horizon", d.horizon_ns, 0),
        update_moved_ns=_duration(s, "update_moved", d.update_moved_ns, 0),
        update_peak_ratio=s.number("update_peak_ratio", d.update_peak_ratio, 0.0),
    )
    s.done()
    return cfg


def _route(s: _Section, base: Path) -> RouteConfig:
    url = s.secret("url", base, warn_inline=False)  # apprise URLs often carry tokens: url_env / url_file
    if not url:
        raise s.err("url", "required (or url_env / url_file for a URL with credentials)")
    severity = s.get("min_severity", str, None)
    if severity is not None and severity not in SEVERITIES:
        raise s.err("min_severity", f"must be one of {', '.join(SEVERITIES)}")
    cfg = RouteConfig(
        url=url,
        rivers=s.strings("rivers", ()),
        stations=s.strings("stations", ()),
        parameters=s.strings("parameters", ()),
        min_severity=severity,
        intakes=bool(s.get("intakes", bool, False)),
        categories=s.strings("categories", ALERT_CATEGORIES),
        unconfirmed=bool(s.get("unconfirmed", bool, False)),
        forecasts=bool(s.get("forecasts", bool, False)),
    )
    unknown = [c for c in cfg.categories if c not in ALERT_CATEGORIES]
    if unknown or not cfg.categories:
        raise s.err("categories", f"must be a non-empty list of {', '.join(ALERT_CATEGORIES)}")
    s.done()
    return cfg


def _service(s: _Section, base: Path) -> ServiceConfig:
    data_dir = s.path(s.get("data_dir", str, "./riverwatch-data"), base)
    listen = s.get("http_listen", str, "127.0.0.1:9108")
    if listen:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise s.err("http_listen", "expected host:port")
    cfg = ServiceConfig(data_dir=data_dir, http_listen=listen, ingest_batch=int(s.number("ingest_batch", 2000, 1)))
    s.done()
    return cfg


def _dead_letter(s: _Section, base: Path, mqtt: MqttConfig) -> DeadLetterConfig:
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
