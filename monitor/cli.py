"""The `riverwatch` command. Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__

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

    sim = sub.add_parser("simulate", help="publish a simulated scenario to a broker")
    sim.add_argument("--scenario", required=True)
    sim.add_argument("--mqtt", help="broker URL, e.g. mqtt://127.0.0.1:1883")
    sim.add_argument("--speed", type=float, default=0.0, help="simulated seconds per real second (0: max)")
    sim.add_argument("--seed", type=int, default=2012)
    sim.add_argument("--out", type=Path, help="also write the readings as replay CSV")
    sim.add_argument("--root", default="river", help="topic root (default: river)")

    rep = sub.add_parser("replay", help="publish recorded readings (replay CSV) to a broker")
    rep.add_argument("file", type=Path)
    rep.add_argument("--mqtt", default="mqtt://127.0.0.1:1883")
    rep.add_argument("--speed", type=float, default=0.0, help="simulated seconds per real second (0: max)")
    rep.add_argument("--root", default="river", help="topic root (default: river)")

    th = sub.add_parser("thresholds", help="threshold file tools")
    th_sub = th.add_subparsers(dest="thresholds_command", required=True, metavar="SUBCOMMAND")
    chk = th_sub.add_parser("check", help="validate threshold files; one path:line: message per problem")
    chk.add_argument("paths", nargs="+", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
                from monitor.demo import DEFAULT_SPEED, run_demo

                return asyncio.run(run_demo(speed=DEFAULT_SPEED if args.speed is None else args.speed))
            case "simulate":
                return _simulate(args)
            case "replay":
                return _replay(args)
            case "thresholds":
                return _thresholds_check(args.paths)
    except KeyboardInterrupt:
        return 130
    return 2


def _run(config: Path | None) -> int:
    from monitor.config import ConfigError, load_config
    from monitor.service import Service
    from monitor.thresholds import ThresholdError

    try:
        cfg = load_config(config)
        service = Service(cfg)
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    except ThresholdError as e:
        print(f"riverwatch: bad threshold files:\n{e}", file=sys.stderr)
        return 2
    if cfg.mqtt.embedded:
        return asyncio.run(_run_with_embedded_broker(service))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    asyncio.run(main())
    return 0


async def _run_with_embedded_broker(service: object) -> int:
    """No [mqtt] section: an embedded broker on 127.0.0.1:1883, as interface.md promises."""
    from amqtt.broker import Broker

    from monitor.service import Service

    assert isinstance(service, Service)
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{service.cfg.mqtt.port}"}},
                     "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}})
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.run(stop)
    finally:
        await broker.shutdown()
    return 0


def _thresholds_check(paths: Sequence[Path]) -> int:
    from monitor.thresholds import check

    problems = check(paths)
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(paths)} file(s) OK")
    return 1 if problems else 0


def _simulate(args: argparse.Namespace) -> int:
    from monitor.params import PARAMETERS
    from simulators.longjiang import SCENARIOS, single_messages
    from simulators.publish import publish
    from simulators.replaycsv import write_csv

    if args.scenario not in SCENARIOS:
        print(f"riverwatch: unknown scenario {args.scenario!r} (known: {', '.join(sorted(SCENARIOS))})",
              file=sys.stderr)
        return 2
    if not args.mqtt and not args.out:
        print("riverwatch: simulate needs --mqtt URL, --out FILE.csv, or both", file=sys.stderr)
        return 2
    readings = SCENARIOS[args.scenario](seed=args.seed).readings()
    if args.out:
        n = write_csv(args.out, readings, lambda p: PARAMETERS[p].unit)
        print(f"wrote {n} readings to {args.out}", file=sys.stderr)
    if args.mqtt:
        n = publish(single_messages(readings, root=args.root), args.mqtt, speed=args.speed, progress=True)
        print(f"published {n} readings to {args.mqtt}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from simulators.publish import publish
    from simulators.replaycsv import csv_messages, read_csv

    try:
        rows = list(read_csv(args.file))
    except OSError as e:
        print(f"riverwatch: {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: r[0])
    n = publish(csv_messages(rows, root=args.root), args.mqtt, speed=args.speed, progress=True)
    print(f"replayed {n} readings to {args.mqtt}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
