"""The Grafana dashboard (deploy/grafana/riverwatch-influxdb.json) against what the real service writes to real
InfluxDB 1.6.7: every InfluxQL query of it (panels, annotations, template variables), with the variables
filled in as Grafana fills them, runs and returns the series a duty officer expects to see."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.servers import InfluxDB1, Mosquitto, free_port
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "riverwatch-influxdb.json"
T0 = 1326585600  # 2012-01-15T00:00:00Z
HOUR = 3600


def reading(station: str, parameter: str, ts: float, value: float, flag: str = "") -> tuple[int, str, bytes]:
    payload: dict[str, Any] = {"unit": "mg/L", "ts": ts, "value": value}
    if flag:
        payload["flag"] = flag
    return int(ts * 1e9), f"river/{station}/{parameter}", json.dumps(payload).encode()


def queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every InfluxQL query of the dashboard, by where it is."""
    found = {f"variable {v['name']}": v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"}
    for a in dashboard["annotations"]["list"]:
        if "query" in a:
            found[f"annotation {a['name']}"] = a["query"]
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            found[f"panel {p['title']!r} {t['refId']}"] = t["query"]
    return found


def filled(q: str, variables: dict[str, list[str]], start_s: int, end_s: int, interval: str) -> str:
    """As Grafana sends it: a multi-value variable in a regex as (a|b), $timeFilter in ms, $__interval."""
    q = q.replace("$timeFilter", f"time >= {start_s * 1000}ms and time <= {end_s * 1000}ms")
    q = q.replace("$__interval", interval)
    for name, values in variables.items():
        escaped = [re.sub(r"([\\/.^$*+?()\[\]{}|-])", r"\\\1", v) for v in values]
        q = q.replace(f"${name}", escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})")
    assert not re.search(r"\$\w", q), q  # every variable filled ("$/" ends a regex)
    return q


@pytest.fixture
def written(tmp_path: Path, mosquitto: Mosquitto, influxdb1: InfluxDB1) -> Iterator[str]:
    """A database the real service wrote: cadmium at Lalang over its limit and back, Yemao compliant, one
    reading flagged suspect; returns its name once the readings and alert points are in."""
    database = f"grafana_{free_port()}"
    influxdb1.create_database(database)
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "grafana-{free_port()}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "{one_step(tmp_path)}"]

[influxdb]
api = "v1"
url = "{influxdb1.url}"
database = "{database}"
username = "{influxdb1.username}"
password_env = "RW_INFLUX_PASSWORD"
flush_interval_s = 0.2

[notify]
group_wait = 0
group_interval = 0
urls = ["json://127.0.0.1:{free_port()}/nobody-listens"]
""",
        env={"RW_INFLUX_PASSWORD": str(influxdb1.password)},
    )
    messages = [
        reading("lalang", "cd", T0, 0.03),  # 6x: firing
        reading("lalang", "cd", T0 + HOUR, 0.02),
        reading("lalang", "cd", T0 + 2 * HOUR, 0.001),  # resolved
        reading("yemao", "cd", T0, 0.002),
        reading("yemao", "cd", T0 + HOUR, 0.0021),
        reading("yemao", "cd", T0 + 2 * HOUR, 0.0019, flag="suspect"),
    ]
    try:
        svc.start()
        publish(messages, mosquitto.url)
        svc.wait(lambda: svc.metric("riverwatch_readings_written_total") >= len(messages), 30, "readings written")
        svc.wait(lambda: len(influxdb1.points('SELECT * FROM "alert"', database)) >= 2, 30, "alert points")
        yield database
    finally:
        svc.stop()


def test_every_dashboard_query_returns_the_expected_series(influxdb1: InfluxDB1, written: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["__inputs"][0]["pluginId"] == "influxdb"
    variables = {"station": ["lalang", "yemao"], "parameter": ["cd"]}
    results: dict[str, list[dict[str, Any]]] = {}
    for where, q in queries(dashboard).items():
        text = filled(q, variables, T0 - HOUR, T0 + 3 * HOUR, "1h")
        answer = influxdb1.query(text, db=written)  # raises on a statement InfluxDB refuses
        results[where] = [s for r in answer["results"] for s in r.get("series", [])]
    assert len(results) == 8, sorted(results)

    def values(series: list[dict[str, Any]], column: str) -> list[Any]:
        return [row[s["columns"].index(column)] for s in series for row in s["values"]]

    stations = values(results["variable station"], "value")
    assert {"lalang", "yemao"} <= set(stations)
    assert "cd" in values(results["variable parameter"], "value")

    readings = results["panel '$parameter: readings and class limit' A"]
    by_station = {s["tags"]["station"]: [v for _, v in s["values"]] for s in readings}
    assert by_station == {"lalang": [0.03, 0.02, 0.001], "yemao": [0.002, 0.0021, 0.0019]}
    limits = results["panel '$parameter: readings and class limit' B"]
    assert {s["tags"]["station"]: {v for _, v in s["values"]} for s in limits} == {"lalang": {0.005}}

    table = results["panel 'Alert transitions' A"]
    states = values(table, "state")
    assert "firing" in states and "resolved" in states, states
    assert set(values(table, "station")) == {"lalang"}
    assert all("Lalang" in m for m in values(table, "message"))

    per_station = results["panel 'Alerts raised per station' A"]
    assert {s["tags"]["station"]: s["values"][0][1] for s in per_station} == {"lalang": 1}

    screened = results["panel 'Readings set aside by the screens' A"]
    assert [s["tags"]["reason"] for s in screened] == ["suspect (flag)"]

    notes = results["annotation riverwatch alerts"]
    columns = notes[0]["columns"]
    for name in ("message", "station", "parameter", "severity", "state"):
        assert name in columns, columns
    annotation = next(a for a in dashboard["annotations"]["list"] if "query" in a)
    assert annotation["textColumn"] in columns
    assert set(annotation["tagsColumn"].split(",")) <= set(columns)
    assert len(notes[0]["values"]) >= 2  # the firing and the resolve
