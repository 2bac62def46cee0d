"""The same stream gives the same notifications however the journal hands it to the rules in batches.

The service's own objects in-process (journal, evaluator, alert path, ledger and outbox on real SQLite in a
temporary data_dir, wired by `Service.open`); only the sending is left out, since what would be sent is the
outbox's content, compared row by row: the same messages to the same targets in the same order.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.config import Config, NotifyConfig, RouteConfig, ServiceConfig, ThresholdsConfig
from monitor.domain.reading import Reading
from monitor.service.app import Service
from monitor.thresholds import shipped_path

T0 = 1326585600 * 10**9
STEP = 300 * 10**9  # a reading every 5 minutes; the flap window is 12 of them
# Down the Longjiang (an incident, arrival estimates for the intake route) and one station off any river.
STATIONS = ["lalang", "yemao", "luodong", "flappy"]
VALUES = [0.001, 0.006, 0.03, 0.2]  # compliant, 1.2x (warning), 6x (serious), 40x (critical) the Class III limit

Row = tuple[str, str, str, str]


def config(data_dir: Path) -> Config:
    return Config(
        thresholds=ThresholdsConfig(files=(shipped_path(), shipped_path("longjiang-stations.toml"))),
        notify=NotifyConfig(
            urls=("json://everyone.example/x",),
            routes=(RouteConfig("json://company.example/x", intakes=True),),
            utc_offset="+08:00",
            flap_max_transitions=3,
            flap_window_s=3600,
        ),
        service=ServiceConfig(data_dir=data_dir, http_listen=""),
    )


def notifications(batches: list[list[Reading]]) -> list[Row]:
    """Journal each batch, let the rules loop take it (one batch per journal append), read the outbox."""
    with tempfile.TemporaryDirectory(prefix="rw-batching-") as tmp:
        data = Path(tmp)
        service = Service(config(data))

        async def run() -> None:
            stop = asyncio.Event()
            assert await service.open(stop)
            assert service.evaluation is not None
            for batch in batches:
                service.journal.append(batch)
                while service.journal.backlog("rules"):
                    await service.evaluation.step(stop)
            service.close()
            await service.writer.close()

        asyncio.run(run())
        with sqlite3.connect(data / "outbox.sqlite") as db:
            rows = db.execute("SELECT target, key, title, body FROM outbox ORDER BY id").fetchall()
        return [(str(t), str(k), str(ti), str(b)) for t, k, ti, b in rows]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Reading], list[int]]:
    """Readings in time order (several stations may share a time) and where to cut them into batches."""
    value = st.sampled_from([VALUES[0]] * 5 + VALUES[1:])  # mostly compliant: alerts open and close now and then
    step = st.dictionaries(st.sampled_from(STATIONS), value, min_size=1, max_size=3)
    steps = draw(st.lists(step, min_size=1, max_size=50))
    if draw(st.booleans()):  # a series toggling somewhere in it: flap holds, and a release if it calms in time
        at, station = draw(st.integers(0, len(steps))), draw(st.sampled_from(STATIONS))
        steps[at:at] = [{station: VALUES[i % 2]} for i in range(draw(st.integers(4, 10)))]
    readings = [Reading(s, "cd", T0 + i * STEP, v) for i, at in enumerate(steps) for s, v in at.items()]
    cuts = draw(st.lists(st.integers(1, max(1, len(readings) - 1)), max_size=len(readings)))
    return readings, sorted(set(cuts) - {len(readings)})


def split(readings: list[Reading], cuts: list[int]) -> list[list[Reading]]:
    bounds = [0, *cuts, len(readings)]
    return [readings[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# Found by CI: a plume forecast issued at Luodong's 09:00 transition saw the 09:05 reading of the same batch.
LATE_IN_BATCH = [
    *(Reading("lalang", "cd", T0 + i * STEP, VALUES[1] if i % 2 else VALUES[0]) for i in range(8)),
    *(Reading("lalang", "cd", T0 + i * STEP, VALUES[0]) for i in range(8, 11)),
    Reading("luodong", "cd", T0 + 11 * STEP, VALUES[1]),
    Reading("lalang", "cd", T0 + 12 * STEP, VALUES[0]),
    Reading("luodong", "cd", T0 + 12 * STEP, VALUES[1]),
    Reading("lalang", "cd", T0 + 13 * STEP, VALUES[0]),
    Reading("luodong", "cd", T0 + 13 * STEP, VALUES[0]),
]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
@example((LATE_IN_BATCH, []))
def test_any_batching_gives_the_notifications_of_one_reading_per_batch(stream: tuple[list[Reading], list[int]]) -> None:
    readings, cuts = stream
    one_by_one = notifications([[r] for r in readings])
    for other in (notifications(split(readings, cuts)), notifications([readings])):
        assert in_order(other) == in_order(one_by_one)  # the same messages to the same targets, in order


def in_order(rows: list[Row]) -> list[Row]:
    """The rows but the sensor alerts of a silence: the no-data clock runs on the wall clock, so a silence in
    the replayed past is found only when the series' next reading arrives, in its batch, which may come after
    transitions of other series that are later in reading time (one batch sorts them all by time), and the
    readings a batch holds decide when the silence is seen to end. Live, the wall clock finds it."""
    return [r for r in rows if "unobserved since" not in r[2] and "sees again" not in r[2]]


def test_a_toggling_series_read_in_any_batches_is_one_flapping_message_and_one_calm_resolve() -> None:
    """A series confirmed and cleared over and over (two readings over, two under: the two-step lifecycle of
    the defaults), then calm with a live analyser: one reading per batch, two per batch and all at once agree."""
    values = [(0.020, 0.021, 0.0010, 0.0011)[i % 4] for i in range(16)] + [0.001 + 0.00001 * (i % 3) for i in range(14)]
    readings = [Reading("flappy", "cd", T0 + i * STEP, v) for i, v in enumerate(values)]
    one_by_one = notifications([[r] for r in readings])
    titles = [title for target, _, title, _ in one_by_one]
    assert [t.split(":")[0] for t in titles] == [
        "unconfirmed",
        "[WARNING] FIRING",
        "[WARNING] RESOLVED",
        "unconfirmed",
        "[WARNING] FIRING",
        "[FLAPPING, held as firing] [WARNING] RESOLVED",
        "[WARNING] RESOLVED",
    ], titles
    assert notifications(split(readings, list(range(2, len(readings), 2)))) == one_by_one
    assert notifications([readings]) == one_by_one
