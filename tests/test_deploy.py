"""The deployment files (issue 17, part 3): the systemd unit passes `systemd-analyze verify` with its commands
pointed at this checkout, its ExecStartPre is a real `riverwatch check --config` that passes on the example
config and stops a bad one with the exit status the unit does not restart on; the Containerfile copies files
that exist and runs as a non-root user."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "riverwatch.service"
CONTAINERFILE = REPO / "deploy" / "Containerfile"
INSTALLED = "/usr/local/bin/riverwatch"
CONFIG = "/etc/riverwatch/riverwatch.toml"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def here(command: str, config: Path) -> list[str]:
    """A unit command line as it would run from this checkout's venv on `config`."""
    argv = shlex.split(command)
    assert argv[0] == INSTALLED, argv
    return [str(Path(sys.executable).with_name("riverwatch")), *[str(config) if a == CONFIG else a for a in argv[1:]]]


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (Debian's systemd package)"
    riverwatch = Path(sys.executable).with_name("riverwatch")
    text = UNIT.read_text().replace(INSTALLED, str(riverwatch)).replace(CONFIG, str(REPO / "riverwatch.example.toml"))
    copy = tmp_path / "riverwatch.service"
    copy.write_text(text)
    proc = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    # verify exits 0 even for a directive it ignores; what it ignores it says on stderr, naming the file.
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if copy.name in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_exec_start_pre_is_the_config_check_and_a_bad_config_is_not_restarted(tmp_path: Path) -> None:
    service = unit()["Service"]
    pre, start = service["ExecStartPre"], service["ExecStart"]
    assert shlex.split(pre)[1:] == ["check", "--config", CONFIG]
    assert shlex.split(start)[1:] == ["run", "--config", CONFIG]  # checks the config it runs
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure" and service["User"] == "riverwatch"
    assert service["ProtectSystem"] == "strict"
    state = "/var/lib/riverwatch"
    assert service["StateDirectory"] == "riverwatch" and state in service["ReadWritePaths"].split()

    ok = subprocess.run(here(pre, REPO / "riverwatch.example.toml"), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    bad = tmp_path / "riverwatch.toml"
    bad.write_text('[notify]\nurls = ["alertmanager://am.example"]\n')
    refused = subprocess.run(here(pre, bad), capture_output=True, text=True, timeout=60)
    assert str(refused.returncode) in service["RestartPreventExitStatus"].split(), refused.stderr
    assert f"{bad}: [notify].urls[0]:" in refused.stderr, refused.stderr


def test_the_containerfile_is_slim_non_root_and_copies_what_exists() -> None:
    lines = [line.strip() for line in CONTAINERFILE.read_text().splitlines() if line.strip() and line[0] != "#"]
    assert lines[0] == "FROM python:3.11-slim"
    copied = [part for line in lines if line.startswith("COPY ") for part in line.split()[1:-1]]
    missing = [p for p in copied if not (REPO / p).exists()]
    assert copied and not missing, missing
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    entry = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert "riverwatch check --config" in entry and "exec riverwatch run --config" in entry
