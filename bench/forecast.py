"""Issue 14's "Done means" for the plume forecast, measured on the simulators: per station over seeds.

    python -m bench.forecast [--seeds 1-20] [--variant shipped|planned|undosed]

For each station: in how many seeds it truly exceeded; of those, how many got a forecast notice (what the
water company is told: "exceeds" within the horizon) at least 24 h before the crossing; the forecast in force
at the crossing (for stations below the second hit) with its arrival error under 20 % of the travel time and
its peak within a factor of 1.5, and whether the true worst value lay in its band (peak_low..peak_high);
and, in the seeds it never exceeded, in how many a notice told it it would ("false notice", issue 14's
crying-wolf figure) and in how many a forecast row merely said so ("false row"). The first station hit
("first hit") has nothing upstream to be forecast from.

Variants (why: the emergency dosing of both scenarios starts after some stations ahead have crossed, and a
forecast cannot know a dosing nobody has announced yet, so the shipped figures mix the model's error with
what was unknowable at the time):
- shipped: the scenarios and station files as shipped (the issue's figures); a dosing point counts from
  when it runs;
- planned: the same data, every described dosing point announced at the start of the data (`planned`):
  what a bureau that enters its dosing plan ahead would have been told;
- undosed: scenarios and descriptions without dosing: the transport model alone against its truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from monitor.offline.dataset import Dataset, Exceedance, from_readings
from monitor.offline.forecast_run import replay_forecasts
from monitor.offline.forecast_scoring import ForecastRow, score
from monitor.offline.sources import Source, load_source
from monitor.offline.variants import load_variants
from monitor.thresholds import ThresholdSet
from simulators.scenario import Scenario
from simulators.scenarios import make_scenario

SCENARIOS = ("longjiang-2012", "beijiang-2005")
VARIANTS = ("shipped", "planned", "undosed")


def _undosed(name: str, seed: int) -> Dataset:
    """The scenario with its dosing points taken out of the simulated river (as monitor.offline.sources)."""
    setting = make_scenario(name, seed).setting
    assert setting.spill is not None
    spill = dataclasses.replace(setting.spill, river=dataclasses.replace(setting.spill.river, dosing=()))
    scenario = Scenario.of(dataclasses.replace(setting, spill=spill), seed)
    gt = scenario.ground_truth()
    truth = [Exceedance(e.station, e.parameter, e.klass, e.start_ns, e.back_ns, "truth", e.worst) for e in gt.episodes]
    return from_readings(scenario.readings(), f"{name} undosed", scenario.start_ns, scenario.end_ns, truth)


def _thresholds(variant: str, start_ns: int) -> ThresholdSet:
    """The shipped thresholds, their rivers' dosing points announced at `start_ns` or taken out."""
    thresholds = load_variants([], [], Path(tempfile.mkdtemp()))[0].thresholds
    for name, river in list(thresholds.rivers.items()):
        if variant == "undosed":
            treatments: tuple = ()
        elif variant == "planned":
            treatments = tuple(dataclasses.replace(t, planned_ns=min(start_ns, t.from_ns)) for t in river.treatments)
        else:
            continue
        thresholds.rivers[name] = dataclasses.replace(river, treatments=treatments)
    return thresholds


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def _first_hit(ds: Dataset, thresholds: ThresholdSet, parameter: str = "cd") -> str | None:
    """The station whose own class limit the truth crossed first."""
    firsts = [
        (e.start_ns, e.station)
        for e in ds.truth or []
        if e.parameter == parameter and e.klass == thresholds.class_of(e.station, "III")[0]
    ]
    return min(firsts)[1] if firsts else None


def _in_band(rows: list[ForecastRow], ds: Dataset, station: str, crossing_ns: int) -> bool:
    """The forecast in force at the crossing had the true worst value of that exceedance in its band."""
    before = [r for r in rows if r.f.station == station and r.issued_ns < crossing_ns]
    worst = [e.worst for e in ds.truth or [] if e.station == station and e.start_ns == crossing_ns]
    if not before or not worst:
        return False
    f = max(before, key=lambda r: r.issued_ns).f
    return f.peak_low <= worst[0] <= f.peak_high


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--variant", choices=VARIANTS, default="shipped")
    args = ap.parse_args()
    seeds = _seeds(args.seeds)
    started = time.monotonic()
    for name in SCENARIOS:
        tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        factors: dict[str, list[float]] = defaultdict(list)
        for seed in seeds:
            ds = _undosed(name, seed) if args.variant == "undosed" else load_source(Source(scenario=name, seed=seed))
            thresholds = _thresholds(args.variant, ds.start_ns)
            replay = replay_forecasts(thresholds, ds)
            scores = score(replay.rows, ds, thresholds, notices=replay.notices)
            first = _first_hit(ds, thresholds)
            if first is not None and first not in {s.station for s in scores}:
                tally[first]["exceeded"] += 1  # the first hit: nothing upstream to forecast it from
                tally[first]["first hit"] += 1
            crossed = sorted((s for s in scores if s.crossing_ns is not None), key=lambda s: s.crossing_ns or 0)
            for rank, s in enumerate(crossed):
                t = tally[s.station]
                t["exceeded"] += 1
                t["notice 24 h"] += s.notice_lead_h is not None and s.notice_lead_h >= 24
                if rank >= 1:  # below the second station hit: a forecast fitted to two crossings
                    t["scored"] += 1
                    t["arrival < 20 %"] += s.arrival_share is not None and s.arrival_share < 0.2
                    t["peak x1.5"] += s.peak_factor is not None and s.peak_factor <= 1.5
                    if s.peak_factor is not None:
                        factors[s.station].append(s.peak_factor)
                    t["truth in band"] += _in_band(replay.rows, ds, s.station, s.crossing_ns or 0)
            for s in scores:
                if s.crossing_ns is None:
                    tally[s.station]["never"] += 1
                    tally[s.station]["false notice"] += s.false_notice
                    tally[s.station]["false row"] += s.false_warning
        print(f"\n{name}, seeds {args.seeds}, variant {args.variant}")
        cols = (
            "exceeded",
            "first hit",
            "notice 24 h",
            "scored",
            "arrival < 20 %",
            "peak x1.5",
            "truth in band",
            "never",
            "false notice",
            "false row",
        )
        print(f"{'station':<14}" + "".join(f"{c:>15}" for c in cols) + f"{'peak x (med)':>15}")
        for station, t in tally.items():
            med = f"{statistics.median(factors[station]):.2f}" if factors[station] else "-"
            print(f"{station:<14}" + "".join(f"{t[c]:>15}" for c in cols) + f"{med:>15}")
    print(f"\n{len(seeds)} seeds x {len(SCENARIOS)} scenarios in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
