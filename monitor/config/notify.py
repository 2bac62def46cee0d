"""`[notify]` and its `[[notify.route]]`s: who is told what, how, and when."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config.messages import MessagesConfig, RouteMessages, parse_messages, parse_route_messages
from monitor.config.section import Section, duration
from monitor.config.targets import apprise_config_problem, url_problem

# Grouping (Alertmanager's names): the first message of a new group waits GROUP_WAIT_S for the rest of its
# burst (a restart's replay, a plume reaching three stations in one cycle), later changes of a group already
# told go at most every GROUP_INTERVAL_S. 10 s keeps the first exceedance within seconds of its reading
# (ingest, journal and the rules take well under a second) and covers a replayed burst (14 posts in 0.62 s).
GROUP_WAIT_S = 10.0
GROUP_INTERVAL_S = 120.0


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
    messages: RouteMessages = field(default_factory=RouteMessages)  # its wording (monitor.config.messages)
    # Grouping and repeats for this route (s); None: [notify]'s group_wait / group_interval / repeat_interval_s.
    group_wait_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    # Also the notifications of stale readings ([notify].stale_after): the station operator who wants a
    # logger's re-sent history; a bureau's route gets only what is happening now.
    stale: bool = False


@dataclass(frozen=True)
class InhibitConfig:
    """`[notify.inhibit]`: noise that an open alert already explains is muted (and noted in the audit log).

    Only unconfirmed notices and their withdrawals are ever muted: a confirmed water alert is always sent,
    because muting a real exceedance is worse than any noise. An open sensor alert on the same series marks
    the water alert instead ("the instrument is suspect")."""

    # An unconfirmed notice (or its withdrawal) of a series whose own sensor alert is open: the instrument
    # already told its operator; the next reading confirms or withdraws it.
    sensor_mutes_unconfirmed: bool = True
    # A confirmed water alert on a series whose sensor alert is open carries a line saying so.
    sensor_marks_water: bool = True
    # An unconfirmed notice downstream of a station already confirmed in the same incident. Off by default:
    # it is the first sign that the front has reached the station, which its operator may want to check.
    upstream_mutes_unconfirmed: bool = False


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
    messages: MessagesConfig = field(default_factory=MessagesConfig)  # wording (monitor.config.messages)
    group_wait_s: float = GROUP_WAIT_S  # the default of every target (a route may set its own)
    group_interval_s: float = GROUP_INTERVAL_S
    inhibit: InhibitConfig = field(default_factory=InhibitConfig)
    # A reading that arrives more than this after its own time (s; 0: off) is stale: a logger re-sending its
    # history. Its notifications say so and go only to routes with `stale = true` (monitor.notify.pipeline).
    stale_after_s: float = 0.0


def parse_notify(s: Section, base: Path) -> NotifyConfig:
    routes = tuple(
        _route(Section(s.file, f"notify.route[{i}]", r, s.resolves_secrets), base)
        for i, r in enumerate(s.get("route", list, []))
    )
    apprise_file = s.get("apprise_config", str, None)
    apprise_path = s.path(apprise_file, base) if apprise_file else None
    if apprise_path is not None and not apprise_path.is_file():
        raise s.err("apprise_config", f"no such file: {apprise_path}")
    if apprise_path is not None and (problem := apprise_config_problem(apprise_path)):
        raise s.err("apprise_config", problem)
    default_urls = ("console://",) if not routes and apprise_path is None else ()
    urls = s.strings("urls", default_urls)
    for i, u in enumerate(urls):
        if problem := url_problem(u):
            raise s.err(f"urls[{i}]", problem)
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
        messages=parse_messages(s, base),
        group_wait_s=_seconds(s, "group_wait", GROUP_WAIT_S),
        group_interval_s=_seconds(s, "group_interval", GROUP_INTERVAL_S),
        inhibit=_inhibit(Section(s.file, "notify.inhibit", s.get("inhibit", dict, {}))),
        stale_after_s=_seconds(s, "stale_after", 0.0),
    )
    s.done()
    return cfg


def _seconds(s: Section, key: str, default_s: float) -> float:
    """A duration key ("10s", "2min", or seconds) in seconds; the default when absent."""
    return duration(s, key, int(default_s * 1e9)) / 1e9


def _own_seconds(s: Section, key: str) -> float | None:
    """A route's own duration, or None to take [notify]'s."""
    return None if s.get(key, (str, int, float), None) is None else _seconds(s, key, 0.0)


def _inhibit(s: Section) -> InhibitConfig:
    cfg = InhibitConfig(
        sensor_mutes_unconfirmed=bool(s.get("sensor_mutes_unconfirmed", bool, True)),
        sensor_marks_water=bool(s.get("sensor_marks_water", bool, True)),
        upstream_mutes_unconfirmed=bool(s.get("upstream_mutes_unconfirmed", bool, False)),
    )
    s.done()
    return cfg


def _route(s: Section, base: Path) -> RouteConfig:
    url = s.secret("url", base, warn_inline=False)  # apprise URLs often carry tokens: url_env / url_file
    if not url and s.resolves_secrets:
        raise s.err("url", "required (or url_env / url_file for a URL with credentials)")
    if url and (problem := url_problem(url)):
        raise s.err(next(k for k in ("url", "url_env", "url_file") if k in s.data), problem)
    severity = s.get("min_severity", str, None)
    if severity is not None and severity not in SEVERITIES:
        raise s.err("min_severity", f"must be one of {', '.join(SEVERITIES)}")
    cfg = RouteConfig(
        url=url or "",  # "" only when secrets are not read (a read-only command)
        rivers=s.strings("rivers", ()),
        stations=s.strings("stations", ()),
        parameters=s.strings("parameters", ()),
        min_severity=severity,
        intakes=bool(s.get("intakes", bool, False)),
        categories=s.strings("categories", ALERT_CATEGORIES),
        unconfirmed=bool(s.get("unconfirmed", bool, False)),
        forecasts=bool(s.get("forecasts", bool, False)),
        messages=parse_route_messages(s, base),
        group_wait_s=_own_seconds(s, "group_wait"),
        group_interval_s=_own_seconds(s, "group_interval"),
        repeat_interval_s=_own_seconds(s, "repeat_interval"),
        stale=bool(s.get("stale", bool, False)),
    )
    if cfg.repeat_interval_s is not None and cfg.repeat_interval_s < 1.0:
        raise s.err("repeat_interval", "must be at least 1 s")
    unknown = [c for c in cfg.categories if c not in ALERT_CATEGORIES]
    if unknown or not cfg.categories:
        raise s.err("categories", f"must be a non-empty list of {', '.join(ALERT_CATEGORIES)}")
    s.done()
    return cfg
