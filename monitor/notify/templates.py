"""The "what to do" lines a route's message ends with (the ack command, the console URL, the duty phone), from
templates users write in `[notify.templates]` or a route's own `what_to_do`; compiled and checked when the
config is loaded (monitor.config.messages), so rendering never fails on a loaded config."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.config.messages import MessagesConfig, RouteMessages, Template
from monitor.notify import terms
from monitor.notify.timefmt import num
from monitor.thresholds import Station


def what_to_do(
    notify: MessagesConfig,
    route: RouteMessages,
    e: AlertEvent,
    incident: Incident | None,
    stations: Mapping[str, Station],
    language: str,
) -> list[str]:
    """The lines a route's message ends with; [] when the route (or [notify]) chooses no template."""
    template = chosen(notify, route)
    if template is None:
        return []
    return template.render(language, variables(notify, route, e, incident, stations, language))


def chosen(notify: MessagesConfig, route: RouteMessages) -> Template | None:
    """The route's own text, else the template it names, else [notify].template; None for none."""
    if route.own is not None:
        return route.own
    name = notify.template if route.template is None else route.template
    return notify.templates.get(name) if name else None


def variables(
    notify: MessagesConfig,
    route: RouteMessages,
    e: AlertEvent,
    incident: Incident | None,
    stations: Mapping[str, Station],
    language: str,
) -> dict[str, str]:
    """What a template sees (monitor.config.messages.TEMPLATE_VARIABLES): strings only, "" when unknown."""
    st = stations.get(e.station)
    zh = language == "zh"
    value = f"{num(e.value)}{terms.unit(e.parameter, language)}" if e.value == e.value else ""
    by = "姓名" if zh else "<name>"
    return {
        "alert_id": e.alert_id,
        "station": terms.station_name(e.station, stations, language),
        "station_id": e.station,
        "river": terms.DEFAULT_TERMS.river(st, language),
        "parameter": terms.parameter_name(e.parameter, language),
        "parameter_id": e.parameter,
        "state": terms.state(e.state, language),
        "state_id": e.state,
        "category": e.category,
        "severity": notify.label(e.severity, language),
        "severity_id": e.severity,
        "value": value,
        "ratio": num(e.ratio) if e.ratio == e.ratio else "",
        "incident": incident.id if incident is not None else "",
        "console_url": route.console_url if route.console_url is not None else notify.console_url,
        "duty_phone": route.duty_phone if route.duty_phone is not None else notify.duty_phone,
        "ack_command": f"riverwatch ack {e.alert_id} --by {by}",
        "language": language,
    }
