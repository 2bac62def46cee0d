"""Offline rule evaluation: readings/s through the rules and the alert lifecycle alone, no I/O.

``python -m bench.offline --series 1000 --batch 100000 --batches 5`` prints one JSON object.

The service's own path: ``monitor.rules.Rules`` (per-series numpy check against the shipped GB 3838-2002 at
Class III) then ``monitor.alerts.AlertBook.update`` for every series of the batch. The readings are built before
the clock starts; one untimed batch first shows the rules every series (limits and per-series state cached), as in a
running service. Series are 20
parameters per station; one reading in 997 is three times its limit, so alerts open and resolve as they go.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

from bench.load import PACK_PARAMS, base_time
from bench.targets import busy_seconds
from monitor.alerts.evaluator import AlertBook
from monitor.domain.reading import Reading
from monitor.rules import Rules
from monitor.thresholds import load, shipped_path


def make_batch(b: int, size: int, series: int, t0: int) -> list[Reading]:
    out = []
    for r in range(b * size, (b + 1) * size):
        s = r % series
        name, limit = PACK_PARAMS[s % len(PACK_PARAMS)]
        value = limit * 3.0 if r % 997 == 0 else limit * (0.3 + 0.01 * (r % 41))
        out.append(Reading(f"st{s // len(PACK_PARAMS)}", name, (t0 + r // series) * 10**9, value))
    return out


def measure(series: int, batch: int, batches: int, min_seconds: float) -> dict[str, object]:
    """Up to ``batches`` timed batches, fewer once ``min_seconds`` of evaluation have been timed."""
    batch = max(batch, series)  # so that the warm-up batch sees every series
    rules = Rules(load([shipped_path()]), "III")
    book = AlertBook()
    t0 = base_time()

    def evaluate(readings: list[Reading]) -> int:
        return sum(len(book.update(check)) for check in rules.evaluate(readings))

    # Warm-up, as in a running service: every series has been seen (limits and per-series state cached).
    evaluate(make_batch(0, batch, series, t0))
    elapsed = cpu = busy = 0.0
    events = done = 0
    while done < batches and (done == 0 or elapsed < min_seconds):
        readings = make_batch(done + 1, batch, series, t0)
        gc.collect()
        busy0, cpu0, started = busy_seconds(), time.process_time(), time.perf_counter()
        events += evaluate(readings)
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu0
        busy += busy_seconds() - busy0
        done += 1
    n = batch * done
    return {
        "series": series,
        "batch": batch,
        "batches": done,
        "readings": n,
        "seconds": elapsed,
        "readings_per_s": n / elapsed,
        "alert_events": events,
        "other_cores": max(0.0, busy - cpu) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.offline", description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, required=True)
    p.add_argument("--batch", type=int, default=100_000, help="readings per batch")
    p.add_argument("--batches", type=int, default=5, help="at most this many timed batches")
    p.add_argument("--min-seconds", type=float, default=2.0, help="stop adding batches after this much time")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.series, args.batch, args.batches, args.min_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
