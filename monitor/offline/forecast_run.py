"""Every forecast the live service would have issued over a dataset, for `riverwatch backtest --forecasts`.

Fidelity: the live `Evaluator` and `Incidents` (the objects the service's rules loop calls), fed the readings
in time order, in batches, the way monitor.service.evaluate does: the batch's readings to the forecasters,
its transitions to the incidents, then the forecasts due. The issuing rule is the service's (one forecast at
each confirmed water transition, at most one per `[forecast] interval` of reading time while readings
arrive), and interval forecasts are placed at reading times, so they do not depend on the batch size.
The notices are the ones the service would have queued (before routing), so the lead time of the first
early warning per station can be scored too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.forecast_notice import ForecastSettings
from monitor.alerts.incidents import Incidents
from monitor.domain.reading import Reading
from monitor.offline.dataset import Dataset, to_readings
from monitor.offline.forecast_scoring import ForecastRow, score, score_lines, write_forecasts_csv
from monitor.thresholds import ThresholdSet

# Readings per step, as the live service takes them from the journal. Not any size: readings go to the
# forecasters before the batch's transitions, so those after an incident opens in the same batch reach its
# forecaster only through the short pre-incident history (a known limit; live batches are small).
BATCH = 500


@dataclass
class ForecastReplay:
    rows: list[ForecastRow] = field(default_factory=list)  # every forecast issued, per station
    notices: list[AlertEvent] = field(default_factory=list)  # the forecast notices (issued, updated, withdrawn)
    events: list[AlertEvent] = field(default_factory=list)  # the alert transitions


def replay_forecasts(
    thresholds: ThresholdSet,
    ds: Dataset,
    default_class: str = "III",
    settings: ForecastSettings | None = None,
    default_km_per_day: float = 12.0,
    batch: int = BATCH,
) -> ForecastReplay:
    """Run the dataset through the live rules and incidents; what they forecast and would have notified."""
    ev = Evaluator(thresholds, default_class)

    def limit(station: str, parameter: str, ts_ns: int) -> float | None:
        lim = thresholds.limit(station, parameter, default_class, ts_ns)
        return lim.value if lim is not None and lim.kind == "max" else None

    incidents = Incidents(
        thresholds.stations,
        default_km_per_day,
        rivers=getattr(thresholds, "rivers", {}),
        limit=limit,
        settings=settings,
    )
    out = ForecastReplay()
    for now, readings in _batches(ds, batch):
        events = ev.process(readings, now_ns=now) + ev.tick(now)
        incidents.observe(readings, [(s[0], s[1], s[2]) for s in ev.rules.suspects])
        for e in events:
            incidents.on_event(e)
        out.events += events
        for inc, issued_ns, forecasts in incidents.due_at(now):
            out.rows += [ForecastRow(issued_ns, inc.id, f) for f in forecasts]
            out.notices += incidents.notices(inc, forecasts, issued_ns)
        incidents.take_dirty()  # nothing persists offline
    return out


def _batches(ds: Dataset, size: int) -> Iterator[tuple[int, list[Reading]]]:
    st_names = np.array(ds.stations, dtype=object)
    pa_names = np.array(ds.parameters, dtype=object)
    fl_names = np.array([None, *ds.flags], dtype=object)
    for chunk in ds.chunks(size):
        if len(chunk):
            yield int(chunk.ts[-1]), to_readings(chunk, st_names, pa_names, fl_names)


def forecast_report(thresholds: ThresholdSet, ds: Dataset, default_class: str, path: Path) -> list[str]:
    """`backtest --forecasts`: every forecast issued, to a CSV file; scored when the data has a ground truth."""
    replay = replay_forecasts(thresholds, ds, default_class)
    rows = replay.rows
    write_forecasts_csv(path, rows)
    lines = [f"{len(rows)} forecasts written to {path}"]
    if ds.truth is None:
        return [*lines, "forecasts not scored: the data has no ground truth"]
    for parameter in sorted({r.incident.split("/")[1] for r in rows if r.incident.count("/") >= 2}):
        lines += ["", f"forecasts of {parameter} against the ground truth (hours; share of the travel time)"]
        lines += score_lines(score(rows, ds, thresholds, parameter, default_class, replay.notices))
    return lines
