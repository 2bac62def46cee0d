"""`riverwatch check --config FILE`: what `riverwatch run` would refuse at start, found offline.

For an `ExecStartPre` or a deploy script: the config (every key, its secrets from the same environment or
files the service reads), every notification URL and apprise config entry (apprise's own parser, no
message sent), and the threshold files with one `path:line:` per problem. Exit 0 when the service would
start, 2 (with file and key) when it would not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.config import ConfigError, load_config
from monitor.notify.routes import make_targets
from monitor.thresholds import ThresholdError, check, load_or_shipped


def check_config(path: Path) -> int:
    try:
        cfg = load_config(path)
        targets = make_targets(cfg.notify)
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    files = list(cfg.thresholds.files)
    problems = check(files) if files else []
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"riverwatch: {path}: [thresholds].files: {len(problems)} problem(s)", file=sys.stderr)
        return 2
    try:
        used, ts = load_or_shipped(cfg.thresholds.files)
    except ThresholdError as e:
        print(f"riverwatch: {path}: [thresholds].files:\n{e}", file=sys.stderr)
        return 2
    print(
        f"{path}: OK ({len(targets)} notification target(s); {len(used)} threshold file(s), "
        f"{len(ts.stations)} station(s))"
    )
    return 0
