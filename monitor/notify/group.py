"""One message out of the rows a delivery worker took together (Outbox.take): a group of one transition is
sent as its own message, unchanged; several become one grouped message that leads with what changed (oldest
first), then the incident's table as the newest row saw it, then the target's "what to do" lines once."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.notify.outbox import Row
from monitor.notify.render_group import group_message

# apprise's types, the most alarming first: a group carrying a new exceedance is sent as one
_URGENCY = ("failure", "warning", "info", "success")


def compose(rows: Sequence[Row]) -> tuple[str, str, str]:
    """(title, body, notify_type) of the message that carries `rows` (oldest first, at least one)."""
    if len(rows) == 1:
        m = rows[0].message
        return m.title, m.body, m.notify_type
    newest = rows[-1].message
    changes = [r.message.change or r.message.title for r in rows]
    context = next((r.message.context for r in reversed(rows) if r.message.context), "")
    title, body = group_message(changes, context, newest.language)
    todo = rows[-1].todo
    if todo:
        body = f"{body}\n\n{todo}"
    kinds = {r.message.notify_type for r in rows}
    notify_type = next((k for k in _URGENCY if k in kinds), newest.notify_type)
    return title, body, notify_type
