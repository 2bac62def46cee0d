"""`riverwatch backtest --forecasts`: every forecast issued, as CSV, scored against the ground truth."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.offline.forecast_scoring import COLUMNS
from monitor.offline.sources import Source, load_source


def test_backtest_writes_the_forecasts_and_warns_each_station_a_day_ahead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "forecasts.csv"
    assert main(["backtest", "--scenario", "beijiang-2005", "--forecasts", str(path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"forecasts written to {path}" in printed
    assert "forecasts of cd against the ground truth" in printed
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows and tuple(rows[0]) == COLUMNS
    truth = load_source(Source(scenario="beijiang-2005")).truth or []
    crossed = {e.station: e.start_ns for e in truth if e.parameter == "cd" and e.klass in ("II", "III")}
    stations = {r["station"] for r in rows}
    assert {"wushi", "baishiyao", "yingde"} <= stations
    for station in stations & set(crossed):
        warned = [
            datetime.fromisoformat(r["issued_at"]).timestamp()
            for r in rows
            if r["station"] == station and r["exceeds"] == "true"
        ]
        assert warned, station
        assert crossed[station] / 1e9 - min(warned) >= 24 * 3600, station  # a day ahead of its crossing
    for r in rows:
        low, value, high = float(r["peak_low"]), float(r["peak_value"]), float(r["peak_high"])
        assert low <= value <= high
        assert (r["exceed_from"] != "") == (r["exceeds"] == "true")
