"""Alerts a bureau can trust (issue 13, "Done means"), measured on the simulators: one table, on demand.

    .venv/bin/python -m bench.trust                      # seeds 1-20, 30-day baselines (about 2 min)
    .venv/bin/python -m bench.trust --seeds 1-5 --days 30
    .venv/bin/python -m bench.trust --sweep alerts.confirm=1,2,3     # the trade-off curve, one row per variant
    .venv/bin/python -m bench.trust --thresholds my-files.toml ...  # another variant's files

What is measured is what `riverwatch backtest` measures (monitor.offline: the live Evaluator fed the readings
in time order, scored against the ground truth, monitor.offline.evidence for the figures):
- 30-day baselines with the full fault mix, seeds as given: confirmed water alerts (all false: the truth
  never leaves the stations' classes), the most unconfirmed notices one station had in 7 days, and the
  blinding faults (stuck, gap, below-DL run lasting more than two cycles) announced by a sensor alert within
  two analyser cycles of their start;
- longjiang-2012 and beijiang-2005, the same seeds: per station-run, the first notice within one analyser
  cycle of the true crossing, the confirmed alert within two, and confirmed alerts resolved inside a plume.
Nothing here decides a pass or a fail of CI; the figures go in the issue's note.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.offline.dataset import Dataset
from monitor.offline.evidence import Evidence, evidence
from monitor.offline.replay import run_rules
from monitor.offline.scoring import score
from monitor.offline.sources import Source, load_source
from monitor.offline.tables import Table, cycles_text
from monitor.offline.variants import Variant, load_variants

INCIDENTS = ("longjiang-2012", "beijiang-2005")


@dataclass
class Tally:
    """One variant's figures summed over the seeds."""

    seeds: int = 0
    water_alerts: int = 0  # confirmed water alerts on the baselines (every one false)
    clean_seeds: int = 0  # baselines without any
    notices: int = 0
    withdrawn: int = 0
    max_notices_week: int = 0
    blind_due: int = 0
    blind_announced: int = 0
    hidden: int = 0  # blinding faults the series' own noise hides for two cycles
    hidden_announced: int = 0  # ... announced before they ended
    unexplained_sensor: int = 0  # sensor alerts on the baselines that no injected fault explains
    sensor_alerts: int = 0
    incidents: dict[str, IncidentTally] = field(default_factory=dict)


@dataclass
class IncidentTally:
    runs: int = 0  # station-runs with a true crossing
    notice_on_time: int = 0
    confirmed_on_time: int = 0
    missed: int = 0
    worst_notice: float | None = None  # cycles
    worst_confirmed: float | None = None
    plume_resolves: int = 0
    false_alerts: int = 0


def _worst(a: float | None, b: float | None) -> float | None:
    if b is None:
        return a
    return b if a is None else max(a, b)


def _evidence(variants: Sequence[Variant], ds: Dataset) -> list[Evidence]:
    runs = run_rules(variants, ds)
    return [evidence(score(r, ds, ds.truth or [], "III"), ds) for r in runs]


def measure(variants: Sequence[Variant], seeds: Sequence[int], days: float, log: bool = True) -> list[Tally]:
    """Every variant over the baselines and the incidents of every seed (one pass of the data per run)."""
    tallies = [Tally(incidents={name: IncidentTally() for name in INCIDENTS}) for _ in variants]
    for seed in seeds:
        began = time.perf_counter()
        ds = load_source(Source(scenario="baseline", seed=seed, days=days))
        for t, ev in zip(tallies, _evidence(variants, ds), strict=True):
            sc = ev.score
            t.seeds += 1
            t.water_alerts += len(sc.water)
            t.clean_seeds += not sc.water
            t.notices += len(sc.notices)
            t.withdrawn += len(sc.withdrawn)
            t.max_notices_week = max(t.max_notices_week, ev.max_notices_per_week)
            t.blind_due += len(ev.blinding_due)
            t.blind_announced += len(ev.blinding_announced)
            t.hidden += len(ev.blinding_hidden)
            t.hidden_announced += sum(1 for b in ev.blinding_hidden if b.later_ns is not None)
            t.unexplained_sensor += len(ev.unexplained_sensor)
            t.sensor_alerts += len(sc.sensor)
        for name in INCIDENTS:
            ds = load_source(Source(scenario=name, seed=seed))
            for t, ev in zip(tallies, _evidence(variants, ds), strict=True):
                it = t.incidents[name]
                notice, confirmed, runs = ev.on_time()
                it.runs += runs
                it.notice_on_time += notice
                it.confirmed_on_time += confirmed
                it.missed += len(ev.score.missed)
                it.plume_resolves += len(ev.plume_resolves)
                it.false_alerts += len(ev.score.false_alerts)
                for d in ev.score.first_latency().values():
                    it.worst_notice = _worst(it.worst_notice, d.cycles(d.notice_latency_ns))
                    it.worst_confirmed = _worst(it.worst_confirmed, d.cycles(d.latency_ns))
        if log:
            print(f"seed {seed}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return tallies


def done_means(t: Tally, days: float, seeds: str) -> Table:
    """The figures of issue 13's "Done means" for one variant, each against its target."""

    def ok(good: bool) -> str:
        return "yes" if good else "NO"

    rows = [
        [
            f"{days:g}-day baselines",
            "confirmed water alerts (all false)",
            "0 for any seed",
            f"{t.water_alerts} ({t.clean_seeds}/{t.seeds} seeds with none)",
            ok(t.water_alerts == 0),
        ],
        [
            "",
            "unconfirmed notices, most at one station in 7 days",
            "<= 1",
            f"{t.max_notices_week} ({t.notices} notices, {t.withdrawn} withdrawn)",
            ok(t.max_notices_week <= 1),
        ],
        [
            "",
            "blinding faults announced within 2 cycles",
            "all",
            f"{t.blind_announced}/{t.blind_due} ({t.sensor_alerts} sensor alerts in all)",
            ok(t.blind_announced == t.blind_due),
        ],
        [
            "",
            "blinding faults hidden in the series' noise for 2 cycles, announced before they end",
            "(trade-off)",
            f"{t.hidden_announced}/{t.hidden}",
            "-",
        ],
        [
            "",
            "sensor alerts no injected fault explains",
            "0",
            str(t.unexplained_sensor),
            ok(t.unexplained_sensor == 0),
        ],
    ]
    for name, it in t.incidents.items():
        rows += [
            [
                name,
                "first notice within 1 cycle of the true crossing",
                "every station-run",
                f"{it.notice_on_time}/{it.runs} (worst {cycles_text(it.worst_notice)})",
                ok(it.notice_on_time == it.runs),
            ],
            [
                "",
                "confirmed alert within 2 cycles",
                "every station-run",
                f"{it.confirmed_on_time}/{it.runs} (worst {cycles_text(it.worst_confirmed)}; missed {it.missed})",
                ok(it.confirmed_on_time == it.runs),
            ],
            [
                "",
                "confirmed alerts resolved inside a plume",
                "0",
                f"{it.plume_resolves} (false water alerts {it.false_alerts})",
                ok(it.plume_resolves == 0),
            ],
        ]
    return Table(
        f"issue 13, Done means: seeds {seeds}",
        ["data", "figure", "target", "measured", "met"],
        rows,
        note="cycles: analyser cycles of the series (the median time between its readings); a station-run is one "
        "station's first true crossing in one seed",
    )


def tradeoff(variants: Sequence[Variant], tallies: Sequence[Tally]) -> Table:
    """One row per variant: false alerts and notices on the baselines against latency on the incidents."""
    rows = []
    for v, t in zip(variants, tallies, strict=True):
        lj, bj = (t.incidents[n] for n in INCIDENTS)
        rows.append(
            [
                v.sweep or v.name,
                str(t.water_alerts),
                str(t.max_notices_week),
                f"{t.blind_announced}/{t.blind_due}",
                f"{t.hidden_announced}/{t.hidden}",
                str(t.unexplained_sensor),
                f"{lj.notice_on_time + bj.notice_on_time}/{lj.runs + bj.runs}",
                f"{lj.confirmed_on_time + bj.confirmed_on_time}/{lj.runs + bj.runs}",
                cycles_text(_worst(lj.worst_notice, bj.worst_notice)),
                cycles_text(_worst(lj.worst_confirmed, bj.worst_confirmed)),
                str(lj.plume_resolves + bj.plume_resolves),
            ]
        )
    return Table(
        "the trade-off, one row per variant (baselines | both incidents)",
        [
            "variant",
            "water alerts",
            "notices/7 d",
            "announced",
            "hidden: later",
            "sensor wolves",
            "notice <= 1 cycle",
            "alert <= 2 cycles",
            "worst notice",
            "worst alert",
            "plume resolves",
        ],
        rows,
        right=set(range(1, 11)),
        note="announced: blinding faults announced within 2 cycles; hidden: later: those the series' noise hides, "
        "announced before they end; sensor wolves: sensor alerts no injected fault explains",
    )


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: e.g. 1-20 or 1,4,9")
    return out


def _label(seeds: Sequence[int]) -> str:
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.trust", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=_seeds, default=list(range(1, 21)), help="e.g. 1-20 (default) or 1,4,9")
    p.add_argument("--days", type=float, default=30.0, help="baseline length in days (default 30)")
    p.add_argument("--thresholds", nargs="+", type=Path, action="append", default=[], metavar="FILE")
    p.add_argument("--sweep", action="append", default=[], metavar="TABLE.KEY=V1,V2", help="as backtest's --sweep")
    args = p.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="riverwatch-trust-") as tmp:
        variants = load_variants(args.thresholds, args.sweep, Path(tmp))
    tallies = measure(variants, args.seeds, args.days)
    for v, t in zip(variants, tallies, strict=True):
        print(f"\nvariant {v.name!r}: {v.describe()}")
        print(done_means(t, args.days, _label(args.seeds)).text())
    if len(variants) > 1:
        print("\n" + tradeoff(variants, tallies).text())
    print(
        f"\n{len(args.seeds)} seeds x 3 scenarios x {len(variants)} variant(s) in {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
