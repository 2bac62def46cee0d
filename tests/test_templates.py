"""The "what to do" lines of a route and the severity labels, from the config: what a message ends with, and
the start-up error (file, table and key) for a template or a label that cannot work."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from monitor.alerts.evaluator import AlertBook, AlertEvent
from monitor.config import ConfigError, load_config
from monitor.config.messages import RouteMessages
from monitor.domain.reading import Reading
from monitor.notify.render import parse_offset, render
from monitor.notify.templates import what_to_do
from monitor.notify.terms import Terms
from monitor.rules import Rules
from monitor.thresholds import ThresholdSet

T0 = 1_326_585_600 * 10**9
HOUR = 3600 * 10**9
CST = parse_offset("+08:00")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "riverwatch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def events(thresholds: ThresholdSet, *values: float) -> list[AlertEvent]:
    policy = dataclasses.replace(thresholds.alerts, confirm=1, clear_readings=1, clear_hold_ns=0)
    th = dataclasses.replace(thresholds, alerts=policy)
    a = th.alerts
    book = AlertBook(a.tiers, clear_hold_ns=a.clear_hold_ns, confirm=a.confirm, clear_readings=a.clear_readings)
    out: list[AlertEvent] = []
    for check in Rules(th, "III").evaluate([Reading("sancha", "cd", T0 + i * HOUR, v) for i, v in enumerate(values)]):
        out += book.update(check)
    return out


CONFIG = """\
[notify]
language = "zh"
console_url = "https://rw.example.cn/console"
duty_phone = "0772-2800000"

[notify.templates]
call = "请致电值班室 {{ duty_phone }}：{{ station }} {{ parameter }} {{ ratio }} 倍（{{ severity }}）"
both = { en = "Call {{ duty_phone }}", zh = "致电 {{ duty_phone }}" }

[[notify.route]]
url = "json://a.example/x"

[[notify.route]]
url = "json://b.example/x"
template = "call"
duty_phone = "0772-2811111"

[[notify.route]]
url = "json://c.example/x"
what_to_do = "{% if state_id == 'resolved' %}解除后请复核{% endif %}"

[[notify.route]]
url = "json://d.example/x"
template = ""
"""


def test_each_route_ends_with_its_own_lines(tmp_path: Path, thresholds: ThresholdSet) -> None:
    cfg = load_config(write(tmp_path, CONFIG)).notify
    fired, resolved = events(thresholds, 0.02, 0.001)
    st = thresholds.stations
    a, b, c, d = (r.messages for r in cfg.routes)
    m = cfg.messages
    assert what_to_do(m, a, fired, None, st, "zh") == [
        "确认：riverwatch ack sancha/cd/20120115T0000Z --by 姓名",
        "值班平台：https://rw.example.cn/console",
        "值班电话：0772-2800000",
    ]
    assert what_to_do(m, a, resolved, None, st, "zh") == [
        "值班平台：https://rw.example.cn/console",
        "值班电话：0772-2800000",
    ]  # nothing to acknowledge once resolved
    assert (
        what_to_do(m, a, fired, None, st, "en")[0] == "Acknowledge: riverwatch ack sancha/cd/20120115T0000Z --by <name>"
    )
    assert what_to_do(m, b, fired, None, st, "zh") == [
        "请致电值班室 0772-2811111：三岔 镉 4 倍（蓝色预警（Ⅳ级，一般））"
    ]
    assert what_to_do(m, c, fired, None, st, "zh") == []
    assert what_to_do(m, c, resolved, None, st, "zh") == ["解除后请复核"]
    assert what_to_do(m, d, fired, None, st, "zh") == []
    both = dataclasses.replace(b, template="both")
    assert what_to_do(m, both, fired, None, st, "en") == ["Call 0772-2811111"]
    assert what_to_do(m, both, fired, None, st, "zh") == ["致电 0772-2811111"]


def test_without_a_config_a_firing_alert_says_how_to_acknowledge(thresholds: ThresholdSet) -> None:
    cfg = load_config(None).notify
    (fired,) = events(thresholds, 0.02)
    lines = what_to_do(cfg.messages, RouteMessages(), fired, None, thresholds.stations, "en")
    assert lines == ["Acknowledge: riverwatch ack sancha/cd/20120115T0000Z --by <name>"]


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        ('[notify.templates]\nx = "{{ station "', "[notify.templates].x: template error (line 1)"),
        ('[notify.templates]\nx = "{{ stationn }}"', '[notify.templates].x: unknown variable "stationn"'),
        ('[notify.templates]\nx = "{% for %}"', "[notify.templates].x: template error"),
        ('[notify.templates]\nx = { fr = "a" }', '[notify.templates].x: unknown language "fr"'),
        ("[notify.templates]\nx = 3", "[notify.templates].x: expected a template string"),
        ('[notify]\ntemplate = "nope"', '[notify].template: no template "nope"'),
        ('[[notify.route]]\nurl = "json://x/y"\ntemplate = "nope"', '[notify.route[0]].template: no template "nope"'),
        (
            '[[notify.route]]\nurl = "json://x/y"\nwhat_to_do = "{{ nope }}"',
            '[notify.route[0]].what_to_do: unknown variable "nope"',
        ),
        (
            '[[notify.route]]\nurl = "json://x/y"\ntemplate = "ack"\nwhat_to_do = "x"',
            "[notify.route[0]].what_to_do: set either template",
        ),
        ('[notify]\nseverity_profile = "nato"', "[notify].severity_profile: must be one of standard, cn-emergency"),
        ('[notify.severity_labels.zh]\nsevere = "x"', "[notify.severity_labels.zh].severe: unknown key"),
        ('[notify.severity_labels.fr]\nwarning = "x"', "[notify.severity_labels].fr: unknown language"),
        ('[notify.severity_labels.zh]\nwarning = " "', "[notify.severity_labels.zh].warning: must not be empty"),
        ("[notify.severity_labels.zh]\nwarning = 1", "[notify.severity_labels.zh].warning: expected a string"),
    ],
)
def test_a_bad_template_or_label_stops_the_start_with_its_key(tmp_path: Path, snippet: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, snippet))
    assert str(e.value).startswith(f"{tmp_path / 'riverwatch.toml'}: {error}"), str(e.value)


def test_the_severity_profile_and_own_labels(tmp_path: Path, thresholds: ThresholdSet) -> None:
    fired, escalated = events(thresholds, 0.006, 0.15)
    cfg = load_config(
        write(
            tmp_path,
            """\
            [notify]
            severity_profile = "cn-emergency"
            [notify.severity_labels.zh]
            critical = "红色预警（Ⅰ级，特别重大）"
            """,
        )
    ).notify
    terms = Terms(messages=cfg.messages)
    assert render(escalated, "zh", thresholds.stations, CST, terms=terms).title.startswith(
        "[红色预警（Ⅰ级，特别重大）]"
    )
    assert render(fired, "zh", thresholds.stations, CST, terms=terms).title.startswith("[蓝色预警（Ⅳ级，一般）]")
    assert render(fired, "en", thresholds.stations, CST, terms=terms).title.startswith("[BLUE ALERT (LEVEL IV)] FIRING")
    plain = Terms(messages=load_config(write(tmp_path, '[notify]\nseverity_profile = "standard"\n')).notify.messages)
    assert render(escalated, "zh", thresholds.stations, CST, terms=plain).title.startswith("[严重] 升级：")
    assert render(escalated, "en", thresholds.stations, CST, terms=plain).title.startswith("[CRITICAL] ESCALATED")
