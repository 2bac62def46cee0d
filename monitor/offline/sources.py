"""Where a backtest or a report reads its readings: a scenario, replay CSV, the embedded store, InfluxDB 1.x
or VictoriaMetrics, each into one time-ordered `Dataset`.

A scenario comes with its ground truth, a CSV with an optional ground-truth file. A CSV goes through the
service's own decoder, so what the service would reject is rejected here too (and counted in a note).
The databases are read per (station, parameter) series and sorted into time order once, at the end.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.domain.reading import Reading
from monitor.ingest.decode import decode
from monitor.offline.dataset import Columns, Dataset, Exceedance, clip, from_readings
from monitor.offline.errors import DataError, UsageError
from monitor.store.lineprotocol import MEASUREMENT, reading_fields, series_tags
from simulators.faults import Fault
from simulators.replaycsv import csv_messages, parse_ts, read_csv
from simulators.scenarios import make_scenario


@dataclass(frozen=True)
class Source:
    """Where the readings come from; exactly one of scenario, csv, store, influx, victoria."""

    scenario: str | None = None
    seed: int | None = None  # None: the scenario's own (as `riverwatch simulate`)
    days: float | None = None  # None: the scenario's own length
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
        ds.faults = read_faults(src.ground_truth)
    if ds.truth is not None:
        ds.truth = clip(ds.truth, ds.start_ns, ds.end_ns)
    return ds


def _window(src: Source, readings: list[Reading]) -> list[Reading]:
    if src.since_ns is None and src.until_ns is None:
        return readings
    lo = src.since_ns if src.since_ns is not None else -(2**63)
    hi = src.until_ns if src.until_ns is not None else 2**63 - 1
    return [r for r in readings if lo <= r.ts_ns < hi]


def _scenario(src: Source) -> Dataset:
    assert src.scenario is not None
    try:
        scenario = make_scenario(src.scenario, src.seed, days=src.days)
    except ValueError as e:
        raise UsageError(f"--scenario {src.scenario}: {e}") from None
    readings = _window(src, scenario.readings())
    gt = scenario.ground_truth()
    truth = [Exceedance(e.station, e.parameter, e.klass, e.start_ns, e.back_ns, "truth", e.worst) for e in gt.episodes]
    label = f"scenario {scenario.name} (seed {scenario.seed})"
    ds = from_readings(readings, label, src.since_ns or scenario.start_ns, src.until_ns or scenario.end_ns, truth)
    ds.faults = list(scenario.faults())
    return ds


def _csv(src: Source) -> Dataset:
    """Replay CSV through the service's own decoder (units, aliases, below-DL, negatives) via replay's messages."""
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


def read_faults(path: Path) -> list[Fault]:
    """The injected faults of a ground-truth JSON (empty when it lists none, as a CSV-only truth file)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [
            Fault(
                f["station"],
                f["parameter"],
                f["kind"],
                parse_ts(f["from"]),
                parse_ts(f["until"]),
                size=float(f.get("size", 0.0)),
                flagged=bool(f.get("flagged", True)),
            )
            for f in doc.get("faults", [])
        ]
    except OSError as e:
        raise UsageError(f"--ground-truth {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"--ground-truth {path}: bad faults list ({type(e).__name__}: {e})") from None


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


def _embedded_store(src: Source) -> Dataset:
    """The embedded SQLite store (`points(line_key, ts_ns, fields)`), opened read-only; one pass per series."""
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
                tags = series_tags(key)
                rows = db.execute(
                    "SELECT ts_ns, fields FROM points WHERE line_key = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns",
                    (key, lo, hi),
                ).fetchall()
                parsed = [reading_fields(f) for _, f in rows]
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


# VictoriaMetrics keeps a string field only as a series of zeros at the points that had it (measured on 1.79:
# `flag="calibration"` becomes water_quality_flag 0): which readings carried an instrument flag is known, the
# flag is not. Such a reading is read back with this flag, which the screens set aside (`suspect`, by default
# never judged), so calibration readings are not counted as alerts (issue 17: 49 alerts from VictoriaMetrics
# where the same data gave 7). A below-detection-limit reading (`<DL`) comes back as suspect too.
VICTORIA_FLAG = "suspect"


def _victoria(src: Source) -> Dataset:
    """VictoriaMetrics /api/v1/export of water_quality_value (milliseconds) and of water_quality_flag, where
    the readings that carried a flag are (not which flag: see VICTORIA_FLAG)."""
    assert src.victoria is not None
    values = _victoria_export(src, f"{MEASUREMENT}_value")
    flagged = _victoria_export(src, f"{MEASUREMENT}_flag")
    b = _Builder()
    for key, pts in values.items():
        ts = sorted(pts)
        marks = flagged.get(key, {})
        flags = [VICTORIA_FLAG if t in marks else None for t in ts] if marks else None
        b.add(*key, ts, [pts[t] for t in ts], flags)
    return b.build(f"VictoriaMetrics {src.victoria}", src)


def _victoria_export(src: Source, metric: str) -> dict[tuple[str, str], dict[int, float]]:
    """(station, parameter) -> {ts_ns: value} of one metric, the first sample of a duplicated time."""
    assert src.victoria is not None
    q: dict[str, str] = {"match[]": f'{{__name__="{metric}"}}'}
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
    return series
