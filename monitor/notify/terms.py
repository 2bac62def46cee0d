"""The bureau's own terms: how a message names stations, rivers, parameters, units, standards, states, rules
and severities in each language. Every renderer takes its words from here, so a Chinese message is wholly
Chinese ("龙江 57 公里处", "GB 3838-2002 Ⅲ类", "℃") and the two languages cannot drift apart.

`Terms` carries what the config and the threshold files add: the severity labels ([notify] severity_profile
and severity_labels) and the rivers' Chinese names (`[rivers.<name>].name_zh`); without them the shipped
defaults apply (the emergency plans' levels for Chinese, a small table of the shipped rivers' names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.config.messages import MessagesConfig
from monitor.domain.params import PARAMETERS
from monitor.notify.timefmt import num
from monitor.thresholds import Station
from monitor.thresholds.model import Limit
from monitor.thresholds.rivers import RiverDescription

ROMAN = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ", "V": "Ⅴ"}

# Until a station file's [rivers.<name>] has name_zh (and for station files without a [rivers] table).
RIVERS_ZH = {"longjiang": "龙江", "liujiang": "柳江", "rongjiang": "融江", "beijiang": "北江", "xijiang": "西江"}

# Units as Chinese monitoring reports write them; mg/L, µg/L, NTU and µS/cm stay as they are.
UNITS_ZH = {"°C": "℃", "m3/s": "m³/s", "m3/h": "m³/h", "MPN/L": "MPN/L"}

STATES = {
    "en": {"firing": "firing", "escalated": "escalated", "resolved": "resolved"},
    "zh": {"firing": "告警", "escalated": "升级", "resolved": "解除"},
}

# What decided the alert (AlertEvent.rule), for the Chinese text: the rules' own details are English sentences.
RULES_ZH = {
    "instantaneous": "单次监测值超标",
    "persistence": "连续超标",
    "mean": "滑动均值超标",
    "rate": "浓度快速上升",
    "no_data": "数据中断",
    "event": "多指标联合异常",
}

# Sensor alerts (the limit's kind): what the instrument does and what that means for the bureau.
SENSORS_ZH = {
    "range": ("读数超出仪器量程", "可能是仪器故障，或浓度超出仪器可测范围"),
    "stuck": ("读数长时间不变", "污染团经过时将无法发现"),
    "below_dl": ("读数低于检出限，而该序列通常高于检出限", "空白读数（试剂耗尽、采样管堵塞）与河水无关"),
    "maintenance": ("仪器处于维护或校准状态", "污染团经过时将无法发现"),
    "gap": ("按正常频次应有读数而未收到", "污染团经过时将无法发现"),
    "clock": ("数据采集仪时钟超前", "时间在未来的数据被拒收"),
    "drift": ("读数与邻近仪器的比值偏离", "仪器漂移（电极污染、试剂老化），其读数暂不采用，恢复一致后再用"),
    "no_data": ("该站未按时上报数据", "污染团经过时将无法发现"),
}


@dataclass(frozen=True)
class Terms:
    """The words the config and the threshold files choose: severity labels and river names."""

    messages: MessagesConfig = field(default_factory=MessagesConfig)
    rivers: Mapping[str, RiverDescription] = field(default_factory=dict)

    def severity(self, tier: str, language: str) -> str:
        return self.messages.label(tier, language)

    def river(self, st: Station | None, language: str) -> str:
        """The river's name at the station (monitor.notify.terms.Terms.river_name)."""
        if st is None or not st.river:
            return ""
        return self.river_name(st.river, st.river_km, language)

    def river_name(self, river: str, km: float | None, language: str) -> str:
        """Its Chinese name from [rivers.<name>] (the reach's own where the river changes name), else the
        shipped table, else "" (a Chinese message never shows the file's Latin name); the file's name in
        English."""
        if language != "zh":
            return river
        r = self.rivers.get(river)
        at = getattr(r, "name_zh_at", None)
        zh = at(km) if at is not None else (r.name_zh if r is not None else "")
        return str(zh or RIVERS_ZH.get(river.lower(), ""))


DEFAULT_TERMS = Terms()


def state(s: str, language: str) -> str:
    return STATES.get(language, STATES["en"]).get(s, s)


def station_name(sid: str, stations: Mapping[str, Station], language: str) -> str:
    st = stations.get(sid)
    if st is None:
        return sid
    return (st.name_zh or st.name or sid) if language == "zh" else (st.name or sid)


def parameter_name(pid: str, language: str) -> str:
    p = PARAMETERS.get(pid)
    if pid == "*":
        return "全部指标" if language == "zh" else "all parameters"
    if p is None:
        return pid
    return p.name_zh if language == "zh" and p.name_zh else p.name


def unit(pid: str, language: str) -> str:
    """The unit suffix (" mg/L", " ℃"), "" for pH."""
    p = PARAMETERS.get(pid)
    u = p.unit if p is not None else ""
    if language == "zh":
        u = UNITS_ZH.get(u, u)
    return f" {u}" if u else ""


def place(st: Station | None, terms: Terms, language: str) -> str:
    """Where on its river: "龙江 57 公里处", "Longjiang river km 57"; "" without a river km."""
    if st is None or not st.river or st.river_km is None:
        return ""
    if language == "zh":
        river = terms.river(st, "zh")
        return f"{river + ' ' if river else '河道 '}{num(st.river_km)} 公里处"
    return f"{st.river} river km {num(st.river_km)}"


def km(x: float, language: str) -> str:
    return f"{num(x)} 公里" if language == "zh" else f"km {num(x)}"


def standard(limit: Limit, language: str) -> str:
    """ "GB 3838-2002 Ⅲ类" / "GB 3838-2002 Class III"."""
    if language == "zh":
        return limit.standard + (f" {ROMAN.get(limit.klass, limit.klass)}类" if limit.klass else "")
    return limit.standard + (f" Class {limit.klass}" if limit.klass else "")


def limit_text(limit: Limit, language: str, rule: str = "") -> str:
    """The limit as a message states it: "0.005 mg/L（GB 3838-2002 Ⅲ类）". A rule-made limit's own text is
    English: in Chinese, the rule says what was judged instead."""
    if language != "zh":
        return limit.describe()
    if limit.text:
        what = SENSORS_ZH.get(limit.kind, ("", ""))[0] if limit.standard == "sensor health" else ""
        return what or RULES_ZH.get(rule, "按规则判定")
    u = unit(limit.parameter, "zh").strip() or (UNITS_ZH.get(limit.unit, limit.unit) if limit.unit else "")
    suffix = f" {u}" if u else ""
    if limit.kind == "range":
        low = num(limit.low) if limit.low is not None else "−∞"
        amount = f"{low}–{num(limit.value)}{suffix}"
    elif limit.kind == "min":
        amount = f"≥ {num(limit.value)}{suffix}"
    else:
        amount = f"{num(limit.value)}{suffix}"
    note = f"，{limit.note}" if limit.note and not any("a" <= c.lower() <= "z" for c in limit.note) else ""
    return f"{amount}（{standard(limit, 'zh')}{note}）"


# Forecast notices and tables (monitor.notify.render_forecast): one table per language, the same keys, so a
# line cannot be worded in one language and forgotten in the other. Placeholders are str.format fields.
FORECAST: Mapping[str, Mapping[str, str]] = {
    "en": {
        "line": "{parameter} at {station} from about {start}, peak {peak}{unit} ({low}-{high}) on {peak_at}",
        "ratio": ", {ratio}x its limit",
        "hours": ", for about {hours} h",
        "no_hours": ", for an unknown time",
        "withdrawn_title": "Forecast withdrawn: {parameter} at {station} is no longer expected over its limit",
        "withdrawn": "From the readings up to {at} the earlier forecast exceedance no longer holds.",
        "issued_head": "Forecast: ",
        "updated_head": "Forecast updated: ",
        "issued": "Issued: {at} (from the readings up to then)",
        "front": "Front expected: {at}",
        "over": "Over the limit: {start} to {end}",
        "peak": "Peak: {peak}{unit} on {at}, likely between {low} and {high}{unit}",
        "limit": "Limit: {limit}{unit}",
        "no_limit": "Limit: unknown",
        "caveat": "A forecast from what the stations upstream have seen, not a measurement; it is sent again when"
        " it moves by more than the configured amount.",
        "incident": "Incident: {id} on the {river}",
        "id": "Forecast: {id}",
        "table": "Forecast (issued {at}):",
        "where": "{station} (km {km}{intake})",
        "intake": ", water intake",
        "row_over": "over the limit {start} to {end}",
        "row_below": "below its limit",
        "row": "  {where}: front {front}, peak {peak}{unit} ({low}-{high}) {peak_at}, {over}",
    },
    "zh": {
        "line": "{station} {parameter} 约 {start} 起超标，峰值 {peak}{unit}（{low}–{high}），{peak_at}",
        "ratio": "，为限值的 {ratio} 倍",
        "hours": "，持续约 {hours} 小时",
        "no_hours": "，持续时间未知",
        "withdrawn_title": "预报撤销：{station} {parameter} 预计不再超标",
        "withdrawn": "依据 {at} 前的监测值，此前的超标预报不再成立。",
        "issued_head": "预报：",
        "updated_head": "预报更新：",
        "issued": "预报发布时间（依据该时刻前的监测值）：{at}",
        "front": "污染团前锋预计到达：{at}",
        "over": "预计超标：{start} 至 {end}",
        "peak": "预计峰值：{peak}{unit}，{at}，区间 {low}–{high}{unit}",
        "limit": "限值：{limit}{unit}",
        "no_limit": "限值：未知",
        "caveat": "这是依据上游已观测数据的预报，不是实测值；预报变化超过设定幅度时更新。",
        "incident": "事件：{id}（{river}）",
        "id": "预报编号：{id}",
        "table": "预报（{at} 发布）：",
        "where": "{station}（{km} 公里处{intake}）",
        "intake": "，取水口",
        "row_over": "超标 {start} 至 {end}",
        "row_below": "预计不超标",
        "row": "  {where}：前锋 {front}，峰值 {peak}{unit}（{low}–{high}）{peak_at}，{over}",
    },
}
