"""The two short kinds of message: the unconfirmed first notice and its withdrawal, and sensor alerts.

An unconfirmed notice is for the people who can look at the analyser before the next cycle (the station
operator): one line that says what was read and when the reading that decides is due. A sensor alert says
what the fault means for the bureau ("a plume would not be seen"), not a ratio to a limit it does not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import tzinfo

from monitor.alerts.evaluator import AlertEvent
from monitor.config.messages import SEVERITY_PROFILES
from monitor.notify.message import Message, message_key
from monitor.notify.terms import DEFAULT_TERMS, RULES_ZH, SENSORS_ZH, Terms, limit_text, parameter_name, station_name
from monitor.notify.terms import unit as unit_of
from monitor.notify.timefmt import clock, num, station_tz, when
from monitor.thresholds import Station


def _names(e: AlertEvent, language: str, stations: Mapping[str, Station]) -> tuple[str, str, str]:
    """(station, parameter, unit suffix) as a short message names them."""
    return (
        station_name(e.station, stations, language),
        parameter_name(e.parameter, language),
        unit_of(e.parameter, language),
    )


def unconfirmed_message(
    e: AlertEvent, language: str, stations: Mapping[str, Station], tz: tzinfo, terms: Terms = DEFAULT_TERMS
) -> Message:
    """ "unconfirmed: cadmium at Luodong 0.012 mg/L (2.4x); re-check at 10:00", or its withdrawal."""
    tz = station_tz(stations.get(e.station), tz)
    sname, pname, unit = _names(e, language, stations)
    zh = language == "zh"
    if e.state == "unconfirmed" and e.near:
        return _near_message(e, zh, sname, pname, unit, tz)
    if e.state == "unconfirmed":
        recheck = clock(e.ts_ns + e.cycle_ns, tz, e.ts_ns, language) if e.cycle_ns > 0 else ""
        if zh:
            title = f"待确认：{sname} {pname} {num(e.value)}{unit}（{num(e.ratio)} 倍限值）；" + (
                f"{recheck} 复测" if recheck else "下一次监测复测"
            )
            lines = [
                f"站点：{sname}（{e.station}），指标：{pname}（{e.parameter}）",
                f"监测值：{num(e.value)}{unit}，监测时间 {when(e.ts_ns, tz)}",
                f"标准限值：{limit_text(e.limit, 'zh', e.rule)}",
                "首次超标，尚未确认：下一次监测值仍超标即确认告警，否则撤销。"
                + (f"下一次监测约在 {recheck}（分析周期 {_hours(e.cycle_ns, True)}）。" if recheck else ""),
                f"告警编号：{e.alert_id}",
            ]
        else:
            title = f"unconfirmed: {pname} at {sname} {num(e.value)}{unit} ({num(e.ratio)}x); " + (
                f"re-check at {recheck}" if recheck else "re-check at the next reading"
            )
            lines = [
                f"Station: {sname} ({e.station}), parameter: {pname} ({e.parameter})",
                f"Measured: {num(e.value)}{unit} at {when(e.ts_ns, tz)}",
                f"Limit: {e.limit.describe()}",
                "A first exceedance, not yet confirmed: the alert follows if the next reading is also over the limit,"
                " else this notice is withdrawn."
                + (
                    f" The next reading is due at {recheck} (analyser cycle {_hours(e.cycle_ns, False)})."
                    if recheck
                    else ""
                ),
                f"Alert: {e.alert_id}",
            ]
        return Message(message_key(e), title, "\n".join(lines), "info")
    at = clock(e.ts_ns, tz, e.started_ns, language)
    first = clock(e.started_ns, tz)
    if zh:
        title = f"已撤销：{sname} {pname} {first} 的超标未被 {at} 的监测值证实"
        lines = [
            f"站点：{sname}（{e.station}），指标：{pname}（{e.parameter}）",
            f"{first} 的监测值 {num(e.peak_value)}{unit}（{num(e.peak_ratio)} 倍限值）未被证实："
            f"{at} 的监测值为 {num(e.value)}{unit}，未超标。",
            f"告警编号：{e.alert_id}",
        ]
    else:
        title = f"withdrawn: {pname} at {sname} {first} not confirmed by the {at} reading"
        lines = [
            f"Station: {sname} ({e.station}), parameter: {pname} ({e.parameter})",
            f"The {first} reading of {num(e.peak_value)}{unit} ({num(e.peak_ratio)}x) was not confirmed:"
            f" the {at} reading is {num(e.value)}{unit}, not over the limit.",
            f"Alert: {e.alert_id}",
        ]
    if e.detail:  # the rule's reason: an English sentence, named by its rule in Chinese
        lines.append(f"判定依据：{RULES_ZH.get(e.rule, '按规则判定')}" if zh else e.detail)
    return Message(message_key(e), title, "\n".join(lines), "info")


def _near_message(e: AlertEvent, zh: bool, sname: str, pname: str, unit: str, tz: tzinfo) -> Message:
    """ "rising toward the limit: cadmium at Luodong 0.0047 mg/L (0.94x); re-check at 12:00": under the limit,
    and said so, never worded as an exceedance."""
    recheck = clock(e.ts_ns + e.cycle_ns, tz, e.ts_ns, "zh" if zh else "en") if e.cycle_ns > 0 else ""
    if zh:
        title = f"接近限值并持续上升：{sname} {pname} {num(e.value)}{unit}（{num(e.ratio)} 倍限值）；" + (
            f"{recheck} 复测" if recheck else "下一次监测复测"
        )
        lines = [
            f"站点：{sname}（{e.station}），指标：{pname}（{e.parameter}）",
            f"监测值：{num(e.value)}{unit}，监测时间 {when(e.ts_ns, tz)}（未超标）",
            f"标准限值：{limit_text(e.limit, 'zh', e.rule)}",
            "监测值低于限值，但在该序列自身的噪声范围内，且近几次监测持续上升：下一次监测值超标即确认告警，"
            "回落到噪声范围以下则撤销。" + (f"下一次监测约在 {recheck}。" if recheck else ""),
            f"告警编号：{e.alert_id}",
        ]
    else:
        title = f"rising toward the limit: {pname} at {sname} {num(e.value)}{unit} ({num(e.ratio)}x); " + (
            f"re-check at {recheck}" if recheck else "re-check at the next reading"
        )
        lines = [
            f"Station: {sname} ({e.station}), parameter: {pname} ({e.parameter})",
            f"Measured: {num(e.value)}{unit} at {when(e.ts_ns, tz)} (under the limit)",
            f"Limit: {e.limit.describe()}",
            "Under the limit, but within the series' own noise of it and rising over the last readings: the alert"
            " follows if the next reading is over the limit, else this notice is withdrawn once the readings fall"
            " back." + (f" The next reading is due at {recheck}." if recheck else ""),
            *([e.detail] if e.detail else []),
            f"Alert: {e.alert_id}",
        ]
    return Message(message_key(e), title, "\n".join(lines), "info")


def sensor_message(
    e: AlertEvent,
    language: str,
    stations: Mapping[str, Station],
    tz: tzinfo,
    repeat: bool = False,
) -> Message:
    """A station that cannot see: what, since when and what it means (the check's detail), or that it sees again."""
    tz = station_tz(stations.get(e.station), tz)
    sname, pname, unit = _names(e, language, stations)
    zh = language == "zh"
    what = e.detail or e.limit.describe()
    # An instrument fault is no environmental emergency: never an emergency plan's level (蓝色预警（Ⅳ级）...).
    label = SEVERITY_PROFILES["standard"]["zh" if zh else "en"].get(e.severity, e.severity)
    if zh:
        # The checks' details are English sentences: the fault is named from its kind instead.
        fault, means = SENSORS_ZH.get(e.limit.kind) or SENSORS_ZH.get(e.rule) or ("仪器异常", "监测数据不可靠")
        what = f"{fault}：{means}" if e.state != "resolved" else "仪器已恢复正常监测"
        sev = label
        state = {"firing": "仪器告警", "escalated": "仪器告警升级", "resolved": "仪器恢复"}.get(e.state, e.state)
        title = f"[{sev}] {state}：{sname} {pname}：" + (what if e.state != "resolved" else "仪器已恢复正常监测")
        lines = [
            f"站点：{sname}（{e.station}），指标：{pname}（{e.parameter}）",
            f"仪器状况：{what}",
            *([f"最近读数：{num(e.value)}{unit}，时间 {when(e.ts_ns, tz)}"] if math.isfinite(e.value) else []),
            f"状态：{state}，自 {when(e.started_ns, tz)} 起",
            f"告警编号：{e.alert_id}（仪器告警，不是水质超标）",
        ]
        prefix = "[仍在告警] "
    else:
        state = {"firing": "SENSOR", "escalated": "SENSOR ESCALATED", "resolved": "SENSOR OK"}.get(e.state, e.state)
        title = f"[{label.upper()}] {state}: " + (
            what if e.state != "resolved" else f"{pname} at {sname}: the instrument sees again"
        )
        lines = [
            f"Station: {sname} ({e.station}), parameter: {pname} ({e.parameter})",
            f"Instrument: {what}",
            *([f"Last reading: {num(e.value)}{unit} at {when(e.ts_ns, tz)}"] if math.isfinite(e.value) else []),
            f"State: {e.state}, since {when(e.started_ns, tz)}",
            f"Alert: {e.alert_id} (a sensor alert: about the instrument, not the water)",
        ]
        prefix = "[STILL FIRING] "
    if repeat:
        title = prefix + title
    kind = {"firing": "warning", "escalated": "failure", "resolved": "success"}.get(e.state, "info")
    return Message(message_key(e, repeat), title, "\n".join(lines), kind)


def _hours(ns: int, zh: bool) -> str:
    h = ns / 3.6e12
    text = f"{h:.3g}" if h >= 1 else f"{ns / 6e10:.3g}"
    if zh:
        return f"{text} 小时" if h >= 1 else f"{text} 分钟"
    return f"{text} h" if h >= 1 else f"{text} min"
