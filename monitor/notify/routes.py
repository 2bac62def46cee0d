"""Routes: which target wants which alert, from `[[notify.route]]` filters or an apprise config file's tags.

Unconfirmed first notices and their withdrawals go to a route only when it says `unconfirmed = true`, and to an
apprise target only when it carries the tag `unconfirmed` (the station operator, who can check the analyser
before the next cycle); a bureau's route gets the confirmed alert it acts on. A target given as a plain
`[notify].urls` entry has no filter at all and gets everything, unconfirmed notices included, so a simple setup
hears of a first exceedance as early as before. Routes filter on `categories` (water, sensor); tags carry
`category:water` or `category:sensor`. Early-warning forecast notices (category `forecast`) go only to routes
with `forecasts = true` and apprise targets tagged `category:forecast`: the water company of an intake ahead.

Targets are known by a hash of their URL (`target_id`), so the outbox and the logs never hold credentials.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import apprise
from apprise.decorators import notify as apprise_plugin

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.config import SEVERITIES, NotifyConfig, RouteConfig
from monitor.config.messages import MessagesConfig
from monitor.config.targets import is_alertmanager, parse_alertmanager
from monitor.notify.message import Timing
from monitor.thresholds import Station

log = logging.getLogger("riverwatch.notify")
UNCONFIRMED = "unconfirmed"  # the apprise tag of a target that gets unconfirmed notices
FORECAST = "forecast"  # the category of early-warning forecast notices (monitor.alerts.forecast_notice)
FORECAST_TAG = "category:forecast"  # the apprise tag of a target that gets them
STALE_TAG = "stale"  # the apprise tag of a target that gets the notifications of stale readings
# apprise logs DingTalk tokens and WeCom keys in full at DEBUG.
if logging.getLogger("apprise").getEffectiveLevel() < logging.INFO:
    logging.getLogger("apprise").setLevel(logging.INFO)


@apprise_plugin(on="console", name="riverwatch console")
def _console(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
    """The default sink: the console, through the same apprise path as every real target."""
    print(f"\n*** {title}\n{body}\n", file=sys.stdout, flush=True)
    return True


@dataclass(frozen=True)
class Target:
    """One notification target and what it wants: a route's filters, or apprise config tags."""

    url: str = field(repr=False)
    route: RouteConfig | None = None
    tags: frozenset[str] = frozenset()
    timing: Timing = field(default_factory=Timing)  # its group_wait / group_interval (the route's, else [notify]'s)
    repeat_interval_s: float = 4 * 3600.0  # the route's repeat_interval, else [notify].repeat_interval_s
    messages: MessagesConfig = field(default_factory=MessagesConfig, repr=False)  # [notify]'s wording

    @property
    def id(self) -> str:
        return target_id(self.url)

    @property
    def wants_stale(self) -> bool:
        """Notifications of stale readings: a route with `stale = true`, an apprise target tagged `stale`."""
        return STALE_TAG in self.tags if self.tags else self.route is not None and self.route.stale

    def wants(self, e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> bool:
        if e.category == FORECAST:
            return self._wants_forecast(e, stations, incident)
        if self.tags:  # apprise semantics: any of the target's tags; unconfirmed notices need their own tag
            if not e.confirmed:
                if UNCONFIRMED not in self.tags:
                    return False
                others = self.tags - {UNCONFIRMED}
                return not others or bool(others & event_tags(e, stations, incident))
            return bool(self.tags & event_tags(e, stations, incident))
        r = self.route
        if r is None:
            return True
        st = stations.get(e.station)
        return (
            (r.unconfirmed or e.confirmed)
            and e.category in r.categories
            and (not r.rivers or (st is not None and st.river in r.rivers))
            and (not r.stations or e.station in r.stations)
            and (not r.parameters or e.parameter in r.parameters)
            and (r.min_severity is None or _rank(e.severity) >= _rank(r.min_severity))
            and (not r.intakes or concerns_intake(e, stations, incident))
        )

    def _wants_forecast(self, e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> bool:
        """Forecast notices are opted into: a route with `forecasts = true` (its river, station, parameter and
        intake filters apply to the station forecast), an apprise target tagged `category:forecast` (its other
        tags, if any, restrict it). A plain `[notify].urls` target does not get them."""
        if self.tags:
            if FORECAST_TAG not in self.tags:
                return False
            others = {t for t in self.tags if not t.startswith("category:") and t != UNCONFIRMED}
            return not others or bool(others & event_tags(e, stations, incident))
        r = self.route
        if r is None or not r.forecasts:
            return False
        st = stations.get(e.station)
        return (
            (not r.rivers or (st is not None and st.river in r.rivers))
            and (not r.stations or e.station in r.stations)
            and (not r.parameters or e.parameter in r.parameters)
            and (not r.intakes or (st is not None and st.intake))
        )


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def concerns_intake(e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> bool:
    """At a water intake, or on a river where the front is still upstream of one."""
    st = stations.get(e.station)
    if st is not None and st.intake:
        return True
    if incident is None or not incident.hits:
        return False
    front = max(h.river_km for h in incident.hits)
    return any(
        s.intake and s.river == incident.river and s.river_km is not None and s.river_km > front
        for s in stations.values()
    )


def event_tags(e: AlertEvent, stations: Mapping[str, Station], incident: Incident | None) -> set[str]:
    """Tags an apprise config file can route on: all, river:NAME, station:ID, parameter:ID, severity:S,
    min:S (for S at or below the alert's severity: `min:serious` gets serious and critical), intake,
    category:water or category:sensor, and unconfirmed (a first notice or its withdrawal)."""
    st = stations.get(e.station)
    tags = {"all", f"station:{e.station}", f"parameter:{e.parameter}", f"severity:{e.severity}"}
    tags.add(f"category:{e.category}")
    if not e.confirmed:
        tags.add(UNCONFIRMED)
    tags |= {f"min:{s}" for s in SEVERITIES[: _rank(e.severity) + 1]}
    if st is not None and st.river:
        tags.add(f"river:{st.river.lower()}")
    if concerns_intake(e, stations, incident):
        tags.add("intake")
    return {t.lower() for t in tags}


def make_targets(cfg: NotifyConfig) -> list[Target]:
    """Every configured target, with its grouping and repeat times resolved ([notify]'s unless its route's)."""
    common = Timing(cfg.group_wait_s, cfg.group_interval_s)
    targets = [
        Target(u, timing=common, repeat_interval_s=cfg.repeat_interval_s, messages=cfg.messages) for u in cfg.urls
    ]
    for r in cfg.routes:
        timing = Timing(
            cfg.group_wait_s if r.group_wait_s is None else r.group_wait_s,
            cfg.group_interval_s if r.group_interval_s is None else r.group_interval_s,
        )
        repeat = cfg.repeat_interval_s if r.repeat_interval_s is None else r.repeat_interval_s
        targets.append(Target(r.url, route=r, timing=timing, repeat_interval_s=repeat, messages=cfg.messages))
    if cfg.apprise_config is not None:
        ac = apprise.AppriseConfig()
        ac.add(str(cfg.apprise_config))
        for server in ac.services():
            tags = frozenset(str(t).lower() for t in server.tags)
            url = server.url(privacy=False)
            targets.append(
                Target(url, tags=tags, timing=common, repeat_interval_s=cfg.repeat_interval_s, messages=cfg.messages)
            )
    unique: dict[str, Target] = {}
    for t in targets:  # one worker per URL, or a message would go out twice
        if t.id in unique:
            log.warning("notify: %s is configured more than once; the first entry is used", private_url(t.url))
        unique.setdefault(t.id, t)
    return list(unique.values())


def shortest_repeat_s(cfg: NotifyConfig) -> float:
    """How often repeats must be considered so that each target's own repeat_interval is kept (the alert
    path then sends a repeat only to the targets whose interval has passed)."""
    return min([cfg.repeat_interval_s, *(r.repeat_interval_s for r in cfg.routes if r.repeat_interval_s)])


def target_id(url: str) -> str:
    """A stable id for a target that does not store its credentials."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def private_url(url: str) -> str:
    """The URL as it may appear in logs: apprise's privacy form, never tokens or passwords."""
    if is_alertmanager(url):
        try:
            return parse_alertmanager(url).base
        except ValueError:
            return url.split(":", 1)[0] + "://(invalid)"
    plugin = apprise.Apprise.instantiate(url)
    return plugin.url(privacy=True) if plugin else url.split(":", 1)[0] + "://(invalid)"
