"""`riverwatch alerts | silence | ack`: the alert ledger in data_dir, also while the service runs.

They take no secret (an operator who lists alerts need not hold the robot tokens) and create nothing that is
not there: without a ledger they say where they looked, instead of printing an empty table and leaving a
`./riverwatch-data` behind. A silence names what the service will match: its station as the threshold files
spell it, its parameter as a catalogue id (`cadmium` is silenced as `cd`), so a typo is an error, not a
silence that silences nothing.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

from monitor.alerts.ledger import Ledger, LedgerError
from monitor.config import Config, ConfigError, load_config
from monitor.thresholds import ThresholdError, ThresholdSet, load_or_shipped, parse_duration

_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


class UsageError(ValueError):
    """A wrong argument: exit 2 with one line naming it."""


def ledger_command(args: argparse.Namespace) -> int:
    """alerts / silence / ack; exit 0, 1 (no ledger there) or 2 (bad usage or config)."""
    try:
        cfg = load_config(args.config, secrets=())
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    path = cfg.service.data_dir / "alerts.sqlite"
    adding = args.command == "silence" and args.silence_command == "add"
    # A silence added to a configured data_dir before the service first ran is kept for it; anything else
    # without a ledger is a wrong data_dir (the service writes one at its first start).
    if not path.exists() and not (adding and args.config is not None):
        print(
            f"riverwatch: no alert ledger at {path}: "
            + ("pass --config with the service's config" if args.config is None else "has the service run yet?"),
            file=sys.stderr,
        )
        return 1
    try:
        if adding:
            silence = _silence_args(args, cfg)
        ledger = Ledger(path)
    except (UsageError, ThresholdError) as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "alerts":
            _list_alerts(ledger, args)
        elif args.command == "ack":
            a = ledger.ack(args.alert_id, args.by)
            print(
                f"acknowledged {a.alert_id} ({a.state}, {a.severity}) by {args.by}: repeats stop, escalations "
                "still notify"
            )
        elif adding:
            station, parameter, until_ns = silence
            sid = ledger.add_silence(station, parameter, until_ns, args.reason, args.by)
            print(f"silence {sid}: {station}/{parameter or '*'} until {_utc(until_ns)} UTC ({args.reason})")
        elif args.silence_command == "list":
            for s in ledger.silences(include_expired=args.all):
                state = "expired" if s.expired_ns else "active"
                print(
                    f"{s.id:>4} {s.station}/{s.parameter or '*'} {_utc(s.starts_ns)} .. {_utc(s.until_ns)} "
                    f"{state} by {s.created_by}: {s.reason}"
                )
        else:
            ledger.expire_silence(args.id, args.by)
            print(f"silence {args.id} expired")
    except (LedgerError, UsageError) as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    return 0


def parse_offset_time(text: str, flag: str) -> int:
    """A time with its offset: a bare local time is too easy to get wrong in a silence."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not an ISO 8601 time: e.g. {_example()}"
            + (" (or --duration 6h)" if flag == "--until" else "")
        ) from None
    if dt.tzinfo is None or not _OFFSET.search(text.strip()):
        local = dt.replace(tzinfo=None).isoformat(timespec="minutes")
        raise UsageError(f"{flag} {text!r} needs a UTC offset, e.g. {local}+08:00")
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _example() -> str:
    """Tomorrow 08:00 China Standard Time, written as the flag wants it."""
    cst = timezone(timedelta(hours=8))
    tomorrow = datetime.now(cst) + timedelta(days=1)
    return tomorrow.replace(hour=8, minute=0, second=0, microsecond=0).isoformat(timespec="minutes")


def _silence_args(args: argparse.Namespace, cfg: Config) -> tuple[str, str | None, int]:
    """(station, parameter id or None, until) as the service will match them; UsageError naming what is wrong."""
    until = silence_until(args.duration, args.until)
    ts = load_or_shipped(cfg.thresholds.files)[1]
    return silence_station(args.station, ts), silence_parameter(args.parameter, ts), until


def silence_until(duration: str | None, until: str | None) -> int:
    """The end of a silence from --duration (from now) or --until (an offset time); also the console's."""
    now = time.time_ns()
    if duration is not None:
        length = parse_duration(duration)
        if length is None or length <= 0:
            raise UsageError(f"--duration {duration!r} is not a duration such as 6h, 90min or 2d")
        return now + length
    end = parse_offset_time(until or "", "--until")
    if end <= now:
        raise UsageError(f"--until {until} is in the past")
    return end


def silence_station(name: str, ts: ThresholdSet) -> str:
    if not ts.stations or name in ts.stations:  # no station file: every station is admitted, none is known
        return name
    close = difflib.get_close_matches(name, list(ts.stations), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(ts.stations)} stations are declared)"
    raise UsageError(f"--station {name!r}: no such station in the threshold files{hint}")


def silence_parameter(name: str | None, ts: ThresholdSet) -> str | None:
    if name is None:
        return None
    pid = ts.catalogue.resolve(name) or next((p.id for p in ts.catalogue.values() if p.name_zh == name.strip()), None)
    if pid is None:
        names = {n.lower(): p.id for p in ts.catalogue.values() for n in (p.id, p.name, *p.aliases)}
        close = dict.fromkeys(names[n] for n in difflib.get_close_matches(name.lower(), list(names), n=3))
        hint = f"; did you mean {', '.join(close)}?" if close else " (an id such as cd, hg, nh3_n, or its name)"
        raise UsageError(f"--parameter {name!r}: unknown parameter{hint}")
    return pid


def _list_alerts(ledger: Ledger, args: argparse.Namespace) -> None:
    since = parse_offset_time(args.since, "--since") if args.since else None
    rows = ledger.alerts(active_only=args.active, since_ns=since)
    print(
        f"{'ALERT':<34} {'STATE':<11} {'CATEGORY':<8} {'SEVERITY':<9} {'STARTED (UTC)':<17} "
        f"{'UPDATED (UTC)':<17} {'PEAK':>10} {'RATIO':>7}  ACK"
    )
    for a in rows:
        print(
            f"{a.alert_id:<34} {a.state:<11} {a.category:<8} {a.severity:<9} {_utc(a.started_ns):<17} "
            f"{_utc(a.updated_ns):<17} {a.peak_value:>10.4g} {a.peak_ratio:>7.3g}  "
            f"{a.acked_by or ''}{' (flapping)' if a.flapping else ''}"
        )


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
