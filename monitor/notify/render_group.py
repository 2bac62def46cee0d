"""One message for several transitions of one incident (or, outside incidents, of one station): it leads with
what changed, then the incident's stations as they stand. The grouping itself is monitor.notify.group; this
module only words it, from texts rendered when each transition was queued (the outbox keeps them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incident
from monitor.thresholds import Station


def change_line(
    e: AlertEvent, incident: Incident | None, stations: Mapping[str, Station], language: str, tz: tzinfo
) -> str:
    """One line for one transition, as it leads a grouped message ("Sancha now over the limit, 3.1x")."""
    st = stations.get(e.station)
    name = st.name if st is not None and st.name else e.station
    return f"{name}: {e.parameter} {e.state}, {e.ratio:.1f}x"


def group_context(incident: Incident | None, stations: Mapping[str, Station], language: str, tz: tzinfo) -> str:
    """The incident's table of stations (state, latest value, ratio, since), as it stands when a transition is
    queued: a grouped message shows the newest one."""
    if incident is None:
        return ""
    return "\n".join(f"{h.station}" for h in incident.hits)


def group_message(changes: Sequence[str], context: str, language: str) -> tuple[str, str]:
    """Title and body of a grouped message from its transitions' change lines (oldest first) and the newest
    context."""
    title = changes[-1] if len(changes) == 1 else f"{changes[-1]} (+{len(changes) - 1})"
    body = "\n".join([*changes, *(["", context] if context else [])])
    return title, body
