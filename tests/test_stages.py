"""The alert path's stages, each alone (real SQLite where a stage writes), then the path as a whole."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.alerts.incidents import Incidents
from monitor.alerts.ledger import Ledger
from monitor.config import NotifyConfig, RouteConfig
from monitor.metrics import Metrics
from monitor.notify.outbox import Outbox
from monitor.notify.pipeline import Pipeline, due_repeats
from monitor.notify.render import parse_offset
from monitor.notify.routes import Target, make_targets
from monitor.notify.stages import (
    IncidentStage,
    LedgerStage,
    MultiStage,
    MuteStage,
    Notice,
    OutboxStage,
    RenderStage,
    RouteStage,
    alert_path,
)
from monitor.thresholds import load, shipped_path

THRESHOLDS = load([shipped_path(), shipped_path("longjiang-stations.toml")])
STATIONS = THRESHOLDS.stations
T0 = 1326585600 * 10**9
DAY = 86_400 * 10**9
CST = parse_offset("+08:00")
ROUTES = NotifyConfig(
    urls=(),
    routes=(
        RouteConfig("json://county/x", rivers=("Longjiang",)),
        RouteConfig("json://company/x", intakes=True),
        RouteConfig("json://province/x", min_severity="serious"),
    ),
)


def event(station: str, state: str = "firing", ts: int = T0, severity: str = "warning") -> AlertEvent:
    limit = THRESHOLDS.limit(station, "cd", "III")
    assert limit is not None
    return AlertEvent(f"{station}/cd/x", state, station, "cd", ts, 0.006, 1.2, severity, limit, T0, 0.006, 1.2)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "alerts.sqlite")
    yield led
    led.close()


@pytest.fixture
def targets() -> list[Target]:
    return make_targets(ROUTES)


@pytest.fixture
def outbox(tmp_path: Path, targets: list[Target]) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite", [t.url for t in targets])
    yield box
    box.close()


def test_the_incident_stage_moves_the_incident_on_and_a_repeat_only_looks_it_up() -> None:
    incidents = Incidents(STATIONS)
    stage = IncidentStage(incidents)
    first = Notice(event("lalang"))
    stage.exec(first)
    assert first.incident is not None and [h.station for h in first.incident.hits] == ["lalang"]
    repeat = Notice(dataclasses.replace(event("lalang"), ts_ns=T0 + DAY), repeat=True)
    stage.exec(repeat)
    assert repeat.incident is first.incident and len(first.incident.hits) == 1
    stray = Notice(event("yemao"), repeat=True)  # an alert that is in no incident stays out of them
    stage.exec(stray)
    assert stray.incident is None and [h.station for h in first.incident.hits] == ["lalang"]


def test_the_mute_stage_records_a_silence_and_counts_it(ledger: Ledger) -> None:
    metrics = Metrics()
    sid = ledger.add_silence("lalang", None, time.time_ns() + 3600 * 10**9, "analyser maintenance", "li")
    stage = MuteStage(FlapGuard(), ledger, metrics)
    silenced, other = Notice(event("lalang")), Notice(event("yemao"))
    stage.exec(silenced)
    stage.exec(other)
    assert silenced.muted == f"silence {sid} (analyser maintenance)"
    assert other.muted is None
    assert metrics.registry.get_sample_value("riverwatch_notifications_silenced_total") == 1
    audit = [(a, s, d) for _, _, a, s, d in ledger.audit_log() if a == "suppressed"]
    assert audit == [("suppressed", "alert lalang/cd/x", f"firing silenced by silence {sid} (analyser maintenance)")]


def test_the_mute_stage_holds_a_flapping_series_and_says_why(ledger: Ledger) -> None:
    stage = MuteStage(FlapGuard(max_transitions=2, window_s=3600), ledger)
    states = ["firing", "resolved", "firing", "resolved"]
    notices = [Notice(event("lalang", s, T0 + i * 60 * 10**9)) for i, s in enumerate(states)]
    for n in notices:
        stage.exec(n)
    assert [n.verdict for n in notices] == [Verdict.SEND, Verdict.SEND, Verdict.START, Verdict.HOLD]
    assert [n.muted for n in notices] == [None, None, None, "flapping"]
    assert any(a == "held" and "resolved not sent: the alert is flapping" in d for _, _, a, _, d in ledger.audit_log())


def test_the_mute_stage_asks_the_flap_guard_once_per_transition_and_never_for_a_repeat(ledger: Ledger) -> None:
    guard = FlapGuard(max_transitions=1, window_s=3600)
    stage = MuteStage(guard, ledger)
    n = Notice(event("lalang"))
    stage.exec(n)
    stage.exec(n)  # run again after a failure further on: not a second transition
    assert n.verdict is Verdict.SEND and not guard.is_flapping(n.event)
    for _ in range(3):
        stage.exec(Notice(event("lalang"), repeat=True))
    assert not guard.is_flapping(n.event)


def test_the_render_stage_marks_repeats_and_flapping_and_carries_the_incident() -> None:
    stage = RenderStage(lambda: STATIONS, "en", CST, 10.0)
    incident = Incidents(STATIONS).on_event(event("lalang"))
    repeat = Notice(event("lalang"), repeat=True, incident=incident)
    flapping = Notice(event("lalang"), verdict=Verdict.START)
    stage.exec(repeat)
    stage.exec(flapping)
    assert repeat.message is not None and repeat.title.startswith("[STILL FIRING] [WARNING] FIRING")
    assert "Incident: longjiang/cd/" in repeat.message.body
    assert flapping.title.startswith("[FLAPPING, held as firing]")


def test_the_route_stage_routes_a_repeat_with_its_incident(targets: list[Target]) -> None:
    county, company, province = (t.id for t in targets)
    stage = RouteStage(targets, lambda: STATIONS)
    incident = Incidents(STATIONS).on_event(event("lalang"))
    with_incident = Notice(event("lalang"), repeat=True, incident=incident)
    without = Notice(event("lalang"), repeat=True)
    muted = Notice(event("lalang"), incident=incident, muted="flapping")
    for n in (with_incident, without, muted):
        stage.exec(n)
    assert with_incident.targets == (county, company)  # the front at Lalang is upstream of the Liuzhou intake
    assert without.targets == (county,)
    assert muted.targets == ()
    assert province not in with_incident.targets  # a warning


def test_the_outbox_stage_commits_before_it_wakes_delivery(outbox: Outbox, targets: list[Target]) -> None:
    woken: list[int] = []
    stage = OutboxStage(outbox, lambda: woken.append(outbox.pending()))
    n = Notice(event("lalang"), targets=(targets[0].id, targets[1].id))
    RenderStage(lambda: STATIONS, "en", CST, 10.0).exec(n)
    stage.exec(n)
    stage.exec(n)  # again (a retry): the outbox's key keeps one row per target
    assert woken == [2, 2] and outbox.pending() == 2
    assert outbox.next_for(targets[2].id) is None
    muted = Notice(event("yemao"), targets=(targets[0].id,), muted="silence 1 (x)")
    RenderStage(lambda: STATIONS, "en", CST, 10.0).exec(muted)
    stage.exec(muted)
    assert outbox.pending() == 2 and len(woken) == 2


def test_the_ledger_stage_keeps_the_alert_its_incident_and_its_flap_state(ledger: Ledger) -> None:
    guard = FlapGuard(max_transitions=1, window_s=3600)
    stage = LedgerStage(ledger, guard)
    incident = Incidents(STATIONS).on_event(event("lalang"))
    first = Notice(event("lalang"), incident=incident, verdict=guard.observe(event("lalang")))
    stage.exec(first)
    record = ledger.get("lalang/cd/x")
    assert (record.state, record.incident_id, record.last_sent_ns is not None) == ("firing", incident.id, True)  # type: ignore[union-attr]
    (restored,) = ledger.open_incidents()
    assert (restored.id, [h.station for h in restored.hits], restored.open_alerts) == (
        incident.id,  # type: ignore[union-attr]
        ["lalang"],
        {"lalang/cd/x"},
    )
    (flap,) = ledger.flap_states()
    assert (flap.key, flap.flips, flap.flapping) == (("lalang", "cd", "instantaneous"), (T0,), False)

    resolved = event("lalang", "resolved", T0 + 60 * 10**9)
    held = Notice(resolved, incident=incident, verdict=guard.observe(resolved), muted="flapping")
    stage.exec(held)
    record = ledger.get("lalang/cd/x")
    assert (record.state, record.flapping) == ("resolved", True)
    (flap,) = ledger.flap_states()
    assert flap.flapping and flap.held == resolved  # the held resolve, whole, for after a restart


def test_the_ledger_stage_records_no_transition_for_a_repeat(ledger: Ledger) -> None:
    stage = LedgerStage(ledger, FlapGuard())
    stage.exec(Notice(event("lalang")))
    before = ledger.get("lalang/cd/x")
    stage.exec(Notice(dataclasses.replace(event("lalang"), ts_ns=T0 + DAY, value=9.0), repeat=True))
    after = ledger.get("lalang/cd/x")
    assert (after.updated_ns, after.value) == (before.updated_ns, before.value)
    assert after.last_sent_ns is not None and before.last_sent_ns is not None
    assert after.last_sent_ns > before.last_sent_ns


class _FailOnce:
    def __init__(self) -> None:
        self.calls = 0

    def exec(self, n: Notice) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OSError("disk full")


class _Count:
    def __init__(self) -> None:
        self.calls = 0

    def exec(self, n: Notice) -> None:
        self.calls += 1


def test_a_failed_stage_is_resumed_without_running_the_stages_before_it_again() -> None:
    before, failing, after = _Count(), _FailOnce(), _Count()
    path = MultiStage(before, failing, after)
    n = Notice(event("lalang"))
    with pytest.raises(OSError):
        path.exec(n)
    path.exec(n)
    assert (before.calls, failing.calls, after.calls, n.done) == (1, 2, 1, 3)


def test_a_repeat_reaches_the_intakes_route(ledger: Ledger, outbox: Outbox, targets: list[Target]) -> None:
    """The first message about a plume heading for an intake and its repeats go to the same targets."""
    targets = [dataclasses.replace(t, repeat_interval_s=0.0) for t in targets]  # due at once (0.5 s below)
    flaps = FlapGuard()
    path = alert_path(
        incidents=Incidents(STATIONS),
        flaps=flaps,
        ledger=ledger,
        outbox=outbox,
        targets=targets,
        stations=lambda: STATIONS,
        language="en",
        tz=CST,
        default_km_per_day=10.0,
    )
    pipeline = Pipeline(path, flaps)
    pipeline.feed([event("lalang")], T0)
    pipeline.drain()
    due = due_repeats(
        ledger.alerts(active_only=True), time.time_ns() + 10**9, 0.5, lambda s, p: THRESHOLDS.limit(s, p, "III")
    )
    assert [e.alert_id for e in due] == ["lalang/cd/x"]
    pipeline.feed_repeats(due)
    (repeat,) = pipeline.drain()
    company = targets[1].id
    assert company in repeat.targets
    titles = []
    while (item := outbox.next_for(company)) is not None:
        titles.append(item[1].title)
        outbox.delivered(item[0])
    assert len(titles) == 2 and titles[1].startswith("[STILL FIRING]")
    assert "Expected at Liuzhou Hexi" in repeat.message.body  # type: ignore[union-attr]
