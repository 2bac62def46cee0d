"""The command line of `riverwatch backtest` and `riverwatch report`: arguments, times and secrets.

Times without an offset are read in --utc-offset (a bare date is midnight there); a password comes from an
environment variable or a file, never from the command line, where `ps` would show it.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.offline.backtest import run_backtest
from monitor.offline.errors import UsageError
from monitor.offline.replay import DEFAULT_BATCH
from monitor.offline.report import run_report
from monitor.offline.sources import Source
from monitor.offline.tables import tz_of
from monitor.thresholds import parse_duration


def parse_time(text: str, flag: str, tz: timezone) -> int:
    """ISO 8601 with an offset; a bare date or a time without offset is read in `tz` (--utc-offset)."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _secret(args: argparse.Namespace) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise UsageError(f"--password-env: environment variable {args.password_env} is not set")
        return value
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--password-file {args.password_file}: {e.strerror or e}") from None
    return ""


def _source_arguments(p: argparse.ArgumentParser, scenario: bool) -> None:
    if scenario:
        p.add_argument(
            "--scenario",
            help="a simulator scenario, run in-process with its ground truth (longjiang-2012, beijiang-2005, baseline)",
        )
        p.add_argument("--seed", type=int, help="scenario seed (default: the scenario's own, as simulate)")
        p.add_argument("--days", type=float, help="scenario length in days (default: the scenario's own)")
        p.add_argument("--csv", type=Path, help="replay CSV (ts,station,parameter,value,unit[,flag])")
        p.add_argument(
            "--ground-truth",
            type=Path,
            help="ground-truth JSON for --csv (riverwatch simulate --ground-truth FILE.json)",
        )
    p.add_argument("--store", type=Path, help="read the embedded store of this data_dir")
    p.add_argument("--influx", metavar="URL", help="read InfluxDB 1.x (InfluxQL /query) at URL")
    p.add_argument("--database", default="", help="InfluxDB 1.x database")
    p.add_argument("--retention-policy", default="", help="InfluxDB 1.x retention policy")
    p.add_argument("--username", default="", help="InfluxDB 1.x user")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the InfluxDB password")
    p.add_argument("--password-file", type=Path, help="file holding the InfluxDB password")
    p.add_argument("--victoria", metavar="URL", help="read VictoriaMetrics (/api/v1/export) at URL")
    p.add_argument("--since", help="start of the time range (ISO 8601; without offset: --utc-offset)")
    p.add_argument("--until", help="end of the time range, exclusive")
    p.add_argument(
        "--utc-offset", default=None, help="how times are shown and read, e.g. +08:00 (default: this machine's)"
    )
    p.add_argument("--out", type=Path, help="folder for the plots (one PNG per station)")
    p.add_argument("--html", type=Path, help="write one self-contained HTML report (tables and plots)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_commands(sub: Any) -> None:
    """Add `backtest` and `report` to the riverwatch command's subparsers; each sets args.handler."""
    bt = sub.add_parser(
        "backtest",
        help="run threshold variants over recorded or simulated data; "
        "false alarms, missed exceedances, detection latency, plots",
    )
    bt.add_argument(
        "--thresholds",
        action="append",
        nargs="+",
        type=Path,
        metavar="FILE",
        default=[],
        help="threshold files of one variant; repeat for each variant (the first is the baseline; "
        "default: the shipped GB 3838-2002 and Longjiang stations)",
    )
    bt.add_argument("--default-class", default="III")
    bt.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="TABLE.KEY=V1,V2",
        help="a grid of variants made from the first: e.g. rules[0].rise_per_hour=0.0001,0.0002 "
        "or screen.spike_window=6,12 (repeat for a grid)",
    )
    bt.add_argument(
        "--tolerance",
        default="6h",
        help="how far outside a true exceedance an alert still counts as right (default 6h)",
    )
    bt.add_argument("--alerts", type=Path, help="write every alert transition (CSV, or JSON for a .json name)")
    bt.add_argument(
        "--forecasts",
        type=Path,
        help="write every plume forecast issued (CSV) and score them against the ground truth",
    )
    bt.add_argument("--plots", action="store_true", help="write one PNG per station to --out")
    bt.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=argparse.SUPPRESS)
    _source_arguments(bt, scenario=True)
    bt.set_defaults(handler=backtest_command)

    rp = sub.add_parser(
        "report", help="after-action report of a time range of live data: plots, tables and the alerts that were sent"
    )
    rp.add_argument("--config", type=Path, help="the service's config (its database, data_dir and thresholds)")
    rp.add_argument("--data-dir", type=Path, help="the service's data_dir (embedded store and alert ledger)")
    rp.add_argument(
        "--thresholds",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="threshold files for the class bands (default: the config's)",
    )
    _source_arguments(rp, scenario=False)
    rp.set_defaults(handler=report_command)


def backtest_command(args: argparse.Namespace) -> int:
    try:
        tz = tz_of(args.utc_offset)
        tolerance = parse_duration(args.tolerance)
        if tolerance is None:
            raise UsageError(f"--tolerance {args.tolerance!r} is not a duration (e.g. 2h, 30min)")
        src = _source(args, tz)
    except (UsageError, ValueError) as e:
        print(f"riverwatch backtest: {e}", file=sys.stderr)
        return 2
    return run_backtest(
        args.thresholds,
        src,
        args.sweep,
        args.out,
        args.alerts,
        args.plots,
        args.html,
        not args.no_progress,
        default_class=args.default_class,
        tolerance_ns=tolerance,
        batch=args.batch,
        utc_offset=args.utc_offset,
        forecasts=args.forecasts,
    )


def _source(args: argparse.Namespace, tz: timezone) -> Source:
    return Source(
        scenario=getattr(args, "scenario", None),
        seed=getattr(args, "seed", None),
        days=getattr(args, "days", None),
        csv=getattr(args, "csv", None),
        ground_truth=getattr(args, "ground_truth", None),
        store=args.store,
        influx=args.influx,
        database=args.database,
        retention_policy=args.retention_policy,
        username=args.username,
        password=_secret(args),
        victoria=args.victoria,
        since_ns=parse_time(args.since, "--since", tz) if args.since else None,
        until_ns=parse_time(args.until, "--until", tz) if args.until else None,
    )


def report_command(args: argparse.Namespace) -> int:
    try:
        tz = tz_of(args.utc_offset)
        src = _source(args, tz)
    except (UsageError, ValueError) as e:
        print(f"riverwatch report: {e}", file=sys.stderr)
        return 2
    explicit = any(x is not None for x in (src.store, src.influx, src.victoria))
    return run_report(
        args.config,
        args.data_dir,
        src.since_ns,
        src.until_ns,
        args.out,
        args.html,
        thresholds=args.thresholds,
        source=src if explicit else None,
        progress=not args.no_progress,
        utc_offset=args.utc_offset,
    )
