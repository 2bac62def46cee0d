"""What messages say, in the bureau's own terms: `[notify.templates]`, severity labels, and a route's own
"what to do" lines. Read from the `[notify]` table and each `[[notify.route]]` by `monitor.config.notify`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.config.section import Section


@dataclass(frozen=True)
class MessagesConfig:
    """The keys of `[notify]` about message wording (none yet)."""


@dataclass(frozen=True)
class RouteMessages:
    """The keys of one `[[notify.route]]` about message wording (none yet)."""


def parse_messages(s: Section, base: Path) -> MessagesConfig:
    """The wording keys of `[notify]`; `s` is the whole table (read only the keys named here)."""
    return MessagesConfig()


def parse_route_messages(s: Section, base: Path) -> RouteMessages:
    """The wording keys of one route; `s` is the route's table (read only the keys named here)."""
    return RouteMessages()
