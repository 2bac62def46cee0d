"""riverwatch.example.toml: it loads, its values are the defaults, and it documents every key the service reads.

The keys are not listed here: they are the ones monitor.config asks for while it loads the example (every
`_Section.get`, secrets' `_env` / `_file` forms included), and the sections are the fields of `Config`, so a
key added to monitor.config without its line in the example fails this test.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import types
import typing
from pathlib import Path

import pytest

from monitor import config
from monitor.config import (
    Config,
    DeadLetterConfig,
    HJ212Config,
    InfluxConfig,
    MqttConfig,
    NotifyConfig,
    ServiceConfig,
    ThresholdsConfig,
    load_config,
)
from monitor.config import section as config_section

EXAMPLE = Path(__file__).resolve().parent.parent / "riverwatch.example.toml"
# A route is commented out in the example (it would send somewhere): one is added so that its keys are read.
ROUTE = '\n[[notify.route]]\nurl = "json://127.0.0.1:9000/route"\n'

_HEADER = re.compile(r"^#?\s*\[\[?([a-z0-9_.]+)\]\]?\s*$")
_KEY = re.compile(r"^#?\s*([a-z][a-z0-9_]*)\s*=")


def keys_read(monkeypatch: pytest.MonkeyPatch, path: Path) -> set[tuple[str, str]]:
    """(section, key) for every key monitor.config looks up while loading `path`, present or not."""
    read: set[tuple[str, str]] = set()
    original = config_section.Section.get

    def spy(self: config_section.Section, key: str, kind: type | tuple[type, ...], default: typing.Any) -> typing.Any:
        read.add((re.sub(r"\[\d+\]$", "", self.name), key))
        return original(self, key, kind, default)

    with monkeypatch.context() as m:
        m.setattr(config_section.Section, "get", spy)
        load_config(path)
    return read


def documented(text: str) -> dict[tuple[str, str], bool]:
    """(section, key) for every key line, active or commented out, and whether one of its lines sits right
    under a comment that gives its default."""
    found: dict[tuple[str, str], bool] = {}
    section = ""
    prose: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if header := _HEADER.match(stripped):
            section = header.group(1)
            parent, _, table = section.rpartition(".")
            if parent:  # [[notify.route]] is the key "route" of [notify]
                found[parent, table] = found.get((parent, table), False) or _gives_default(prose)
            prose = []
        elif key := _KEY.match(stripped):
            name = (section, key.group(1))
            found[name] = found.get(name, False) or _gives_default(prose)
            prose = []
        elif stripped.startswith("#"):
            prose.append(stripped)
        else:
            prose = []
    return found


def _gives_default(comment: list[str]) -> bool:
    return any("default" in line.lower() for line in comment)


def sections() -> set[str]:
    """The tables of a config file: the fields of `Config` that hold a section's dataclass."""
    hints = typing.get_type_hints(Config)
    names = set()
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if any(dataclasses.is_dataclass(k) for k in kinds):
            names.add(f.name)
    return names


def test_example_loads_with_the_defaults(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="riverwatch.config"):
        cfg = load_config(EXAMPLE)
    assert caplog.records == []  # no inline secret
    here = EXAMPLE.parent
    assert cfg.mqtt == MqttConfig()  # the section is there: a real broker, not the embedded one
    assert cfg.influxdb == InfluxConfig(url="http://127.0.0.1:8086", bucket="water")
    assert cfg.thresholds == ThresholdsConfig()
    assert cfg.notify == NotifyConfig()
    assert cfg.service == ServiceConfig(data_dir=here / "riverwatch-data")
    assert cfg.dead_letter == DeadLetterConfig(file=here / "dead-letters.jsonl")
    assert cfg.hj212 == HJ212Config()


def test_example_documents_every_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    with_route = tmp_path / "riverwatch.toml"
    with_route.write_text(text + ROUTE, encoding="utf-8")
    known = keys_read(monkeypatch, with_route)
    assert {s for s, _ in known if "." not in s} == sections()
    assert {s for s, _ in known if "." in s} == {"notify.route", "notify.inhibit"}  # a section's own tables

    lines = documented(text)
    missing = sorted(k for k in known if k not in lines)
    assert missing == [], f"keys of monitor.config with no line in {EXAMPLE.name}"
    undocumented = sorted(k for k in known if not lines[k])
    assert undocumented == [], "keys without a comment above them that gives the default"
    unknown = sorted(k for k in lines if k not in known)
    assert unknown == [], "keys in the example that monitor.config does not read"

    # The check sees a key go: drop keepalive_s from the example and it is reported.
    without = "\n".join(line for line in text.splitlines() if not line.startswith("keepalive_s"))
    assert ("mqtt", "keepalive_s") in known - set(documented(without))


def test_hj212_errors_name_the_key(tmp_path: Path) -> None:
    cases = {
        'listen = "0.0.0.0:9212"': "[hj212].listen",
        "port = 70000": "[hj212].port",
        'versions = ["2017", "1999"]': "[hj212].versions",
        "max_frame_bytes = 10": "[hj212].max_frame_bytes",
        "max_frame_bytes = 10011": "[hj212].max_frame_bytes",
        "enabled = 1": "[hj212].enabled",
        "idle_seconds = 5": "[hj212].idle_seconds: unknown key",
    }
    for line, key in cases.items():
        path = tmp_path / "riverwatch.toml"
        path.write_text(f"[hj212]\n{line}\n", encoding="utf-8")
        with pytest.raises(config.ConfigError, match=re.escape(key)):
            load_config(path)
    path.write_text('[hj212]\nenabled = true\nlisten = "::"\nport = 0\nversions = ["2017", "2017"]\n', encoding="utf-8")
    cfg = load_config(path).hj212
    assert (cfg.enabled, cfg.listen, cfg.port, cfg.versions) == (True, "::", 0, ("2017",))
