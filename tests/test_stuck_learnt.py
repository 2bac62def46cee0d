"""Stuck analysers called from the series' own rate of equal successive readings (`run_probability`)."""

from __future__ import annotations

import numpy as np

from monitor.alerts.evaluator import Evaluator
from monitor.domain.reading import Reading
from monitor.thresholds import load, shipped_path

M10 = 600_000_000_000
T0 = 1_326_585_600_000_000_000  # 2012-01-15 00:00 UTC
TS = load([shipped_path(), shipped_path("longjiang-stations.toml")])


def _stuck_events(values: list[float]) -> list[int]:
    readings = [Reading("luodong", "do", T0 + i * M10, v, None) for i, v in enumerate(values)]
    ev = Evaluator(TS, "III")
    return [
        (e.ts_ns - T0) // M10
        for e in ev.process(readings, now_ns=readings[-1].ts_ns)
        if e.rule == "stuck" and e.state == "firing"
    ]


def test_a_noisy_sonde_is_called_stuck_within_two_cycles_not_after_its_fixed_count() -> None:
    rng = np.random.default_rng(7)
    do = list(np.round(8.5 + 0.2 * rng.standard_normal(300), 2))  # rarely two equal readings in a row
    fired = _stuck_events([float(v) for v in do] + [float(do[-1])] * 10)
    assert fired == [302]  # the fault starts at 300 (the first repeat): 4 equal readings, 2 cycles later


def test_a_coarse_sonde_that_often_repeats_is_called_stuck_only_at_its_fixed_count() -> None:
    coarse = [8.5, 8.5, 8.6, 8.6] * 75  # half of its successive readings are equal
    fired = _stuck_events(coarse + [8.7] * 10)
    assert fired == [305]  # the 6th equal reading (instruments.toml: do flatline = 6), not the 3rd or 4th
