"""The `riverwatch` command's contract: exit codes and messages as interface.md gives them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def riverwatch(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_thresholds_check_passes_the_shipped_files() -> None:
    proc = riverwatch("thresholds", "check", "thresholds/gb3838-2002.toml", "thresholds/longjiang-stations.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_thresholds_check_reports_path_line_message_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[standard]\nid = "X"\nclasses = ["I", "II"]\n\n[items.cadmium]\nkind = "max"\nunit = "mg/L"\n'
        'limits = { I = 0.001, II = 0.005 }\nsource = "x"\n'
    )
    proc = riverwatch("thresholds", "check", str(bad))
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"{bad}:5: ")
    assert "cadmium" in proc.stdout and "cd" in proc.stdout


def test_bad_usage_exits_2() -> None:
    assert riverwatch("frobnicate").returncode == 2
    assert riverwatch("run", "--config").returncode == 2


def test_missing_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    proc = riverwatch("run", "--config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert f"{tmp_path / 'nope.toml'}: cannot read" in proc.stderr
