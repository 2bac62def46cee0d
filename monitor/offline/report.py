"""`riverwatch report`: the after-action report of a time range of live data.

The report is the after-action view of an incident: the readings of a time range read back from the
database (InfluxDB 1.x, VictoriaMetrics or the embedded store), the alerts that were sent (the ledger,
`alerts.sqlite`), the time each station spent above each class limit, how long after the measured crossing
the first alert went out, and one plot per station, printed and written as one HTML file
(monitor.offline.htmlfile).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import TextIO

from monitor.alerts.ledger import Ledger
from monitor.config import Config, ConfigError, load_config
from monitor.offline.errors import DataError, UsageError
from monitor.offline.htmlfile import write_html
from monitor.offline.plots import AlertMarks, file_name, station_pngs
from monitor.offline.replay import run_rules
from monitor.offline.scoring import NOTICE_STATES, AlertSpan, score_alerts
from monitor.offline.sources import Source, load_source
from monitor.offline.tables import Table, duration, offset_label, score_tables, time_above_table, tz_of, when
from monitor.offline.tallies import PLOT_BUCKETS, SeriesStats
from monitor.thresholds import Limit, ThresholdError, ThresholdSet, load, load_or_shipped


def _ledger_spans(
    data_dir: Path,
    since_ns: int | None,
    until_ns: int | None,
    thresholds: ThresholdSet,
    default_class: str,
    tz: timezone,
) -> tuple[list[AlertSpan], list[list[str]], Path]:
    """The ledger's alerts open at any time in [since, until), as spans, and as rows of the sent-alerts table."""
    path = data_dir / "alerts.sqlite"
    if not path.is_file():
        return [], [], path
    ledger = Ledger(path)
    try:
        records = ledger.alerts()
    finally:
        ledger.close()
    lo = since_ns if since_ns is not None else -(2**63)
    hi = until_ns if until_ns is not None else 2**63 - 1
    spans, rows = [], []
    for a in records:
        if a.started_ns >= hi or (a.resolved_ns is not None and a.resolved_ns < lo):
            continue
        limit = thresholds.limit(a.station, a.parameter, default_class, a.started_ns) if a.parameter != "*" else None
        lim = Limit(
            a.parameter,
            limit.kind if limit else "max",
            a.limit_value,
            None,
            limit.unit if limit else "",
            limit.standard if limit else "",
            limit.klass if limit else "",
            "",
        )
        spans.append(
            AlertSpan(
                a.alert_id,
                a.station,
                a.parameter,
                a.rule,
                a.started_ns,
                a.resolved_ns,
                a.severity,
                a.peak_value,
                a.peak_ratio,
                lim,
                category=a.category,
                first_ns=a.started_ns,
                # the ledger keeps an alert's last state: a notice still unconfirmed or withdrawn was never an alert
                confirmed_ns=None if a.state in NOTICE_STATES else a.started_ns,
                noticed=a.state in NOTICE_STATES,
                withdrawn=a.state == "withdrawn",
            )
        )
        rows.append(
            [
                a.alert_id,
                a.rule,
                a.state,
                a.severity,
                when(a.started_ns, tz),
                when(a.resolved_ns, tz) if a.resolved_ns is not None else "open",
                f"{a.peak_value:.4g}",
                f"{a.peak_ratio:.3g}",
                a.incident_id or "",
                when(a.last_sent_ns, tz),
                a.acked_by or "",
            ]
        )
    return spans, rows, path


def run_report(
    config: Path | None = None,
    data_dir: Path | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    out_dir: Path | None = None,
    html: Path | None = None,
    *,
    thresholds: Sequence[Path] = (),
    source: Source | None = None,
    progress: bool = True,
    utc_offset: str | None = None,
    out: TextIO | None = None,
) -> int:
    """`riverwatch report`: tables on stdout, one PNG per station in out_dir, one HTML; exit 0, 1 or 2."""
    out = out or sys.stdout
    try:
        cfg = load_config(config, secrets=("influxdb",))  # the database's password, no notification token
        tz = tz_of(utc_offset or cfg.notify.utc_offset)
        store_dir = source.store if source is not None and source.store is not None and source.store.is_dir() else None
        folder = data_dir or store_dir or cfg.service.data_dir  # where the ledger is
        files = list(thresholds) or load_or_shipped(cfg.thresholds.files)[0]
        t = load(files)
        src = source or _configured_source(cfg, data_dir, since_ns, until_ns)
        ds = load_source(src)
    except (ConfigError, UsageError) as e:
        print(f"riverwatch report: {e}", file=sys.stderr)
        return 2
    except ThresholdError as e:
        print(f"riverwatch report: bad threshold files:\n{e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"riverwatch report: {e}", file=sys.stderr)
        return 1
    default_class = cfg.thresholds.default_class
    spans, sent_rows, ledger_path = _ledger_spans(folder, since_ns, until_ns, t, default_class, tz)
    if not ds.count and not spans:
        print(
            f"riverwatch report: no readings in {ds.label} and no alerts in {ledger_path} for that time range",
            file=sys.stderr,
        )
        return 1
    if not ds.count:
        ds.start_ns = since_ns if since_ns is not None else min(a.started_ns for a in spans)
        ds.end_ns = until_ns if until_ns is not None else max(a.resolved_ns or a.started_ns for a in spans) + 1
    stats = SeriesStats(ds, t, PLOT_BUCKETS, track={st: {t.class_of(st, default_class)[0]} for st in ds.stations})
    run_rules([], ds, default_class, progress=progress, stats=stats, desc="report")
    reference = stats.exceedances()
    sc = score_alerts("alerts sent", spans, t, ds, reference, default_class)
    head = (
        f"{ds.label}: {ds.count:,} readings, {len(ds.stations)} stations, {when(ds.start_ns, tz)} to "
        f"{when(ds.end_ns, tz)} ({offset_label(tz)}); {len(spans)} alert(s) in {ledger_path}"
    )
    tables = [
        Table(
            f"alerts sent (from {ledger_path}; times {offset_label(tz)})",
            [
                "alert",
                "rule",
                "state",
                "severity",
                "started",
                "resolved",
                "peak",
                "ratio",
                "incident",
                "last sent",
                "acked by",
            ],
            sent_rows,
            right={6, 7},
        )
    ]
    tables += score_tables(sc, "alerts sent in the time range", [name for _, name in t.alerts.tiers], ds, tz)
    tables.append(time_above_table(stats, None, ds.end_ns))
    print(head, file=out)
    for tb in tables:
        print("\n" + tb.text(), file=out)
    want = out_dir is not None or html is not None
    images = (
        station_pngs(stats, t, default_class, [AlertMarks("alerts sent", spans)], reference, tz, progress=progress)
        if want
        else []
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, png in images:
            (out_dir / f"{file_name(name)}.png").write_bytes(png)
        print(f"\n{len(images)} plot(s) written to {out_dir}", file=out)
    if html is not None:
        made = datetime.now(UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        write_html(
            html,
            f"riverwatch report: {when(ds.start_ns, tz)} to {when(ds.end_ns, tz)}",
            [
                head,
                f"made {made} {offset_label(tz)}; exceedances are measured from the readings "
                f"(each reading stands for at most {duration(stats.hold_ns)})",
            ],
            tables,
            images,
        )
        print(f"HTML report written to {html}", file=out)
    out.flush()
    return 0


def _configured_source(cfg: Config, data_dir: Path | None, since_ns: int | None, until_ns: int | None) -> Source:
    """The database the service writes to: the embedded store, InfluxDB 1.x, or (api v2) VictoriaMetrics."""
    i = cfg.influxdb
    if data_dir is not None or i is None:
        return Source(store=data_dir or cfg.service.data_dir, since_ns=since_ns, until_ns=until_ns)
    if i.api == "v1":
        return Source(
            influx=i.url,
            database=i.database,
            retention_policy=i.retention_policy,
            username=i.username,
            password=i.password,
            since_ns=since_ns,
            until_ns=until_ns,
        )
    return Source(victoria=i.url, since_ns=since_ns, until_ns=until_ns)
