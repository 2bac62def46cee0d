"""`riverwatch simulate` and `riverwatch replay` as plain functions: arguments in, exit code out.

The CLI only parses; everything that can be wrong with the arguments is checked here, before anything is
written or sent, and reported as one line on stderr naming the problem (exit 2). A broker that cannot be
reached or stops acknowledging is a runtime failure (exit 1).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from monitor.domain.reading import Reading
from simulators.hj212 import CNS as HJ212_CNS
from simulators.hj212 import VERSIONS as HJ212_VERSIONS
from simulators.hj212 import HJ212SendError, parse_hostport, simulate_hj212, station_files
from simulators.messages import CST, single_messages, unit_of
from simulators.publish import parse_url, publish
from simulators.replaycsv import csv_messages, read_csv, write_csv
from simulators.scenarios import SCENARIOS, make_scenario

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOPIC_UNSAFE = re.compile(r"[+#\x00]")


class _Usage(Exception):
    """Bad usage: the message is printed as is and the exit code is 2."""


def _say(message: str) -> None:
    print(f"riverwatch: {message}", file=sys.stderr)


def _check_speed(speed: float) -> None:
    if not math.isfinite(speed) or speed < 0:
        raise _Usage(f"--speed must be a number >= 0 (0: as fast as the broker takes them), not {speed!r}")


def _check_mqtt(url: str) -> None:
    try:
        parse_url(url)
    except ValueError as exc:
        raise _Usage(f"--mqtt: {exc}") from None


def _check_root(root: str) -> None:
    if not root or root.startswith("/") or root.endswith("/") or _TOPIC_UNSAFE.search(root):
        raise _Usage(f"--root {root!r} must be a topic prefix without '+', '#' or a leading/trailing '/'")


def parse_start(text: str) -> datetime:
    """ISO 8601 / RFC 3339 with an offset, or a bare date meaning midnight China Standard Time."""
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise _Usage(f"--start {text!r} is not a date or an RFC 3339 time such as 2012-01-03T00:00:00+08:00") from None
    if dt.tzinfo is not None:
        return dt
    if _DATE.fullmatch(s):
        return dt.replace(tzinfo=CST)
    raise _Usage(f"--start {text!r} needs a UTC offset, e.g. +08:00 (a bare date means midnight +08:00)")


def simulate(
    scenario: str,
    mqtt: str | None,
    speed: float,
    seed: int | None,
    start: str | None,
    out: Path | None,
    ground_truth: Path | None,
    root: str = "river",
    days: float | None = None,
    hj212: str | None = None,
    hj212_version: str = "2017",
    hj212_cn: str = "2011",
    hj212_stations: Sequence[Path] = (),
) -> int:
    """Run a scenario; write its readings as replay CSV (`out`), its ground truth (`ground_truth`, JSON, or
    CSV by suffix) and publish it to `mqtt`, one reading per message, paced by `speed`, or send it to the
    HJ 212 server `hj212` (HOST:PORT) as one data logger per station (MN and PW from `hj212_stations`,
    else the shipped station files). `seed` and `days` None: the scenario's own. Exit code."""
    try:
        if scenario not in SCENARIOS:
            raise _Usage(f"unknown scenario {scenario!r} (known: {', '.join(sorted(SCENARIOS))})")
        if mqtt is None and hj212 is None and out is None and ground_truth is None:
            raise _Usage(
                "simulate needs --mqtt URL, --out FILE.csv or --ground-truth FILE, or --hj212 HOST:PORT (or several)"
            )
        _check_speed(speed)
        if mqtt is not None:
            _check_mqtt(mqtt)
        files: dict[str, object] = {}
        if hj212 is not None:
            _check_hj212(hj212, mqtt, hj212_version, hj212_cn)
            try:
                files = station_files(hj212_stations)
            except ValueError as exc:
                raise _Usage(str(exc)) from None
        _check_root(root)
        try:
            chosen = make_scenario(scenario, seed, parse_start(start) if start is not None else None, days)
        except ValueError as exc:
            raise _Usage(str(exc)) from None
    except _Usage as exc:
        _say(str(exc))
        return 2
    seed = chosen.seed
    readings = chosen.readings()
    try:
        if out is not None:
            write_csv(out, readings, unit_of)
            print(f"wrote {len(readings)} readings of {chosen.name} (seed {seed}) to {out}", file=sys.stderr)
        if ground_truth is not None:
            chosen.ground_truth().write(ground_truth)
            print(f"wrote the ground truth of {chosen.name} (seed {seed}) to {ground_truth}", file=sys.stderr)
    except OSError as exc:
        _say(f"cannot write {exc.filename}: {exc.strerror or exc}")
        return 2
    if mqtt is not None:
        try:
            n = publish(
                single_messages(readings, root=root),
                mqtt,
                speed=speed,
                progress=True,
                unit="reading",
                total=len(readings),
            )
        except RuntimeError as exc:
            _say(str(exc))
            return 1
        print(f"published {n} readings of {chosen.name} to {root}/# on the broker", file=sys.stderr)
    if hj212 is not None:
        return _send_hj212(chosen.name, readings, chosen.stations, files, hj212, hj212_cn, hj212_version, speed)
    return 0


def _check_hj212(hostport: str, mqtt: str | None, version: str, cn: str) -> None:
    if mqtt is not None:
        raise _Usage("--hj212 and --mqtt: give one of them (a scenario goes to one service at a time)")
    try:
        parse_hostport(hostport)
    except ValueError as exc:
        raise _Usage(f"--hj212: {exc}") from None
    if version not in HJ212_VERSIONS:
        raise _Usage(f"--hj212-version must be one of {', '.join(HJ212_VERSIONS)}, not {version!r}")
    if cn not in HJ212_CNS:
        raise _Usage(f"--hj212-cn must be one of {', '.join(HJ212_CNS)} (real-time, hourly), not {cn!r}")


def _send_hj212(
    name: str,
    readings: list[Reading],
    stations: Iterable[object],
    files: Mapping[str, object],
    hostport: str,
    cn: str,
    version: str,
    speed: float,
) -> int:
    try:
        sent, skipped = simulate_hj212(readings, stations, hostport, cn=cn, version=version, speed=speed, files=files)
    except (HJ212SendError, OSError) as exc:
        _say(str(exc))
        return 1
    if skipped:
        detail = ", ".join(f"{n} {pid}" for pid, n in sorted(skipped.items()))
        print(f"skipped {sum(skipped.values())} readings without an HJ 212 code ({detail})", file=sys.stderr)
    print(
        f"sent {sent.readings} readings of {name} as {sent.uploads} HJ 212 CN={cn} uploads ({version}) to {hostport}"
        f" ({sent.resends} re-sent)",
        file=sys.stderr,
    )
    return 0


def replay(path: Path, mqtt: str, speed: float, root: str = "river") -> int:
    """Publish recorded readings (replay CSV) in time order, keeping their relative timing at `speed`."""
    try:
        _check_speed(speed)
        _check_mqtt(mqtt)
        _check_root(root)
        try:
            rows = list(read_csv(path))
        except OSError as exc:
            raise _Usage(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise _Usage(str(exc)) from None
    except _Usage as exc:
        _say(str(exc))
        return 2
    rows.sort(key=lambda row: row[0])  # stable: rows of one instant keep the file's order
    try:
        n = publish(csv_messages(rows, root=root), mqtt, speed=speed, progress=True, unit="reading", total=len(rows))
    except RuntimeError as exc:
        _say(str(exc))
        return 1
    print(f"replayed {n} readings from {path} to {root}/# on the broker", file=sys.stderr)
    return 0
