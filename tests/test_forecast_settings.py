"""`[forecast]` reaches the alerts layer whole: every configured key, under its own name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from monitor.alerts.forecast_notice import ForecastSettings, settings_from
from monitor.config import load_config


def test_every_forecast_key_of_the_config_reaches_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "riverwatch.toml"
    path.write_text('[forecast]\nhorizon = "36h"\nupdate_peak_ratio = 0.5\n', encoding="utf-8")
    cfg = load_config(path).forecast
    s = settings_from(cfg)
    assert s.horizon_ns == 36 * 3600 * 10**9 and s.update_peak_ratio == 0.5
    for f in fields(cfg):
        assert getattr(s, f.name) == getattr(cfg, f.name), f.name
    assert s.max_km_per_day == ForecastSettings().max_km_per_day  # not configurable: the default
