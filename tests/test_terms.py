"""Chinese messages wholly Chinese, for the shipped Longjiang stations: every kind of message a bureau gets,
rendered in zh, carries no Latin letters outside an explicit allowed set (ids, units, codes, commands)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import pytest

from monitor.alerts.evaluator import AlertBook, AlertEvent
from monitor.alerts.forecast import StationForecast
from monitor.alerts.forecast_notice import ForecastNote
from monitor.alerts.incidents import Hit, Incident
from monitor.config.messages import MessagesConfig, RouteMessages
from monitor.domain.reading import Reading
from monitor.notify.render import parse_offset, render
from monitor.notify.render_group import change_line, group_context, group_message
from monitor.notify.templates import what_to_do
from monitor.notify.terms import Terms, limit_text, unit
from monitor.rules import Rules
from monitor.thresholds import ThresholdSet

T0 = 1_326_585_600 * 10**9  # 2012-01-15T00:00:00Z = 08:00 in Guangxi
HOUR = 3600 * 10**9
DAY = 24 * HOUR
CST = parse_offset("+08:00")

# What a Chinese message may carry in Latin letters, and why: alert, incident and station ids (the keys a duty
# officer types into `riverwatch ack`), parameter ids in parentheses, units as Chinese reports write them,
# "pH", HJ 212 codes, the standard's code, the ack command and URLs.
ALLOWED = [
    r"https?://\S+",
    r"riverwatch ack \S+ --by",
    r"[a-z0-9-]+/[a-z0-9*]+/(?:[a-z0-9_.]+/)?\d{8}T\d{4}Z",  # alert ids
    r"[a-z0-9-]+/[a-z0-9]+/\d{8}(?:T\d{4}Z)?",  # incident ids
    r"（[a-z0-9-]+(?=[，）])",  # station and parameter ids in parentheses: （sancha）, （liuzhou-hexi，取水口）
    r"HJ 212 w\d{5}",
    r"GB \d{4}-\d{4}",
    r"mg/L|µg/L|ng/L|NTU|µS/cm|mV|MPN/L",
    r"\bpH\b",
    r"（C/S）|（S/C）|（\(C−S\)/S）",  # the ratio's formula, as Chinese reports write 超标倍数
]
_ALLOWED = re.compile("|".join(ALLOWED))


def latin(text: str) -> list[str]:
    """The Latin words left once the allowed ones are taken out."""
    return re.findall(r"[A-Za-z]+", _ALLOWED.sub(" ", text))


def events_for(thresholds: ThresholdSet, readings: Sequence[Reading], one_step: bool = True) -> list[AlertEvent]:
    if one_step:
        policy = dataclasses.replace(thresholds.alerts, confirm=1, clear_readings=1, clear_hold_ns=0)
        thresholds = dataclasses.replace(thresholds, alerts=policy)
    a = thresholds.alerts
    book = AlertBook(a.tiers, clear_hold_ns=a.clear_hold_ns, confirm=a.confirm, clear_readings=a.clear_readings)
    out: list[AlertEvent] = []
    for check in Rules(thresholds, "III").evaluate(readings):
        out += book.update(check)
    return out


@pytest.fixture(scope="module")
def incident(thresholds: ThresholdSet) -> Incident:
    return plume(thresholds)


def plume(thresholds: ThresholdSet) -> Incident:
    """A cadmium plume at Lalang, Yemao and Sancha, with a forecast for the Liuzhou Hexi intake."""
    inc = Incident("longjiang/cd/20120115", "Longjiang", "cd", T0)
    st = thresholds.stations
    for i, sid in enumerate(("lalang", "yemao", "sancha")):
        km = st[sid].river_km
        assert km is not None
        inc.hits.append(Hit(sid, km, T0 + i * DAY))
    inc.open_alerts = {"sancha/cd/20120117T0000Z"}
    hexi = st["liuzhou-hexi"].river_km
    assert hexi is not None
    f = StationForecast(
        "liuzhou-hexi",
        hexi,
        T0 + 5 * DAY,
        T0 + 6 * DAY,
        0.0071,
        0.0052,
        0.0094,
        0.005,
        True,
        T0 + 5 * DAY,
        T0 + 7 * DAY,
    )
    inc.latest, inc.issued_ns = [f], T0 + 2 * DAY
    inc.notes["liuzhou-hexi"] = ForecastNote("issued", T0 + 2 * DAY, f)
    return inc


def every_kind(thresholds: ThresholdSet, inc: Incident) -> dict[str, list[tuple[str, str]]]:
    """(title, body) of each kind of message, in zh."""
    st = thresholds.stations
    fired, escalated, resolved = events_for(
        thresholds,
        [
            Reading("sancha", "cd", T0, 0.02),
            Reading("sancha", "cd", T0 + HOUR, 0.15),
            Reading("sancha", "cd", T0 + 2 * HOUR, 0.001),
        ],
    )
    two_step = [Reading("luodong", "cd", T0 + i * 2 * HOUR, v) for i, v in enumerate([0.001, 0.012, 0.001])]
    unconfirmed, withdrawn = events_for(thresholds, two_step, one_step=False)
    near = dataclasses.replace(unconfirmed, near=True, value=0.0047, ratio=0.94)
    (do_low,) = events_for(thresholds, [Reading("sancha", "do", T0, 2.0)])
    sensors = [
        dataclasses.replace(fired, category="sensor", rule=k, detail="cadmium at Sancha: a plume would not be seen")
        for k in ("gap", "stuck", "drift", "range", "below_dl", "clock", "maintenance")
    ]
    forecast = dataclasses.replace(
        fired,
        category="forecast",
        state="issued",
        station="liuzhou-hexi",
        alert_id="liuzhou-hexi/cd/forecast/20120117T0000Z",
    )
    withdrawn_fc = dataclasses.replace(forecast, state="withdrawn")
    out: dict[str, list[tuple[str, str]]] = {}

    def add(kind: str, e: AlertEvent, repeat: bool = False, flapping: bool = False) -> None:
        m = render(e, "zh", st, CST, inc, repeat=repeat, flapping=flapping)
        lines = what_to_do(
            MessagesConfig(console_url="https://rw.example.cn/console"), RouteMessages(), e, inc, st, "zh"
        )
        out.setdefault(kind, []).append((m.title, "\n".join([m.body, *lines])))

    add("firing", fired)
    add("escalated", escalated)
    add("resolved", resolved)
    add("minimum", do_low)
    add("unconfirmed", unconfirmed)
    add("near", near)
    add("withdrawn", withdrawn)
    for s in sensors:
        add("sensor", s)
        add("sensor", dataclasses.replace(s, state="resolved"))
    add("forecast", forecast)
    add("forecast", withdrawn_fc)
    add("repeat", fired, repeat=True)
    add("flapping", fired, flapping=True)
    add("flapping", unconfirmed, flapping=True)
    changes = [
        change_line(e, inc, st, "zh", CST) for e in (unconfirmed, fired, escalated, sensors[0], forecast, resolved)
    ]
    out["grouped"] = [group_message(changes, group_context(inc, st, "zh", CST, event=fired), "zh")]
    return out


def test_every_chinese_message_is_wholly_chinese(thresholds: ThresholdSet, incident: Incident) -> None:
    kinds = every_kind(thresholds, incident)
    assert set(kinds) >= {"firing", "escalated", "resolved", "unconfirmed", "withdrawn", "sensor", "forecast"}
    assert set(kinds) >= {"repeat", "flapping", "grouped"}
    for kind, messages in kinds.items():
        for title, body in messages:
            assert not latin(title), (kind, latin(title), title)
            assert not latin(body), (kind, latin(body), body)
    text = "\n".join(f"{t}\n{b}" for ms in kinds.values() for t, b in ms)
    for gone in ("特别严重", "Class", " km", "河 0", "°C"):
        assert gone not in text


def test_the_allowed_set_catches_english(thresholds: ThresholdSet) -> None:
    """The check above can fail: the English text of the same alert is full of words it refuses."""
    (e,) = events_for(thresholds, [Reading("sancha", "cd", T0, 0.02)])
    assert "Station" in latin(render(e, "en", thresholds.stations, CST).body)
    assert latin("Longjiang 河 0 km") == ["Longjiang", "km"]
    assert latin("（cd，HJ 212 w20115）0.005 mg/L（GB 3838-2002 Ⅲ类）") == []


def test_chinese_places_standards_and_units(thresholds: ThresholdSet) -> None:
    (e,) = events_for(thresholds, [Reading("luodong", "cd", T0, 0.02)])
    zh = render(e, "zh", thresholds.stations, CST)
    assert "站点：洛东水电站（luodong），龙江 57 公里处" in zh.body
    assert "标准限值：0.005 mg/L（GB 3838-2002 Ⅲ类）" in zh.body
    en = render(e, "en", thresholds.stations, CST)
    assert "Longjiang river km 57" in en.body and "0.005 mg/L (GB 3838-2002 Class III)" in en.body
    assert (unit("temp", "zh"), unit("temp", "en"), unit("cond", "zh"), unit("ph", "zh")) == (" ℃", " °C", " µS/cm", "")
    assert limit_text(dataclasses.replace(e.limit, klass="II"), "zh") == "0.005 mg/L（GB 3838-2002 Ⅱ类）"


def test_below_the_confluence_the_river_is_the_liujiang(thresholds: ThresholdSet) -> None:
    """Where the station file names the reach's own Chinese name, the message uses it."""
    (e,) = events_for(thresholds, [Reading("liuzhou-hexi", "cd", T0, 0.02)])
    zh = render(e, "zh", thresholds.stations, CST, terms=Terms(rivers=thresholds.rivers))
    st = thresholds.stations["liuzhou-hexi"]
    river = Terms(rivers=thresholds.rivers).river(st, "zh")
    assert river == "柳江" and "柳江 160 公里处" in zh.body
    assert "龙江 160 公里处" in render(e, "zh", thresholds.stations, CST).body  # without the rivers: the table


def test_severity_labels_follow_the_profile(thresholds: ThresholdSet) -> None:
    fired, escalated = events_for(
        thresholds, [Reading("sancha", "cd", T0, 0.006), Reading("sancha", "cd", T0 + HOUR, 0.15)]
    )
    assert render(fired, "zh", thresholds.stations, CST).title.startswith("[蓝色预警（Ⅳ级，一般）] 告警：")
    assert render(escalated, "zh", thresholds.stations, CST).title.startswith("[橙色预警（Ⅱ级，重大）] 升级：")
    assert render(fired, "en", thresholds.stations, CST).title.startswith("[WARNING] FIRING:")
    red = MessagesConfig(severity_labels={"zh": {"critical": "红色预警（Ⅰ级，特别重大）"}})
    m = render(escalated, "zh", thresholds.stations, CST, terms=Terms(messages=red))
    assert m.title.startswith("[红色预警（Ⅰ级，特别重大）]") and "级别：红色预警（Ⅰ级，特别重大）" in m.body
