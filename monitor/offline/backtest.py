"""`riverwatch backtest`: the live rules and alerts, run offline over recorded or simulated data, scored.

Why it exists: an engineer who edits a threshold file wants to know, before it goes live, how many alerts it
would have raised, how many of them were false, and how much earlier or later it catches a plume.

Fidelity: every variant gets its own `monitor.alerts.Evaluator`, the object the service calls, and is fed
the readings in time order, in batches, with no MQTT and no sleeping. Nothing of the rules or the alert
lifecycle is reimplemented here (tests/test_backtest.py proves live and backtest alerts identical). The
no-data clock follows the data: `Evaluator.tick` is called between batches at the batch's last reading time,
as a live service running at real speed would see it.

Speed: what surrounds the Evaluator is vectorised. Readings travel as numpy columns (time, station code,
parameter code, value, flag code), are turned into `Reading` tuples one batch at a time (the Evaluator's
input type) and are tallied with numpy (time above each class limit, measured exceedances, plot buckets),
so memory stays one batch for any length of data. Batches are bigger than the service's (200k readings
rather than 5000) because the Evaluator's per-series cost is per batch; its results do not depend on the
batch size (the identity test runs both).

Scoring against a reference: the scenario's ground truth (when the TRUE concentration crossed each class
limit), or a ground-truth file, or else the readings themselves ("measured"). An alert is false when it
fires outside every exceedance of its station's class limit, widened by a tolerance on both sides; an
exceedance is missed when no alert is open at any time within that widened window; detection latency is the
first alert's start minus the true crossing (negative: an early warning).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import gc
import itertools
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.domain.params import PARAMETERS
from monitor.domain.reading import Reading
from monitor.thresholds import (
    DEFAULT_DL_FLAGS,
    DEFAULT_IGNORE_FLAGS,
    DEFAULT_SUSPECT_FLAGS,
    Limit,
    ThresholdError,
    ThresholdSet,
    load,
    parse_duration,
    shipped_path,
)

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_HOUR = 60 * NS_PER_MIN
DEFAULT_BATCH = 200_000  # readings per Evaluator.process call (the service uses up to 5000: same alerts)
DEFAULT_TOLERANCE_NS = 6 * NS_PER_HOUR
HOLD_NS = 6 * NS_PER_HOUR  # a reading stands for the time until the next one of its series, at most this long
PLOT_BUCKETS = 1500  # per series: min/mean/max per time bucket, enough for a plot whatever the data's length
FLAGGED_KEEP = 50_000  # instrument-flagged readings kept for the plots (grey crosses)
NOT_RIVER_FLAGS = DEFAULT_IGNORE_FLAGS | DEFAULT_SUSPECT_FLAGS  # never counted as a measurement of the river


class UsageError(Exception):
    """Bad arguments or files: exit 2 with this one-line message."""


class DataError(Exception):
    """The data could not be read (a server down, a file gone): exit 1."""


# --------------------------------------------------------------------------- data as columns


@dataclass
class Columns:
    """Readings as parallel numpy arrays, in time order: what every source yields and the engine consumes."""

    ts: np.ndarray  # int64 epoch ns
    station: np.ndarray  # int32 index into Dataset.stations
    parameter: np.ndarray  # int32 index into Dataset.parameters
    value: np.ndarray  # float64, in the parameter's standard unit
    flag: np.ndarray  # int16 index into Dataset.flags, -1 for none

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray | slice) -> Columns:
        return Columns(self.ts[index], self.station[index], self.parameter[index], self.value[index], self.flag[index])


@dataclass(frozen=True)
class Exceedance:
    """A stretch of time in which a series violated one class limit: from the ground truth or the readings."""

    station: str
    parameter: str
    klass: str
    start_ns: int
    back_ns: int | None  # first time compliant again; None: still violated at the end of the data
    source: str  # "truth" | "measured"
    worst: float = math.nan

    def end(self, data_end_ns: int) -> int:
        return self.back_ns if self.back_ns is not None else data_end_ns


@dataclass
class Dataset:
    """Readings and what is known about them. In memory (`columns`) or streamed (`generate`, for long runs)."""

    label: str
    stations: list[str]
    parameters: list[str]
    flags: list[str]
    start_ns: int
    end_ns: int
    count: int
    columns: Columns | None = None
    generate: Callable[[int], Iterator[Columns]] | None = None
    truth: list[Exceedance] | None = None
    notes: list[str] = field(default_factory=list)

    def chunks(self, size: int) -> Iterator[Columns]:
        if self.generate is not None:
            yield from self.generate(size)
            return
        assert self.columns is not None
        for i in range(0, len(self.columns), size):
            yield self.columns.take(slice(i, i + size))


def from_readings(
    readings: Sequence[Reading],
    label: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    truth: list[Exceedance] | None = None,
) -> Dataset:
    """A Dataset from Reading tuples, put in time order (stable: ties keep their arrival order, as the journal)."""
    n = len(readings)
    st_codes: dict[str, int] = {}
    pa_codes: dict[str, int] = {}
    fl_codes: dict[str | None, int] = {None: -1}
    station = np.fromiter((st_codes.setdefault(r.station, len(st_codes)) for r in readings), np.int32, n)
    parameter = np.fromiter((pa_codes.setdefault(r.parameter, len(pa_codes)) for r in readings), np.int32, n)
    flag = np.fromiter((fl_codes.setdefault(r.flag, len(fl_codes) - 1) for r in readings), np.int16, n)
    ts = np.fromiter((r.ts_ns for r in readings), np.int64, n)
    value = np.fromiter((r.value for r in readings), np.float64, n)
    order = np.argsort(ts, kind="stable")
    cols = Columns(ts, station, parameter, value, flag).take(order)
    flags = [f for f in fl_codes if f is not None]
    first = int(cols.ts[0]) if n else 0
    last = int(cols.ts[-1]) + 1 if n else 0
    return Dataset(
        label,
        list(st_codes),
        list(pa_codes),
        flags,
        first if start_ns is None else start_ns,
        last if end_ns is None else max(end_ns, last),
        n,
        columns=cols,
        truth=truth,
    )


_NEW_READING = functools.partial(tuple.__new__, Reading)  # Reading(*t) without the Python-level __new__


def to_readings(c: Columns, stations: np.ndarray, parameters: np.ndarray, flags: np.ndarray) -> list[Reading]:
    """Columns to the Evaluator's input type; object-array look-ups, tolist and zip keep it at C speed."""
    return list(
        map(
            _NEW_READING,
            zip(
                stations[c.station].tolist(),
                parameters[c.parameter].tolist(),
                c.ts.tolist(),
                c.value.tolist(),
                flags[c.flag + 1].tolist(),
                strict=True,
            ),
        )
    )


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """Where the readings come from; exactly one of scenario, csv, store, influx, victoria."""

    scenario: str | None = None
    seed: int | None = None
    csv: Path | None = None
    ground_truth: Path | None = None  # JSON written by `riverwatch simulate --ground-truth`
    store: Path | None = None  # a data_dir (its store.sqlite) or the store.sqlite itself
    influx: str | None = None  # InfluxDB 1.x base URL
    database: str = ""
    retention_policy: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    victoria: str | None = None  # VictoriaMetrics base URL (/api/v1/export)
    since_ns: int | None = None
    until_ns: int | None = None

    def kind(self) -> str:
        kinds = [k for k in ("scenario", "csv", "store", "influx", "victoria") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise UsageError("give exactly one data source: --scenario, --csv, --store, --influx or --victoria")
        return kinds[0]


def load_source(src: Source) -> Dataset:
    """Read a source into memory (scenario, CSV, store, InfluxDB 1.x, VictoriaMetrics)."""
    kind = src.kind()
    if kind == "scenario":
        ds = _scenario(src)
    elif kind == "csv":
        ds = _csv(src)
    elif kind == "store":
        ds = _embedded_store(src)
    elif kind == "influx":
        ds = _influx_v1(src)
    else:
        ds = _victoria(src)
    if src.ground_truth is not None:
        ds.truth = read_ground_truth(src.ground_truth)
    if ds.truth is not None:
        ds.truth = clip(ds.truth, ds.start_ns, ds.end_ns)
    return ds


def clip(truth: list[Exceedance], lo: int, hi: int) -> list[Exceedance]:
    """The exceedances inside [lo, hi): one already under way at lo starts at lo; one still on at hi has no back."""
    out = []
    for e in truth:
        if e.start_ns >= hi or (e.back_ns is not None and e.back_ns <= lo):
            continue
        back = e.back_ns if e.back_ns is not None and e.back_ns < hi else None
        out.append(Exceedance(e.station, e.parameter, e.klass, max(e.start_ns, lo), back, e.source, e.worst))
    return out


def _window(src: Source, readings: list[Reading]) -> list[Reading]:
    if src.since_ns is None and src.until_ns is None:
        return readings
    lo = src.since_ns if src.since_ns is not None else -(2**63)
    hi = src.until_ns if src.until_ns is not None else 2**63 - 1
    return [r for r in readings if lo <= r.ts_ns < hi]


def _scenario(src: Source) -> Dataset:
    from simulators.scenarios import SCENARIOS

    assert src.scenario is not None
    make = SCENARIOS.get(src.scenario)
    if make is None:
        raise UsageError(f"--scenario: unknown scenario {src.scenario!r} (known: {', '.join(sorted(SCENARIOS))})")
    scenario = make(seed=src.seed) if src.seed is not None else make()
    readings = _window(src, scenario.readings())
    gt = scenario.ground_truth()
    truth = [Exceedance(e.station, e.parameter, e.klass, e.start_ns, e.back_ns, "truth", e.worst) for e in gt.episodes]
    label = f"scenario {scenario.name} (seed {scenario.seed})"
    return from_readings(readings, label, src.since_ns or scenario.start_ns, src.until_ns or scenario.end_ns, truth)


def _csv(src: Source) -> Dataset:
    """Replay CSV through the service's own decoder (units, aliases, below-DL, negatives) via replay's messages."""
    from monitor.ingest.decode import decode
    from simulators.replaycsv import csv_messages, read_csv

    assert src.csv is not None
    readings: list[Reading] = []
    rejected: Counter[str] = Counter()
    now = time.time_ns()
    try:
        for _, topic, payload in csv_messages(read_csv(src.csv)):
            d = decode(topic, payload, now)
            readings.extend(d.readings)
            rejected.update(r.reason for r in d.rejections)
    except OSError as e:
        raise DataError(f"{src.csv}: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    ds = from_readings(_window(src, readings), f"replay CSV {src.csv}", src.since_ns, src.until_ns)
    if rejected:
        ds.notes.append(
            f"{sum(rejected.values())} CSV row(s) rejected as the service would reject them: "
            + ", ".join(f"{k} {v}" for k, v in rejected.most_common())
        )
    return ds


def read_ground_truth(path: Path) -> list[Exceedance]:
    """Episodes of a ground-truth JSON (`riverwatch simulate --ground-truth FILE.json`)."""
    from simulators.replaycsv import parse_ts

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [
            Exceedance(
                e["station"],
                e["parameter"],
                e["class"],
                parse_ts(e["from"]),
                parse_ts(e["back"]) if e.get("back") else None,
                "truth",
                float(e.get("worst", math.nan)),
            )
            for e in doc["episodes"]
        ]
    except OSError as e:
        raise UsageError(f"--ground-truth {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--ground-truth {path}: not a ground-truth JSON file ({type(e).__name__}: {e})") from None


class _Builder:
    """Accumulates (station, parameter) series from a database, then sorts them into one time-ordered Dataset."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str, np.ndarray, np.ndarray, list[str | None] | None]] = []

    def add(
        self,
        station: str,
        parameter: str,
        ts: Sequence[int],
        values: Sequence[float],
        flags: Sequence[str | None] | None = None,
    ) -> None:
        if len(ts):
            self.parts.append(
                (
                    station,
                    parameter,
                    np.asarray(ts, dtype=np.int64),
                    np.asarray(values, dtype=np.float64),
                    list(flags) if flags is not None and any(flags) else None,
                )
            )

    def build(self, label: str, src: Source) -> Dataset:
        stations: dict[str, int] = {}
        params: dict[str, int] = {}
        flag_codes: dict[str, int] = {}
        cols = []
        for st, pa, ts, v, fl in self.parts:
            s = np.full(len(ts), stations.setdefault(st, len(stations)), np.int32)
            p = np.full(len(ts), params.setdefault(pa, len(params)), np.int32)
            f = (
                np.fromiter(
                    (-1 if x is None else flag_codes.setdefault(x, len(flag_codes)) for x in fl), np.int16, len(fl)
                )
                if fl is not None
                else np.full(len(ts), -1, np.int16)
            )
            cols.append((ts, s, p, v, f))
        if cols:
            joined = Columns(*(np.concatenate([c[i] for c in cols]) for i in range(5)))
        else:
            joined = Columns(
                np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0), np.empty(0, np.int16)
            )
        order = np.lexsort((joined.parameter, joined.station, joined.ts))
        joined = joined.take(order)
        n = len(joined)
        first = int(joined.ts[0]) if n else 0
        last = int(joined.ts[-1]) + 1 if n else 0
        return Dataset(
            label,
            list(stations),
            list(params),
            list(flag_codes),
            src.since_ns if src.since_ns is not None else first,
            src.until_ns if src.until_ns is not None else last,
            n,
            columns=joined,
        )


_TAG_SPLIT = re.compile(r"(?<!\\),")
_TAG = re.compile(r"((?:[^=\\]|\\.)*)=(.*)")


def _unescape_tag(text: str) -> str:
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def _tags(line_key: str) -> dict[str, str]:
    """Tags of a line-protocol key `measurement,k=v,...` (the embedded store keeps them as written)."""
    out: dict[str, str] = {}
    for part in _TAG_SPLIT.split(line_key)[1:]:
        m = _TAG.match(part)
        if m is not None:
            out[_unescape_tag(m.group(1))] = _unescape_tag(m.group(2))
    return out


_FIELD = re.compile(r'([^=,]+)=("(?:[^"\\]|\\.)*"|[^,]*)')


def _fields(text: str) -> tuple[float, str | None]:
    """(value, flag) from line-protocol fields; the fast path is the usual bare `value=0.041`."""
    if text.startswith("value=") and "," not in text:
        return float(text[6:]), None
    value, flag = math.nan, None
    for k, raw in _FIELD.findall(text):
        if k == "value":
            value = float(raw.rstrip("i"))
        elif k == "flag" and raw.startswith('"'):
            flag = raw[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return value, flag


def _embedded_store(src: Source) -> Dataset:
    """The embedded SQLite store (`points(line_key, ts_ns, fields)`), opened read-only; one pass per series."""
    from monitor.store.influx import MEASUREMENT

    assert src.store is not None
    path = src.store / "store.sqlite" if src.store.is_dir() else src.store
    if not path.is_file():
        raise DataError(f"no embedded store at {path}")
    lo = src.since_ns if src.since_ns is not None else -(2**63)
    hi = src.until_ns if src.until_ns is not None else 2**63 - 1
    b = _Builder()
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT DISTINCT line_key FROM points WHERE line_key > ? AND line_key < ?",
                    (MEASUREMENT + ",", MEASUREMENT + "-"),
                )
            ]
            for key in keys:
                tags = _tags(key)
                rows = db.execute(
                    "SELECT ts_ns, fields FROM points WHERE line_key = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns",
                    (key, lo, hi),
                ).fetchall()
                parsed = [_fields(f) for _, f in rows]
                b.add(
                    tags.get("station", "?"),
                    tags.get("parameter", "?"),
                    [t for t, _ in rows],
                    [v for v, _ in parsed],
                    [f for _, f in parsed],
                )
        finally:
            db.close()
    except sqlite3.Error as e:
        raise DataError(f"embedded store {path}: {e}") from None
    return b.build(f"embedded store {path}", src)


def _http_get(url: str, headers: dict[str, str], what: str) -> Iterator[bytes]:
    """Lines of a GET; errors name the server and the status, never the credentials."""
    req = urllib.request.Request(url, headers=headers)
    where = urllib.parse.urlsplit(url)
    safe = f"{where.scheme}://{where.hostname}:{where.port or 80}{where.path}"
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            yield from resp
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")[:300]
        raise DataError(f"{what} {safe}: HTTP {e.code}: {body}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"{what} {safe}: {getattr(e, 'reason', e)}") from None


def _influx_v1(src: Source) -> Dataset:
    """InfluxDB 1.x through InfluxQL /query, chunked, per (station, parameter) series."""
    from monitor.store.influx import MEASUREMENT

    assert src.influx is not None
    if not src.database:
        raise UsageError("--influx needs --database")
    where = []
    if src.since_ns is not None:
        where.append(f"time >= {src.since_ns}")
    if src.until_ns is not None:
        where.append(f"time < {src.until_ns}")
    rp = f'"{src.retention_policy}".' if src.retention_policy else ""
    q = (
        f'SELECT "value", "flag" FROM {rp}"{MEASUREMENT}"'
        + (" WHERE " + " AND ".join(where) if where else "")
        + ' GROUP BY "station", "parameter"'
    )
    params = urllib.parse.urlencode(
        {"db": src.database, "q": q, "epoch": "ns", "chunked": "true", "chunk_size": "50000"}
    )
    headers = {}
    if src.username:
        import base64

        token = base64.b64encode(f"{src.username}:{src.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    series: dict[tuple[str, str], tuple[list[int], list[float], list[str | None]]] = {}
    for line in _http_get(f"{src.influx.rstrip('/')}/query?{params}", headers, "InfluxDB"):
        if not line.strip():
            continue
        doc = json.loads(line)
        if "error" in doc:
            raise DataError(f"InfluxDB: {doc['error']}")
        for result in doc.get("results", []):
            if "error" in result:
                raise DataError(f"InfluxDB: {result['error']}")
            for s in result.get("series", []):
                tags = s.get("tags", {})
                cols = s["columns"]
                iv, ifl = cols.index("value"), cols.index("flag") if "flag" in cols else None
                ts, vals, fls = series.setdefault((tags.get("station", "?"), tags.get("parameter", "?")), ([], [], []))
                for row in s["values"]:
                    if row[iv] is None:
                        continue
                    ts.append(int(row[0]))
                    vals.append(float(row[iv]))
                    fls.append(row[ifl] if ifl is not None else None)
    b = _Builder()
    for (st, pa), (ts, vals, fls) in series.items():
        b.add(st, pa, ts, vals, fls)
    return b.build(f"InfluxDB {src.influx} database {src.database}", src)


def _victoria(src: Source) -> Dataset:
    """VictoriaMetrics /api/v1/export of water_quality_value (milliseconds; string fields such as flags are lost)."""
    from monitor.store.influx import MEASUREMENT

    assert src.victoria is not None
    q: dict[str, str] = {"match[]": f'{{__name__="{MEASUREMENT}_value"}}'}
    q["start"] = f"{(src.since_ns or 0) / 1e9:.3f}"
    if src.until_ns is not None:
        q["end"] = f"{(src.until_ns - 1) / 1e9:.3f}"
    series: dict[tuple[str, str], dict[int, float]] = {}
    try:
        lines = list(
            _http_get(f"{src.victoria.rstrip('/')}/api/v1/export?{urllib.parse.urlencode(q)}", {}, "VictoriaMetrics")
        )
    except DataError as e:
        if "HTTP 404" in str(e):
            raise DataError(
                f"{e}: reading back works from VictoriaMetrics (/api/v1/export), InfluxDB 1.x and the "
                "embedded store, not from InfluxDB 2.x"
            ) from None
        raise
    for line in lines:
        if not line.strip():
            continue
        doc = json.loads(line)
        m = doc["metric"]
        pts = series.setdefault((m.get("station", "?"), m.get("parameter", "?")), {})
        for t, v in zip(doc["timestamps"], doc["values"], strict=True):
            pts.setdefault(int(t) * 1_000_000, float(v))
    b = _Builder()
    for (st, pa), pts in series.items():
        ts = sorted(pts)
        b.add(st, pa, ts, [pts[t] for t in ts])
    return b.build(f"VictoriaMetrics {src.victoria}", src)


# --------------------------------------------------------------------------- variants and sweeps


@dataclass
class Variant:
    name: str
    files: list[Path]
    thresholds: ThresholdSet
    sweep: str = ""  # "rules[0].rise_per_hour=0.0002" for a grid point (its files are edited copies)
    origin: list[Path] = field(default_factory=list)  # the files it was made from (a sweep's), else its own

    def describe(self) -> str:
        files = ", ".join(str(p) for p in (self.origin or self.files))
        return f"{files} with {self.sweep}" if self.sweep else files


def variant_names(groups: Sequence[Sequence[Path]]) -> list[str]:
    """Names from the files: what differs between the variants (else the last file); "variant N" on a tie."""
    common = set.intersection(*(set(map(str, g)) for g in groups)) if len(groups) > 1 else set()
    names = []
    for i, g in enumerate(groups):
        own = [Path(p).stem for p in g if str(p) not in common] if common else []
        own = own or ([Path(g[-1]).stem] if g else [])
        names.append(" + ".join(own) or f"variant {i + 1}")
    return [n if names.count(n) == 1 else f"variant {i + 1}" for i, n in enumerate(names)]


def load_variants(groups: Sequence[Sequence[Path]], sweeps: Sequence[str], workdir: Path) -> list[Variant]:
    """Each group of files is a variant; each point of the sweep grid is one more, made from the first."""
    if not groups:
        groups = [[shipped_path(), shipped_path("longjiang-stations.toml")]]
    names = variant_names(groups)
    variants = [
        Variant(n, list(map(Path, g)), _load(list(map(Path, g)), n)) for n, g in zip(names, groups, strict=True)
    ]
    axes = [(s.partition("=")[0].strip(), *parse_sweep(s)) for s in sweeps]
    base = variants[0]
    grid = itertools.product(*[[(name, path, v) for v in values] for name, path, values in axes]) if axes else iter(())
    for n, point in enumerate(grid):
        texts = [p.read_text(encoding="utf-8") for p in base.files]
        label = ", ".join(f"{name}={v}" for name, _, v in point)
        try:
            for _, path, v in point:
                texts = apply_sweep(texts, [str(p) for p in base.files], path, v)
        except tomllib.TOMLDecodeError as e:
            raise UsageError(
                f"--sweep {label}: the files are not valid TOML after the edit ({e}); "
                "riverwatch thresholds check names the line"
            ) from None
        files = []
        for i, (p, text) in enumerate(zip(base.files, texts, strict=True)):
            files.append(workdir / f"sweep-{n + 1}" / str(i) / p.name)
            files[-1].parent.mkdir(parents=True)
            files[-1].write_text(text, encoding="utf-8")
        variants.append(Variant(label, files, _load(files, label, base.files), sweep=label, origin=base.files))
    return variants


def _load(files: list[Path], name: str, shown: list[Path] | None = None) -> ThresholdSet:
    try:
        return load(files)
    except ThresholdError as e:
        text = str(e)
        for tmp, orig in zip(files, shown or files, strict=True):
            text = text.replace(str(tmp), f"{orig} ({name})" if shown else str(orig))
        raise UsageError(f"threshold files of variant {name!r} have problems:\n{text}") from None


_SEGMENT = re.compile(r"^([A-Za-z0-9_-]+)(?:\[([^\]]+)\])?$")


def parse_sweep(text: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """`rules[0].rise_per_hour=0.0001,0.0002` -> ([("rules", "0"), ("rise_per_hour", None)], ["0.0001", "0.0002"]).

    A path is TOML keys joined by dots; `rules[N]` is the N-th `[[rules]]` across the files (from 0), and
    `rules[NAME]` the rule with that name. Values are TOML literals (a bare word is taken as a string).
    """
    path, sep, values = text.partition("=")
    parts = [_SEGMENT.match(s.strip()) for s in path.strip().split(".")]
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not vals or any(m is None for m in parts) or len(parts) < 2:
        raise UsageError(
            f"--sweep {text!r}: expected TABLE.KEY=V1,V2 (e.g. rules[0].rise_per_hour=0.0001,0.0002 "
            "or screen.spike_window=6,12)"
        )
    return [(m.group(1), m.group(2)) for m in parts if m is not None], vals


def _toml_literal(value: str) -> str:
    try:
        tomllib.loads(f"x = {value}")
        return value
    except tomllib.TOMLDecodeError:
        return json.dumps(value, ensure_ascii=False)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*(\]\]?)\s*(?:#.*)?$")


def _header_path(text: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"').strip("'") for p in text.split("."))


def apply_sweep(texts: list[str], names: list[str], path: list[tuple[str, str | None]], value: str) -> list[str]:
    """Set one key in the TOML sources by editing their text (comments and line numbers stay, so the checker's
    `path:line` still points at the right place); the result is checked by parsing it back."""
    table = [seg for seg, _ in path[:-1]]
    key, index = path[-1]
    if index is not None:
        raise UsageError(f"--sweep: the last part ({key}[{index}]) must be a plain key")
    literal = _toml_literal(value)
    out = list(texts)
    target: tuple[int, int] | None = None  # (file, header line)
    rule_index = path[0][1] if path[0][0] == "rules" else None
    if rule_index is not None:
        if len(path) != 2:
            raise UsageError("--sweep: rules[N] takes one key, e.g. rules[0].window=6h")
        found = 0
        for fi, text in enumerate(out):
            data = tomllib.loads(text)
            headers = [
                i
                for i, line in enumerate(text.splitlines())
                if (m := _HEADER.match(line)) and m.group(1) == "[[" and _header_path(m.group(2)) == ("rules",)
            ]
            for hi, rule in zip(headers, data.get("rules", []), strict=False):
                if rule_index == str(found) or rule.get("name") == rule_index:
                    target = (fi, hi)
                    break
                found += 1
            if target:
                break
        if target is None:
            raise UsageError(f"--sweep: no rule {rule_index!r} in {', '.join(names)} ({found} [[rules]])")
    else:
        for fi, text in enumerate(out):
            for i, line in enumerate(text.splitlines()):
                m = _HEADER.match(line)
                if m and m.group(1) == "[" and _header_path(m.group(2)) == tuple(table):
                    target = (fi, i)
        if target is None:
            if len(table) != 1:
                raise UsageError(f"--sweep: no [{'.'.join(table)}] table in {', '.join(names)}")
            out[-1] = out[-1].rstrip("\n") + f"\n\n[{table[0]}]  # added by --sweep\n{key} = {literal}\n"
            return _verify(out, names, table, rule_index, key, literal)
    fi, hi = target
    lines = out[fi].splitlines(keepends=True)
    end = next((j for j in range(hi + 1, len(lines)) if _HEADER.match(lines[j])), len(lines))
    key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    new = f"{key} = {literal}  # set by --sweep\n"
    for j in range(hi + 1, end):
        if key_re.match(lines[j]):
            lines[j] = new
            break
    else:
        lines.insert(hi + 1, new)  # shifts the lines below by one; only for a key the file did not have
    out[fi] = "".join(lines)
    return _verify(out, names, table, rule_index, key, literal)


def _verify(
    texts: list[str], names: list[str], table: list[str], rule_index: str | None, key: str, literal: str
) -> list[str]:
    want = tomllib.loads(f"x = {literal}")["x"]
    for text in texts:
        data = tomllib.loads(text)
        if rule_index is not None:
            if any(r.get(key) == want for r in data.get("rules", [])):
                return texts
            continue
        node: Any = data
        for t in table:
            node = node.get(t, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and node.get(key) == want:
            return texts
    raise UsageError(f"--sweep: could not set {'.'.join(table)}.{key} in {', '.join(names)}")


# --------------------------------------------------------------------------- running the rules


@dataclass
class Run:
    """One variant's pass over the data: its events and what its screens set aside."""

    variant: Variant
    evaluator: Evaluator
    events: list[AlertEvent] = field(default_factory=list)
    screened: Counter[str] = field(default_factory=Counter)
    suspects: list[tuple[str, str, int, float, str]] = field(default_factory=list)
    seconds: float = 0.0


def run_rules(
    variants: Sequence[Variant],
    ds: Dataset,
    default_class: str = "III",
    batch: int = DEFAULT_BATCH,
    progress: bool = False,
    stats: SeriesStats | None = None,
    desc: str = "backtest",
) -> list[Run]:
    """Feed every variant's Evaluator the data in time order, one batch at a time; tally `stats` on the way."""
    from tqdm import tqdm

    runs = [Run(v, Evaluator(v.thresholds, default_class)) for v in variants]
    st_names = np.array(ds.stations, dtype=object)
    pa_names = np.array(ds.parameters, dtype=object)
    fl_names = np.array([None, *ds.flags], dtype=object)
    # The cyclic GC would walk every batch's 200k fresh tuples again and again (a third of the time); they are
    # freed by reference counting anyway, so it runs only every 64 batches here.
    gc_was_on = gc.isenabled()
    gc.disable()
    with (
        tqdm(
            total=ds.count,
            unit=" readings",
            unit_scale=True,
            file=sys.stderr,
            disable=not progress,
            desc=desc,
            dynamic_ncols=True,
            mininterval=0.5,
        ) as bar,
        _gc_restored(gc_was_on),
    ):
        for n, chunk in enumerate(ds.chunks(batch)):
            if not len(chunk):
                continue
            if n % 64 == 63:
                gc.collect()
            readings = to_readings(chunk, st_names, pa_names, fl_names)
            now = int(chunk.ts[-1])
            for run in runs:
                began = time.perf_counter()
                ev = run.evaluator
                run.events += ev.process(readings, now_ns=now)
                run.events += ev.tick(now)
                if ev.rules.suspects and len(run.suspects) < FLAGGED_KEEP:
                    run.suspects += ev.rules.suspects
                run.seconds += time.perf_counter() - began
            if stats is not None:
                stats.add(chunk)
            bar.update(len(chunk))
    for run in runs:
        run.screened = Counter(run.evaluator.rules.screened)
    return runs


@contextlib.contextmanager
def _gc_restored(on: bool) -> Iterator[None]:
    try:
        yield
    finally:
        if on:
            gc.enable()


# --------------------------------------------------------------------------- tallies over the readings


def class_limits(t: ThresholdSet, station: str, parameter: str) -> list[Limit]:
    """The limit of every class of the first standard that classes this parameter at this station (for bands
    and time above each class); empty when none does."""
    st = t.stations.get(station)
    lake = st is not None and st.water_body == "lake"
    for std in t.standards_for(station):
        item = std.items.get(parameter)
        if item is None or item.kind not in ("max", "min", "range") or not std.classes:
            continue
        table = item.lake_limits if lake and item.lake_limits else item.limits
        out = [
            Limit(
                parameter,
                item.kind,
                table[k],
                item.lows.get(k) if item.kind == "range" else None,
                item.unit,
                std.id,
                k,
                item.source,
            )
            for k in std.classes
            if k in table
        ]
        if out:
            return out
    return []


def station_classes(variants: Sequence[Variant], ds: Dataset, default_class: str) -> dict[str, set[str]]:
    """The classes the variants hold each station to (a [classes] policy can differ between variants)."""
    return {st: {v.thresholds.class_of(st, default_class)[0] for v in variants} for st in ds.stations}


def classes_of(t: ThresholdSet) -> list[str]:
    names: list[str] = []
    for std in t.standards:
        names += [c for c in std.classes if c not in names]
    return names


class SeriesStats:
    """Per-series tallies, streamed one chunk at a time in numpy: time above each class limit, measured
    exceedances, reading counts, and min/mean/max per time bucket for the plots.

    Only readings of the river count: instrument flags the service ignores or suspects are left out (and kept
    apart for the plots); a below-detection-limit reading counts as compliant with a maximum. A reading stands
    for the time until the next one of its series, at most HOLD_NS, so a gap is not counted as time above.
    Memory: O(series × classes) plus O(series × PLOT_BUCKETS) when plots are wanted.
    """

    def __init__(
        self,
        ds: Dataset,
        thresholds: ThresholdSet,
        buckets: int = 0,
        hold_ns: int = HOLD_NS,
        track: dict[str, set[str]] | None = None,
    ) -> None:
        self.ds = ds
        self.classes = classes_of(thresholds) or ["I", "II", "III", "IV", "V"]
        self.P = len(ds.parameters)
        n, k = len(ds.stations) * self.P, len(self.classes)
        self.n = n
        self.low = np.full((n, k), -np.inf)
        self.high = np.full((n, k), np.inf)
        self.has = np.zeros((n, k), dtype=bool)
        self.limits: dict[int, list[Limit]] = {}
        for si, st in enumerate(ds.stations):
            for pi, pa in enumerate(ds.parameters):
                s = si * self.P + pi
                lims = class_limits(thresholds, st, pa)
                self.limits[s] = lims
                for lim in lims:
                    ki = self.classes.index(lim.klass) if lim.klass in self.classes else -1
                    if ki < 0:
                        continue
                    self.has[s, ki] = True
                    if lim.kind in ("max", "range"):
                        self.high[s, ki] = lim.value
                    if lim.kind == "min":
                        self.low[s, ki] = lim.value
                    if lim.kind == "range" and lim.low is not None:
                        self.low[s, ki] = lim.low
        # Measured exceedances are kept for the classes the variants hold each station to (`track`), not for
        # every class: a series that hovers at the class I limit would otherwise flap into millions of them.
        self.track = np.ones((n, k), dtype=bool)
        if track is not None:
            for si, st in enumerate(ds.stations):
                want = np.array([c in track.get(st, set()) for c in self.classes])
                self.track[si * self.P : (si + 1) * self.P] = want
        lowered = [f.lower() for f in ds.flags]
        self.not_river = np.array([f in NOT_RIVER_FLAGS for f in lowered] + [False], dtype=bool)  # [-1]: none
        self.below_dl = np.array([f in DEFAULT_DL_FLAGS for f in lowered] + [False], dtype=bool)
        self.hold_ns = hold_ns
        self.count = np.zeros(n, dtype=np.int64)
        self.first_ts = np.full(n, -1, dtype=np.int64)
        self.last_ts = np.full(n, -1, dtype=np.int64)
        self.prev_ts = np.full(n, -1, dtype=np.int64)
        self.prev_viol = np.zeros((n, k), dtype=bool)
        self.above_s = np.zeros((n, k))
        self._marks: list[np.ndarray] = []  # rows (series, class, ts, +1 start / 0 end)
        self.buckets = buckets = min(buckets, max(100, 20_000_000 // max(n, 1))) if buckets else 0
        if buckets:
            span = max(ds.end_ns - ds.start_ns, 1)
            self.width = max(-(-span // buckets), 1)
            self.bmin = np.full(n * buckets, np.inf)
            self.bmax = np.full(n * buckets, -np.inf)
            self.bsum = np.zeros(n * buckets)
            self.bcnt = np.zeros(n * buckets, dtype=np.int64)
        self.flagged: list[Columns] = []
        self._flagged_n = 0

    def add(self, c: Columns) -> None:
        sid = c.station.astype(np.int64) * self.P + c.parameter
        self.count += np.bincount(sid, minlength=self.n)
        uniq, first = np.unique(sid, return_index=True)
        fresh = self.first_ts[uniq] < 0
        self.first_ts[uniq[fresh]] = c.ts[first[fresh]]
        self.last_ts[sid] = c.ts  # time order: the last write per series wins
        river = ~self.not_river[c.flag]
        if self._flagged_n < FLAGGED_KEEP and not river.all():
            bad = c.take(~river)
            self.flagged.append(bad)
            self._flagged_n += len(bad)
        if not river.all():
            c, sid = c.take(river), sid[river]
        if not len(c):
            return
        order = np.argsort(sid, kind="stable")  # by series, each in time order
        s, ts, v = sid[order], c.ts[order], c.value[order]
        dl = self.below_dl[c.flag[order]]
        over = np.where(dl, 0.0, v)[:, None] > self.high[s]
        viol = self.has[s] & (over | (v[:, None] < self.low[s]))
        head = np.ones(len(s), dtype=bool)
        head[1:] = s[1:] != s[:-1]
        prev_t = np.empty_like(ts)
        prev_t[1:] = ts[:-1]
        prev_t[head] = self.prev_ts[s[head]]
        prev_v = np.empty_like(viol)
        prev_v[1:] = viol[:-1]
        prev_v[head] = self.prev_viol[s[head]]
        dt = np.where(prev_t >= 0, np.minimum(ts - prev_t, self.hold_ns), 0) / NS_PER_S
        for k in range(viol.shape[1]):
            w = prev_v[:, k]
            if w.any():
                self.above_s[:, k] += np.bincount(s[w], weights=dt[w], minlength=self.n)
        changes = (viol != prev_v) & self.track[s]
        if changes.any():
            r, k = np.nonzero(changes)
            self._marks.append(np.stack([s[r], k, ts[r], viol[r, k].astype(np.int64)], axis=1))
        tail = np.ones(len(s), dtype=bool)
        tail[:-1] = s[:-1] != s[1:]
        self.prev_ts[s[tail]] = ts[tail]
        self.prev_viol[s[tail]] = viol[tail]
        if self.buckets:
            b = np.clip((ts - self.ds.start_ns) // self.width, 0, self.buckets - 1)
            key = s * self.buckets + b
            np.minimum.at(self.bmin, key, v)
            np.maximum.at(self.bmax, key, v)
            np.add.at(self.bsum, key, v)
            np.add.at(self.bcnt, key, 1)

    def series(self, station: str, parameter: str) -> int:
        return self.ds.stations.index(station) * self.P + self.ds.parameters.index(parameter)

    def exceedances(self) -> list[Exceedance]:
        """Measured exceedances: from the first reading over a class limit to the first reading back under it."""
        if not self._marks:
            return []
        m = np.concatenate(self._marks)
        m = m[np.lexsort((m[:, 2], m[:, 1], m[:, 0]))]
        out = []
        open_at: dict[tuple[int, int], int] = {}
        for s, k, t, start in m.tolist():
            if start:
                open_at[(s, k)] = t
            elif (s, k) in open_at:
                out.append(self._exceedance(s, k, open_at.pop((s, k)), t))
        out += [self._exceedance(s, k, t, None) for (s, k), t in open_at.items()]
        out.sort(key=lambda e: (e.start_ns, e.station, e.parameter, e.klass))
        return out

    def _exceedance(self, s: int, k: int, start: int, back: int | None) -> Exceedance:
        return Exceedance(
            self.ds.stations[s // self.P], self.ds.parameters[s % self.P], self.classes[k], start, back, "measured"
        )

    def plot_series(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bucket mid times, min, mean, max) of the non-empty buckets of series s."""
        sl = slice(s * self.buckets, (s + 1) * self.buckets)
        cnt = self.bcnt[sl]
        nz = np.flatnonzero(cnt)
        t = self.ds.start_ns + nz * self.width + self.width // 2
        return t, self.bmin[sl][nz], self.bsum[sl][nz] / cnt[nz], self.bmax[sl][nz]

    def flagged_points(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.flagged:
            return np.empty(0, np.int64), np.empty(0)
        c = Columns(
            *(
                np.concatenate([getattr(f, a) for f in self.flagged])
                for a in ("ts", "station", "parameter", "value", "flag")
            )
        )
        mine = (c.station.astype(np.int64) * self.P + c.parameter) == s
        return c.ts[mine], c.value[mine]


# --------------------------------------------------------------------------- scoring


@dataclass
class AlertSpan:
    """One alert (an alert id) from firing to resolved, as the lifecycle reported it."""

    alert_id: str
    station: str
    parameter: str
    rule: str
    started_ns: int
    resolved_ns: int | None
    severity: str  # the highest it reached
    peak_value: float
    peak_ratio: float
    limit: Limit
    escalations: int = 0
    verdict: str = ""  # "true" | "false" | "" (no reference for this series, or a no-data alert)


@dataclass
class Detection:
    exceedance: Exceedance
    first_alert: AlertSpan | None

    @property
    def latency_ns(self) -> int | None:
        return None if self.first_alert is None else self.first_alert.started_ns - self.exceedance.start_ns


@dataclass
class Score:
    run_name: str
    alerts: list[AlertSpan]
    reference: str  # "truth" | "measured"
    tolerance_ns: int
    detections: list[Detection]
    events: int

    @property
    def concentration(self) -> list[AlertSpan]:
        return [a for a in self.alerts if a.rule != "no_data"]

    @property
    def false_alerts(self) -> list[AlertSpan]:
        return [a for a in self.alerts if a.verdict == "false"]

    @property
    def missed(self) -> list[Detection]:
        return [d for d in self.detections if d.first_alert is None]

    def by_severity(self) -> Counter[str]:
        return Counter(a.severity for a in self.concentration)

    def first_latency(self) -> dict[tuple[str, str], Detection]:
        """Per series: the detection of its first exceedance (what "caught N minutes later" compares)."""
        out: dict[tuple[str, str], Detection] = {}
        for d in sorted(self.detections, key=lambda d: d.exceedance.start_ns):
            out.setdefault((d.exceedance.station, d.exceedance.parameter), d)
        return out


def spans(events: Iterable[AlertEvent], tiers: Sequence[tuple[float, str]]) -> list[AlertSpan]:
    """Alert events to one span per alert id, in order of start."""
    rank = {name: i for i, (_, name) in enumerate(tiers)}
    out: dict[str, AlertSpan] = {}
    for e in events:
        a = out.get(e.alert_id)
        if a is None:
            a = out[e.alert_id] = AlertSpan(
                e.alert_id,
                e.station,
                e.parameter,
                e.rule,
                e.started_ns,
                None,
                e.severity,
                e.peak_value,
                e.peak_ratio,
                e.limit,
            )
        if e.state == "escalated":
            a.escalations += 1
        if rank.get(e.severity, -1) > rank.get(a.severity, -1):
            a.severity = e.severity
        if e.state == "resolved":
            a.resolved_ns = e.ts_ns
        if e.peak_ratio >= a.peak_ratio:
            a.peak_value, a.peak_ratio = e.peak_value, e.peak_ratio
    return sorted(out.values(), key=lambda a: (a.started_ns, a.alert_id))


def score(
    run: Run, ds: Dataset, reference: list[Exceedance], default_class: str, tolerance_ns: int = DEFAULT_TOLERANCE_NS
) -> Score:
    """False alerts, detections, missed exceedances and latencies of one run against a reference."""
    alerts = spans(run.events, run.variant.thresholds.alerts.tiers)
    return score_alerts(
        run.variant.name, alerts, run.variant.thresholds, ds, reference, default_class, tolerance_ns, len(run.events)
    )


def score_alerts(
    name: str,
    alerts: list[AlertSpan],
    t: ThresholdSet,
    ds: Dataset,
    reference: list[Exceedance],
    default_class: str,
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
    events: int = 0,
) -> Score:
    """Judge alerts (of a run, or from the ledger) against the exceedances of each station's class limit."""
    klass = {st: t.class_of(st, default_class)[0] for st in ds.stations}
    mine: dict[tuple[str, str], list[Exceedance]] = {}
    for e in reference:
        if klass.get(e.station) == e.klass:
            mine.setdefault((e.station, e.parameter), []).append(e)
    source = reference[0].source if reference else "measured"
    for a in alerts:
        if a.rule == "no_data":
            continue
        windows = mine.get((a.station, a.parameter), [])
        until = a.resolved_ns if a.resolved_ns is not None else ds.end_ns
        inside = any(
            a.started_ns <= e.end(ds.end_ns) + tolerance_ns and until >= e.start_ns - tolerance_ns for e in windows
        )
        a.verdict = "true" if inside else "false"
    detections = []
    for key, eps in mine.items():
        if not _judges(t, key[0], key[1], default_class):
            continue
        candidates = [a for a in alerts if (a.station, a.parameter) == key and a.rule != "no_data"]
        for e in eps:
            lo, hi = e.start_ns - tolerance_ns, e.end(ds.end_ns) + tolerance_ns
            hits = [a for a in candidates if a.started_ns <= hi and (a.resolved_ns is None or a.resolved_ns >= lo)]
            detections.append(Detection(e, min(hits, key=lambda a: a.started_ns) if hits else None))
    detections.sort(key=lambda d: (d.exceedance.start_ns, d.exceedance.station, d.exceedance.parameter))
    return Score(name, alerts, source, tolerance_ns, detections, events)


def _judges(t: ThresholdSet, station: str, parameter: str, default_class: str) -> bool:
    """Whether the variant evaluates this series at all (a parameter without a limit cannot miss anything)."""
    return t.spec(station, parameter, default_class) is not None


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A titled table that prints as aligned text and renders as HTML (monitor.offline.report)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    right: set[int] = field(default_factory=set)  # right-aligned column indices

    def text(self) -> str:
        widths = [max([len(h)] + [len(r[i]) for r in self.rows]) for i, h in enumerate(self.header)]

        def fmt(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in self.right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [self.title, fmt(self.header)] + [fmt(r) for r in self.rows]
        if not self.rows:
            lines.append("  (none)")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def tz_of(offset: str | None) -> timezone:
    """`+08:00` -> a fixed offset; None -> this machine's local offset (as notifications do)."""
    from monitor.notify.notifier import parse_offset

    tz = parse_offset(offset)
    if isinstance(tz, timezone):
        return tz
    local = datetime.now().astimezone().tzinfo
    return local if isinstance(local, timezone) else UTC


def when(ts_ns: int | None, tz: timezone) -> str:
    if ts_ns is None:
        return "-"
    return datetime.fromtimestamp(ts_ns / 1e9, tz).strftime("%Y-%m-%d %H:%M")


def offset_label(tz: timezone) -> str:
    off = tz.utcoffset(None) or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def duration(ns: int) -> str:
    """A human duration: "40 min", "2 h 05 min", "3 d 4 h"."""
    minutes = round(abs(ns) / NS_PER_MIN)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h" + (f" {minutes % 60:02d} min" if minutes % 60 else "")
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def latency_text(ns: int | None) -> str:
    if ns is None:
        return "missed"
    return ("-" if ns < 0 else "+") + duration(ns)


def station_label(station: str) -> str:
    """How the summary names a station: its id, capitalised when it is a plain word ("Lalang")."""
    return station.capitalize() if re.fullmatch(r"[a-z][a-z-]*", station) else station


def _unit(parameter: str) -> str:
    p = PARAMETERS.get(parameter)
    return f" {p.unit}" if p is not None and p.unit else ""


def _rule_label(a: AlertSpan) -> str:
    key = a.alert_id.split("/")[2] if a.alert_id.count("/") == 3 else ""
    return f"{a.rule} ({key})" if key and key != a.rule else a.rule


def variant_tables(sc: Score, v: Variant, ds: Dataset, default_class: str, tz: timezone) -> list[Table]:
    """A variant's alerts by severity, false alerts and missed exceedances, and detection latency per station."""
    return score_tables(
        sc, f"variant {v.name!r}: {v.describe()}", [name for _, name in v.thresholds.alerts.tiers], ds, tz
    )


def score_tables(sc: Score, title: str, order: Sequence[str], ds: Dataset, tz: timezone) -> list[Table]:
    """The tables of one set of scored alerts (a variant's, or the ledger's for a report)."""
    sev = sc.by_severity()
    order = [*order, *sorted(s for s in sev if s not in order)]
    ref = "the ground truth" if sc.reference == "truth" else "the measured readings (no ground truth)"
    tol = duration(sc.tolerance_ns)
    no_data = len(sc.alerts) - len(sc.concentration)
    summary = Table(
        title,
        ["alerts", *order, "escalations", "no-data", "false alerts", "missed exceedances"],
        [
            [
                str(len(sc.concentration)),
                *(str(sev.get(s, 0)) for s in order),
                str(sum(a.escalations for a in sc.concentration)),
                str(no_data),
                str(len(sc.false_alerts)),
                f"{len(sc.missed)} of {len(sc.detections)}",
            ]
        ],
        note=(
            f"alerts by the highest severity each reached; false = open only outside every exceedance of the "
            f"station's class limit in {ref}, widened by {tol} on both sides; missed = no alert open within "
            "that window"
        ),
        right=set(range(4 + len(order))),
    )
    rows = []
    for (station, parameter), d in sorted(sc.first_latency().items(), key=lambda kv: kv[1].exceedance.start_ns):
        e = d.exceedance
        a = d.first_alert
        rows.append(
            [
                station,
                parameter,
                e.klass,
                when(e.start_ns, tz),
                when(a.started_ns if a else None, tz),
                latency_text(d.latency_ns),
                _rule_label(a) if a else "-",
                a.severity if a else "-",
            ]
        )
    kind = "true" if sc.reference == "truth" else "measured"
    lat = Table(
        f"detection latency per station (first alert − first {kind} crossing of the station's class limit; "
        f"times {offset_label(tz)})",
        ["station", "param", "class", "crossing", "first alert", "latency", "rule", "severity"],
        rows,
        note="negative latency: the alert came before the crossing (an early warning)",
        right={5},
    )
    out = [summary, lat] if sc.detections else [summary]
    if sc.false_alerts:
        out.append(
            Table(
                f"false alerts of {sc.run_name!r}",
                ["alert", "rule", "fired", "resolved", "severity", "peak"],
                [
                    [
                        a.alert_id,
                        _rule_label(a),
                        when(a.started_ns, tz),
                        when(a.resolved_ns, tz),
                        a.severity,
                        f"{a.peak_value:.4g}{_unit(a.parameter)}",
                    ]
                    for a in sc.false_alerts[:200]
                ],
                note=f"{len(sc.false_alerts) - 200} more in the alerts file" if len(sc.false_alerts) > 200 else "",
            )
        )
    if sc.missed:
        out.append(
            Table(
                f"missed exceedances of {sc.run_name!r}",
                ["station", "param", "class", "from", "back", "lasted"],
                [
                    [
                        d.exceedance.station,
                        d.exceedance.parameter,
                        d.exceedance.klass,
                        when(d.exceedance.start_ns, tz),
                        when(d.exceedance.back_ns, tz),
                        duration(d.exceedance.end(ds.end_ns) - d.exceedance.start_ns),
                    ]
                    for d in sc.missed[:200]
                ],
            )
        )
    return out


def screened_table(runs: Sequence[Run]) -> Table | None:
    reasons = sorted({r for run in runs for r in run.screened})
    if not reasons:
        return None
    return Table(
        "readings the screens set aside (not alarmed on)",
        ["variant", *reasons],
        [[run.variant.name, *(str(run.screened.get(r, 0)) for r in reasons)] for run in runs],
        right=set(range(1, len(reasons) + 1)),
    )


def comparison_table(scores: Sequence[Score]) -> Table:
    rows = []
    for sc in scores:
        lats = [d.latency_ns for d in sc.first_latency().values() if d.latency_ns is not None]
        rows.append(
            [
                sc.run_name,
                str(len(sc.concentration)),
                str(len(sc.false_alerts)),
                f"{len(sc.missed)}/{len(sc.detections)}",
                latency_text(int(np.median(lats))) if lats else "-",
                latency_text(max(lats)) if lats else "-",
            ]
        )
    return Table(
        "variants side by side (one row per variant)",
        ["variant", "alerts", "false", "missed", "median latency", "worst latency"],
        rows,
        right={1, 2, 3, 4, 5},
    )


def time_above_table(stats: SeriesStats, truth: list[Exceedance] | None, end_ns: int) -> Table:
    """Hours each series spent above each class limit: measured from the readings, and true where known."""
    true_h: dict[tuple[str, str, str], float] = {}
    for e in truth or []:
        key = (e.station, e.parameter, e.klass)
        true_h[key] = true_h.get(key, 0.0) + (e.end(end_ns) - e.start_ns) / NS_PER_HOUR
    rows = []
    for si, st in enumerate(stats.ds.stations):
        for pi, pa in enumerate(stats.ds.parameters):
            s = si * stats.P + pi
            if not stats.has[s].any():
                continue
            cells = []
            for k, klass in enumerate(stats.classes):
                if not stats.has[s, k]:
                    cells.append("-")
                    continue
                h = stats.above_s[s, k] / 3600
                cell = f"{h:.1f}"
                if truth is not None:
                    cell += f" ({true_h.get((st, pa, klass), 0.0):.1f})"
                cells.append(cell)
            if any(c not in ("-", "0.0", "0.0 (0.0)") for c in cells):
                rows.append([st, pa, *cells])
    note = (
        f"each valid reading stands until the next one of its series (at most {duration(stats.hold_ns)}); "
        "flagged instrument checks are left out"
    )
    if truth is not None:
        note += "; in brackets: the true hours from the ground truth"
    return Table(
        "hours above each class limit (series never above any are left out)",
        ["station", "param", *stats.classes],
        rows,
        note=note,
        right=set(range(2, 2 + len(stats.classes))),
    )


def summary_sentence(first: Score, other: Score) -> str:
    """ "3 fewer false alarms on the baseline, Lalang caught 40 minutes later": one variant against the first."""
    parts = []
    df = len(other.false_alerts) - len(first.false_alerts)
    parts.append(
        f"{abs(df)} {'fewer' if df < 0 else 'more'} false alarm{'s' if abs(df) != 1 else ''} "
        f"({len(other.false_alerts)} against {len(first.false_alerts)})"
        if df
        else f"as many false alarms ({len(first.false_alerts)})"
    )
    dm = len(other.missed) - len(first.missed)
    if dm:
        parts.append(f"{abs(dm)} {'fewer' if dm < 0 else 'more'} missed exceedance{'s' if abs(dm) != 1 else ''}")
    base, mine = first.first_latency(), other.first_latency()
    params = {k[1] for k in base} | {k[1] for k in mine}
    moves, same = [], 0
    for key in sorted(set(base) & set(mine), key=lambda k: base[k].exceedance.start_ns):
        name = station_label(key[0]) + (f" {key[1]}" if len(params) > 1 else "")
        a, b = base[key].latency_ns, mine[key].latency_ns
        if a is None and b is None:
            continue
        if a is None:
            moves.append(f"{name} now caught")
        elif b is None:
            moves.append(f"{name} now missed")
        elif abs(b - a) < NS_PER_MIN:
            same += 1
        else:
            moves.append(f"{name} caught {duration(b - a)} {'later' if b > a else 'earlier'}")
    if moves:
        parts.append(
            ", ".join(moves) + (f"; {same} other station{'s' if same != 1 else ''} at the same time" if same else "")
        )
    elif same:
        parts.append("every station caught at the same time")
    return f"{other.run_name} against {first.run_name}: " + ", ".join(parts) + "."


# --------------------------------------------------------------------------- alerts file


def write_alerts(path: Path, runs: Sequence[Run], scores: Sequence[Score], tz: timezone) -> int:
    """Every transition of every variant, as CSV or JSON (by the file's extension); returns the row count."""
    rows = []
    for run, sc in zip(runs, scores, strict=True):
        verdict = {a.alert_id: a.verdict for a in sc.alerts}
        for e in run.events:
            rows.append(
                {
                    "variant": run.variant.name,
                    "alert_id": e.alert_id,
                    "state": e.state,
                    "station": e.station,
                    "parameter": e.parameter,
                    "rule": e.rule,
                    "time": datetime.fromtimestamp(e.ts_ns / 1e9, tz).isoformat(),
                    "ts_ns": e.ts_ns,
                    "value": e.value,
                    "unit": _unit(e.parameter).strip(),
                    "ratio": e.ratio,
                    "severity": e.severity,
                    "limit": e.limit.value,
                    "limit_text": e.limit.describe(),
                    "started": datetime.fromtimestamp(e.started_ns / 1e9, tz).isoformat(),
                    "peak_value": e.peak_value,
                    "peak_ratio": e.peak_ratio,
                    "verdict": verdict.get(e.alert_id, "") if e.state == "firing" else "",
                    "detail": e.detail,
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1, default=_json_default) + "\n", encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, list(rows[0]) if rows else ["variant", "alert_id", "state"], lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return len(rows)


def _json_default(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    raise TypeError(type(x).__name__)


# --------------------------------------------------------------------------- the command


def run_backtest(
    thresholds: Sequence[Sequence[Path]],
    data: Source,
    sweep: Sequence[str] = (),
    out_dir: Path | None = None,
    alerts_out: Path | None = None,
    plots: bool = False,
    html: Path | None = None,
    progress: bool = True,
    *,
    default_class: str = "III",
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
    batch: int = DEFAULT_BATCH,
    utc_offset: str | None = None,
    out: TextIO | None = None,
) -> int:
    """`riverwatch backtest`: prints a table per variant (and one row per variant with several); 0, 1 or 2."""
    out = out or sys.stdout
    try:
        tz = tz_of(utc_offset)
        with tempfile.TemporaryDirectory(prefix="riverwatch-sweep-") as tmp:
            variants = load_variants(thresholds, sweep, Path(tmp))
            ds = load_source(data)
        return _backtest(
            variants, ds, out_dir, alerts_out, plots, html, progress, default_class, tolerance_ns, batch, tz, out
        )
    except UsageError as e:
        print(f"riverwatch backtest: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"riverwatch backtest: {e}", file=sys.stderr)
        return 1


def _backtest(
    variants: list[Variant],
    ds: Dataset,
    out_dir: Path | None,
    alerts_out: Path | None,
    plots: bool,
    html: Path | None,
    progress: bool,
    default_class: str,
    tolerance_ns: int,
    batch: int,
    tz: timezone,
    out: TextIO,
) -> int:
    for note in ds.notes:
        print(f"riverwatch backtest: {note}", file=sys.stderr)
    if not ds.count:
        print(f"riverwatch backtest: no readings in {ds.label}", file=sys.stderr)
        return 1
    want_images = plots or html is not None
    stats = SeriesStats(
        ds,
        variants[0].thresholds,
        PLOT_BUCKETS if want_images else 0,
        track=station_classes(variants, ds, default_class),
    )
    began = time.perf_counter()
    runs = run_rules(variants, ds, default_class, batch, progress, stats)
    elapsed = time.perf_counter() - began
    reference = ds.truth if ds.truth is not None else stats.exceedances()
    scores = [score(r, ds, reference, default_class, tolerance_ns) for r in runs]
    head = (
        f"{ds.label}: {ds.count:,} readings, {len(ds.stations)} stations, {when(ds.start_ns, tz)} to "
        f"{when(ds.end_ns, tz)} ({offset_label(tz)}); {len(variants)} variant(s) in {elapsed:.1f} s "
        f"({ds.count * len(variants) / max(elapsed, 1e-9):,.0f} readings/s)"
    )
    tables: list[Table] = []
    for run, sc in zip(runs, scores, strict=True):
        tables += variant_tables(sc, run.variant, ds, default_class, tz)
    if (screened := screened_table(runs)) is not None:
        tables.append(screened)
    if len(scores) > 1:
        tables.append(comparison_table(scores))
    tables.append(time_above_table(stats, ds.truth, ds.end_ns))
    sentences = [summary_sentence(scores[0], sc) for sc in scores[1:]]
    print(head, file=out)
    for tb in tables:
        print("\n" + tb.text(), file=out)
    if sentences:
        print("\n" + "\n".join(sentences), file=out)
    if alerts_out is not None:
        n = write_alerts(alerts_out, runs, scores, tz)
        print(f"\n{n} alert transitions written to {alerts_out}", file=out)
    if want_images:
        from monitor.offline.plots import AlertMarks, station_pngs
        from monitor.offline.report import write_html

        marks = [AlertMarks(sc.run_name, sc.alerts, run.suspects) for sc, run in zip(scores, runs, strict=True)]
        images = station_pngs(stats, variants[0].thresholds, default_class, marks, reference, tz, progress=progress)
        if plots:
            folder = out_dir or Path("riverwatch-backtest")
            folder.mkdir(parents=True, exist_ok=True)
            for name, png in images:
                (folder / f"{_safe(name)}.png").write_bytes(png)
            print(f"{len(images)} plot(s) written to {folder}", file=out)
        if html is not None:
            write_html(html, f"riverwatch backtest: {ds.label}", [head, *sentences], tables, images)
            print(f"HTML report written to {html}", file=out)
    out.flush()
    return 0


def _safe(name: str) -> str:
    """A station id as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "station"


# --------------------------------------------------------------------------- command line


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
        p.add_argument("--seed", type=int, help="scenario seed (default: the scenario's own)")
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
    )


def _source(args: argparse.Namespace, tz: timezone) -> Source:
    return Source(
        scenario=getattr(args, "scenario", None),
        seed=getattr(args, "seed", None),
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
    from monitor.offline.report import run_report

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
