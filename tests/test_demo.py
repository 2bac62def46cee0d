"""`riverwatch demo` as a new user runs it: one command, no servers, the Lalang cadmium alert, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_longjiang_incident_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FIRING: cadmium (cd) at Lalang hydropower station (lalang)" in out
    assert "0.005 mg/L (GB 3838-2002 Class III)" in out
    assert "+08:00" in out
    summary = out[out.index("=== riverwatch demo summary ===") :]
    assert "rejected 0" in summary
    assert "stations in alarm, in order: lalang, yemao, luodong, sancha, nuomitan" in summary
    assert "liuzhou-hexi" not in summary.split("stations in alarm")[1]  # Liuzhou's intake stayed compliant
    accepted = int(summary.split("readings accepted ")[1].split(",")[0])
    stored = int(summary.split("stored ")[1].split("\n")[0])
    assert accepted == stored > 5000
    assert list(tmp_path.iterdir()) == []  # zero-install: nothing left behind in the working directory


def test_demo_through_hj212_data_loggers_alerts_the_same_stations(tmp_path: Path) -> None:
    """`riverwatch demo --hj212`: the same incident sent by one HJ 212 data logger per station over TCP."""
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--hj212"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "6 HJ 212 data loggers" in out
    summary = out[out.index("=== riverwatch demo summary ===") :]
    assert "rejected 0" in summary
    assert "stations in alarm, in order: lalang, yemao, luodong, sancha, nuomitan" in summary
    sent = int(out.split("HJ 212 data loggers, ")[1].split(" readings")[0])
    accepted = int(summary.split("readings accepted ")[1].split(",")[0])
    stored = int(summary.split("stored ")[1].split("\n")[0])
    assert sent == accepted == stored > 5000  # every reading a logger sent, once
