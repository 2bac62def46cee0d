"""Configuration: the TOML file of interface.md, validated up front into typed sections.

Every error names the file and the key (`riverwatch.toml: [mqtt].qos: ...`) so `riverwatch run` can exit 2
with one line. Secrets are read from the environment or a file named in the config, never stored in it,
and never appear in messages. One module per group of sections (`ingest`, `notify`), their shared
`section` helpers; this module holds the rest and the file as a whole.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config.console import ConsoleConfig, ConsoleUser, load_users, parse_console
from monitor.config.ingest import (
    HJ212_VERSIONS,
    AdmissionConfig,
    DeadLetterConfig,
    HJ212Config,
    MqttConfig,
    mqtt_topic_matches,
    parse_admission,
    parse_dead_letter,
    parse_hj212,
    parse_mqtt,
)
from monitor.config.notify import ALERT_CATEGORIES, SEVERITIES, NotifyConfig, RouteConfig, parse_notify
from monitor.config.section import ConfigError, Section, duration

__all__ = [
    "ALERT_CATEGORIES",
    "HJ212_VERSIONS",
    "SEVERITIES",
    "AdmissionConfig",
    "Config",
    "ConfigError",
    "ConsoleConfig",
    "ConsoleUser",
    "DeadLetterConfig",
    "ForecastConfig",
    "HJ212Config",
    "InfluxConfig",
    "MqttConfig",
    "NotifyConfig",
    "RouteConfig",
    "ServiceConfig",
    "ThresholdsConfig",
    "load_config",
    "load_users",
    "mqtt_topic_matches",
]


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
class ServiceConfig:
    data_dir: Path = Path("./riverwatch-data")
    http_listen: str = "127.0.0.1:9108"  # "" disables the HTTP endpoint
    ingest_batch: int = 2000  # most messages decoded and journaled per commit (fewer when fewer wait)
    log_format: str = "text"  # "json": one JSON object per log line (monitor.service.logformat)


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
    mqtt: MqttConfig = field(default_factory=lambda: MqttConfig(embedded=True))
    influxdb: InfluxConfig | None = None
    thresholds: ThresholdsConfig = ThresholdsConfig()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    service: ServiceConfig = ServiceConfig()
    dead_letter: DeadLetterConfig | None = None
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    forecast: ForecastConfig = ForecastConfig()
    hj212: HJ212Config = field(default_factory=HJ212Config)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    source: str = "(defaults)"


def load_config(path: str | Path | None, secrets: Collection[str] | None = None) -> Config:
    """Read and validate a config file; None gives the zero-install defaults.

    `secrets` names the sections whose secrets are read (None: all, as the service needs): a read-only
    command (`alerts`, `thresholds show`) must work for an operator who does not hold the service's tokens,
    and `report` needs only the database's."""
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
    known = {
        "mqtt",
        "influxdb",
        "thresholds",
        "notify",
        "service",
        "dead_letter",
        "admission",
        "hj212",
        "forecast",
        "console",
    }
    for key in data:
        if key not in known:
            raise ConfigError(f"{file}: [{key}]: unknown section (expected one of {', '.join(sorted(known))})")

    def section(name: str, default: Any = _ABSENT) -> Section:
        table = data[name] if default is _ABSENT else data.get(name, default)
        return Section(file, name, table, secrets is None or name in secrets)

    mqtt = parse_mqtt(section("mqtt"), base) if "mqtt" in data else MqttConfig(embedded=True)
    service = _service(Section(file, "service", data.get("service", {})), base)
    console = parse_console(Section(file, "console", data.get("console", {})), base)
    if console.enabled and not service.http_listen:
        raise ConfigError(f"{file}: [console].enabled: the console is served on [service].http_listen, which is empty")
    return Config(
        mqtt=mqtt,
        influxdb=_influx(section("influxdb"), base) if "influxdb" in data else None,
        thresholds=_thresholds(Section(file, "thresholds", data.get("thresholds", {})), base),
        notify=parse_notify(section("notify", {}), base),
        service=service,
        dead_letter=parse_dead_letter(Section(file, "dead_letter", data["dead_letter"]), base, mqtt)
        if "dead_letter" in data
        else None,
        admission=parse_admission(Section(file, "admission", data.get("admission", {}))),
        forecast=_forecast(Section(file, "forecast", data.get("forecast", {}))),
        hj212=parse_hj212(Section(file, "hj212", data.get("hj212", {}))),
        console=console,
        source=file,
    )


_ABSENT: Any = object()


def _influx(s: Section, base: Path) -> InfluxConfig:
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


def _thresholds(s: Section, base: Path) -> ThresholdsConfig:
    files = tuple(s.path(f, base) for f in s.strings("files", ()))
    for f in files:
        if not f.is_file():
            raise s.err("files", f"no such file: {f}")
    klass = s.get("default_class", str, "III")
    if klass not in ("I", "II", "III", "IV", "V"):
        raise s.err("default_class", "must be one of I, II, III, IV, V")
    s.done()
    return ThresholdsConfig(files=files, default_class=klass)


def _forecast(s: Section) -> ForecastConfig:
    d = ForecastConfig()
    cfg = ForecastConfig(
        interval_ns=duration(s, "interval", d.interval_ns, 60 * 10**9),
        incident_end_ns=duration(s, "incident_end", d.incident_end_ns, 3600 * 10**9),
        horizon_ns=duration(s, "horizon", d.horizon_ns, 0),
        update_moved_ns=duration(s, "update_moved", d.update_moved_ns, 0),
        update_peak_ratio=s.number("update_peak_ratio", d.update_peak_ratio, 0.0),
    )
    s.done()
    return cfg


def _service(s: Section, base: Path) -> ServiceConfig:
    data_dir = s.path(s.get("data_dir", str, "./riverwatch-data"), base)
    listen = s.get("http_listen", str, "127.0.0.1:9108")
    if listen:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise s.err("http_listen", "expected host:port")
    log_format = s.get("log_format", str, "text")
    if log_format not in ("text", "json"):
        raise s.err("log_format", 'must be "text" or "json"')
    cfg = ServiceConfig(
        data_dir=data_dir,
        http_listen=listen,
        ingest_batch=int(s.number("ingest_batch", 2000, 1)),
        log_format=log_format,
    )
    s.done()
    return cfg
