"""`[notify]` and its `[[notify.route]]`s: who is told what, how, and when."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config.section import Section


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


def parse_notify(s: Section, base: Path) -> NotifyConfig:
    routes = tuple(
        _route(Section(s.file, f"notify.route[{i}]", r), base) for i, r in enumerate(s.get("route", list, []))
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


def _route(s: Section, base: Path) -> RouteConfig:
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
