"""The alert lifecycle a bureau can trust: unconfirmed, then firing or withdrawn; clearing that holds; no
transition from a late reading, across a restart too (AlertBook with hand-made SeriesChecks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monitor.alerts.evaluator import AlertBook, AlertEvent
from monitor.alerts.ledger import Ledger
from monitor.rules import SeriesCheck
from monitor.thresholds import Limit

H = 3600 * 10**9
T0 = 1_326_585_600 * 10**9  # 2012-01-15 08:00 +08:00
CD = Limit("cd", "max", 0.005, None, "mg/L", "GB 3838-2002", "III", "")


def check(hours: Sequence[float], values: Sequence[float], **kw: object) -> SeriesCheck:
    v = np.array(values, dtype=np.float64)
    ratio = v / CD.value
    return SeriesCheck(
        "luodong",
        "cd",
        CD,
        np.array([T0 + int(h * H) for h in hours], dtype=np.int64),
        v,
        ratio,
        ratio > 1.0,
        **kw,  # type: ignore[arg-type]
    )


def states(events: list[AlertEvent]) -> list[tuple[str, float]]:
    return [(e.state, (e.ts_ns - T0) / H) for e in events]


def run(
    book: AlertBook, hours: Sequence[float], values: Sequence[float], split: bool = True, **kw: object
) -> list[AlertEvent]:
    """Feed readings one per batch (as live) or all in one batch."""
    if not split:
        return book.update(check(hours, values, **kw))
    return [e for h, v in zip(hours, values, strict=True) for e in book.update(check([h], [v], **kw))]


def test_an_exceedance_is_unconfirmed_then_firing_with_a_recheck_time() -> None:
    for split in (True, False):
        book = AlertBook()
        ev = run(book, [0, 2, 4, 6, 8], [0.001, 0.002, 0.012, 0.03, 0.03], split)
        assert states(ev) == [("unconfirmed", 4), ("firing", 6)]
        first, fired = ev
        assert not first.confirmed and fired.confirmed
        assert first.cycle_ns == 2 * H  # re-check at 10:00 + 2 h = the next reading
        assert fired.alert_id == first.alert_id and fired.severity == "serious"  # the run's highest tier


def test_a_one_off_is_withdrawn_by_the_next_reading() -> None:
    book = AlertBook()
    ev = run(book, [0, 2, 4, 6], [0.001, 0.012, 0.002, 0.001])
    assert states(ev) == [("unconfirmed", 2), ("withdrawn", 4)]
    assert not book.open


def test_confirm_one_is_the_old_behaviour_and_a_check_can_set_its_own() -> None:
    book = AlertBook(confirm=1)
    assert states(run(book, [0, 2], [0.001, 0.012])) == [("firing", 2)]
    book = AlertBook(confirm=3)
    ev = run(book, [0, 2, 4, 6], [0.001, 0.012, 0.012, 0.012])
    assert states(ev) == [("unconfirmed", 2), ("firing", 6)]
    book = AlertBook()
    assert states(run(book, [0, 2], [0.001, 0.012], confirm=1)) == [("firing", 2)]


def test_a_single_compliant_reading_inside_a_plume_does_not_resolve() -> None:
    for split in (True, False):
        book = AlertBook()
        hours = [0, 2, 4, 6, 8, 10, 12, 14]
        values = [0.2, 0.2, 0.0, 0.2, 0.2, 0.001, 0.001, 0.001]
        ev = run(book, hours, values, split)
        assert states(ev) == [("unconfirmed", 0), ("firing", 2), ("resolved", 12)], split


def test_clearing_waits_for_a_cycle_of_calm_as_well_as_two_readings() -> None:
    book = AlertBook()
    # readings every 2 h, then two calm readings ten minutes apart: not yet a cycle of calm
    ev = run(book, [0, 2, 4, 6, 6.1667], [0.001, 0.03, 0.03, 0.001, 0.001])
    assert states(ev) == [("unconfirmed", 2), ("firing", 4)]
    assert states(run(book, [8], [0.001])) == [("resolved", 8)]


def test_explicit_clear_hold_and_readings() -> None:
    book = AlertBook(clear_hold_ns=0, clear_readings=1, confirm=1)
    assert states(run(book, [0, 2, 4], [0.03, 0.001, 0.03])) == [("firing", 0), ("resolved", 2), ("firing", 4)]
    book = AlertBook(clear_hold_ns=6 * H, confirm=1)
    ev = run(book, [0, 2, 4, 6, 8], [0.03, 0.001, 0.001, 0.001, 0.001])
    assert states(ev) == [("firing", 0), ("resolved", 8)]


def test_escalation_and_resolve_only_for_confirmed_alerts() -> None:
    book = AlertBook()
    ev = run(book, [0, 2, 4, 6, 8, 10], [0.006, 0.2, 0.2, 0.001, 0.001, 0.001])
    assert states(ev) == [("unconfirmed", 0), ("firing", 2), ("resolved", 8)]
    assert ev[1].severity == "critical"  # 40x confirmed at once as critical, no separate escalation
    book = AlertBook()
    ev = run(book, [0, 2, 4], [0.006, 0.006, 0.2])
    assert states(ev) == [("unconfirmed", 0), ("firing", 2), ("escalated", 4)]


def test_a_late_reading_moves_nothing() -> None:
    book = AlertBook()
    run(book, [0, 2, 4], [0.03, 0.03, 0.03])
    assert run(book, [3, 3.5], [0.001, 0.001]) == []  # older than the newest evaluated: left out
    assert run(book, [4], [0.001]) == []  # equal: left out too
    assert states(run(book, [6, 8], [0.001, 0.001])) == [("resolved", 8)]


def test_a_late_reading_after_a_restart_neither_resolves_nor_reopens(tmp_path: Path) -> None:
    book = AlertBook()
    events = run(book, [0, 2, 4, 6, 8], [0.03, 0.03, 0.03, 0.03, 0.03])
    ledger = Ledger(tmp_path / "alerts.sqlite")
    for e in events:
        ledger.record(e)
    ledger.evaluated(book.evaluated())
    ledger.close()
    # restart: the book comes back from the ledger
    ledger = Ledger(tmp_path / "alerts.sqlite")
    (a,) = ledger.alerts(active_only=True)
    assert a.state == "firing" and a.evaluated_ns == T0 + 8 * H and a.category == "water"
    book = AlertBook()
    book.restore(
        a.alert_id, a.station, a.parameter, a.rule, a.severity, a.started_ns, a.peak_value, a.peak_ratio,
        a.last_evaluated_ns, a.value, state=a.state, category=a.category,
    )  # fmt: skip
    assert run(book, [5, 7], [0.001, 0.001]) == []  # late: before the 8 h reading evaluated before the stop
    assert states(run(book, [10, 12], [0.001, 0.001])) == [("resolved", 12)]


def test_an_unconfirmed_alert_survives_a_restart_as_unconfirmed(tmp_path: Path) -> None:
    book = AlertBook()
    (e,) = run(book, [0], [0.03])
    ledger = Ledger(tmp_path / "alerts.sqlite")
    ledger.record(e)
    (a,) = ledger.alerts(active_only=True)
    book = AlertBook()
    book.restore(
        a.alert_id, a.station, a.parameter, a.rule, a.severity, a.started_ns, a.peak_value, a.peak_ratio,
        a.last_evaluated_ns, a.value, state=a.state,
    )  # fmt: skip
    assert states(run(book, [2], [0.03])) == [("firing", 2)]
    ledger.record(e)  # withdrawn alerts are no longer active
    ledger.record(run(AlertBook(), [0, 2], [0.03, 0.001])[1])
    assert [x.state for x in ledger.alerts()] == ["withdrawn"]
    assert ledger.alerts(active_only=True) == []


def test_category_is_copied_and_sensor_alerts_clear_at_one_good_reading() -> None:
    book = AlertBook()
    ev = run(book, [0, 2, 4], [0.03, 0.03, 0.001], category="sensor", confirm=1, clear_hold_ns=0)
    assert states(ev) == [("firing", 0), ("resolved", 4)]
    assert all(e.category == "sensor" for e in ev)


def test_no_data_alerts_need_no_confirmation() -> None:
    book = AlertBook()
    ev = run(book, [0], [0.03], rule="no_data", clear_hold_ns=0)
    assert states(ev) == [("firing", 0)]
