"""Flap control: an alert that toggles too often is held as firing and marked flapping, not sent each time.

Hysteresis in the rules prevents most flapping; this stage catches what gets through (a value hovering at
the limit, a sensor with a loose contact), so the duty officer gets one "flapping" message instead of a
storm. Windows are in reading time, so a replay at any speed behaves as the live stream did. State: per
series that toggled recently, the times of its last transitions (at most max_transitions + 1) and the
held resolve.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from monitor.alerts.evaluator import AlertEvent


class Verdict(Enum):
    SEND = "send"  # an ordinary transition
    START = "start"  # this transition makes the series flapping: send once, saying so
    HOLD = "hold"  # flapping: recorded, not sent


@dataclass
class _Series:
    flips: deque[int] = field(default_factory=deque)
    flapping: bool = False
    held: AlertEvent | None = None  # the latest resolve while flapping, sent when the series calms down
    last_ns: int = 0


class FlapGuard:
    def __init__(self, max_transitions: int = 4, window_s: float = 3600.0) -> None:
        self.max_transitions = max_transitions
        self.window_ns = int(window_s * 1e9)
        self._series: dict[tuple[str, str, str], _Series] = {}

    @staticmethod
    def key(e: AlertEvent) -> tuple[str, str, str]:
        return e.station, e.parameter, e.rule

    def observe(self, e: AlertEvent) -> Verdict:
        if e.state == "escalated":
            s = self._series.get(self.key(e))
            return Verdict.HOLD if s is not None and s.flapping else Verdict.SEND
        s = self._series.setdefault(self.key(e), _Series())
        s.last_ns = e.ts_ns
        s.flips.append(e.ts_ns)
        while s.flips and (s.flips[0] < e.ts_ns - self.window_ns or len(s.flips) > self.max_transitions + 1):
            s.flips.popleft()
        if s.flapping:
            s.held = e if e.state == "resolved" else None
            return Verdict.HOLD
        if len(s.flips) > self.max_transitions:
            s.flapping = True
            s.held = e if e.state == "resolved" else None
            return Verdict.START
        return Verdict.SEND

    def calmed(self, stream_ns: int) -> list[AlertEvent]:
        """Series calm for a whole window: no longer flapping. Returns the held resolves, now to be sent."""
        out = []
        for key, s in list(self._series.items()):
            if stream_ns - s.last_ns < self.window_ns:
                continue
            if s.flapping and s.held is not None:
                out.append(s.held)
            del self._series[key]
        return out

    def is_flapping(self, e: AlertEvent) -> bool:
        s = self._series.get(self.key(e))
        return s is not None and s.flapping
