"""`riverwatch backtest`: the live rules and alerts, run offline over recorded or simulated data, scored.

Why it exists: an engineer who edits a threshold file wants to know, before it goes live, how many alerts it
would have raised, how many of them were false, and how much earlier or later it catches a plume. This is the
command's flow: load the variants and the data, replay (monitor.offline.replay), score, print the tables, and
write the alerts file, the plots and the HTML report when asked.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from monitor.offline.dataset import Dataset
from monitor.offline.errors import DataError, UsageError
from monitor.offline.evidence import evidence
from monitor.offline.evidencetables import evidence_tables
from monitor.offline.forecast_run import forecast_report
from monitor.offline.htmlfile import write_html
from monitor.offline.plots import AlertMarks, file_name, station_pngs
from monitor.offline.replay import DEFAULT_BATCH, Run, run_rules
from monitor.offline.scoring import DEFAULT_TOLERANCE_NS, Score, score
from monitor.offline.sources import Source, load_source
from monitor.offline.tables import (
    Table,
    comparison_table,
    offset_label,
    screened_table,
    summary_sentence,
    time_above_table,
    tz_of,
    unit_suffix,
    variant_tables,
    when,
)
from monitor.offline.tallies import PLOT_BUCKETS, SeriesStats, station_classes
from monitor.offline.variants import Variant, load_variants


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
    forecasts: Path | None = None,
) -> int:
    """`riverwatch backtest`: prints a table per variant (and one row per variant with several); 0, 1 or 2."""
    out = out or sys.stdout
    try:
        tz = tz_of(utc_offset)
        with tempfile.TemporaryDirectory(prefix="riverwatch-sweep-") as tmp:
            variants = load_variants(thresholds, sweep, Path(tmp))
            ds = load_source(data)
        return _backtest(
            variants,
            ds,
            out_dir,
            alerts_out,
            plots,
            html,
            progress,
            default_class,
            tolerance_ns,
            batch,
            tz,
            out,
            forecasts,
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
    forecasts: Path | None = None,
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
        tables += evidence_tables(evidence(sc, ds), run.variant.name, tz, ds.faults is not None)
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
    if forecasts is not None:
        print("\n" + "\n".join(forecast_report(variants[0].thresholds, ds, default_class, forecasts)), file=out)
    if want_images:
        marks = [AlertMarks(sc.run_name, sc.alerts, run.suspects) for sc, run in zip(scores, runs, strict=True)]
        images = station_pngs(stats, variants[0].thresholds, default_class, marks, reference, tz, progress=progress)
        if plots:
            folder = out_dir or Path("riverwatch-backtest")
            folder.mkdir(parents=True, exist_ok=True)
            for name, png in images:
                (folder / f"{file_name(name)}.png").write_bytes(png)
            print(f"{len(images)} plot(s) written to {folder}", file=out)
        if html is not None:
            write_html(html, f"riverwatch backtest: {ds.label}", [head, *sentences], tables, images)
            print(f"HTML report written to {html}", file=out)
    out.flush()
    return 0


def write_alerts(path: Path, runs: Sequence[Run], scores: Sequence[Score], tz: timezone) -> int:
    """Every transition of every variant, as CSV or JSON (by the file's extension); returns the row count.
    `category` is water or sensor; `confirmed` false for an unconfirmed first notice and its withdrawal; the
    verdict (true/false against the reference) is on an alert's first row (unconfirmed or firing)."""
    rows = []
    for run, sc in zip(runs, scores, strict=True):
        verdict = {a.alert_id: a.verdict for a in sc.alerts}
        for e in run.events:
            first = e.state == "firing" or e.state == "unconfirmed"
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
                    "unit": unit_suffix(e.parameter).strip(),
                    "ratio": e.ratio,
                    "severity": e.severity,
                    "limit": e.limit.value,
                    "limit_text": e.limit.describe(),
                    "started": datetime.fromtimestamp(e.started_ns / 1e9, tz).isoformat(),
                    "peak_value": e.peak_value,
                    "peak_ratio": e.peak_ratio,
                    "verdict": verdict.get(e.alert_id, "") if first else "",
                    "detail": e.detail,
                    "category": e.category,
                    "confirmed": "true" if e.confirmed else "false",
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
