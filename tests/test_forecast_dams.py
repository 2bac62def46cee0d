"""A pool between two dams spreads a plume less than an open reach of the same length (nothing disperses back
across a dam), so its fore-run is thinner: against the simulator's finite-volume transport of such a pool,
the forecast below it gets the crossing and the peak's time right when the description's dams close the pool,
and puts both early when they do not."""

from __future__ import annotations

import numpy as np

from monitor.alerts.forecast import NS_PER_HOUR, Forecaster, Target
from monitor.thresholds.rivers import Dam, Reach, RiverDescription
from simulators.river import Dam as SimDam
from simulators.river import Reach as SimReach
from simulators.river import Release, River

DAY_NS = 24 * NS_PER_HOUR
T0 = 1_700_000_000 * 10**9
LIMIT = 0.005


def described(dams: bool) -> RiverDescription:
    reaches = (
        Reach(-10.0, 0.0, 20.0, "free", 5.0),
        Reach(0.0, 30.0, 2.7, "pool", 16.0),
        Reach(30.0, 60.0, 12.0, "free", 16.0),
    )
    return RiverDescription("P", 40.0, reaches, (Dam(0.0, "upper"), Dam(30.0, "lower")) if dams else ())


def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly excess at km 0 (above the upper dam) and km 30 (above the lower one) over 60 days."""
    river = River(
        "P",
        40.0,
        (
            SimReach("above", -10.5, 0.5, 20.0, 5.0),
            SimReach("pool", 0.5, 30.5, 2.7, 16.0),
            SimReach("below", 30.5, 60.0, 12.0, 16.0),
        ),
        dams=(SimDam("upper", 0.5), SimDam("lower", 30.5)),
    )
    release = Release(-5.0, 1000.0, T0, T0 + DAY_NS, T0 + 3 * DAY_NS)
    run = river.transport((release,), T0, NS_PER_HOUR, 24 * 60, (0.0, 30.0))
    return run.times_ns, run.at(0.0), run.at(30.0)


def _forecast_b(dams: bool) -> tuple[float, float, float]:
    """(crossing error h, peak time error h, peak / true peak) at b, once a is down to 60 % of its peak."""
    times, up, down = simulated()
    top = int(np.argmax(up))
    now = top + int(np.argmax(up[top:] < 0.6 * up[top]))
    f = Forecaster(described(dams), "cd", [Target("b", 30.0, LIMIT, False)])
    f.observe("a", 0.0, times[: now + 1], up[: now + 1] + 0.0005)
    f.hit("a", 0.0, int(times[int(np.argmax(up + 0.0005 > LIMIT))]))
    [b] = f.issue(int(times[now]))
    assert b.exceed_from_ns is not None
    crossing = int(times[int(np.argmax(down + 0.0005 > LIMIT))])
    peak_ns = int(times[int(np.argmax(down))])
    return (
        (b.exceed_from_ns - crossing) / NS_PER_HOUR,
        (b.peak_ns - peak_ns) / NS_PER_HOUR,
        (b.peak_value - 0.0005) / float(down.max()),
    )


def test_a_pool_closed_by_two_dams_is_forecast_as_one() -> None:
    crossing_h, peak_h, peak = _forecast_b(dams=True)  # the crossing is 94 h after a's
    assert abs(crossing_h) < 4 and abs(peak_h) < 6, (crossing_h, peak_h)
    assert 1 / 1.1 < peak < 1.1
    open_crossing_h, open_peak_h, _ = _forecast_b(dams=False)
    assert open_crossing_h < -6 and open_peak_h < -10, (open_crossing_h, open_peak_h)  # early: a fatter fore-run
