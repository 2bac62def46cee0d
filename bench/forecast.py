"""Issue 14's "Done means" for the plume forecast, measured on the simulators: per station over seeds.

    python -m bench.forecast [--seeds 1-20]

For each station: in how many seeds it truly exceeded; of those, how many got a forecast notice (what the
water company is told: "exceeds" within the horizon) at least 24 h before the crossing; the forecast in force
at the crossing (for stations below the second hit) with its arrival error under 20 % of the travel time and
its peak within a factor of 1.5; and, in the seeds it never exceeded, in how many a notice told it it would
("false notice", issue 14's crying-wolf figure) and in how many a forecast row merely said so ("false row").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from monitor.offline.forecast_run import replay_forecasts
from monitor.offline.forecast_scoring import score
from monitor.offline.sources import Source, load_source
from monitor.offline.variants import load_variants

SCENARIOS = ("longjiang-2012", "beijiang-2005")


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-20")
    args = ap.parse_args()
    seeds = _seeds(args.seeds)
    thresholds = load_variants([], [], Path(tempfile.mkdtemp()))[0].thresholds
    started = time.monotonic()
    for name in SCENARIOS:
        tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for seed in seeds:
            ds = load_source(Source(scenario=name, seed=seed))
            replay = replay_forecasts(thresholds, ds)
            scores = score(replay.rows, ds, thresholds, notices=replay.notices)
            crossed = sorted((s for s in scores if s.crossing_ns is not None), key=lambda s: s.crossing_ns or 0)
            for rank, s in enumerate(crossed):
                t = tally[s.station]
                t["exceeded"] += 1
                t["notice 24 h"] += s.notice_lead_h is not None and s.notice_lead_h >= 24
                if rank >= 1:  # below the second station hit: a forecast fitted to two crossings
                    t["scored"] += 1
                    t["arrival < 20 %"] += s.arrival_share is not None and s.arrival_share < 0.2
                    t["peak x1.5"] += s.peak_factor is not None and s.peak_factor <= 1.5
            for s in scores:
                if s.crossing_ns is None:
                    tally[s.station]["never"] += 1
                    tally[s.station]["false notice"] += s.false_notice
                    tally[s.station]["false row"] += s.false_warning
        print(f"\n{name}, seeds {args.seeds}")
        cols = (
            "exceeded",
            "notice 24 h",
            "scored",
            "arrival < 20 %",
            "peak x1.5",
            "never",
            "false notice",
            "false row",
        )
        print(f"{'station':<14}" + "".join(f"{c:>15}" for c in cols))
        for station, t in tally.items():
            print(f"{station:<14}" + "".join(f"{t[c]:>15}" for c in cols))
    print(f"\n{len(seeds)} seeds x {len(SCENARIOS)} scenarios in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
