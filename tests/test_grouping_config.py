"""Grouping, repeat and inhibition keys: defaults, a route's own values over [notify]'s, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.notify.message import Timing
from monitor.notify.routes import make_targets, shortest_repeat_s


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "riverwatch.toml"
    path.write_text(text)
    return path


def test_defaults_group_a_burst_but_keep_the_first_alert_within_seconds() -> None:
    cfg = load_config(None).notify
    assert (cfg.group_wait_s, cfg.group_interval_s) == (10.0, 120.0)
    assert cfg.inhibit.sensor_mutes_unconfirmed and cfg.inhibit.sensor_marks_water
    assert not cfg.inhibit.upstream_mutes_unconfirmed
    (target,) = make_targets(cfg)
    assert target.timing == Timing(10.0, 120.0) and target.repeat_interval_s == 4 * 3600.0


def test_a_route_sets_its_own_times_and_others_take_notify_s(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[notify]
group_wait = "5s"
group_interval = "3min"
repeat_interval_s = 7200

[notify.inhibit]
upstream_mutes_unconfirmed = true

[[notify.route]]
url = "json://bureau/x"
group_wait = 0
group_interval = "30s"
repeat_interval = "30min"

[[notify.route]]
url = "json://operator/x"
""",
        )
    ).notify
    bureau, operator = make_targets(cfg)
    assert bureau.timing == Timing(0.0, 30.0) and bureau.repeat_interval_s == 1800.0
    assert operator.timing == Timing(5.0, 180.0) and operator.repeat_interval_s == 7200.0
    assert cfg.inhibit.upstream_mutes_unconfirmed
    assert shortest_repeat_s(cfg) == 1800.0  # repeats are looked for this often; each target keeps its own


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[notify]\ngroup_wait = "soon"\n', '[notify].group_wait: expected a duration such as "48h"'),
        ("[notify]\ngroup_interval = true\n", "[notify].group_interval: expected"),
        (
            '[[notify.route]]\nurl = "json://x/y"\ngroup_wait = "ten"\n',
            '[notify.route[0]].group_wait: expected a duration such as "48h"',
        ),
        (
            '[[notify.route]]\nurl = "json://x/y"\nrepeat_interval = "0s"\n',
            "[notify.route[0]].repeat_interval: must be",
        ),
        ("[notify.inhibit]\nsensor_mutes = true\n", "[notify.inhibit].sensor_mutes: unknown key"),
        ('[notify.inhibit]\nsensor_marks_water = "yes"\n', "[notify.inhibit].sensor_marks_water: expected"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, snippet: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, snippet))
    assert message in str(e.value)
