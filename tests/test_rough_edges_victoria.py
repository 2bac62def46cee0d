"""Issue 17, rough edge 3: VictoriaMetrics keeps a string field only as zeros at the points that had it, so
`backtest --victoria` judged calibration readings (a check standard far over the limit) as river water and
counted alerts the same data read from the CSV did not. Read back now with the flag it is known to have had."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.servers import Victoria
from monitor.domain.reading import Reading
from monitor.store.lineprotocol import reading_line

CST = timezone(timedelta(hours=8))


def week(path: Path) -> list[Reading]:
    """Four-hourly cadmium at Lalang: background, a daily calibration (0.05 mg/L, 10x the limit, flagged) at
    08:00, and one real exceedance of 0.02 mg/L over a day."""
    t0 = datetime(2012, 1, 10, tzinfo=CST)
    rows, readings = ["ts,station,parameter,value,unit,flag"], []
    for i in range(7 * 6):
        t = t0 + timedelta(hours=4 * i)
        value, flag = (0.05, "calibration") if t.hour == 8 else (0.02 if 100 <= 4 * i <= 116 else 0.001, "")
        rows.append(f"{t.isoformat()},lalang,cd,{value},mg/L,{flag}")
        readings.append(Reading("lalang", "cd", int(t.timestamp()) * 10**9, value, flag or None))
    path.write_text("\n".join(rows) + "\n")
    return readings


def summary(*source: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "backtest", *source, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("water alerts  warning"))
    return lines[head + 1]


def test_backtest_from_victoriametrics_counts_what_the_csv_counts(tmp_path: Path, fresh_victoria: Victoria) -> None:
    csv = tmp_path / "week.csv"
    readings = week(csv)
    fresh_victoria.write_lines([reading_line(r) for r in readings])  # what the store writes
    fresh_victoria.force_flush()
    from_csv = summary("--csv", str(csv))
    assert from_csv.split()[:2] == ["1", "1"], from_csv  # one warning: the calibrations are not river water
    window = ("--since", "2012-01-09T00:00+08:00", "--until", "2012-01-17T00:00+08:00")
    assert summary("--victoria", fresh_victoria.url, *window) == from_csv
