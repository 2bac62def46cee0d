"""Flap control: an alert that toggles too often is held as firing and marked flapping, not sent each time.

Hysteresis in the rules prevents most flapping; this stage catches what gets through (a value hovering at
the limit, a sensor with a loose contact), so the duty officer gets one "flapping" message instead of a
storm. Windows are in reading time, so a replay at any speed behaves as the live stream did, and `calmed`
gives the same answer whether the stream clock moves in one step or in many (see there). State: per
series that toggled recently, the times of its last transitions (at most max_transitions + 1) and the
held resolve; the ledger keeps it (`FlapState`) so that a restart does not forget a flapping series.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from monitor.alerts.evaluator import AlertEvent

SeriesKey = tuple[str, str, str]  # station, parameter, rule
_ENDS = ("resolved", "withdrawn")  # the transitions that end an alert: held while flapping, sent once calm


class Verdict(Enum):
    SEND = "send"  # an ordinary transition
    START = "start"  # this transition makes the series flapping: send once, saying so
    HOLD = "hold"  # flapping: recorded, not sent


@dataclass(frozen=True, slots=True)
class FlapState:
    """One series' flap state as the ledger keeps it."""

    key: SeriesKey
    flips: tuple[int, ...]
    flapping: bool
    held: AlertEvent | None
    last_ns: int


@dataclass
class _Series:
    flips: deque[int] = field(default_factory=deque)
    flapping: bool = False
    held: AlertEvent | None = None  # the latest resolve while flapping, sent when the series calms down
    last_ns: int = 0
    unconfirmed: str = ""  # the alert id of an unconfirmed alert: its confirmation is not a new transition


class FlapGuard:
    def __init__(self, max_transitions: int = 4, window_s: float = 3600.0) -> None:
        self.max_transitions = max_transitions
        self.window_ns = int(window_s * 1e9)
        self._series: dict[SeriesKey, _Series] = {}
        # (last_ns, key) per transition, oldest first: `calmed` looks only at series that may have calmed.
        # An entry is stale once its series moved on (another transition) or was forgotten.
        self._calm_order: list[tuple[int, SeriesKey]] = []

    @staticmethod
    def key(e: AlertEvent) -> SeriesKey:
        return e.station, e.parameter, e.rule

    def observe(self, e: AlertEvent) -> Verdict:
        """An opening (unconfirmed, or firing at once) and an ending (withdrawn, resolved) are transitions; an
        escalation and the confirmation of an unconfirmed alert are not (sent unless the series is flapping)."""
        key = self.key(e)
        known = self._series.get(key)
        if e.state == "escalated" or (e.state == "firing" and known is not None and known.unconfirmed == e.alert_id):
            return Verdict.HOLD if known is not None and known.flapping else Verdict.SEND
        s = self._series.setdefault(key, _Series())
        s.unconfirmed = e.alert_id if e.state == "unconfirmed" else ""
        s.last_ns = e.ts_ns
        heapq.heappush(self._calm_order, (e.ts_ns, key))
        s.flips.append(e.ts_ns)
        while s.flips and (s.flips[0] < e.ts_ns - self.window_ns or len(s.flips) > self.max_transitions + 1):
            s.flips.popleft()
        if s.flapping:
            s.held = e if e.state in _ENDS else None
            return Verdict.HOLD
        if len(s.flips) > self.max_transitions:
            s.flapping = True
            s.held = e if e.state in _ENDS else None
            return Verdict.START
        return Verdict.SEND

    def calmed(self, stream_ns: int) -> list[AlertEvent]:
        """Series calm for a whole window at `stream_ns`: no longer flapping. Returns the held resolves, now to be
        sent, in the order the series calmed (then by series), so that one call at the end of a long stretch
        returns what calls along it would have, one after the other. O(log n) per series that calmed."""
        out = []
        while self._calm_order and stream_ns - self._calm_order[0][0] >= self.window_ns:
            last_ns, key = heapq.heappop(self._calm_order)
            s = self._series.get(key)
            if s is None or s.last_ns != last_ns:
                continue  # stale: the series moved on or is gone
            del self._series[key]
            if s.flapping and s.held is not None:
                out.append(s.held)
        return out

    def is_flapping(self, e: AlertEvent) -> bool:
        s = self._series.get(self.key(e))
        return s is not None and s.flapping

    def state(self, key: SeriesKey) -> FlapState | None:
        """What the ledger keeps of a series; None when the guard has forgotten it."""
        s = self._series.get(key)
        return None if s is None else FlapState(key, tuple(s.flips), s.flapping, s.held, s.last_ns)

    def restore(self, states: Iterable[FlapState]) -> None:
        """The series the ledger kept at the last stop (start-up)."""
        for st in states:
            self._series[st.key] = _Series(deque(st.flips), st.flapping, st.held, st.last_ns)
            heapq.heappush(self._calm_order, (st.last_ns, st.key))
