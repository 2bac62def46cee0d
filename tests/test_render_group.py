"""The wording of a grouped message: it leads with what changed (station, how far over, the front, the next
station and when), then the incident's stations as they stand; in English and in Chinese."""

from __future__ import annotations

import dataclasses

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Hit, Incident
from monitor.domain.reading import Reading
from monitor.notify.render import parse_offset
from monitor.notify.render_group import change_line, group_context, group_message
from monitor.thresholds import ThresholdSet
from tests.test_terms import events_for, latin

T0 = 1_326_585_600 * 10**9  # 2012-01-15 08:00 +08:00
HOUR = 3600 * 10**9
DAY = 24 * HOUR
CST = parse_offset("+08:00")


def sancha(thresholds: ThresholdSet) -> tuple[Incident, AlertEvent, AlertEvent]:
    """Lalang on day 0 and Yemao on day 2 (25 km: 12.5 km/day), Sancha at 3.1x on day 4."""
    (e,) = events_for(thresholds, [Reading("sancha", "cd", T0 + 4 * DAY, 0.0155)])
    inc = Incident("longjiang/cd/20120115", "Longjiang", "cd", T0)
    inc.hits = [Hit("lalang", 0.0, T0), Hit("yemao", 25.0, T0 + 2 * DAY)]
    inc.open_alerts = {"yemao/cd/20120117T0000Z", e.alert_id}
    inc.hits.append(Hit("sancha", 80.0, T0 + 4 * DAY))
    resolved = dataclasses.replace(e, state="resolved", station="lalang", alert_id="lalang/cd/20120115T0000Z")
    return inc, e, resolved


def test_a_change_line_leads_with_what_changed(thresholds: ThresholdSet) -> None:
    inc, e, resolved = sancha(thresholds)
    st = thresholds.stations
    # Sancha (km 80) to Nuomitan (km 100) at the front's 27.5 km/day (Yemao to Sancha, 55 km in 2 days).
    en = change_line(e, inc, st, "en", CST)
    assert en.startswith(
        "Sancha now over the limit, 3.1x (warning); front 27.5 km/day; next: Nuomitan hydropower station about "
    )
    zh = change_line(e, inc, st, "zh", CST)
    head = "三岔 超标，为限值的 3.1 倍，蓝色预警（Ⅳ级，一般）；前锋 27.5 公里/天；下一站：糯米滩水电站 约 "
    assert zh.startswith(head)
    assert zh.endswith("1月20日 01:27") and en.endswith("20 Jan 01:27")  # 20 km at 27.5 km/day after 08:00
    assert change_line(resolved, inc, st, "en", CST) == "Lalang hydropower station back under the limit"
    assert change_line(resolved, inc, st, "zh", CST) == "拉浪水电站 恢复达标"
    # Outside an incident the group may mix parameters: each line names its own.
    assert change_line(e, None, st, "zh", CST) == "三岔 镉 超标，为限值的 3.1 倍，蓝色预警（Ⅳ级，一般）"


def test_the_context_is_the_incidents_table(thresholds: ThresholdSet) -> None:
    inc, e, _ = sancha(thresholds)
    st = thresholds.stations
    zh = group_context(inc, st, "zh", CST, event=e).splitlines()
    assert zh[0] == "事件 longjiang/cd/20120115：镉，已超标站点 3 个"
    assert zh[1] == "  拉浪水电站（龙江 0 公里处）：已恢复达标，自 1月15日 08:00"
    assert zh[2] == "  叶茂水电站（龙江 25 公里处）：超标中，自 1月17日 08:00"
    assert zh[3] == "  三岔（龙江 80 公里处）：超标中，0.0155 mg/L，3.1 倍，自 1月19日 08:00"
    assert zh[4].startswith("  糯米滩水电站（龙江 100 公里处）：前锋预计约 1月20日 01:27")
    en = group_context(inc, st, "en", CST, event=e).splitlines()
    assert en[3] == "  Sancha (Longjiang river km 80): over the limit, 0.0155 mg/L, 3.1x, since 19 Jan 08:00"
    assert group_context(None, st, "en", CST) == ""


def test_a_grouped_message_is_the_changes_then_the_table(thresholds: ThresholdSet) -> None:
    inc, e, resolved = sancha(thresholds)
    st = thresholds.stations
    changes = [change_line(x, inc, st, "zh", CST) for x in (resolved, e)]
    title, body = group_message(changes, group_context(inc, st, "zh", CST, event=e), "zh")
    assert title == changes[-1] + "（另有 1 条）"
    assert body.split("\n\n")[0] == "\n".join(changes) and "事件 longjiang/cd/20120115" in body.split("\n\n")[1]
    assert not latin(title) and not latin(body)
    title_en, _ = group_message([change_line(x, inc, st, "en", CST) for x in (resolved, e)], "", "en")
    assert title_en.endswith(" (+1 more)") and title_en.startswith("Sancha now over the limit")
    assert group_message(["one"], "", "en") == ("one", "one")
    assert group_message(["a", "b", "a"], "", "en") == ("a (+1 more)", "b\na")  # a line said again: once, newest
