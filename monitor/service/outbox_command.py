"""`riverwatch outbox list | drop`: what the outbox still owes, and to whom.

A target removed from the config keeps its undelivered rows: no worker sends them and the service stops
counting them as backlog, but they are someone's missed notifications, so they are deleted only by a person,
named in the audit log. Works on data_dir while the service runs (SQLite WAL, one statement each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.alerts.ledger import Ledger
from monitor.config import ConfigError, load_config
from monitor.notify.outbox import Outbox
from monitor.notify.routes import make_targets, private_url


def outbox_command(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        targets = make_targets(cfg.notify)
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    path = cfg.service.data_dir / "outbox.sqlite"
    if not path.exists():
        print(f"riverwatch: no outbox at {path} (has the service run with this data_dir?)", file=sys.stderr)
        return 1
    configured = {t.id: private_url(t.url) for t in targets}
    outbox = Outbox(path, [t.url for t in targets])
    try:
        pending = outbox.orphans([])  # nothing known: every target's undelivered rows
        if args.outbox_command == "list":
            return _list(pending, configured)
        return _drop(outbox, args, pending, configured, cfg.service.data_dir)
    finally:
        outbox.close()


def _list(pending: dict[str, int], configured: dict[str, str]) -> int:
    print(f"{'TARGET':<16} {'PENDING':>7}  TARGET URL (or why it is not sent)")
    for target in sorted(set(pending) | set(configured)):
        where = configured.get(target, "ORPHAN: not in the config, never sent (riverwatch outbox drop TARGET)")
        print(f"{target:<16} {pending.get(target, 0):>7}  {where}")
    orphans = sum(n for t, n in pending.items() if t not in configured)
    print(f"{sum(pending.values())} undelivered, {orphans} of them for targets no longer configured")
    return 0


def _drop(
    outbox: Outbox, args: argparse.Namespace, pending: dict[str, int], configured: dict[str, str], data_dir: Path
) -> int:
    target = args.target
    if target in configured and not args.force:
        print(
            f"riverwatch: target {target} ({configured[target]}) is configured: its {pending.get(target, 0)} "
            "notification(s) will be sent; --force drops them anyway",
            file=sys.stderr,
        )
        return 2
    if not pending.get(target):
        known = ", ".join(sorted(pending)) or "none"
        print(f"riverwatch: no undelivered notifications for target {target} (targets with some: {known})")
        return 1
    n = outbox.drop(target)
    ledger = Ledger(data_dir / "alerts.sqlite")
    try:
        state = "configured, --force" if target in configured else "no longer configured"
        ledger.note(args.by, "outbox_drop", target, f"{n} undelivered notification(s) deleted ({state})")
    finally:
        ledger.close()
    print(f"dropped {n} undelivered notification(s) of target {target}; they will not be sent")
    return 0
