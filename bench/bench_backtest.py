"""Backtest speed: readings/s through `riverwatch backtest`'s engine on synthetic 1-minute data.

    .venv/bin/python -m bench.bench_backtest                  # 20 stations x 5 parameters x 7 days (~1M readings)
    .venv/bin/python -m bench.bench_backtest --days 30 --stations 100
    .venv/bin/python -m bench.bench_backtest --full           # 100 x 5 x 365 days = 262.8M readings (minutes)
    .venv/bin/python -m bench.bench_backtest --profile        # where the time goes (cProfile, top functions)

What is timed is what `run_backtest` does per reading: numpy columns generated one batch at a time (a
stand-in for loading), turned into Reading tuples, fed to the live service's Evaluator (rules + alert
lifecycle, unchanged), and tallied for the tables (time above each class limit, measured exceedances).
Plots and scoring are left out: they cost per series and per alert, not per reading. The data is clean
background with noise and a daily cycle, plus a cadmium plume at a fifth of the stations, so alerts open
and close as they would in a real year. Memory stays one batch whatever the length.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from monitor.offline.dataset import NS_PER_MIN, Columns, Dataset
from monitor.offline.replay import run_rules
from monitor.offline.tallies import SeriesStats, station_classes
from monitor.offline.variants import Variant
from monitor.thresholds import load, shipped_path

REPO = Path(__file__).resolve().parent.parent
PARAMETERS = ("cd", "pb", "nh3n", "do", "ph", "cu", "zn", "as", "hg", "cr6")
LEVEL = {
    "cd": 0.0006,
    "pb": 0.002,
    "nh3n": 0.15,
    "do": 9.0,
    "ph": 7.6,
    "cu": 0.004,
    "zn": 0.01,
    "as": 0.002,
    "hg": 0.00002,
    "cr6": 0.004,
}
NOISE = 0.05  # relative
T0 = 1_704_038_400 * 10**9  # 2024-01-01 00:00 +08:00


def synthetic(stations: int, parameters: int, days: float, seed: int = 1) -> Dataset:
    """A Dataset that generates its readings batch by batch: nothing but one batch is ever in memory."""
    params = list(PARAMETERS[:parameters])
    names = [f"st{i:03d}" for i in range(stations)]
    minutes = int(days * 1440)
    series = stations * len(params)
    level = np.tile(np.array([LEVEL[p] for p in params]), stations)
    rng = np.random.default_rng(seed)
    # Plumes: a fifth of the stations get a 1-3 day cadmium plume peaking at 5-50x the background.
    cd = params.index("cd") if "cd" in params else -1
    plumes = (
        [
            (
                s * len(params) + cd,
                float(rng.uniform(0, minutes)),
                float(rng.uniform(1440, 4320)),
                float(LEVEL["cd"] * rng.uniform(5, 50)),
            )
            for s in range(0, stations, 5)
        ]
        if cd >= 0
        else []
    )

    def generate(size: int) -> Iterator[Columns]:
        step = max(1, size // series)  # minutes per batch
        gen = np.random.default_rng([seed, 1])
        st = np.repeat(np.arange(stations, dtype=np.int32), len(params))
        pa = np.tile(np.arange(len(params), dtype=np.int32), stations)
        for m0 in range(0, minutes, step):
            m = np.arange(m0, min(m0 + step, minutes))
            daily = 1 + 0.03 * np.sin(2 * np.pi * (m % 1440) / 1440)
            v = level[None, :] * daily[:, None] * (1 + NOISE * gen.standard_normal((len(m), series)))
            for col, centre, width, peak in plumes:
                near = np.abs(m - centre) < 3 * width
                if near.any():
                    v[near, col] += peak * np.exp(-(((m[near] - centre) / width) ** 2) * 4)
            n = len(m) * series
            yield Columns(
                np.repeat(T0 + m.astype(np.int64) * NS_PER_MIN, series),
                np.tile(st, len(m)),
                np.tile(pa, len(m)),
                np.round(np.abs(v), 6).ravel(),
                np.full(n, -1, np.int16),
            )

    return Dataset(
        f"synthetic {stations} stations x {len(params)} parameters x {days:g} days, 1-minute data",
        names,
        params,
        [],
        T0,
        T0 + minutes * NS_PER_MIN,
        minutes * series,
        generate=generate,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_backtest", description=__doc__.splitlines()[0])
    p.add_argument("--stations", type=int, default=20)
    p.add_argument("--parameters", type=int, default=5, help=f"at most {len(PARAMETERS)}")
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--full", action="store_true", help="a year of 100 stations x 5 parameters (262.8M readings)")
    p.add_argument("--batch", type=int, default=200_000, help="readings per Evaluator.process call")
    p.add_argument("--profile", action="store_true", help="print the top functions by own time (cProfile)")
    p.add_argument("--progress", action="store_true", help="progress bar on stderr")
    args = p.parse_args(argv)
    if args.full:
        args.stations, args.parameters, args.days = 100, 5, 365.0
    ds = synthetic(args.stations, min(args.parameters, len(PARAMETERS)), args.days)
    files = [shipped_path("gb3838-2002.toml"), REPO / "thresholds" / "examples" / "longjiang-rules.toml"]
    variant = Variant("longjiang-rules", files, load(files))
    stats = SeriesStats(ds, variant.thresholds, track=station_classes([variant], ds, "III"))
    profiler = cProfile.Profile() if args.profile else None
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    [run] = run_rules([variant], ds, batch=args.batch, progress=args.progress, stats=stats)
    if profiler is not None:
        profiler.disable()
    took = time.perf_counter() - began
    rate = ds.count / took
    fired = sum(e.state == "firing" for e in run.events)
    print(f"{ds.label}: {ds.count:,} readings, batch {args.batch:,}")
    print(
        f"  {took:.2f} s, {rate:,.0f} readings/s (Evaluator.process {run.seconds:.2f} s = "
        f"{100 * run.seconds / took:.0f} %; the rest: generating, building Reading tuples, tallies)"
    )
    print(f"  {fired} alerts fired, {len(run.events)} transitions")
    full = 100 * 5 * 365 * 1440
    if ds.count < full:
        print(
            f"  a year of 100 stations x 5 parameters ({full / 1e6:.1f}M readings) at this rate: "
            f"{full / rate / 60:.1f} min"
        )
    if profiler is not None:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(18)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
