"""What an operator's tooling expects (issue 17, part 3): JSON log lines for journald / Loki
(`[service] log_format = "json"`) from the real service, and bash completion made from the CLI's own parser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.servers import Mosquitto, free_port
from simulators.publish import publish
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent


def test_json_logs_are_one_object_per_line_from_start_to_alert(tmp_path: Path, mosquitto: Mosquitto) -> None:
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "json-logs-{free_port()}"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml"]

[notify]
group_wait = 0
urls = ["json://127.0.0.1:{free_port()}/nobody-listens"]
""",
    )
    text = svc.config.read_text().replace("[service]\n", '[service]\nlog_format = "json"\n')
    svc.config.write_text(text)
    reading = {"unit": "mg/L", "ts": 1326585600, "value": 0.03}
    try:
        svc.start()
        publish([(0, "river/lalang/cd", json.dumps(reading).encode())], mosquitto.url)
        svc.wait(lambda: "notify: " in svc.output(), 20, "a notification attempt")
        code, _ = svc.terminate()
    finally:
        svc.stop()
    assert code == 0
    lines = [line for line in svc.output().splitlines() if not line.startswith("--- start")]
    records = [json.loads(line) for line in lines]  # every line is JSON: a plain one fails here
    assert all(set(r) >= {"ts", "level", "logger", "message"} for r in records)
    assert any(r["logger"] == "riverwatch.service" and "starting" in r["message"] for r in records)
    alert = next(r for r in records if r["message"].startswith("alert lalang/cd/"))
    assert alert["level"] == "INFO" and alert["ts"].endswith("Z")
    assert any(r["level"] == "WARNING" and "retrying" in r["message"] for r in records)


def test_a_bad_log_format_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "riverwatch.toml"
    cfg.write_text('[service]\nlog_format = "yaml"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert f"{cfg}: [service].log_format:" in proc.stderr and '"text" or "json"' in proc.stderr, proc.stderr


def complete(line: str) -> list[str]:
    """What bash completes for `line` (a trailing space: a new word) with `riverwatch completion bash` sourced."""
    bash = shutil.which("bash")
    assert bash is not None
    script = subprocess.run(
        [sys.executable, "-m", "monitor", "completion", "bash"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    driver = (
        'source /dev/stdin; read -ra COMP_WORDS <<< "$LINE"; [[ "$LINE" == *" " ]] && COMP_WORDS+=("");'
        ' COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _riverwatch; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    proc = subprocess.run(
        [bash, "-c", driver], input=script, capture_output=True, text=True, timeout=30, env={"LINE": line}
    )
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("riverwatch thr", ["thresholds"]),
        ("riverwatch thresholds ", ["check", "show"]),
        ("riverwatch silence add --st", ["--station"]),
        ("riverwatch silence add --station lalang --du", ["--duration"]),
        ("riverwatch --log-level ", ["DEBUG", "INFO", "WARNING", "ERROR"]),
        ("riverwatch completion ", ["bash"]),
        ("riverwatch outbox ", ["list", "drop"]),
    ],
)
def test_bash_completion_knows_the_commands_options_and_choices(line: str, expected: list[str]) -> None:
    assert complete(line) == expected


def test_bash_completion_completes_file_names_for_a_config(tmp_path: Path) -> None:
    (tmp_path / "riverwatch.toml").write_text("")
    assert complete(f"riverwatch check --config {tmp_path}/riv") == [f"{tmp_path}/riverwatch.toml"]
