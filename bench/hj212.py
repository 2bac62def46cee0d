"""`python -m bench.hj212`: HJ 212 throughput, from connected data loggers to readings stored and verified.

A real mosquitto and VictoriaMetrics (bench/servers.py), `riverwatch run` as a subprocess with [hj212] on and
a station file of one station per logger, and the loggers as asyncio TCP clients in this process that behave
as loggers do: each sends its next upload only after the 9014 of the last (stop-and-wait), 8 pollutants per
upload. Figures: packets/s acknowledged, readings/s stored (the service's readings_written reaching the total),
and the database read back: every reading once, with its value. The loggers share the machine's 2 cores with
the service, broker and database, as in the MQTT bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.servers import Mosquitto, Victoria, free_port
from monitor.domain.hj212 import Frame, FrameReader, frame, packet_segment, parse_segment
from monitor.thresholds import shipped_path

REPO = Path(__file__).resolve().parent.parent
PW = "bench-pw"
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=CST)
# HJ 212 codes of 8 shipped parameters, with a value each well inside its limits (their HJ 212 units).
# (code, base value, parameter id, factor from the HJ 212 unit to the stored one)
CODES = (
    ("w20115", 0.5, "cd", 1e-3),  # cadmium, µg/L
    ("w20120", 2.0, "pb", 1e-3),  # lead, µg/L
    ("w20111", 0.01, "hg", 1e-3),  # mercury, µg/L
    ("w20119", 3.0, "as", 1e-3),  # arsenic, µg/L
    ("w01001", 7.4, "ph", 1.0),  # pH
    ("w01009", 7.8, "do", 1.0),  # dissolved oxygen, mg/L
    ("w21003", 0.3, "nh3n", 1.0),  # ammonia nitrogen, mg/L
    ("w21011", 0.05, "tp", 1.0),  # total phosphorus, mg/L
)


def sent(base: float, k: int) -> float:
    return float(f"{base + (k % 7) * base / 100:.4f}")


def mn_of(i: int) -> str:
    return f"BENCH{i:09d}"


def upload(i: int, k: int) -> bytes:
    when = (T0 + timedelta(minutes=k)).strftime("%Y%m%d%H%M%S")
    values = ";".join(f"{code}-Rtd={sent(v, k):.4f},{code}-Flag=N" for code, v, _, _ in CODES)
    cp = f"DataTime={when};{values}"
    return frame(packet_segment(qn=f"{when}{i % 1000:03d}", st="21", cn="2011", pw=PW, mn=mn_of(i), cp=cp))


def write_files(root: Path, loggers: int, mqtt: str, influx: str, port: int, http: str) -> Path:
    stations = root / "stations.toml"
    stations.write_text(
        "".join(
            f'[stations.b{i}]\nriver = "Benchjiang"\nriver_km = {i}.0\nclass = "III"\n'
            f'standard = "GB 3838-2002"\nmn = "{mn_of(i)}"\npw_env = "BENCH_HJ212_PW"\n\n'
            for i in range(loggers)
        ),
        encoding="utf-8",
    )
    config = root / "riverwatch.toml"
    config.write_text(
        f"""
[mqtt]
url = "{mqtt}"
client_id = "bench-hj212"

[influxdb]
url = "{influx}"
org = "bureau"
bucket = "water"

[thresholds]
files = ["{shipped_path()}", "{stations}"]

[notify]
urls = []

[hj212]
enabled = true
port = {port}
max_connections = {max(1000, loggers + 10)}

[service]
data_dir = "{root / "data"}"
http_listen = "{http}"
""",
        encoding="utf-8",
    )
    return config


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def metric(http: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in get(f"http://{http}/metrics").splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


def listening(http: str) -> bool:
    body = get(f"http://{http}/healthz")
    return bool(body) and json.loads(body).get("checks", {}).get("hj212", {}).get("status") == "ok"


async def logger(i: int, port: int, uploads: int, acked: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    frames = FrameReader()
    for k in range(uploads):
        writer.write(upload(i, k))
        got = False
        while not got:
            data = await asyncio.wait_for(reader.read(4096), 60)
            if not data:
                raise ConnectionError(f"logger {i}: connection closed")
            for f in frames.feed(data):
                if isinstance(f, Frame) and f.crc_ok and parse_segment(f.segment).cn == "9014":
                    got = True
        acked[0] += 1
    writer.close()


def verify(vm: Victoria, uploads: int) -> tuple[int, int, int]:
    """(points stored, duplicates, wrong values) over all series, each value against what was sent."""
    vm.force_flush()
    expected = {
        pid: {int((T0 + timedelta(minutes=k)).timestamp() * 1000): sent(v, k) * f for k in range(uploads)}
        for _, v, pid, f in CODES
    }
    seen: dict[tuple[str, str], list[int]] = {}  # one series can come back as several lines: merged
    wrong = 0
    for s in vm.export('{__name__="water_quality_value"}'):
        key = (s["metric"].get("station", ""), s["metric"].get("parameter", ""))
        want = expected.get(key[1], {})
        wrong += sum(1 for t, v in zip(s["timestamps"], s["values"], strict=True) if abs(want.get(t, -1.0) - v) > 1e-9)
        seen.setdefault(key, []).extend(s["timestamps"])
    points = sum(len(ts) for ts in seen.values())
    dups = sum(len(ts) - len(set(ts)) for ts in seen.values())
    return points, dups, wrong


async def measure(loggers: int, uploads: int, port: int, http: str) -> dict[str, float]:
    acked = [0]
    started = time.monotonic()
    await asyncio.gather(*(logger(i, port, uploads, acked) for i in range(loggers)))
    acked_s = time.monotonic() - started
    total = loggers * uploads * len(CODES)
    while metric(http, "riverwatch_readings_written_total") < total:
        if time.monotonic() - started > 600:
            raise RuntimeError("readings not stored within 10 min")
        await asyncio.sleep(0.05)
    stored_s = time.monotonic() - started
    return {"acked_s": acked_s, "stored_s": stored_s, "packets": acked[0], "readings": total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hj212", description=__doc__.splitlines()[0])
    ap.add_argument("--loggers", type=int, default=100)
    ap.add_argument("--uploads", type=int, default=60, help="uploads per logger (8 readings each)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-hj212-") as tmp:
        root = Path(tmp)
        with Mosquitto(root / "mosquitto") as mq, Victoria(root / "victoria") as vm:
            port, http = free_port(), f"127.0.0.1:{free_port()}"
            config = write_files(root, args.loggers, mq.url, vm.influx_url, port, http)
            log = (root / "service.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "BENCH_HJ212_PW": PW},
            )
            try:
                deadline = time.monotonic() + 30
                while not listening(http):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("riverwatch did not start: " + (root / "service.log").read_text()[-2000:])
                    time.sleep(0.1)
                r = asyncio.run(measure(args.loggers, args.uploads, port, http))
                points, dups, wrong = verify(vm, args.uploads)
                rejected = metric(http, "riverwatch_readings_rejected_total")
            finally:
                proc.terminate()
                proc.wait(15)
                log.close()
    print(
        f"HJ 212: {args.loggers} loggers connected at once, {args.uploads} uploads each (stop-and-wait), "
        f"{len(CODES)} readings per upload"
    )
    print(
        f"  acknowledged (9014 after the journal commit): {r['packets']:.0f} packets in {r['acked_s']:.2f} s = "
        f"{r['packets'] / r['acked_s']:,.0f} packets/s, {r['readings'] / r['acked_s']:,.0f} readings/s"
    )
    print(
        f"  stored in VictoriaMetrics (readings_written): {r['readings']:.0f} readings in {r['stored_s']:.2f} s = "
        f"{r['readings'] / r['stored_s']:,.0f} readings/s"
    )
    print(
        f"  read back: {points} points, {dups} duplicated, {r['readings'] - points + dups:.0f} missing, "
        f"{wrong} with a wrong value, {rejected:.0f} rejected"
    )
    ok = points == r["readings"] and dups == 0 and wrong == 0 and rejected == 0
    print("  verified" if ok else "  NOT VERIFIED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
