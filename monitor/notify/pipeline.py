"""The alert path's feed: transitions, the flap guard's calm clock and repeats, in reading-time order.

A held resolve is released when its series has been calm for a window of reading time. Whether the stream
arrives one reading per batch or all at once, the release must land at the same place among the
notifications: before the first transition at or after the moment the series calmed, or at the end of the
batch whose readings reach that moment. So each transition is preceded by a calm check at its own reading
time, and each batch ends with one at the newest reading time; the checks run when their turn comes, after
the transitions before them have been through the flap guard (`drain`).

Stale readings ([notify].stale_after: a logger re-sending its history) give notices marked `stale`, which only
routes that ask for them get. An alert they leave firing is still news for everyone else: the first batch of
readings that arrive on time sends it again (as a repeat, "reported late") to every target that wants it.
If a restart comes in between, the repeat interval sends it instead (the stale notice counts as sent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapGuard
from monitor.alerts.ledger import AlertRecord, Ledger
from monitor.notify.stages import AlertPath, Notice, Stage
from monitor.thresholds import Limit


@dataclass(frozen=True, slots=True)
class _Calm:
    stream_ns: int  # release the held resolves of series calm at this reading time


@dataclass(frozen=True, slots=True)
class _Evaluated:
    marks: dict[str, int]  # alert id -> newest reading evaluated: into the ledger after the batch's transitions


class Pipeline:
    """Notices waiting for the alert path, in order; `drain` runs them and can be called again after an error.

    Call `feed`, `feed_repeats` and `drain` from one thread at a time (the service's rules loop does).
    """

    def __init__(self, path: Stage, flaps: FlapGuard, ledger: Ledger | None = None, stale_after_s: float = 0.0) -> None:
        self.path = path
        self.stale_after_ns = int(stale_after_s * 1e9)  # 0: no reading is stale
        self._late: dict[str, AlertEvent] = {}  # firing alerts told only as stale: sent again when on time
        self.flaps = flaps
        # where `evaluated` marks go: the alert path's own ledger unless given (None: not kept, as in the backtest)
        self.ledger = ledger if ledger is not None else path.ledger if isinstance(path, AlertPath) else None
        self._queue: deque[Notice | _Calm | _Evaluated] = deque()
        self._finished: list[Notice] = []

    def feed(
        self,
        events: Iterable[AlertEvent],
        stream_ns: int | None = None,
        evaluated: dict[str, int] | None = None,
        arrived_ns: int | None = None,
    ) -> None:
        """Transitions in time order. With `stream_ns` (readings' transitions, and the newest reading time of
        their batch), the calm clock moves with them; without (no data, reload), it stays where it is.
        `evaluated` (Evaluator.evaluated) goes to the ledger after the transitions, whose records it updates.
        `arrived_ns`: when the batch's readings were received (Journal.arrival), for staleness."""
        events = list(events)
        if self._late and arrived_ns is not None and stream_ns is not None and not self.stale(stream_ns, arrived_ns):
            moved = {e.alert_id for e in events}
            late = [e for a, e in self._late.items() if a not in moved]  # a transition now tells it anyway
            self._late.clear()
            self._queue.extend(Notice(e, repeat=True, late=True) for e in late)
        for e in events:
            if stream_ns is not None:
                self._queue.append(_Calm(e.ts_ns))
            stale = arrived_ns is not None and self.stale(e.ts_ns, arrived_ns)
            self._queue.append(Notice(e, stale=stale))
        if stream_ns is not None:
            self._queue.append(_Calm(stream_ns))
        if evaluated and self.ledger is not None:
            self._queue.append(_Evaluated(evaluated))

    def stale(self, ts_ns: int, arrived_ns: int) -> bool:
        return self.stale_after_ns > 0 and arrived_ns - ts_ns > self.stale_after_ns

    def feed_repeats(self, events: Iterable[AlertEvent]) -> None:
        self._queue.extend(Notice(e, repeat=True) for e in events)

    def drain(self) -> list[Notice]:
        """Run every waiting notice through the path; the notices finished since the last successful drain.

        On an error (sqlite3.Error: the ledger's or the outbox's disk) the failed notice stays first in line,
        with the stages it passed, and the error propagates; call again to resume.
        """
        while self._queue:
            item = self._queue[0]
            if isinstance(item, _Evaluated):
                assert self.ledger is not None
                self.ledger.evaluated(item.marks)
                self._queue.popleft()
                continue
            if isinstance(item, _Calm):
                self._queue.popleft()
                released = self.flaps.calmed(item.stream_ns)
                self._queue.extendleft(reversed([Notice(e, released=True) for e in released]))
                continue
            self.path.exec(item)
            self._queue.popleft()
            self._finished.append(item)
            self._owe(item)
        finished, self._finished = self._finished, []
        return finished

    def _owe(self, n: Notice) -> None:
        """Keep what a stale notice left firing (sent again on time), forget what a later one ended."""
        e = n.event
        if n.repeat or e.category == "forecast":
            return
        if n.stale and n.muted is None and e.confirmed and e.state in ("firing", "escalated"):
            self._late[e.alert_id] = e
        else:
            self._late.pop(e.alert_id, None)

    def __len__(self) -> int:
        return len(self._queue)


def due_repeats(
    active: Sequence[AlertRecord], now_ns: int, interval_s: float, limit_of: Callable[[str, str], Limit | None]
) -> list[AlertEvent]:
    """Confirmed alerts nobody acknowledged, last sent at least `interval_s` ago, as events to send again (an
    unconfirmed notice is not repeated: the next reading confirms or withdraws it)."""
    out = []
    for a in active:
        if (
            a.state == "unconfirmed"
            or a.acked_by is not None
            or a.last_sent_ns is None
            or now_ns - a.last_sent_ns < interval_s * 1e9
        ):
            continue
        limit = limit_of(a.station, a.parameter)
        if limit is None:
            continue
        out.append(
            AlertEvent(
                a.alert_id,
                "firing",
                a.station,
                a.parameter,
                a.updated_ns,
                a.value,
                a.value / limit.value if limit.value else 0.0,
                a.severity,
                limit,
                a.started_ns,
                a.peak_value,
                a.peak_ratio,
                a.rule,
                category=a.category,
            )
        )
    return out
