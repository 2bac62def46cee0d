"""The rules' fast path against the per-series path: the same alert events, field for field, in the same order.

`Rules(fast=False)` sends every series through the per-series path, the reference. Random batch sequences over
many series go through both: simple series exceeding and recovering (maximum, minimum, range, a dated step,
a local limit), late and repeated times, flagged readings, series that are not simple (no data, persistence,
screening, a hardness dependency), a station-wide no-data rule, alerts restored from the ledger, reloads that
change which series are simple. Events, `pending()`, `silent()`, the late count and screening must agree, with
the open alerts passed (the Evaluator) and without (quiet series expanded in place, or as one QuietChecks).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts.evaluator import AlertBook, AlertEvent, Evaluator
from monitor.domain.reading import Reading
from monitor.rules import QuietChecks, Rules, SeriesCheck
from monitor.thresholds import ThresholdSet, load

T0 = 1_326_664_800 * 10**9  # 2012-01-15T22:00Z: the cr6 limit steps down at 2012-01-16T00:00Z, 8 steps later
STEP = 15 * 60 * 10**9
# The wall clock: a replay of 2012 data in 2025, so stream time follows the data (a reading's time never takes
# the clock past the wall clock, so a wall clock before the data would stop it).
WALL = 1_750_000_000 * 10**9
STATIONS = ("s1", "s2", "s3", "s4")
# Parameters: cd, pb, cu, do (a minimum), ph (a range), cr6 (a dated step) are simple unless a station or
# rule says otherwise; zn is screened (range), ni depends on hardness, temp has no limit.
LEVELS = {
    "cd": (0.001, 0.004, 0.005, 0.00501, 0.0051, 0.008, 0.02),
    "pb": (0.01, 0.06, 0.2, 0.3),
    "cu": (0.1, 0.9, 1.0, 1.001, 1.1, 3.0),
    "do": (8.0, 6.0, 5.0, 4.999, 4.9, 2.0, 0.0),
    "ph": (7.0, 6.0, 9.0, 5.999, 9.001, 5.5, 9.5),
    "cr6": (0.01, 0.04, 0.06, 0.12),
    "zn": (0.5, 1.5, 50.0),
    "ni": (0.01, 0.03, 0.2),
    "hardness": (30.0, 150.0),
    "temp": (20.0,),
}
PARAMETERS = (*sorted(LEVELS), "cd", "cd", "pb", "pb")  # more of those with persistence rules
FLAGS = (None,) * 10 + ("maintenance", "suspect", "<DL", "calibration", "fault")

STANDARD = """
    [standard]
    id = "P"

    [items.cd]
    kind = "max"
    limit = 0.005

    [items.pb]
    kind = "max"
    limit = 0.05

    [items.cu]
    kind = "max"
    limit = 1.0

    [items.zn]
    kind = "max"
    limit = 1.0

    [items.do]
    kind = "min"
    limit = 5.0

    [items.ph]
    kind = "range"
    low = 6.0
    high = 9.0

    [items.cr6]
    kind = "max"
    limit = 0.05
    steps = [ { until = 2012-01-16, limit = 0.1 } ]

    [items.ni]
    kind = "max"
    depends_on = "hardness"
    bounds = [100]
    limit = [0.02, 0.1]

    [stations.s1]
    class = "III"
    expect = { cd = "30min", pb = "30min" }

    [stations.s2]
    class = "III"

    [stations.s3]
    class = "III"
    limits = { cd = 0.003 }

    [stations.s4]
    class = "III"

    [alerts]
    severity = { warning = 1, serious = 1.5, critical = 2 }
    clear_ratio = 0.9
    clear_hold = "15min"

    [instruments.zn]
    range = [0.0, 10.0]

    # Only the screens above: the shipped instrument defaults and sensor health make every series stateful,
    # and a stateful series never takes the fast path this file is about.
    [screen]
    instrument_defaults = false
    gap_factor = 0
    below_dl_run = 0
    maintenance_max = "0s"
    """
BEFORE = (
    STANDARD
    + """
    [[rules]]
    kind = "persistence"
    parameter = "pb"
    stations = ["s2"]
    readings = 2

    [[rules]]
    kind = "instantaneous"
    parameter = "cu"
    severity = "serious"

    [[rules]]
    kind = "no_data"
    scope = "station"
    stations = ["s4"]
    interval = "30min"
    """
)
# After: s1 expects nothing, s3 expects two series that were simple, cd's limit is higher, cu has none.
AFTER = (
    (
        STANDARD.replace('expect = { cd = "30min", pb = "30min" }', "")
        .replace("limits = { cd = 0.003 }", 'limits = { cd = 0.003 }\n    expect = { cd = "30min", do = "45min" }')
        .replace("limit = 0.005", "limit = 0.006")
        .replace('[items.cu]\n    kind = "max"\n    limit = 1.0\n', "")
    )
    + """
    [[rules]]
    kind = "persistence"
    parameter = "cd"
    stations = ["s4"]
    readings = 2
    """
)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[ThresholdSet, ThresholdSet]:
    tmp = tmp_path_factory.mktemp("fastpath")
    out = []
    for name, text in (("before", BEFORE), ("after", AFTER)):
        path = tmp / f"{name}.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        out.append(load([path]))
    return out[0], out[1]


def _f(x: object) -> object:
    return "nan" if isinstance(x, float) and math.isnan(x) else x


def event(e: AlertEvent) -> tuple[object, ...]:
    """Every field, the limit's note/origin/text too (Limit's == leaves them out); NaN made comparable."""
    return tuple(
        _f(x)
        for x in (
            e.alert_id,
            e.state,
            e.station,
            e.parameter,
            e.ts_ns,
            e.value,
            e.ratio,
            e.severity,
            e.limit,
            e.limit.note,
            e.limit.origin,
            e.limit.text,
            e.started_ns,
            e.peak_value,
            e.peak_ratio,
            e.rule,
            e.detail,
        )
    )


def check(c: SeriesCheck) -> tuple[object, ...]:
    n = len(c.ts_ns)
    arrays = tuple(tuple(_f(float(x)) for x in a) for a in (c.values, c.ratio))
    return (
        c.station,
        c.parameter,
        c.key,
        c.rule,
        c.severity,
        c.clear_hold_ns,
        c.limit,
        c.limit.note,
        c.limits,
        c.ts_ns.tolist(),
        arrays,
        c.violated.tolist(),
        None if c.calm is None else c.calm.tolist(),
        None if c.limit_index is None else c.limit_index.tolist(),
        tuple(c.limit_at(i).note for i in range(n)),
        tuple(c.detail_at(i) for i in range(n)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[list[Reading]], list[int], set[int], list[int]]:
    """Batches (times moving on, sometimes back; repeats and disorder within a batch), the tick after each
    (steps of silence), before which batches a reload swaps the two threshold sets, which alerts are restored
    first."""
    batches: list[list[Reading]] = []
    base = 0
    for _ in range(draw(st.integers(1, 7))):
        base = max(0, base + draw(st.sampled_from([-6, -1, 0, 1, 2, 3, 4, 6, 12])))
        size = draw(st.integers(1, 40))
        batch = []
        for _ in range(size):
            station = draw(st.sampled_from(STATIONS))
            parameter = draw(st.sampled_from(PARAMETERS))
            level = LEVELS[parameter]
            value = level[draw(st.integers(0, len(level) - 1) | st.sampled_from([0, 1][: len(level)]))]
            ts = T0 + (base + draw(st.integers(0, 4))) * STEP
            batch.append(Reading(station, parameter, ts, value, draw(st.sampled_from(FLAGS))))
        batches.append(batch)
    ticks = draw(st.lists(st.sampled_from([0, 1, 3, 8]), min_size=len(batches), max_size=len(batches)))
    reload_at = draw(st.sets(st.integers(0, len(batches) - 1), max_size=3))
    restored = draw(st.lists(st.integers(0, len(RESTORABLE) - 1), max_size=3, unique=True))
    return batches, ticks, reload_at, restored


# (alert id, station, parameter, rule, severity, peak value): open at the last stop, from the ledger.
RESTORABLE = (
    ("s2/cd/20120115T2000Z", "s2", "cd", "instantaneous", "serious", 0.008),  # a simple series
    ("s3/ph/20120115T2000Z", "s3", "ph", "instantaneous", "warning", 9.5),
    ("s1/cd/no_data/20120115T2000Z", "s1", "cd", "no_data", "warning", math.nan),
    ("s4/zn/20120115T2000Z", "s4", "zn", "instantaneous", "critical", 50.0),  # not simple (screened)
)


def restore(ev: Evaluator, which: Sequence[int]) -> None:
    for i in which:
        alert_id, station, parameter, rule, severity, peak = RESTORABLE[i]
        ev.book.restore(alert_id, station, parameter, rule, severity, T0 - 8 * STEP, peak, 2.0, T0 - 8 * STEP, peak)


def in_batch_order(events: list[AlertEvent], batch: Sequence[Reading]) -> list[AlertEvent]:
    """Events in time order, of equal times in the order of the first reading of their series at that time."""
    first: dict[tuple[str, str, int], int] = {}
    for i, r in enumerate(batch):
        first.setdefault((r.station, r.parameter, r.ts_ns), i)
    return sorted(events, key=lambda e: (e.ts_ns, first.get((e.station, e.parameter, e.ts_ns), -1)))


def by_alert(events: list[tuple[object, ...]]) -> dict[object, list[tuple[object, ...]]]:
    out: dict[object, list[tuple[object, ...]]] = {}
    for e in events:
        out.setdefault(e[0], []).append(e)
    return out


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), no_table=st.booleans())
def test_the_fast_path_gives_the_per_series_events(
    sets: tuple[ThresholdSet, ThresholdSet],
    scenario: tuple[list[list[Reading]], list[int], set[int], list[int]],
    no_table: bool,
) -> None:
    batches, ticks, reload_at, restored = scenario
    before, after = sets
    ref = Evaluator(before, "III", fast=False)  # the reference: every series on the per-series path
    fast = Evaluator(before, "III")  # the service's way: process() passes the open alerts
    bulk = Evaluator(before, "III")  # a caller without open alerts: quiet series as one QuietChecks
    bulk.rules.quiet_expand = 0
    listed = Evaluator(before, "III")  # ... or, in a small batch, as their own SeriesChecks in their place
    listed.rules.quiet_expand = 10**9
    if no_table:  # the slot look-up without the (station × parameter) table
        bulk.rules.table.grid = None
    evaluators = (ref, fast, bulk, listed)
    for ev in evaluators:
        restore(ev, restored)
    for k, (batch, tick) in enumerate(zip(batches, ticks, strict=True)):
        if k in reload_at:
            new = after if ref.thresholds is before else before
            reloaded = [[event(e) for e in ev.reload(new, "III")] for ev in evaluators]
            assert all(r == reloaded[0] for r in reloaded), k
        want_checks = ref.rules.evaluate(batch, now_ns=WALL)
        want = [e for c in want_checks for e in ref.book.update(c)]
        want.sort(key=lambda e: e.ts_ns)
        want_events = [event(e) for e in want]

        # process() puts events of equal times in the order of the readings that caused them.
        assert [event(e) for e in fast.process(batch, now_ns=WALL)] == [
            event(e) for e in in_batch_order(want, batch)
        ], k

        got_checks = listed.rules.evaluate(batch, now_ns=WALL)
        assert all(isinstance(c, SeriesCheck) for c in got_checks)
        assert [check(c) for c in got_checks] == [check(c) for c in want_checks], k  # type: ignore[arg-type]
        got = [e for c in got_checks for e in listed.book.update(c)]
        got.sort(key=lambda e: e.ts_ns)
        assert [event(e) for e in got] == want_events, k

        # One QuietChecks at the end: the same events, each alert's in the same order (time order overall).
        got_bulk = [event(e) for c in bulk.rules.evaluate(batch, now_ns=WALL) for e in bulk.book.update(c)]
        assert sorted(got_bulk, key=repr) == sorted(want_events, key=repr), k
        assert by_alert(got_bulk) == by_alert(want_events), k

        now = WALL + (tick + 1) * STEP
        want_silent = [check(c) for c in ref.rules.silent(now)]
        want_tick = [event(e) for e in ref.tick(now)]
        for ev in evaluators[1:]:
            assert ev.rules.late == ref.rules.late, k
            assert ev.rules.suspects == ref.rules.suspects, k
            assert ev.rules.screened == ref.rules.screened, k
            assert ev.pending() == ref.pending(), k
            assert [check(c) for c in ev.rules.silent(now)] == want_silent, k
            assert [event(e) for e in ev.tick(now)] == want_tick, k
            assert sorted(ev.book.open) == sorted(ref.book.open), k


def test_one_exceedance_among_100k_quiet_readings_fires_once(sets: tuple[ThresholdSet, ThresholdSet]) -> None:
    """2000 series × 50 readings, all compliant but the last reading of series k: one unconfirmed notice, for
    k; the next reading over confirms it, and two calm readings over clear_hold clear it."""
    before, _ = sets
    stations = [f"q{i}" for i in range(400)]
    params = ("cd", "pb", "cu", "do", "ph")
    limits = {"cd": 0.005, "pb": 0.05, "cu": 1.0, "do": 5.0, "ph": 9.0}
    quiet = {"cd": 0.002, "pb": 0.01, "cu": 0.3, "do": 7.0, "ph": 7.5}
    k = ("q123", "cu")
    readings = [Reading(s, p, T0 + i * STEP, quiet[p]) for i in range(50) for s in stations for p in params]
    assert len(readings) == 100_000
    last = len(readings) - len(stations) * len(params) + stations.index(k[0]) * len(params) + params.index(k[1])
    assert readings[last][:2] == k and readings[last].ts_ns == T0 + 49 * STEP
    readings[last] = readings[last]._replace(value=2.5)

    ev = Evaluator(before, "III")
    events = ev.process(readings, now_ns=WALL)
    assert [(e.state, e.station, e.parameter, e.ts_ns) for e in events] == [("unconfirmed", *k, T0 + 49 * STEP)]
    e = events[0]
    assert (e.value, e.ratio, e.limit.value, e.limit.kind, e.severity) == (
        2.5,
        2.5 / limits["cu"],
        1.0,
        "max",
        "serious",
    )
    assert ev.rules.late == 0

    # Without the open alerts (the benchmark's way): the same one event; then the series recovers.
    rules, book = Rules(before, "III"), AlertBook.of(before.alerts)  # every [alerts] setting, as the Evaluator's
    checks = rules.evaluate(readings, now_ns=WALL)
    assert isinstance(checks[-1], QuietChecks) and len(checks[-1]) == 1999 and k not in checks[-1]
    assert [event(x) for c in checks for x in book.update(c)] == [event(e)]
    # The next reading of k is over too: the alert is confirmed (the other series stay on the fast path).
    again = [
        r._replace(ts_ns=r.ts_ns + STEP, value=2.5 if r[:2] == k else quiet[r.parameter]) for r in readings[-2000:]
    ]
    for run in (
        ev.process(again, now_ns=WALL),
        [x for c in rules.evaluate(again, now_ns=WALL) for x in book.update(c)],
    ):
        assert [(x.state, x.station, x.parameter, x.ts_ns, x.alert_id) for x in run] == [
            ("firing", *k, T0 + 50 * STEP, e.alert_id)
        ]
    # Calm: two readings in a row (clear_readings), 15 min apart (clear_hold).
    calm = [r._replace(ts_ns=T0 + j * STEP, value=quiet[r.parameter]) for j in (51, 52) for r in readings[-2000:]]
    for run in (ev.process(calm, now_ns=WALL), [x for c in rules.evaluate(calm, now_ns=WALL) for x in book.update(c)]):
        assert [(x.state, x.station, x.parameter, x.ts_ns, x.alert_id) for x in run] == [
            ("resolved", *k, T0 + 52 * STEP, e.alert_id)
        ]


def test_late_and_repeated_readings_of_quiet_series_are_dropped_as_on_the_per_series_path(
    sets: tuple[ThresholdSet, ThresholdSet],
) -> None:
    before, _ = sets
    batches = [
        [Reading("s2", "cd", T0 + 2 * STEP, 0.001), Reading("s2", "pb", T0, 0.01)],
        # s2/cd: one late, two at a time already seen in this batch (the first one in the batch counts)
        [
            Reading("s2", "cd", T0 + STEP, 0.002),
            Reading("s2", "cd", T0 + 3 * STEP, 0.003),
            Reading("s2", "cd", T0 + 3 * STEP, 0.004),
            Reading("s2", "pb", T0 + STEP, 0.01),
        ],
        [Reading("s2", "cd", T0 + 3 * STEP, 0.009), Reading("s2", "cd", T0 + 4 * STEP, 0.001)],
    ]
    ref, fast = Rules(before, "III", fast=False), Rules(before, "III")
    for b in batches:
        want = [check(c) for c in ref.evaluate(b, now_ns=WALL) if isinstance(c, SeriesCheck)]
        assert [check(c) for c in fast.evaluate(b, now_ns=WALL)] == want  # type: ignore[arg-type]
    assert fast.late == ref.late == 3
    slot = fast.table.slot_of[("s2", "cd")]
    assert (int(fast.table.last_ts[slot]), float(fast.table.last_value[slot])) == (T0 + 4 * STEP, 0.001)
    assert np.array_equal(fast.table.late_n, ref.table.late_n)


def test_reload_changes_which_series_take_the_fast_path(sets: tuple[ThresholdSet, ThresholdSet]) -> None:
    """s4/cd is simple before the reload and has a persistence rule after it: two exceedances then open the
    alert, a third confirms it."""
    before, after = sets
    ev, ref = Evaluator(before, "III"), Evaluator(before, "III", fast=False)
    first = [Reading("s4", "cd", T0, 0.001)]
    assert ev.process(first, now_ns=WALL) == ref.process(first, now_ns=WALL) == []
    assert ev.reload(after) == ref.reload(after) == []
    over = [Reading("s4", "cd", T0 + i * STEP, v) for i, v in ((1, 0.02), (2, 0.021), (3, 0.022))]
    got, want = ev.process(over, now_ns=WALL), ref.process(over, now_ns=WALL)
    assert [event(e) for e in got] == [event(e) for e in want]
    assert [(e.state, e.ts_ns, e.rule) for e in got] == [
        ("unconfirmed", T0 + 2 * STEP, "persistence"),
        ("firing", T0 + 3 * STEP, "persistence"),
    ]


def both(before: ThresholdSet) -> tuple[Evaluator, Evaluator]:
    return Evaluator(before, "III"), Evaluator(before, "III", fast=False)


def test_a_series_that_loses_its_plan_at_a_reload_starts_afresh_when_it_gets_one_again(
    sets: tuple[ThresholdSet, ThresholdSet],
) -> None:
    """cu has no limit in `after`: its last reading is forgotten, so an older reading counts when it is back."""
    before, after = sets
    ev, ref = both(before)
    for e in (ev, ref):
        assert e.process([Reading("s2", "cu", T0 + 5 * STEP, 0.5)], now_ns=WALL) == []
        e.reload(after)
        e.reload(before)
    older = [Reading("s2", "cu", T0 + STEP, 3.0)]
    got, want = ev.process(older, now_ns=WALL), ref.process(older, now_ns=WALL)
    assert [event(e) for e in got] == [event(e) for e in want]
    assert [(e.state, e.ts_ns) for e in got] == [("unconfirmed", T0 + STEP)]
    assert ev.rules.late == ref.rules.late == 0


def test_of_repeated_times_the_first_reading_is_the_series_last_one(sets: tuple[ThresholdSet, ThresholdSet]) -> None:
    """s3/cd is simple until the reload makes it expected: the no-data alert then shows its last value, which
    must be the first of two readings with the same time, as on the per-series path."""
    before, after = sets
    ev, ref = both(before)
    batch = [
        Reading("s3", "cd", T0 + STEP, 0.001),
        Reading("s3", "do", T0, 7.0),
        Reading("s3", "cd", T0 + STEP, 0.002),
        Reading("s3", "cd", T0, 0.0015),
    ]
    for e in (ev, ref):
        assert e.process(batch, now_ns=WALL) == []
        e.reload(after)
    silence = 10 * STEP
    got, want = ev.tick(WALL + silence), ref.tick(WALL + silence)
    assert [event(e) for e in got] == [event(e) for e in want]
    assert [(e.parameter, e.state, e.value) for e in got] == [("cd", "firing", 0.001), ("do", "firing", 7.0)]


def test_a_dated_step_keeps_a_series_on_the_fast_path_between_steps(sets: tuple[ThresholdSet, ThresholdSet]) -> None:
    """cr6's limit steps down at T0 + 8 steps: the first batch shows which step applies, then it is quiet."""
    before, _ = sets
    rules = Rules(before, "III")
    rules.quiet_expand = 0
    for i in range(3):
        rules.evaluate([Reading("s2", "cr6", T0 + i * STEP, 0.07)], now_ns=WALL)
    checks = rules.evaluate([Reading("s2", "cr6", T0 + 4 * STEP, 0.07)], now_ns=WALL)
    assert len(checks) == 1 and isinstance(checks[0], QuietChecks) and ("s2", "cr6") in checks[0]
    checks = rules.evaluate([Reading("s2", "cr6", T0 + 8 * STEP, 0.07)], now_ns=WALL)  # 0.07 > 0.05 from here on
    assert len(checks) == 1
    assert [(c.parameter, c.limit.value, bool(c.violated[0])) for c in checks if isinstance(c, SeriesCheck)] == [
        ("cr6", 0.05, True)
    ]
