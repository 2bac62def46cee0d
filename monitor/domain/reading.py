"""The unit of data that flows through the service."""

from __future__ import annotations

from typing import NamedTuple


class Reading(NamedTuple):
    """One accepted measurement, already in its parameter's standard unit.

    A NamedTuple rather than a dataclass: readings are made per message on the hot path and go straight
    into sqlite `executemany` and numpy arrays.
    """

    station: str
    parameter: str  # a catalogue id from monitor.domain.params, never an alias
    ts_ns: int  # the reading's own time, epoch nanoseconds (UTC)
    value: float
    flag: str | None = None
