"""The live rules and alerts run over a Dataset: every variant's Evaluator fed the readings in time order.

Fidelity: every variant gets its own `monitor.alerts.Evaluator`, the object the service calls, and is fed
the readings in time order, in batches, with no MQTT and no sleeping. Nothing of the rules or the alert
lifecycle is reimplemented here (tests/test_backtest.py proves live and backtest alerts identical). The
no-data clock follows the data: `Evaluator.tick` is called between batches at the batch's last reading time,
as a live service running at real speed would see it.

Speed: batches are bigger than the service's (200k readings rather than 5000) because the Evaluator's
per-series cost is per batch; its results do not depend on the batch size (the identity test runs both).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.offline.dataset import Dataset, to_readings
from monitor.offline.tallies import FLAGGED_KEEP, SeriesStats
from monitor.offline.variants import Variant

DEFAULT_BATCH = 200_000  # readings per Evaluator.process call (the service uses up to 5000: same alerts)


@dataclass
class Run:
    """One variant's pass over the data: its events and what its screens set aside."""

    variant: Variant
    evaluator: Evaluator
    events: list[AlertEvent] = field(default_factory=list)
    screened: Counter[str] = field(default_factory=Counter)
    suspects: list[tuple[str, str, int, float, str]] = field(default_factory=list)
    seconds: float = 0.0


def run_rules(
    variants: Sequence[Variant],
    ds: Dataset,
    default_class: str = "III",
    batch: int = DEFAULT_BATCH,
    progress: bool = False,
    stats: SeriesStats | None = None,
    desc: str = "backtest",
) -> list[Run]:
    """Feed every variant's Evaluator the data in time order, one batch at a time; tally `stats` on the way."""

    runs = [Run(v, Evaluator(v.thresholds, default_class)) for v in variants]
    st_names = np.array(ds.stations, dtype=object)
    pa_names = np.array(ds.parameters, dtype=object)
    fl_names = np.array([None, *ds.flags], dtype=object)
    # The cyclic GC would walk every batch's 200k fresh tuples again and again (a third of the time); they are
    # freed by reference counting anyway, so it runs only every 64 batches here.
    gc_was_on = gc.isenabled()
    gc.disable()
    with (
        tqdm(
            total=ds.count,
            unit=" readings",
            unit_scale=True,
            file=sys.stderr,
            disable=not progress,
            desc=desc,
            dynamic_ncols=True,
            mininterval=0.5,
        ) as bar,
        _gc_restored(gc_was_on),
    ):
        for n, chunk in enumerate(ds.chunks(batch)):
            if not len(chunk):
                continue
            if n % 64 == 63:
                gc.collect()
            readings = to_readings(chunk, st_names, pa_names, fl_names)
            now = int(chunk.ts[-1])
            for run in runs:
                began = time.perf_counter()
                ev = run.evaluator
                run.events += ev.process(readings, now_ns=now)
                run.events += ev.tick(now)
                if ev.rules.suspects and len(run.suspects) < FLAGGED_KEEP:
                    run.suspects += ev.rules.suspects
                run.seconds += time.perf_counter() - began
            if stats is not None:
                stats.add(chunk)
            bar.update(len(chunk))
    for run in runs:
        run.screened = Counter(run.evaluator.rules.screened)
    return runs


@contextlib.contextmanager
def _gc_restored(on: bool) -> Iterator[None]:
    try:
        yield
    finally:
        if on:
            gc.enable()
