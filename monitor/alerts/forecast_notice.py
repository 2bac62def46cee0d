"""Early-warning notices from an incident's forecasts: when to tell a station or intake ahead that it will
exceed, when to tell it again, and when to take it back.

A water company needs hours to close an intake or switch to activated carbon, so the notice goes out as
soon as a forecast says "over the limit within the horizon" (72 h by default), and not again for every
hourly forecast that says the same: only when the expected start of the exceedance (or the front) moves by
more than `update_moved` (6 h) or the peak by more than `update_peak_ratio` (25 %), and a withdrawal when the
forecast no longer says so. A station that is hit meanwhile is told by its own alert; its notice is simply
retired.

Notices are AlertEvents of category "forecast", so they take the alert path (render, route, outbox) like
every transition; their key (alert id, state, reading time) makes a re-evaluation after a crash queue
nothing twice. What was sent is kept per station in the incident (`ForecastNote`), persisted with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from monitor.alerts.forecast import StationForecast
from monitor.config import ForecastConfig

CATEGORY = "forecast"
ISSUED, UPDATED, WITHDRAWN = "forecast", "forecast_updated", "forecast_withdrawn"
STATES = (ISSUED, UPDATED, WITHDRAWN)
HOUR_NS = 3600 * 10**9


@dataclass(frozen=True, slots=True)
class ForecastSettings:
    """`[forecast]` as the alerts layer takes it (monitor.config.ForecastConfig.settings())."""

    interval_ns: int = HOUR_NS  # a forecast at most this often (reading time) while readings arrive
    incident_end_ns: int = 48 * HOUR_NS  # an incident ends when all its stations have been resolved this long
    horizon_ns: int = 72 * HOUR_NS  # notify when a forecast says "exceeds" starting within this
    update_moved_ns: int = 6 * HOUR_NS  # tell again when the start moved by more than this
    update_peak_ratio: float = 0.25  # ... or the peak by more than this share
    min_separation_km: float = 1.0  # crossings closer than this say nothing about the front's speed
    max_km_per_day: float = 250.0  # about 2.9 m/s: faster than any front on these rivers, so not one front


def settings_from(cfg: ForecastConfig) -> ForecastSettings:
    """`[forecast]` of the service's configuration: every key of it, by name, over the defaults here (the
    keys not configurable yet keep theirs). A key added to ForecastConfig without a field here fails loudly
    (TypeError) rather than being dropped."""
    return replace(ForecastSettings(), **{f.name: getattr(cfg, f.name) for f in fields(cfg)})


@dataclass(frozen=True, slots=True)
class ForecastNote:
    """The last notice sent for a station: what it said, and when (reading time)."""

    state: str
    issued_ns: int
    forecast: StationForecast

    @property
    def standing(self) -> bool:
        """A warning in force (sent and not withdrawn)."""
        return self.state != WITHDRAWN


def forecast_alert_id(incident_id: str, station: str) -> str:
    return f"{incident_id}/forecast/{station}"


def warns(f: StationForecast, now_ns: int, horizon_ns: int) -> bool:
    """The forecast says the station exceeds its limit, starting within the horizon and not over yet."""
    if not f.exceeds or f.limit is None:
        return False
    start = f.exceed_from_ns if f.exceed_from_ns is not None else f.arrival_ns
    end = f.exceed_until_ns
    return start - now_ns <= horizon_ns and (end is None or end >= now_ns)


def moved(old: StationForecast, new: StationForecast, s: ForecastSettings) -> bool:
    """Enough of a change to tell the station again."""
    o = old.exceed_from_ns if old.exceed_from_ns is not None else old.arrival_ns
    n = new.exceed_from_ns if new.exceed_from_ns is not None else new.arrival_ns
    if abs(n - o) > s.update_moved_ns or abs(new.arrival_ns - old.arrival_ns) > s.update_moved_ns:
        return True
    if old.peak_value > 0:
        return abs(new.peak_value / old.peak_value - 1.0) > s.update_peak_ratio
    return new.peak_value > 0


def decide(
    notes: Mapping[str, ForecastNote],
    forecasts: Sequence[StationForecast],
    now_ns: int,
    s: ForecastSettings,
    hit: set[str],
) -> list[tuple[str, ForecastNote]]:
    """(station, new note) for each notice due now; stations hit meanwhile are left to their own alerts."""
    out: list[tuple[str, ForecastNote]] = []
    seen: set[str] = set()
    for f in forecasts:
        seen.add(f.station)
        old = notes.get(f.station)
        standing = old is not None and old.standing
        if warns(f, now_ns, s.horizon_ns):
            if not standing:
                out.append((f.station, ForecastNote(ISSUED, now_ns, f)))
            elif old is not None and moved(old.forecast, f, s):
                out.append((f.station, ForecastNote(UPDATED, now_ns, f)))
        elif standing and old is not None:
            out.append((f.station, ForecastNote(WITHDRAWN, now_ns, f)))
    for station, old in notes.items():
        if station not in seen and station not in hit and old.standing:
            out.append((station, ForecastNote(WITHDRAWN, now_ns, old.forecast)))
    return out


def note_to_json(n: ForecastNote) -> dict[str, Any]:
    return {"state": n.state, "issued_ns": n.issued_ns, "forecast": asdict(n.forecast)}


def note_from_json(d: Mapping[str, Any]) -> ForecastNote:
    return ForecastNote(str(d["state"]), int(d["issued_ns"]), StationForecast(**d["forecast"]))
