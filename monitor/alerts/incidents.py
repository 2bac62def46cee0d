"""Incidents on a river: alerts that follow each other down a river become one incident, with a forecast for
the stations and water intakes still ahead of the front.

This is what the Longjiang response needed most: not "Lalang is over the limit" but "the plume reaches the
Liuzhou intake around 2 Feb 14:00, peaks at 1.4x its limit, for about 30 h". Each incident owns a
`Forecaster` (monitor.alerts.forecast) built on the river description of the station files, fed the
accepted readings of its parameter at its river's stations (`observe`) and its confirmed crossings; the
front velocity of the older estimate is still kept for the message and for rivers with no description.

Bounded in time: an incident ends when all its stations have been resolved for `incident_end` (48 h of
reading time), and a confirmed alert more than that after the incident's last activity opens a new one, so
readings years apart never mix (a 2026 intake alert was once filed into the 2012 incident). A velocity is
only taken from crossings at least `min_separation_km` apart and slower than `max_km_per_day` (two test
alerts 28 minutes apart once gave 4,040 km/day).

State: one record per open incident (its hits, its forecaster's bounded state, the notices it sent) plus a
short history per series of the river stations (`HISTORY` readings, so a new incident's forecaster sees the
curve that led to its first alert). The ledger keeps the open incidents, so that a restart in the middle of a
plume continues its incident, its forecaster and the notices it sent.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.forecast import Forecaster, StationForecast, Target
from monitor.alerts.forecast_notice import (
    CATEGORY,
    ForecastNote,
    ForecastSettings,
    decide,
    forecast_alert_id,
    note_from_json,
    note_to_json,
)
from monitor.domain.reading import Reading
from monitor.thresholds import Limit, Station
from monitor.thresholds.rivers import RiverDescription

NS_PER_DAY = 86_400 * 10**9
# While alerts of an incident are open, it ends only after this many times incident_end without activity.
OPEN_GAP_FACTOR = 10
HISTORY = 48  # readings kept per river-station series for a new incident's forecaster (about 2 days at 1 h)
ACCEPTED_FLAGS = (None, "", "<DL")  # readings a forecaster may learn from (below DL is a low value, not a fault)
__all__ = ["NS_PER_DAY", "Arrival", "ForecastSettings", "Hit", "Incident", "Incidents"]

LimitOf = Callable[[str, str, int], float | None]


@dataclass(frozen=True, slots=True)
class Hit:
    station: str
    river_km: float
    first_ns: int  # when the station's alert first fired (reading time)


@dataclass(frozen=True, slots=True)
class Arrival:
    station: Station
    eta_ns: int
    distance_km: float  # from the farthest station hit so far


@dataclass
class Incident:
    id: str
    river: str
    parameter: str
    opened_ns: int
    hits: list[Hit] = field(default_factory=list)
    open_alerts: set[str] = field(default_factory=set)
    last_ns: int = 0  # the newest confirmed transition (reading time): its last activity
    quiet_since: int | None = None  # every alert resolved since then (None: some still open)
    forecaster: Forecaster | None = None
    latest: list[StationForecast] = field(default_factory=list)  # the forecast in force (nearest first)
    issued_ns: int = 0  # when `latest` was issued (reading time)
    notes: dict[str, ForecastNote] = field(default_factory=dict)  # the last notice per station
    saved: dict[str, Any] | None = None  # the ledger's state of a restored incident, until it is rebuilt
    issued: list[tuple[int, list[StationForecast]]] = field(default_factory=list)  # not yet through `due`
    next_ns: int = 0  # the earliest reading time of the next interval forecast
    seen: dict[str, int] = field(default_factory=dict)  # newest reading fed per station (time order)
    ended: bool = False

    def __post_init__(self) -> None:
        self.last_ns = self.last_ns or max([self.opened_ns, *(h.first_ns for h in self.hits)])

    def velocity(
        self, default_km_per_day: float, min_km: float = 1.0, max_km_per_day: float = 250.0
    ) -> tuple[float, str]:
        """Front velocity in km/day and where it comes from: between the two stations farthest downstream
        whose crossings are far enough apart, in space and in time, to be one front moving.

        The latest reach predicts the next one best: on the Longjiang the front crawled through the deep
        reservoir pools below Lalang (about 3 km/day) and ran at 12 km/day below Luodong.
        """
        ordered = sorted(self.hits, key=lambda h: h.river_km)
        for j in range(len(ordered) - 1, 0, -1):
            last = ordered[j]
            for i in range(j - 1, -1, -1):
                prev = ordered[i]
                km = last.river_km - prev.river_km
                days = (last.first_ns - prev.first_ns) / NS_PER_DAY
                if km >= min_km and days > 0 and km / days <= max_km_per_day:
                    return km / days, f"observed between {prev.station} and {last.station}"
        return default_km_per_day, "configured (fewer than two stations hit)"

    def arrivals(self, stations: Mapping[str, Station], default_km_per_day: float) -> list[Arrival]:
        """ETAs at every station of this river downstream of the farthest hit, nearest first (the front
        velocity alone: the message's fallback where no forecast exists)."""
        if not self.hits:
            return []
        front = max(self.hits, key=lambda h: h.river_km)
        v, _ = self.velocity(default_km_per_day)
        hit = {h.station for h in self.hits}
        ahead = sorted(
            (
                (s, s.river_km)
                for s in stations.values()
                if s.river == self.river and s.river_km is not None and s.river_km > front.river_km and s.id not in hit
            ),
            key=lambda sk: sk[1],
        )
        return [
            Arrival(s, front.first_ns + int((km - front.river_km) / v * NS_PER_DAY), km - front.river_km)
            for s, km in ahead
        ]

    def state_json(self) -> dict[str, Any]:
        """What the ledger keeps beside the hits: the forecaster and what was sent."""
        if self.forecaster is None and self.saved is not None:
            return self.saved  # restored but not rebuilt yet (no thresholds bound): keep it as it was
        return {
            "last_ns": self.last_ns,
            "quiet_since": self.quiet_since,
            "issued_ns": self.issued_ns,
            "next_ns": self.next_ns,
            "seen": self.seen,
            "notes": {k: note_to_json(n) for k, n in self.notes.items()},
            "forecaster": self.forecaster.to_json() if self.forecaster is not None else None,
        }


class Incidents:
    """Groups alert events into incidents per (river, parameter); owns their forecasters."""

    def __init__(
        self,
        stations: Mapping[str, Station],
        default_km_per_day: float = 12.0,
        *,
        rivers: Mapping[str, RiverDescription] | None = None,
        limit: LimitOf | None = None,
        settings: ForecastSettings | None = None,
    ) -> None:
        self.default_km_per_day = default_km_per_day
        self.rivers: Mapping[str, RiverDescription] = rivers or {}
        self.limit = limit
        self.settings = settings or ForecastSettings()
        self._bound = rivers is not None or limit is not None  # else forecasters wait for `bind`
        self.open: dict[tuple[str, str], Incident] = {}
        self.dirty: set[str] = set()  # incident ids whose state the ledger should write (after the outbox)
        self._history: dict[tuple[str, str], deque[tuple[int, float]]] = {}
        # This batch's accepted river readings in stream order, applied (history, forecasters) only up to the
        # reading each transition comes from: what a forecast sees never depends on how the stream was batched.
        self._rows: list[tuple[str, str, int, float]] = []
        self._applied = 0
        self._upto: dict[tuple[str, str, int], int] = {}  # (station, parameter, ts) -> rows up to that reading
        self._watch: dict[tuple[str, str], Incident] = {}  # (station, parameter) -> the incident it feeds
        self._ended: list[Incident] = []  # ended, not yet through `due` (its notices are withdrawn there)
        self._closed: dict[str, Incident] = {}  # ended, not yet written by the ledger
        self._recent: list[Incident] = []  # the last 16 ended (their withdrawals are rendered with them)
        self._stations: Mapping[str, Station] = {}
        self._on_river: set[str] = set()
        self.stations = stations

    @property
    def stations(self) -> Mapping[str, Station]:
        return self._stations

    @stations.setter
    def stations(self, stations: Mapping[str, Station]) -> None:
        """New station files (reload): the index of river stations follows."""
        self._stations = stations
        self._on_river = {s.id for s in stations.values() if s.river and s.river_km is not None}
        self._reindex()

    def bind(self, rivers: Mapping[str, RiverDescription], limit: LimitOf | None) -> None:
        """River descriptions and limits of the thresholds in force (start-up, reload): forecasters of restored
        incidents are rebuilt now; open ones keep their state."""
        self.rivers, self.limit, self._bound = rivers, limit, True
        for inc in self.open.values():
            if inc.forecaster is None:
                self._rebuild(inc)

    # -- alert transitions ----------------------------------------------------------------------------
    def of(self, e: AlertEvent) -> Incident | None:
        """The open incident an alert belongs to, left as it is (a repeat is no new transition)."""
        if e.category == CATEGORY:  # also an incident that just ended (its notices are withdrawn)
            known = [*self.open.values(), *reversed(self._recent)]
            return next((i for i in known if e.alert_id.startswith(i.id + "/forecast/")), None)
        return next((i for i in self.open.values() if e.alert_id in i.open_alerts), None)

    def restore(self, incidents: Iterable[Incident]) -> None:
        """The incidents open at the last stop (start-up), with their forecasters and notices."""
        for inc in incidents:
            s = inc.saved or {}
            inc.last_ns = int(s.get("last_ns") or inc.last_ns)
            inc.quiet_since = s.get("quiet_since")
            inc.issued_ns = int(s.get("issued_ns") or 0)
            inc.next_ns = int(s.get("next_ns") or 0)
            inc.seen = {str(k): int(v) for k, v in (s.get("seen") or {}).items()}
            inc.notes = {k: note_from_json(v) for k, v in (s.get("notes") or {}).items()}
            if self._bound:
                self._rebuild(inc)
            self.open[(inc.river, inc.parameter)] = inc
        self._reindex()

    def on_event(self, e: AlertEvent) -> Incident | None:
        """The incident this event belongs to (after updating it), or None for a station off any river.

        Only confirmed water alerts move an incident (its hits, its forecast): an unconfirmed notice, its
        withdrawal and a sensor alert are told the incident open on their river, if any (for routing to an
        intake ahead of the front), and leave it as it is. Each confirmed transition issues a forecast, from
        the readings up to the one it comes from."""
        self._apply(self._upto.get((e.station, e.parameter, e.ts_ns), self._applied))
        if e.category == CATEGORY:
            return self.of(e)
        st = self.stations.get(e.station)
        if st is None or not st.river or st.river_km is None:
            return None
        key = (st.river, e.parameter)
        inc = self.open.get(key)
        if inc is not None and self._over(inc, e.ts_ns):
            self._end(inc)
            inc = None
        if not e.confirmed or e.category != "water":
            return inc
        if e.state == "resolved":
            if inc is None:
                return None
            inc.open_alerts.discard(e.alert_id)
            if not inc.open_alerts:
                inc.quiet_since = e.ts_ns
            self._touch(inc, e.ts_ns)
            return inc
        if inc is None:
            inc = Incident(_incident_id(st.river, e.parameter, e.ts_ns), st.river, e.parameter, e.ts_ns)
            self.open[key] = inc
            self._rebuild(inc)
            self._reindex()
        inc.open_alerts.add(e.alert_id)
        inc.quiet_since = None
        if all(h.station != e.station for h in inc.hits):
            inc.hits.append(Hit(e.station, st.river_km, e.started_ns))
            if inc.forecaster is not None:
                inc.forecaster.hit(e.station, st.river_km, e.started_ns)
        self._touch(inc, e.ts_ns)
        return inc

    def _touch(self, inc: Incident, ts_ns: int) -> None:
        """A confirmed transition: the incident's last activity, and a forecast issued at it."""
        inc.last_ns = max(inc.last_ns, ts_ns)
        if inc.forecaster is not None:
            self._issue(inc, ts_ns)
        self.dirty.add(inc.id)  # its last activity, also without a forecaster

    def _issue(self, inc: Incident, ts_ns: int) -> None:
        """A forecast at this reading time, in force from now (messages rendered next show it) and queued for
        `due`; it replaces one issued at the same reading time."""
        assert inc.forecaster is not None
        inc.latest, inc.issued_ns = inc.forecaster.issue(ts_ns), ts_ns
        if inc.issued and inc.issued[-1][0] == ts_ns:
            inc.issued.pop()
        inc.issued.append((ts_ns, inc.latest))
        self.dirty.add(inc.id)

    def _over(self, inc: Incident, now_ns: int) -> bool:
        """Ended: every station resolved for incident_end, or nothing confirmed for that long at all."""
        end = self.settings.incident_end_ns
        if inc.quiet_since is not None and now_ns - inc.quiet_since >= end:
            return True
        if inc.open_alerts:  # a plume read twice a week is still one plume; a stale one from years ago is not
            return now_ns - inc.last_ns > OPEN_GAP_FACTOR * end
        return now_ns - inc.last_ns > end

    def _end(self, inc: Incident) -> None:
        inc.ended = True
        self.open.pop((inc.river, inc.parameter), None)
        self.dirty.add(inc.id)
        self._ended.append(inc)
        self._closed[inc.id] = inc
        self._recent = [*self._recent[-15:], inc]
        self._reindex()

    # -- readings and forecasts -------------------------------------------------------------------------
    def observe(self, readings: Sequence[Reading], screened: Iterable[tuple[str, str, int]] = ()) -> None:
        """A batch: its accepted readings at river stations, to be applied in stream order as its transitions
        come (`on_event`) and in full at `due_at`; others skipped at the cost of a set lookup. `screened`:
        (station, parameter, ts) the screens set aside."""
        self._apply(len(self._rows))
        skip = set(screened)
        rows: list[tuple[str, str, int, float]] = []
        upto: dict[tuple[str, str, int], int] = {}
        on_river = self._on_river
        for r in readings:
            if r.station not in on_river:
                continue
            if r.flag in ACCEPTED_FLAGS and not (skip and (r.station, r.parameter, r.ts_ns) in skip):
                rows.append((r.station, r.parameter, r.ts_ns, r.value))
            upto.setdefault((r.station, r.parameter, r.ts_ns), len(rows))
        self._rows, self._applied, self._upto = rows, 0, upto

    def _apply(self, upto: int) -> None:
        """This batch's rows before `upto`, not yet applied: to the history, and to the forecaster of the
        incident each one feeds (with the interval forecasts they make due)."""
        if upto <= self._applied:
            return
        rows, self._applied = self._rows[self._applied : upto], upto
        groups: dict[str, tuple[Incident, list[tuple[str, int, float]]]] = {}
        for station, parameter, t, v in rows:
            key = (station, parameter)
            hist = self._history.get(key)
            if hist is None:
                hist = self._history[key] = deque(maxlen=HISTORY)
            hist.append((t, v))
            inc = self._watch.get(key)
            if inc is not None:
                groups.setdefault(inc.id, (inc, []))[1].append((station, t, v))
        for inc, fed in groups.values():
            self._feed(inc, fed)

    def _feed(self, inc: Incident, rows: Sequence[tuple[str, int, float]], forecasts: bool = True) -> None:
        """Readings (station, time, value) in stream order: each newer than what its station was fed, and no
        gap of incident_end (never mix years). An interval forecast falls due at the first reading at least
        `interval` after the last one; it sees the readings up to it."""
        if inc.forecaster is None:
            return
        end, interval = self.settings.incident_end_ns, self.settings.interval_ns
        buffered: dict[str, tuple[float, list[tuple[int, float]]]] = {}
        for station, t, v in rows:
            st = self.stations.get(station)
            if st is None or st.river_km is None or t <= inc.seen.get(station, -1) or t - inc.last_ns > end:
                continue
            buffered.setdefault(station, (st.river_km, []))[1].append((t, v))
            inc.seen[station] = t
            inc.last_ns = max(inc.last_ns, t)
            if forecasts and t >= inc.next_ns:
                inc.next_ns = t + interval
                if t > inc.issued_ns:  # a transition's forecast already covers it
                    self._flush(inc, buffered)
                    self._issue(inc, t)
        self._flush(inc, buffered)

    def _flush(self, inc: Incident, buffered: dict[str, tuple[float, list[tuple[int, float]]]]) -> None:
        assert inc.forecaster is not None
        for station, (km, fed) in buffered.items():
            ts = np.fromiter((t for t, _ in fed), np.int64, len(fed))
            values = np.fromiter((v for _, v in fed), np.float64, len(fed))
            inc.forecaster.observe(station, km, ts, values)
        buffered.clear()

    def due(self, now_ns: int) -> list[tuple[Incident, list[StationForecast]]]:
        """The forecasts issued since the last call: one at each confirmed transition, and at most one per
        `interval` of reading time while new readings arrive; an incident that ended comes with none (its
        notices are withdrawn)."""
        return [(inc, forecasts) for inc, _, forecasts in self.due_at(now_ns)]

    def due_at(self, now_ns: int) -> list[tuple[Incident, int, list[StationForecast]]]:
        """`due`, with the reading time each forecast was issued at (what its notices are stamped with)."""
        self._apply(len(self._rows))
        out: list[tuple[Incident, int, list[StationForecast]]] = []
        for inc in self._ended:  # ended by a later transition: withdrawn first
            out.append((inc, now_ns, []))
        self._ended = []
        for inc in self.open.values():  # what was issued before the end, even when the batch runs past it
            out += [(inc, t, forecasts) for t, forecasts in inc.issued]
            inc.issued = []
        for inc in list(self.open.values()):
            if self._over(inc, now_ns):
                self._end(inc)
        for inc in self._ended:
            out.append((inc, now_ns, []))
        self._ended = []
        return out

    def notices(self, inc: Incident, forecasts: Sequence[StationForecast], now_ns: int) -> list[AlertEvent]:
        """The forecast notices these forecasts call for (monitor.alerts.forecast_notice), as alert events."""
        hit = {h.station for h in inc.hits}
        out = []
        for station, note in decide(inc.notes, forecasts, now_ns, self.settings, hit):
            inc.notes[station] = note
            out.append(self._event(inc, station, note))
            self.dirty.add(inc.id)
        return out

    def _event(self, inc: Incident, station: str, note: ForecastNote) -> AlertEvent:
        f = note.forecast
        limit = f.limit if f.limit is not None else float("nan")
        ratio = f.peak_value / limit if f.limit else 0.0
        lim = Limit(inc.parameter, "max", limit, None, "", "", "", "forecast", text="the station's limit")
        return AlertEvent(
            forecast_alert_id(inc.id, station),
            note.state,
            station,
            inc.parameter,
            note.issued_ns,
            f.peak_value,
            ratio,
            "warning",
            lim,
            f.exceed_from_ns if f.exceed_from_ns is not None else f.arrival_ns,
            f.peak_value,
            ratio,
            rule="forecast",
            detail=inc.id,
            category=CATEGORY,
        )

    def take_dirty(self) -> list[Incident]:
        """Incidents whose state changed since the last call (the ledger writes them after the outbox); give
        them back with `unsaved` if the write failed."""
        ids, self.dirty = self.dirty, set()
        known = {i.id: i for i in self.open.values()} | self._closed
        self._closed = {}
        return [known[i] for i in sorted(ids) if i in known]

    def unsaved(self, incidents: Iterable[Incident]) -> None:
        for inc in incidents:
            self.dirty.add(inc.id)
            if inc.ended:
                self._closed[inc.id] = inc

    # -- internals -------------------------------------------------------------------------------------
    def _rebuild(self, inc: Incident) -> None:
        """The incident's forecaster, from its river description and the stations ahead (restored state too)."""
        targets = self._targets(inc)
        river = self.rivers.get(inc.river)
        saved = (inc.saved or {}).get("forecaster")
        if saved:
            inc.forecaster = Forecaster.from_json(saved, river, targets)
        else:
            inc.forecaster = Forecaster(river, inc.parameter, targets, self.default_km_per_day)
            for h in sorted(inc.hits, key=lambda h: h.first_ns):
                inc.forecaster.hit(h.station, h.river_km, h.first_ns)
            self._replay_history(inc)
        inc.saved = None

    def _replay_history(self, inc: Incident) -> None:
        """A new incident's forecaster sees what its river's stations read just before it opened."""
        for (station, parameter), hist in self._history.items():
            st = self.stations.get(station)
            if parameter == inc.parameter and st is not None and st.river == inc.river and hist:
                since = inc.opened_ns - self.settings.incident_end_ns
                self._feed(inc, [(station, t, v) for t, v in hist if t >= since], forecasts=False)
        inc.next_ns = 0  # the curve before the incident is context: forecasts start at its transitions

    def _targets(self, inc: Incident) -> list[Target]:
        out = []
        for s in sorted(self.stations.values(), key=lambda s: s.river_km or 0.0):
            if s.river != inc.river or s.river_km is None:
                continue
            lim = self.limit(s.id, inc.parameter, inc.opened_ns) if self.limit is not None else None
            out.append(Target(s.id, s.river_km, lim, s.intake))
        return out

    def _reindex(self) -> None:
        self._watch = {
            (s.id, inc.parameter): inc
            for inc in self.open.values()
            for s in self._stations.values()
            if s.river == inc.river and s.river_km is not None
        }


def _incident_id(river: str, parameter: str, ts_ns: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", river.lower()).strip("-") or "river"
    return f"{slug}/{parameter}/{datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime('%Y%m%dT%H%MZ')}"
