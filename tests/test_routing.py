"""Routing: who gets which alert, from route filters or from an apprise config file's tags."""

from __future__ import annotations

from pathlib import Path

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.incidents import Incidents
from monitor.config import NotifyConfig, RouteConfig
from monitor.notify.routes import event_tags, make_targets
from monitor.thresholds import load, shipped_path

THRESHOLDS = load([shipped_path(), shipped_path("longjiang-stations.toml")])
STATIONS = THRESHOLDS.stations
T0 = 1326585600 * 10**9


def event(station: str, severity: str) -> AlertEvent:
    limit = THRESHOLDS.limit(station, "cd", "III")
    assert limit is not None
    return AlertEvent(f"{station}/cd/x", "firing", station, "cd", T0, 0.05, 10.0, severity, limit, T0, 0.05, 10.0)


def test_route_filters_combine_with_and(tmp_path: Path) -> None:
    cfg = NotifyConfig(
        urls=(),
        routes=(
            RouteConfig("json://a/x", rivers=("Longjiang",), min_severity="serious"),
            RouteConfig("json://b/x", stations=("yemao",)),
            RouteConfig("json://c/x", intakes=True),
        ),
    )
    a, b, c = make_targets(cfg)
    warn, serious = event("lalang", "warning"), event("lalang", "serious")
    incident = Incidents(STATIONS).on_event(serious)
    assert (a.wants(warn, STATIONS, incident), a.wants(serious, STATIONS, incident)) == (False, True)
    assert (b.wants(serious, STATIONS, incident), b.wants(event("yemao", "warning"), STATIONS, None)) == (False, True)
    assert c.wants(serious, STATIONS, incident)  # the front at Lalang is upstream of the Liuzhou intake
    assert not c.wants(serious, STATIONS, None)  # no incident known: Lalang itself is no intake
    assert c.wants(event("liuzhou-hexi", "warning"), STATIONS, None)


def test_apprise_config_tags_route(tmp_path: Path) -> None:
    yml = tmp_path / "apprise.yml"
    yml.write_text(
        "urls:\n"
        "  - json://county.example/a:\n      tag: river:longjiang\n"
        "  - json://province.example/a:\n      tag: min:serious\n"
        "  - json://company.example/a:\n      tag: intake\n"
        "  - json://everyone.example/a\n"
    )
    targets = {t.url.split("/")[2]: t for t in make_targets(NotifyConfig(urls=(), apprise_config=yml))}
    assert set(targets) == {"county.example", "province.example", "company.example", "everyone.example"}
    warn = event("lalang", "warning")
    critical = event("lalang", "critical")
    assert "min:serious" in event_tags(critical, STATIONS, None)
    assert "min:serious" not in event_tags(warn, STATIONS, None)
    assert targets["county.example"].wants(warn, STATIONS, None)
    assert not targets["province.example"].wants(warn, STATIONS, None)
    assert targets["province.example"].wants(critical, STATIONS, None)
    assert not targets["company.example"].wants(warn, STATIONS, None)
    assert targets["everyone.example"].wants(warn, STATIONS, None)


def test_the_same_url_twice_is_one_target() -> None:
    cfg = NotifyConfig(urls=("json://a/x",), routes=(RouteConfig("json://a/x", stations=("yemao",)),))
    assert len(make_targets(cfg)) == 1
