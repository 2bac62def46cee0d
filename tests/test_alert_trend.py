"""The near-and-rising first step: a reading just under the limit, rising beyond the series' own noise."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts.evaluator import AlertBook
from monitor.alerts.trend import Trend, TrendSettings
from monitor.notify.render_short import unconfirmed_message
from monitor.rules import SeriesCheck
from monitor.thresholds import Limit, ThresholdError, load, show
from tests.thresholds_files import GB, write

H = 3_600_000_000_000
LIMIT = Limit("cd", "max", 0.005, None, "", "", "", "")


def check(values: list[float]) -> SeriesCheck:
    v = np.array(values)
    ts = np.arange(len(v), dtype=np.int64) * 2 * H
    return SeriesCheck("s", "cd", LIMIT, ts, v, v / 0.005, v > 0.005)


def test_a_rising_reading_just_under_the_limit_is_a_notice_and_the_next_over_confirms() -> None:
    rng = np.random.default_rng(1)
    flat = list(0.002 + 0.0001 * rng.standard_normal(20))
    rise = [0.0028, 0.0034, 0.0039, 0.0044, 0.0049, 0.0055]  # 0.0049: within 3 sigma (0.0001) under 0.005
    events = AlertBook().update(check(flat + rise))
    assert [e.state for e in events] == ["unconfirmed", "firing"]
    assert events[0].near and events[0].value < 0.005 and "rising toward the limit" in events[0].detail
    assert events[1].value > 0.005


def test_a_flat_series_near_the_limit_gives_no_notice_and_one_high_reading_does_not_confirm() -> None:
    rng = np.random.default_rng(2)
    flat = list(0.0046 + 0.0001 * rng.standard_normal(30))
    assert AlertBook().update(check(flat)) == []
    events = AlertBook().update(check([*flat, 0.0060, 0.0046]))
    assert [e.state for e in events] == ["unconfirmed", "withdrawn"]


def test_the_trend_keys_are_checked_with_their_line_and_shown(tmp_path: Path) -> None:
    bad = write(tmp_path, "[alerts]\nnear_band = -1\ntrend_readings = 2\n", "bad.toml")
    with pytest.raises(ThresholdError) as got:
        load([GB, bad])
    assert f"{bad}:2" in str(got.value) and "alerts.near_band" in str(got.value)
    assert f"{bad}:3" in str(got.value) and "alerts.trend_readings must be at least 3" in str(got.value)
    good = write(tmp_path, "[alerts]\nnear_band = 0\n", "good.toml")
    assert load([GB, good]).alerts.near_band == 0.0
    text = show([GB, good], "lalang")
    assert f"first step under the limit: off (near_band = 0)    {good}:2" in text
    assert "not calm within 2 noise sigmas under the limit" in show([GB], "lalang")


def test_the_near_notice_says_under_the_limit_in_english_and_chinese() -> None:
    rng = np.random.default_rng(1)
    flat = list(0.002 + 0.0001 * rng.standard_normal(20))
    (near, _) = AlertBook().update(check([*flat, 0.0028, 0.0034, 0.0039, 0.0044, 0.0049, 0.0055]))
    en = unconfirmed_message(near, "en", {}, UTC)
    zh = unconfirmed_message(near, "zh", {}, UTC)
    assert en.title.startswith("rising toward the limit: ") and "0.0049" in en.title and "(0.98x)" in en.title
    assert "under the limit" in en.body and "unconfirmed" not in en.title
    assert zh.title.startswith("接近限值并持续上升：") and "未超标" in zh.body


def test_a_two_reading_spike_from_a_quiet_level_does_not_confirm_but_a_third_reading_over_does() -> None:
    rng = np.random.default_rng(3)
    flat = list(0.001 + 0.00005 * rng.standard_normal(20))
    jumps = TrendSettings(sudden_band=8.0)  # off by default: [alerts] sudden_band = 8 turns it on
    spike = AlertBook(trend=Trend(jumps)).update(check([*flat, 0.012, 0.010, 0.001, 0.001]))
    assert [e.state for e in spike] == ["unconfirmed", "withdrawn"]
    held = AlertBook(trend=Trend(jumps)).update(check([*flat, 0.012, 0.010, 0.011]))
    assert [e.state for e in held] == ["unconfirmed", "firing"]
    default = AlertBook().update(check([*flat, 0.012, 0.010, 0.001, 0.001]))
    assert [e.state for e in default][:2] == ["unconfirmed", "firing"]  # two readings over confirm
