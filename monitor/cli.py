"""The `riverwatch` command. Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from monitor import __version__
from monitor.config import ConfigError, load_config
from monitor.journal import Journal, JournalError
from monitor.offline.commands import add_commands
from monitor.service.app import Service, make_writer
from monitor.service.check_command import check_config
from monitor.service.console_command import console_command
from monitor.service.demo import CONSOLE_SPEED, DEFAULT_SPEED, run_demo
from monitor.service.http import ListenError
from monitor.service.ledger_command import UsageError as BadArgument
from monitor.service.ledger_command import ledger_command, parse_offset_time
from monitor.service.logformat import use_json_logs
from monitor.service.outbox_command import outbox_command
from monitor.store.batches import RetryableError
from monitor.store.setaside import redrive
from monitor.thresholds import ThresholdError, check, load_or_shipped, show
from simulators.commands import replay, simulate

log = logging.getLogger("riverwatch")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="riverwatch", description="Watches rivers for pollution incidents.")
    p.add_argument("--version", action="version", version=f"riverwatch {__version__}")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the service: MQTT in, InfluxDB out, thresholds, notifications")
    run.add_argument("--config", type=Path, help="TOML config (default: embedded broker and store)")

    demo = sub.add_parser("demo", help="the Longjiang 2012 cadmium spill on an embedded broker and store")
    demo.add_argument("--speed", type=float, default=None, help="simulated seconds per real second (0: max)")
    demo.add_argument(
        "--hj212", action="store_true", help="through the HJ 212 path: one data logger per station over TCP"
    )
    demo.add_argument(
        "--console",
        metavar="HOST:PORT",
        nargs="?",
        const="127.0.0.1:8088",
        default="",
        help="serve the duty officer's console there (default 127.0.0.1:8088), at an hour per second, until Ctrl-C",
    )

    sim = sub.add_parser("simulate", help="publish a simulated scenario to a broker")
    sim.add_argument("--scenario", required=True)
    sim.add_argument("--mqtt", help="broker URL, e.g. mqtt://127.0.0.1:1883")
    _broker_credentials(sim)
    sim.add_argument("--speed", type=float, default=0.0, help="simulated seconds per real second (0: max)")
    sim.add_argument("--seed", type=int, default=None, help="same seed, same readings (default: the scenario's own)")
    sim.add_argument("--days", type=float, default=None, help="how many days to simulate (default: the scenario's)")
    sim.add_argument("--start", help="start time (ISO 8601; a bare date means midnight +08:00)")
    sim.add_argument("--out", type=Path, help="also write the readings as replay CSV")
    sim.add_argument(
        "--ground-truth",
        type=Path,
        help="write when each true concentration crossed each limit (JSON, or CSV if the name ends in .csv)",
    )
    sim.add_argument("--root", default="river", help="topic root (default: river)")
    sim.add_argument("--hj212", metavar="HOST:PORT", help="send as HJ 212 data loggers (one per station) instead")
    sim.add_argument("--hj212-version", default="2017", help="HJ 212 version of the uploads: 2017 or 2025")
    sim.add_argument("--hj212-cn", default="2011", help="2011: real-time data (default); 2061: hourly data")
    sim.add_argument(
        "--hj212-stations",
        type=Path,
        action="append",
        default=[],
        help="station files with each logger's mn and pw_env/pw_file (default: the shipped ones); repeatable",
    )

    rep = sub.add_parser("replay", help="publish recorded readings (replay CSV) to a broker")
    rep.add_argument("file", type=Path)
    # No default broker: recorded or simulated readings sent to a live broker page the bureau (issue 17).
    rep.add_argument(
        "--mqtt", "--broker", dest="mqtt", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883 (no default)"
    )
    _broker_credentials(rep)
    rep.add_argument("--speed", type=float, default=0.0, help="simulated seconds per real second (0: max)")
    rep.add_argument("--root", default="river", help="topic root (default: river)")

    al = sub.add_parser("alerts", help="list alerts with state, times, peak value and ratio")
    al.add_argument("--config", type=Path)
    al.add_argument("--active", action="store_true", help="only alerts not yet resolved")
    al.add_argument("--since", help="only alerts updated since this time (ISO 8601 with offset)")

    si = sub.add_parser("silence", help="silence notifications for a station (planned maintenance)")
    si_sub = si.add_subparsers(dest="silence_command", required=True, metavar="SUBCOMMAND")
    si_add = si_sub.add_parser("add", help="add a silence")
    si_add.add_argument("--config", type=Path)
    si_add.add_argument("--station", required=True, help="a station id of the threshold files")
    si_add.add_argument("--parameter", help="a parameter id, name or alias (cadmium, cd, 镉); default: all")
    when = si_add.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", help="ISO 8601 time with offset, e.g. 2026-12-09T08:00+08:00")
    when.add_argument("--duration", help="from now, e.g. 6h, 90min, 2d")
    si_add.add_argument("--reason", required=True)
    si_add.add_argument("--by", default=os.environ.get("USER", "operator"), help="who (for the audit log)")
    si_list = si_sub.add_parser("list", help="list active silences")
    si_list.add_argument("--config", type=Path)
    si_list.add_argument("--all", action="store_true", help="include expired ones")
    si_exp = si_sub.add_parser("expire", help="end a silence now")
    si_exp.add_argument("id", type=int)
    si_exp.add_argument("--config", type=Path)
    si_exp.add_argument("--by", default=os.environ.get("USER", "operator"))

    ack = sub.add_parser("ack", help="acknowledge an alert: stops repeats, not escalations")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who acknowledges (for the audit log)")
    ack.add_argument("--config", type=Path)

    co = sub.add_parser("console", help="the duty officer's web console ([console]): its users")
    co_sub = co.add_subparsers(dest="console_command", required=True, metavar="SUBCOMMAND")
    co_add = co_sub.add_parser("add-user", help="add a user (or set a user's password and role) in the users file")
    co_add.add_argument("name")
    co_add.add_argument("--role", default="read", help="read (sees everything) or duty (also acknowledges, silences)")
    co_add.add_argument("--users-file", type=Path, help="default: [console].users_file of --config")
    co_add.add_argument("--config", type=Path)
    co_add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")

    add_commands(sub)  # backtest and report

    st = sub.add_parser("store", help="the database side: readings the database refused")
    st_sub = st.add_subparsers(dest="store_command", required=True, metavar="SUBCOMMAND")
    rd = st_sub.add_parser(
        "redrive", help="send the set-aside readings (and alert points) to the database again, once the cause is fixed"
    )
    rd.add_argument("--config", type=Path)
    rd.add_argument("--since", help="only those set aside since this time (ISO 8601 with offset)")

    ob = sub.add_parser("outbox", help="notifications owed to each target, and those of targets no longer configured")
    ob_sub = ob.add_subparsers(dest="outbox_command", required=True, metavar="SUBCOMMAND")
    ob_list = ob_sub.add_parser("list", help="undelivered notifications per target; orphans (target not configured)")
    ob_list.add_argument("--config", type=Path)
    ob_drop = ob_sub.add_parser("drop", help="delete a target's undelivered notifications (they will not be sent)")
    ob_drop.add_argument("target", metavar="TARGET_ID", help="the id `outbox list` shows")
    ob_drop.add_argument("--force", action="store_true", help="also for a target still configured")
    ob_drop.add_argument("--by", default=os.environ.get("USER", "operator"), help="who (for the audit log)")
    ob_drop.add_argument("--config", type=Path)

    ck = sub.add_parser(
        "check", help="validate the config, its threshold files and every notification URL (offline); exit 2 if bad"
    )
    ck.add_argument("--config", type=Path, required=True, help="the service's TOML config")

    th = sub.add_parser("thresholds", help="threshold file tools")
    th_sub = th.add_subparsers(dest="thresholds_command", required=True, metavar="SUBCOMMAND")
    chk = th_sub.add_parser("check", help="validate threshold files; one path:line: message per problem")
    chk.add_argument("paths", nargs="+", type=Path)
    show = th_sub.add_parser("show", help="the effective limits and rules at a station, and where each comes from")
    show.add_argument("--station", required=True)
    show.add_argument("--config", type=Path, help="take the threshold files and default class from this config")
    show.add_argument("paths", nargs="*", type=Path, help="threshold files (default: the config's, or the shipped)")

    comp = sub.add_parser("completion", help="print a shell completion script: source <(riverwatch completion bash)")
    comp.add_argument("shell", choices=["bash"])
    return p


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script made from the parser itself, so a new command or option is completed at once:
    commands and subcommands, each one's options, the values of options with choices, file names elsewhere."""
    subs: dict[str, list[str]] = {}
    opts: dict[str, list[str]] = {}
    choices: dict[str, list[str]] = {}

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        opts[path] = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                subs[path] = list(action.choices)
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
                continue
            opts[path] += action.option_strings
            if action.option_strings and action.choices is not None:
                for o in action.option_strings:
                    choices[f"{path}|{o}"] = [str(c) for c in action.choices]
            elif not action.option_strings and action.choices is not None and not subs.get(path):
                choices[f"{path}|"] = [str(c) for c in action.choices]

    walk(parser, parser.prog)  # bash has no empty key: paths start with the program's name

    def table(name: str, d: dict[str, list[str]]) -> str:
        rows = "".join(f'\n  ["{k}"]="{" ".join(v)}"' for k, v in sorted(d.items()))
        return f"declare -gA {name}=({rows}\n)"

    return "\n".join(
        [
            "# bash completion for riverwatch: source <(riverwatch completion bash)",
            table("_riverwatch_subs", subs),
            table("_riverwatch_opts", opts),
            table("_riverwatch_choices", choices),
            _BASH_FUNCTION,
        ]
    )


_BASH_FUNCTION = r"""_riverwatch() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path=riverwatch i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    [[ " ${_riverwatch_subs[$path]} " == *" $w "* ]] && path="$path $w"
  done
  if [[ "$prev" == -* && -n "${_riverwatch_choices[$path|$prev]+x}" ]]; then
    COMPREPLY=($(compgen -W "${_riverwatch_choices[$path|$prev]}" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${_riverwatch_opts[$path]}" -- "$cur"))
  elif [[ -n "${_riverwatch_subs[$path]}" ]]; then
    COMPREPLY=($(compgen -W "${_riverwatch_subs[$path]}" -- "$cur"))
  elif [[ -n "${_riverwatch_choices[$path|]+x}" ]]; then
    COMPREPLY=($(compgen -W "${_riverwatch_choices[$path|]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o default -F _riverwatch riverwatch
"""


def _broker_credentials(p: argparse.ArgumentParser) -> None:
    p.add_argument("--username", help="broker user (or in the URL)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR", help="environment variable holding the broker password")
    secret.add_argument("--password-file", type=Path, help="file holding the broker password")


def _with_credentials(args: argparse.Namespace) -> str | None:
    """The broker URL with --username and the password from --password-env / --password-file put in, in this
    process only: a password on the command line (in the URL too) is visible in `ps` to every user."""
    url: str | None = args.mqtt
    if url is None or (args.username is None and args.password_env is None and args.password_file is None):
        return url
    password = None
    if args.password_env is not None:
        password = os.environ.get(args.password_env)
        if password is None:
            raise BadArgument(f"--password-env: environment variable {args.password_env} is not set")
    elif args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise BadArgument(f"--password-file {args.password_file}: {e.strerror or e}") from None
    parts = urlsplit(url)
    user = args.username if args.username is not None else unquote(parts.username or "")
    if not user:
        raise BadArgument("a broker password needs a user: --username NAME")
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    host = parts.hostname or ""
    netloc = f"{auth}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # apprise logs tokens at DEBUG and a line per send at INFO; its failures come at WARNING.
    logging.getLogger("apprise").setLevel(logging.WARNING)
    if args.command != "run":
        for noisy in ("amqtt", "transitions", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        match args.command:
            case "run":
                return _run(args.config)
            case "demo":
                if missing := _missing("amqtt", "demo", "riverwatch demo runs its own MQTT broker"):
                    return missing
                default = CONSOLE_SPEED if args.console else DEFAULT_SPEED
                speed = default if args.speed is None else args.speed
                return asyncio.run(run_demo(speed=speed, hj212=args.hj212, console=args.console))
            case "simulate":
                return _simulate(args)
            case "replay":
                return _replay(args)
            case "check":
                return check_config(args.config)
            case "completion":
                print(bash_completion(_parser()), end="")
                return 0
            case "thresholds" if args.thresholds_command == "check":
                return _thresholds_check(args.paths)
            case "thresholds":
                return _thresholds_show(args)
            case "store":
                return _store_redrive(args)
            case "outbox":
                return outbox_command(args)
            case "alerts" | "silence" | "ack":
                return ledger_command(args)
            case "console":
                return console_command(args)
            case "backtest" | "report":
                plotting = args.command == "report" or args.plots or args.html is not None
                if plotting and (missing := _missing("matplotlib", "plots", f"riverwatch {args.command} draws plots")):
                    return missing
                return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    return 2


def _run(config: Path | None) -> int:

    try:
        cfg = load_config(config)
        if cfg.service.log_format == "json":  # before the service logs a line
            use_json_logs()
        service = Service(cfg)
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    except ThresholdError as e:
        print(f"riverwatch: bad threshold files:\n{e}", file=sys.stderr)
        return 2
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID` prints every thread's stack
    if cfg.mqtt.embedded:
        if missing := _missing("amqtt", "demo", "without an [mqtt] section riverwatch runs its own MQTT broker"):
            return missing
        try:
            return asyncio.run(_run_with_embedded_broker(service))
        except ListenError as e:
            print(f"riverwatch: {cfg.source}: {e}", file=sys.stderr)
            return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, service.request_reload)
        await service.run(stop)

    try:
        asyncio.run(main())
    except ListenError as e:
        print(f"riverwatch: {cfg.source}: {e}", file=sys.stderr)
        return 2
    return 0


async def _run_with_embedded_broker(service: Service) -> int:
    """No [mqtt] section: an embedded broker on 127.0.0.1:1883, as interface.md promises."""
    from amqtt.broker import Broker  # noqa: PLC0415  only without an [mqtt] section

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{service.cfg.mqtt.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, service.request_reload)
    try:
        await service.run(stop)
    finally:
        await broker.shutdown()
    return 0


def _missing(module: str, extra: str, why: str) -> int:
    """1, after saying what to install, when an optional dependency is not installed; else 0."""
    if importlib.util.find_spec(module) is not None:
        return 0
    print(
        f"riverwatch: {why}, which needs {module}, not installed: pip install 'riverwatch[{extra}]' "
        f"(in a clone: scripts/setup, or .venv/bin/pip install -e '.[{extra}]')",
        file=sys.stderr,
    )
    return 1


def _store_redrive(args: argparse.Namespace) -> int:
    """Also while the service runs: a row is claimed before it is sent, so the two never send one twice."""
    try:
        cfg = load_config(args.config)
        since = parse_offset_time(args.since, "--since") if args.since else 0
        journal = Journal(cfg.service.data_dir / "journal.sqlite")
    except (ConfigError, BadArgument, JournalError) as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    writer = make_writer(cfg)

    async def go() -> int:
        try:
            before = journal.set_aside_state()[0]
            done = await redrive(
                journal, writer, since_ns=since, batch=cfg.influxdb.batch_size if cfg.influxdb else 5000
            )
        except RetryableError as e:
            print(f"riverwatch: {writer.name}: {e}; nothing more was sent, try again later", file=sys.stderr)
            return 1
        finally:
            await writer.close()
        left = journal.set_aside_state()[0]
        print(
            f"{done.written} set-aside points written to {writer.name} ({done.readings} readings); "
            f"{done.refused} refused again; {left} stay set aside (of {before})"
        )
        if done.refused:
            print(f"refused: {done.error}", file=sys.stderr)
        return 1 if done.refused else 0

    try:
        return asyncio.run(go())
    except JournalError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 1
    finally:
        journal.close()


def _thresholds_show(args: argparse.Namespace) -> int:

    try:
        cfg = load_config(args.config, secrets=())
        paths = list(args.paths) or load_or_shipped(cfg.thresholds.files)[0]
        print(show(paths, args.station, cfg.thresholds.default_class))
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    except ThresholdError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


def _thresholds_check(paths: Sequence[Path]) -> int:

    problems = check(paths)
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(paths)} file(s) OK")
    return 1 if problems else 0


def _simulate(args: argparse.Namespace) -> int:
    try:
        url = _with_credentials(args)
    except BadArgument as e:
        print(f"riverwatch simulate: {e}", file=sys.stderr)
        return 2
    return simulate(
        args.scenario,
        url,
        args.speed,
        args.seed,
        args.start,
        args.out,
        args.ground_truth,
        root=args.root,
        days=args.days,
        hj212=args.hj212,
        hj212_version=args.hj212_version,
        hj212_cn=args.hj212_cn,
        hj212_stations=args.hj212_stations,
    )


def _replay(args: argparse.Namespace) -> int:
    try:
        url = _with_credentials(args)
    except BadArgument as e:
        print(f"riverwatch replay: {e}", file=sys.stderr)
        return 2
    assert url is not None  # --mqtt is required
    print(
        f"riverwatch replay: publishing the readings of {args.file} to {_no_user(url)} under {args.root}/: a service "
        "subscribed there judges and notifies them as live readings",
        file=sys.stderr,
    )
    return replay(args.file, url, args.speed, root=args.root)


def _no_user(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))


if __name__ == "__main__":
    sys.exit(main())
