"""A scenario sent as HJ 212 data loggers send it: one TCP connection per station, one upload at a time.

Why one client per station and one upload in flight: a real data logger (数采仪) holds one connection to
its platform and waits for each upload's CN=9014 before the next; it re-sends the same upload (same QN)
after a timeout and gives up after a few tries (HJ 212-2017 section 6.5: OverTime and ReCount, by default
5 s and 3). The simulator does the same, so a server is tested against the traffic it will see, re-sends
included. Values go out in the unit loggers use for each code (`Parameter.hj212_unit`, µg/L for the heavy
metals), DataTime in China Standard Time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from monitor.domain.hj212 import Frame, FrameReader, HJ212Error, frame, packet_segment, parse_segment
from monitor.domain.params import SHIPPED, Catalogue
from monitor.domain.reading import Reading
from monitor.thresholds import ThresholdError, load, load_or_shipped, shipped_path

CST = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_HOUR = 3_600_000_000_000

ST_SURFACE_WATER = "21"  # HJ 212-2017 Table 5: 地表水质量监测
CN_REALTIME = "2011"
CN_HOURLY = "2061"
CNS = (CN_REALTIME, CN_HOURLY)
VERSIONS = ("2017", "2025")
SHIPPED_STATION_FILES = ("longjiang-stations.toml", "beijiang-stations.toml")
DEFAULT_PW = "123456"  # the standard's example password, and what most loggers ship with
ACK_TIMEOUT_S = 5.0  # HJ 212-2017 OverTime default
TRIES = 3  # HJ 212-2017 ReCount default: the first send and two re-sends
CONNECT_TIMEOUT_S = 10.0

# riverwatch flags -> HJ 212 data flags (HJ 212-2017 Table 6); below-DL readings carry the DL with N.
FLAGS: dict[str | None, str] = {
    None: "N",
    "<DL": "N",
    "maintenance": "M",
    "calibration": "C",
    "fault": "D",
    "stopped": "F",
    "over_range": "T",
    "manual": "S",
    "comm_fault": "B",
}


class HJ212SendError(RuntimeError):
    """A station's uploads could not be delivered: the message names the station, the server and why."""


@dataclass(frozen=True)
class Upload:
    """One data segment a logger sends; `readings` is how many scenario readings it carries."""

    station: str
    ts_ns: int
    segment_cp: str
    readings: int


@dataclass
class Sent:
    """What a run delivered, for the summary line."""

    uploads: int = 0
    readings: int = 0
    resends: int = 0


def parse_hostport(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT; ValueError with a one-line message."""
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT with a port from 1 to 65535")
    return host, int(port_text)


def data_time(ts_ns: int) -> str:
    """DataTime, YYYYMMDDhhmmss in China Standard Time."""
    return (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(CST).strftime("%Y%m%d%H%M%S")


def number(value: float) -> str:
    """A value as loggers write it: positional (no exponent), at most 6 significant digits."""
    return np.format_float_positional(float(value), precision=6, unique=True, fractional=False, trim="-")


def station_mn(station: object) -> str:
    """The station's MN (its station file's `mn`), else one made up from the id."""
    mn = getattr(station, "mn", None)
    return str(mn) if mn else "RW" + str(getattr(station, "id", station)).upper()


def station_pw(station: object) -> str:
    """The password the station file points to: its `pw_env` env var, else its `pw_file`, else the default."""
    env = getattr(station, "pw_env", None)
    if env and os.environ.get(str(env)):
        return os.environ[str(env)]
    pw_file = getattr(station, "pw_file", None)
    if pw_file:
        return Path(str(pw_file)).read_text(encoding="utf-8").strip() or DEFAULT_PW
    return DEFAULT_PW


def station_files(paths: Sequence[Path] = ()) -> dict[str, object]:
    """The stations of `paths` (the service's station files, so MN and PW match what it expects), else of
    the shipped station files. ValueError (one line) for a given file with problems; {} when the shipped
    ones cannot be read (the made-up MNs still work against a server that maps them)."""
    try:
        if paths:
            return dict(load_or_shipped(list(paths))[1].stations)
        return dict(load([shipped_path(), *(shipped_path(n) for n in SHIPPED_STATION_FILES)]).stations)
    except ThresholdError as exc:
        if not paths:
            return {}
        first = str(exc).splitlines()[0] if str(exc) else "problems"
        raise ValueError(f"--hj212-stations: {first} ({len(exc.problems)} problem(s))") from None


def _hj212_factor(catalogue: Catalogue, pid: str) -> tuple[str, float] | None:
    """(code, factor from the HJ 212 unit to the standard unit), None for a parameter without a code."""
    p = catalogue.get(pid)
    if p is None or not p.hj212:
        return None
    factor = catalogue.unit_factor(pid, p.hj212_unit) if p.hj212_unit else 1.0
    return p.hj212, factor or 1.0


def uploads(
    readings: Iterable[Reading], cn: str = CN_REALTIME, catalogue: Catalogue = SHIPPED
) -> tuple[dict[str, list[Upload]], Counter[str]]:
    """The uploads of each station, in time order, and the readings skipped per parameter (no HJ 212 code).

    CN=2011: one upload per station and reading time, `<code>-Rtd` and `<code>-Flag` per parameter.
    CN=2061: one per station and hour (CST hour start), `-Avg/-Min/-Max` over the hour's readings with
    flag N (all readings of the hour, flagged with the commonest flag, when none is N)."""
    skipped: Counter[str] = Counter()
    codes: dict[str, tuple[str, float] | None] = {}
    # station -> time key -> code -> [(value in the HJ 212 unit, flag letter)]
    grouped: dict[str, dict[int, dict[str, list[tuple[float, str]]]]] = defaultdict(lambda: defaultdict(dict))
    for r in readings:
        if r.parameter not in codes:
            codes[r.parameter] = _hj212_factor(catalogue, r.parameter)
        code = codes[r.parameter]
        if code is None:
            skipped[r.parameter] += 1
            continue
        key = r.ts_ns if cn == CN_REALTIME else r.ts_ns - (r.ts_ns + 8 * NS_PER_HOUR) % NS_PER_HOUR
        grouped[r.station][key].setdefault(code[0], []).append((r.value / code[1], FLAGS.get(r.flag, "D")))
    out: dict[str, list[Upload]] = {}
    for station, by_time in grouped.items():
        out[station] = [
            Upload(
                station, ts, _cp(ts, params, cn), len(params) if cn == CN_REALTIME else sum(map(len, params.values()))
            )
            for ts, params in sorted(by_time.items())
        ]
    return out, skipped


def _cp(ts_ns: int, params: Mapping[str, list[tuple[float, str]]], cn: str) -> str:
    groups = [f"DataTime={data_time(ts_ns)}"]
    for code, values in params.items():
        if cn == CN_REALTIME:
            value, flag = values[-1]
            groups.append(f"{code}-Rtd={number(value)},{code}-Flag={flag}")
            continue
        good = [v for v, f in values if f == "N"]
        flag = "N" if good else Counter(f for _, f in values).most_common(1)[0][0]
        vals = good or [v for v, _ in values]
        groups.append(
            f"{code}-Avg={number(sum(vals) / len(vals))},{code}-Min={number(min(vals))},"
            f"{code}-Max={number(max(vals))},{code}-Flag={flag}"
        )
    return ";".join(groups)


class _QN:
    """QN: the send time in CST to the millisecond (YYYYMMDDhhmmsszzz), strictly increasing per logger."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        ms = max(time.time_ns() // 1_000_000, self._last + 1)
        self._last = ms
        dt = (_EPOCH + timedelta(milliseconds=ms)).astimezone(CST)
        return dt.strftime("%Y%m%d%H%M%S") + f"{ms % 1000:03d}"


class Logger:
    """One station's data logger: a connection, uploads one at a time, each until its 9014 arrives."""

    def __init__(
        self,
        host: str,
        port: int,
        mn: str,
        pw: str,
        *,
        cn: str = CN_REALTIME,
        version: str = "2017",
        timeout_s: float | None = None,
        tries: int | None = None,
    ) -> None:
        self.host, self.port, self.mn, self.pw, self.cn, self.version = host, port, mn, pw, cn, version
        self.timeout_s = ACK_TIMEOUT_S if timeout_s is None else timeout_s
        self.tries = TRIES if tries is None else tries
        self._qn = _QN()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = FrameReader()
        self._acked: set[str] = set()

    async def _connect(self) -> None:
        await self.close()
        self._frames = FrameReader()
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT_S
        )

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, cp: str) -> int:
        """Send one upload until it is acknowledged; the number of re-sends. HJ212SendError after `tries`."""
        qn = self._qn.next()
        data = frame(
            packet_segment(
                qn=qn, st=ST_SURFACE_WATER, cn=self.cn, pw=self.pw, mn=self.mn, cp=cp, version=self.version, ack=True
            )
        )
        why = "no reply"
        for attempt in range(self.tries):
            try:
                if self._writer is None:
                    await self._connect()
                assert self._writer is not None
                self._writer.write(data)
                await self._writer.drain()
                if await self._wait_ack(qn):
                    return attempt
                why = f"no CN=9014 for QN={qn} within {self.timeout_s:g} s"
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                why = f"connection to {self.host}:{self.port} failed: {exc or type(exc).__name__}"
                await self.close()
                if attempt + 1 < self.tries:
                    await asyncio.sleep(self.timeout_s)  # as loggers do: wait before reconnecting
        raise HJ212SendError(f"HJ 212: MN {self.mn}: gave up after {self.tries} tries: {why}")

    async def _wait_ack(self, qn: str) -> bool:
        """True once the 9014 naming `qn` arrived; False when `timeout_s` passed without it."""
        if qn in self._acked:
            return True
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                chunk = await asyncio.wait_for(self._reader.read(4096), left)
            except TimeoutError:
                return False
            if not chunk:
                raise OSError("the server closed the connection")
            for item in self._frames.feed(chunk):
                if not isinstance(item, Frame) or not item.crc_ok:
                    continue  # a broken reply counts as none: the upload is re-sent
                try:
                    reply = parse_segment(item.segment)
                except HJ212Error:
                    continue
                if reply.cn == "9014" and reply.qn:
                    self._acked.add(reply.qn)
            if qn in self._acked:
                self._acked.clear()
                return True


async def _run_station(logger: Logger, ups: Sequence[Upload], pace: Callable[[int], float], sent: Sent) -> None:
    loop = asyncio.get_running_loop()
    try:
        for up in ups:
            delay = pace(up.ts_ns) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.resends += await logger.send(up.segment_cp)
            sent.uploads += 1
            sent.readings += up.readings
    finally:
        await logger.close()


async def send_all(
    by_station: Mapping[str, Sequence[Upload]],
    stations: Mapping[str, object],
    host: str,
    port: int,
    *,
    cn: str = CN_REALTIME,
    version: str = "2017",
    speed: float = 0.0,
) -> Sent:
    """Every station's uploads over its own connection, concurrently; `speed` simulated seconds per real
    second from the first upload's time (0: as fast as the replies come). HJ212SendError when one fails."""
    sent = Sent()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first = min((u[0].ts_ns for u in by_station.values() if u), default=0)

    def pace(ts_ns: int) -> float:
        return t0 + (ts_ns - first) / 1e9 / speed if speed > 0 else 0.0

    tasks = [
        asyncio.create_task(
            _run_station(
                Logger(
                    host,
                    port,
                    station_mn(stations.get(sid, sid)),
                    station_pw(stations.get(sid)),
                    cn=cn,
                    version=version,
                ),
                ups,
                pace,
                sent,
            )
        )
        for sid, ups in by_station.items()
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return sent


def simulate_hj212(
    readings: Sequence[Reading],
    stations: Iterable[object],
    hostport: str,
    *,
    cn: str = CN_REALTIME,
    version: str = "2017",
    speed: float = 0.0,
    files: Mapping[str, object] | None = None,
) -> tuple[Sent, Counter[str]]:
    """Send `readings` to the HJ 212 server at `hostport`; what was sent and what was skipped (per parameter).
    A station in `files` (station_files) takes its MN and PW from there."""
    host, port = parse_hostport(hostport)
    by_station, skipped = uploads(readings, cn)
    by_id = {str(getattr(s, "id", s)): s for s in stations}
    by_id.update({sid: st for sid, st in (files or {}).items() if sid in by_id or sid in by_station})
    sent = asyncio.run(send_all(by_station, by_id, host, port, cn=cn, version=version, speed=speed))
    return sent, skipped


__all__ = [
    "CNS",
    "VERSIONS",
    "HJ212SendError",
    "Logger",
    "Sent",
    "Upload",
    "data_time",
    "parse_hostport",
    "send_all",
    "simulate_hj212",
    "station_files",
    "station_mn",
    "station_pw",
    "uploads",
]
