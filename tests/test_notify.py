"""Notify: the rendered messages (English and Chinese) and the durable per-target outbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from monitor.alerts.evaluator import AlertBook, AlertEvent
from monitor.domain.reading import Reading
from monitor.notify.outbox import Outbox
from monitor.notify.render import Message, parse_offset, render
from monitor.notify.routes import target_id
from monitor.rules import Rules
from monitor.thresholds import ThresholdSet

T0 = 1_326_585_600 * 10**9  # 2012-01-15T00:00:00Z = 08:00 in Guangxi
HOUR = 3600 * 10**9
CST = parse_offset("+08:00")


def events_for(thresholds: ThresholdSet, readings: Sequence[Reading], one_step: bool = True) -> list[AlertEvent]:
    """The transitions of the readings; `one_step`: with `[alerts] confirm = 1` and clearing at the first
    compliant reading, so each test shows the message it is about (the two steps have tests of their own)."""
    if one_step:
        policy = dataclasses.replace(thresholds.alerts, confirm=1, clear_readings=1, clear_hold_ns=0)
        thresholds = dataclasses.replace(thresholds, alerts=policy)
    a = thresholds.alerts
    book = AlertBook(a.tiers, clear_hold_ns=a.clear_hold_ns, confirm=a.confirm, clear_readings=a.clear_readings)
    out: list[AlertEvent] = []
    for check in Rules(thresholds, "III").evaluate(readings):
        out += book.update(check)
    return out


def test_the_unconfirmed_notice_and_its_withdrawal_are_short_and_say_when(thresholds: ThresholdSet) -> None:
    readings = [Reading("luodong", "cd", T0 + i * 2 * HOUR, v) for i, v in enumerate([0.001, 0.012, 0.001])]
    first, withdrawn = events_for(thresholds, readings, one_step=False)
    en = render(first, "en", thresholds.stations, CST)
    assert en.title == "unconfirmed: cadmium at Luodong hydropower station 0.012 mg/L (2.4x); re-check at 12:00"
    assert en.notify_type == "info" and "0.005 mg/L (GB 3838-2002 Class III)" in en.body
    zh = render(first, "zh", thresholds.stations, CST)
    assert zh.title.startswith("待确认：") and "12:00 复测" in zh.title
    en = render(withdrawn, "en", thresholds.stations, CST)
    assert en.title == "withdrawn: cadmium at Luodong hydropower station 10:00 not confirmed by the 12:00 reading"
    assert render(withdrawn, "zh", thresholds.stations, CST).title.startswith("已撤销：")
    assert en.key != render(first, "en", thresholds.stations, CST).key  # each state is queued once


def test_a_sensor_alert_says_what_it_means(thresholds: ThresholdSet) -> None:
    (e,) = events_for(thresholds, [Reading("luodong", "cd", T0, 0.041)])
    detail = "cadmium at Luodong unobserved since 04:00: a plume would not be seen"
    sensor = dataclasses.replace(e, category="sensor", rule="gap", detail=detail, severity="warning")
    en = render(sensor, "en", thresholds.stations, CST)
    assert en.title == f"[WARNING] SENSOR: {detail}"
    assert "not the water" in en.body and "Ratio" not in en.body
    zh = render(sensor, "zh", thresholds.stations, CST)
    # an instrument fault is never an emergency plan's level: the plain tier
    assert zh.title.startswith("[一般] 仪器告警：") and "污染团经过时将无法发现" in zh.title
    ok = render(dataclasses.replace(sensor, state="resolved", detail=""), "en", thresholds.stations, CST)
    assert ok.title.endswith("the instrument sees again") and ok.notify_type == "success"


@pytest.fixture(scope="module")
def cadmium(thresholds: ThresholdSet) -> tuple[AlertEvent, AlertEvent]:
    fired, resolved = events_for(
        thresholds, [Reading("lalang", "cd", T0, 0.041), Reading("lalang", "cd", T0 + HOUR, 0.002)]
    )
    assert (fired.state, resolved.state) == ("firing", "resolved")
    return fired, resolved


def text(m: Message) -> str:
    return f"{m.title}\n{m.body}"


def test_english_message_has_everything_a_bureau_needs(
    thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]
) -> None:
    m = render(cadmium[0], "en", thresholds.stations, CST)
    t = text(m)
    for needed in (
        "Lalang hydropower station",
        "lalang",
        "cadmium",
        "(cd",
        "w20115",
        "0.041 mg/L",
        "0.005 mg/L",
        "GB 3838-2002",
        "Class III",
        "8.2",
        "2012-01-15 08:00:00+08:00",
        "serious",
        "firing",
    ):
        assert needed in t, needed
    assert "Lalang hydropower station" in m.title
    assert "cadmium" in m.title
    assert "0.041 mg/L" in m.title


def test_english_resolved_message_says_resolved(
    thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]
) -> None:
    m = render(cadmium[1], "en", thresholds.stations, CST)
    assert "RESOLVED" in m.title
    assert "State: resolved" in m.body
    assert "firing" not in text(m).lower()
    assert "2012-01-15 09:00:00+08:00" in m.body  # the reading that resolved it
    assert "0.002 mg/L" in m.body
    assert "peak 0.041 mg/L" in m.body


def test_the_time_is_shown_with_the_configured_offset(
    thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]
) -> None:
    no_zone = dataclasses.replace(cadmium[0], station="station-without-a-time-zone")
    assert "2012-01-15 00:00:00+00:00" in render(no_zone, "en", thresholds.stations, parse_offset("+00:00")).body
    assert "2012-01-14 18:30:00-05:30" in render(no_zone, "en", thresholds.stations, parse_offset("-05:30")).body
    # A station whose file names its time zone (Lalang: Asia/Shanghai) is shown in it, whatever the default.
    assert "2012-01-15 08:00:00+08:00" in render(cadmium[0], "en", thresholds.stations, parse_offset("-05:30")).body


def test_parse_offset() -> None:
    assert CST.utcoffset(None).total_seconds() == 8 * 3600
    assert parse_offset("-05:30").utcoffset(None).total_seconds() == -(5 * 3600 + 30 * 60)
    assert parse_offset("+00:00").utcoffset(None).total_seconds() == 0


def test_chinese_message(thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]) -> None:
    m = render(cadmium[0], "zh", thresholds.stations, CST)
    t = text(m)
    for needed in (
        "拉浪水电站",
        "lalang",
        "镉",
        "cd",
        "w20115",
        "0.041 mg/L",
        "0.005 mg/L",
        "GB 3838-2002",
        "2012-01-15 08:00:00+08:00",
        "告警",
    ):
        assert needed in t, needed
    assert "超标倍数（(C−S)/S）：7.2" in m.body
    assert "浓度与限值之比（C/S）：8.2" in m.body
    assert "告警" in m.title
    assert "拉浪水电站" in m.title


def test_chinese_resolved_message(thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]) -> None:
    m = render(cadmium[1], "zh", thresholds.stations, CST)
    assert "解除" in m.title
    assert "状态：解除" in m.body
    assert "状态：告警" not in m.body
    assert "超标倍数（(C−S)/S）：未超标" in m.body


def test_a_minimum_is_labelled_limit_over_value(thresholds: ThresholdSet) -> None:
    (e,) = events_for(thresholds, [Reading("lalang", "do", T0, 4.0)])
    en = render(e, "en", thresholds.stations, CST).body
    zh = render(e, "zh", thresholds.stations, CST).body
    assert "Ratio (limit/value, a minimum): 1.25" in en
    assert "≥ 5 mg/L" in en
    assert "（S/C）：1.25" in zh
    assert "C/S" not in zh
    assert "超标倍数" not in zh  # (C−S)/S means nothing for a minimum


def test_ph_below_its_range_is_labelled_limit_over_value(thresholds: ThresholdSet) -> None:
    low, high = (events_for(thresholds, [Reading(s, "ph", T0, v)])[0] for s, v in (("lalang", 5.0), ("yemao", 10.0)))
    assert "Ratio (limit/value, a minimum): 1.2" in render(low, "en", thresholds.stations, CST).body
    assert "（S/C）：1.2" in render(low, "zh", thresholds.stations, CST).body
    assert "Ratio (value/limit): 1.111" in render(high, "en", thresholds.stations, CST).body
    assert "（C/S）：1.111" in render(high, "zh", thresholds.stations, CST).body


def test_escalated_message(thresholds: ThresholdSet) -> None:
    events = events_for(thresholds, [Reading("lalang", "cd", T0, 0.04), Reading("lalang", "cd", T0 + HOUR, 0.15)])
    assert [e.state for e in events] == ["firing", "escalated"]
    en = render(events[1], "en", thresholds.stations, CST)
    zh = render(events[1], "zh", thresholds.stations, CST)
    assert "ESCALATED" in en.title and "critical" in en.body.lower()
    assert "升级" in zh.title and "橙色预警（Ⅱ级，重大）" in zh.body and "特别严重" not in zh.body
    assert en.notify_type == "failure"


def test_an_unknown_station_is_named_by_its_id(thresholds: ThresholdSet) -> None:
    (e,) = events_for(thresholds, [Reading("upstream-7", "cd", T0, 0.041)])
    assert "upstream-7" in render(e, "en", thresholds.stations, CST).title
    assert "upstream-7" in render(e, "zh", thresholds.stations, CST).title


def test_each_transition_has_its_own_key(thresholds: ThresholdSet, cadmium: tuple[AlertEvent, AlertEvent]) -> None:
    keys = {render(e, lang, thresholds.stations, CST).key for e in cadmium for lang in ("en", "zh")}
    assert len(keys) == 2  # one per transition, whatever the language
    assert render(cadmium[0], "en", thresholds.stations, CST) == render(cadmium[0], "en", thresholds.stations, CST)


# --------------------------------------------------------------------------- outbox

A = "json://127.0.0.1:9000/alerts"
B = "console://"


def msg(key: str = "lalang/cd/20120115T0000Z#firing#1") -> Message:
    return Message(key, "title", "body", "warning")


def test_the_same_message_is_queued_once_per_target(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", [A])
    try:
        assert box.add(msg()) == 1
        assert box.add(msg()) == 0
        assert box.pending() == 1
        row = box.next_for(target_id(A))
        assert row is not None
        assert row[1] == msg()
    finally:
        box.close()


def test_two_targets_get_a_row_each(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", [A, B])
    try:
        assert box.add(msg()) == 2
        assert box.add(msg()) == 0
        assert box.pending() == 2
        a, b = box.next_for(target_id(A)), box.next_for(target_id(B))
        assert a is not None and b is not None
        assert a[0] != b[0]
        assert a[1] == b[1] == msg()
    finally:
        box.close()


def test_delivered_rows_are_no_longer_pending(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", [A, B])
    try:
        box.add(msg("k1"))
        box.add(msg("k2"))
        first = box.next_for(target_id(A))
        assert first is not None and first[1].key == "k1"  # oldest first
        box.delivered(first[0])
        assert box.pending() == 3
        second = box.next_for(target_id(A))
        assert second is not None and second[1].key == "k2"
        box.delivered(second[0])
        assert box.next_for(target_id(A)) is None
        other = box.next_for(target_id(B))
        assert other is not None and other[1].key == "k1"  # one target's delivery does not touch another's
        assert box.pending() == 2
    finally:
        box.close()


def test_a_failed_row_stays_pending_with_a_later_retry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", [A])
    try:
        box.add(msg())
        row = box.next_for(target_id(A))
        assert row is not None
        box.failed(row[0], 60.0, "HTTP 500")
        again = box.next_for(target_id(A))
        assert again is not None
        assert again[0] == row[0]
        assert again[2] == 1  # attempts
        assert again[3] >= row[3] + 59 * 10**9
        assert box.pending() == 1
    finally:
        box.close()


def test_the_outbox_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.sqlite"
    box = Outbox(path, [A, B])
    box.add(msg("k1"))
    box.add(msg("k2"))
    row = box.next_for(target_id(A))
    assert row is not None
    box.delivered(row[0])
    box.close()

    box = Outbox(path, [A, B])
    try:
        assert box.pending() == 3
        assert box.add(msg("k1")) == 0  # still known: not queued again after a restart
        nxt = box.next_for(target_id(A))
        assert nxt is not None and nxt[1].key == "k2"
    finally:
        box.close()


def test_the_outbox_does_not_store_target_credentials(tmp_path: Path) -> None:
    secret = "json://user:hunter2@127.0.0.1:9000/alerts"
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, [secret])
    box.add(msg())
    box.close()
    assert b"hunter2" not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
