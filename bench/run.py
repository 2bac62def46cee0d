"""riverwatch benchmark: the service and a Node-RED flow doing the same job, side by side, in one run.

``scripts/bench [--quick] [--runs N] [...]`` (or ``python -m bench``, or ``bench/run.py``) prints a table and
writes the same figures to ``bench/results/latest.json``. Each figure is the median of ``--runs`` runs (at least
3 by default) with the min-max. Runs interleave the systems (riverwatch, then Node-RED, phase by phase) so that
drift of a noisy machine hits both alike.

A trial is one phase of one system on a fresh mosquitto and a fresh VictoriaMetrics (loopback, free ports),
driven by a separate publisher process (``bench/publisher.py``). Every process the harness starts is stopped by
its pid when the trial ends, also on an error, Ctrl-C or SIGTERM.

- throughput: readings from the first publish until VictoriaMetrics has taken the last one in (its
  ``vm_rows_inserted_total``, polled every 50 ms), then verified by exporting the trial's series and counting
  the samples and duplicates. CPU-seconds of the system's process over the same interval, per 1000 readings.
- latency (at ``--rate`` readings/s of single messages): storage markers are polled for in the export after
  ``/internal/force_flush`` every 25 ms; alert markers (10x the cadmium limit, each at a new station) are timed
  until the HTTP receiver behind apprise's ``json://`` gets the notification that names the station.
- memory: RSS of the riverwatch process after 10k and 100k new series (SenML packs of 20, one pack per
  station) are stored and evaluated, minus its RSS after start-up, divided by the series.
- offline: ``bench/offline.py`` (rules + alert lifecycle, no I/O) in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.receiver import HttpReceiver
from bench.report import build_report, table
from bench.schedule import Bench
from bench.settings import PHASES, TARGETS, Settings, log
from bench.targets import BENCH


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, bool]:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts: about 3 minutes on an idle machine")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the table shows the median (default 3)")
    p.add_argument("--messages", type=int, help="single-reading messages per throughput run (default 200000)")
    p.add_argument(
        "--senml-readings",
        type=int,
        help="readings per SenML throughput run (default 1000000: long enough that the run's fixed end,"
        " about 1 s, does not decide the rate)",
    )
    p.add_argument("--latency-seconds", type=float, help="length of a latency run (default 20)")
    p.add_argument("--rate", type=float, default=1000.0, help="readings/s during latency runs (default 1000)")
    p.add_argument("--alert-rate", type=float, default=5.0, help="alert markers/s in latency runs")
    p.add_argument("--store-rate", type=float, default=10.0, help="storage markers/s in latency runs")
    p.add_argument("--memory-series", default="10000,100000", help="series counts for the memory figure")
    p.add_argument("--offline-series", default="1000,100000", help="series counts for offline rule evaluation")
    p.add_argument("--stations", type=int, default=1000, help="stations the throughput load spreads over")
    p.add_argument("--window", type=int, default=2000, help="publisher's most unacknowledged messages")
    p.add_argument("--targets", default=",".join(TARGETS), help="riverwatch,nodered (default both)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"a subset of {','.join(PHASES)}")
    p.add_argument(
        "--config-template",
        default=str(BENCH / "riverwatch.toml"),
        help="riverwatch config with {placeholders} (default bench/riverwatch.toml)",
    )
    p.add_argument("--out", default=str(BENCH / "results" / "latest.json"), help="where the JSON goes")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each trial, wait up to S s for other processes to leave the CPUs idle",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample riverwatch with py-spy during its throughput runs (bench/results/profiles/)",
    )
    p.add_argument("--keep", action="store_true", help="keep the trial directories (logs, data) after the run")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    phases = tuple(x for x in a.phases.split(",") if x)
    if a.runs < 1 or not set(targets) <= set(TARGETS) or not set(phases) <= set(PHASES):
        p.error("--runs must be >= 1; --targets from riverwatch,nodered; --phases from " + ",".join(PHASES))
    s = Settings(
        runs=a.runs,
        messages=a.messages or (20_000 if a.quick else 200_000),
        senml_readings=a.senml_readings or (40_000 if a.quick else 1_000_000),
        latency_s=a.latency_seconds or (5.0 if a.quick else 20.0),
        rate=a.rate,
        alert_rate=a.alert_rate,
        store_rate=a.store_rate,
        memory_series=tuple(int(x) for x in a.memory_series.split(",") if x),
        offline_series=tuple(int(x) for x in a.offline_series.split(",") if x),
        offline_batch=100_000,
        offline_batches=5,
        offline_seconds=0.5 if a.quick else 2.0,
        stations=a.stations,
        window=a.window,
        targets=targets,
        phases=phases,
        config_template=a.config_template,
        quick=a.quick,
        wait_idle=a.wait_idle,
        profile=a.profile,
    )
    return s, Path(a.out), a.keep


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="riverwatch-bench-"))
    try:
        yield root
    finally:
        if keep:
            log(f"trial directories kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    s, out, keep = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    started = datetime.now(UTC)
    with workdir(keep) as root:
        receiver = HttpReceiver()
        receiver.start()
        try:
            bench = Bench(s, root, receiver, out.parent / "profiles")

            def save() -> None:
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(build_report(s, bench, started), indent=2) + "\n")
                tmp.replace(out)

            log(f"riverwatch benchmark: {s.runs} runs{' (quick)' if s.quick else ''}; work in {root}")
            bench.run(save)
        finally:
            receiver.stop()
    report = build_report(s, bench, started)
    save()
    print(table(report, s))
    print(f"\nJSON: {out}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
