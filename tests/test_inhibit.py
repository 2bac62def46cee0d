"""Inhibition on the alert path (real ledger and outbox files): an open sensor alert mutes the unconfirmed noise
of its own series and marks, never mutes, the confirmed water alert; a confirmed alert upstream in the same
incident mutes downstream unconfirmed notices only when configured. Every mute is in the audit log with why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapGuard
from monitor.alerts.incidents import Incidents
from monitor.alerts.ledger import Ledger
from monitor.config import NotifyConfig, RouteConfig
from monitor.config.notify import InhibitConfig
from monitor.notify.outbox import Outbox
from monitor.notify.pipeline import Pipeline
from monitor.notify.render import parse_offset
from monitor.notify.routes import make_targets
from monitor.notify.stages import alert_path
from monitor.thresholds import load, shipped_path

THRESHOLDS = load([shipped_path(), shipped_path("longjiang-stations.toml")])
T0 = 1326585600 * 10**9
H = 3600 * 10**9
OPERATOR = RouteConfig("json://operator/x", unconfirmed=True)


def event(station: str, state: str, ts: int, category: str = "water", rule: str = "instantaneous") -> AlertEvent:
    limit = THRESHOLDS.limit(station, "cd", "III")
    assert limit is not None
    alert_id = f"{station}/cd/{rule}"
    return AlertEvent(
        alert_id, state, station, "cd", ts, 0.015, 3.0, "serious", limit, ts, 0.015, 3.0, rule, category=category
    )


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Ledger, Outbox]]:
    ledger = Ledger(tmp_path / "alerts.sqlite")
    outbox = Outbox(tmp_path / "outbox.sqlite", [OPERATOR.url])
    yield ledger, outbox
    outbox.close()
    ledger.close()


def run(files: tuple[Ledger, Outbox], inhibit: InhibitConfig | None, *events: AlertEvent) -> list[str]:
    """The bodies queued for the operator, oldest first."""
    ledger, outbox = files
    flaps = FlapGuard()
    path = alert_path(
        incidents=Incidents(THRESHOLDS.stations),
        flaps=flaps,
        ledger=ledger,
        outbox=outbox,
        targets=make_targets(NotifyConfig(urls=(), routes=(OPERATOR,), group_wait_s=0.0, group_interval_s=0.0)),
        stations=lambda: THRESHOLDS.stations,
        language="en",
        tz=parse_offset("+08:00"),
        default_km_per_day=12.0,
        inhibit=inhibit,
    )
    pipeline = Pipeline(path, flaps)
    pipeline.feed(events, max(e.ts_ns for e in events))
    pipeline.drain()
    bodies = []
    target = make_targets(NotifyConfig(urls=(), routes=(OPERATOR,)))[0].id
    while (item := outbox.next_for(target)) is not None:
        bodies.append(item[1].title + "\n" + item[1].body)
        outbox.delivered(item[0])
    return bodies


def test_an_open_sensor_alert_mutes_the_unconfirmed_notice_of_its_series_and_marks_the_alert(
    files: tuple[Ledger, Outbox],
) -> None:
    sent = run(
        files,
        None,  # the defaults
        event("luodong", "firing", T0, "sensor", "range"),
        event("luodong", "unconfirmed", T0 + H),
        event("luodong", "firing", T0 + 2 * H),
        event("yemao", "unconfirmed", T0 + 2 * H),  # another series: its own sensor is fine
    )
    assert len(sent) == 3, sent  # the sensor alert, the confirmed water alert, Yemao's notice
    assert "unconfirmed" not in sent[1].split("\n")[0].lower() and "FIRING" in sent[1], sent[1]
    assert "the instrument is suspect: sensor alert luodong/cd/range (range)" in sent[1]  # marked, not muted
    assert "Yemao" in sent[2] and "suspect" not in sent[2]
    audit = [(action, subject, detail) for _, _, action, subject, detail in files[0].audit_log()]
    assert audit == [
        (
            "muted",
            "alert luodong/cd/instantaneous",
            "unconfirmed not sent: inhibited by sensor alert luodong/cd/range (range) on the same series",
        )
    ]


def test_inhibition_can_be_switched_off(files: tuple[Ledger, Outbox]) -> None:
    off = InhibitConfig(sensor_mutes_unconfirmed=False, sensor_marks_water=False)
    sent = run(
        files,
        off,
        event("luodong", "firing", T0, "sensor", "range"),
        event("luodong", "unconfirmed", T0 + H),
        event("luodong", "firing", T0 + 2 * H),
    )
    assert len(sent) == 3 and "suspect" not in sent[2]
    assert files[0].audit_log() == []


def test_a_confirmed_alert_upstream_mutes_downstream_unconfirmed_notices_only_when_asked(
    files: tuple[Ledger, Outbox], tmp_path: Path
) -> None:
    events = (event("lalang", "firing", T0), event("yemao", "unconfirmed", T0 + 4 * H))
    assert len(run(files, None, *events)) == 2  # default: the operator hears the front has arrived
    ledger = Ledger(tmp_path / "b" / "alerts.sqlite")
    outbox = Outbox(tmp_path / "b" / "outbox.sqlite", [OPERATOR.url])
    try:
        sent = run((ledger, outbox), InhibitConfig(upstream_mutes_unconfirmed=True), *events)
        assert len(sent) == 1 and "Lalang" in sent[0]
        (note,) = ledger.audit_log()
        assert note[2] == "muted" and "inhibited by confirmed alert upstream at lalang in incident" in note[4], note
    finally:
        outbox.close()
        ledger.close()
