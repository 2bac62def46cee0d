"""Memory under the worst input (issue 20, item 7): a backlog of maximum-size SenML packs waiting for the service
at the broker. Ingest reads at most [mqtt].inbox_max_bytes ahead and decodes at most batch_max_bytes at a time,
so its memory stays bounded however long the backlog (it waits in the broker's queue instead).

The real service process, a real mosquitto holding the persistent session's backlog, a real VictoriaMetrics.
Before: RSS 147 -> 806 MiB. Figures go to the test log (`pytest -s`)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

from bench.servers import Mosquitto, Victoria, free_port
from monitor.config import MqttConfig
from monitor.ingest.decode import MAX_PAYLOAD
from simulators.publish import publish
from tests.service_proc import ServiceProcess

RECORDS = 8500
PACKS = 150
# What ingest may hold beyond an idle service (docs/architecture.md, "Memory"): the inbox (8 MiB + one packet),
# two batches of 2 MiB of payload each decoded into readings (~150 B each, 8 packs x 8,500), the journal's
# in-memory tail (100,000 readings) and one pack's JSON being decoded: about 60 MiB; the rest is headroom for
# the allocator's fragmentation.
BOUND_MIB = 96


def pack(station_ts: int, k: int) -> bytes:
    """One SenML pack of RECORDS cadmium readings, one a second, as large as the decoder takes."""
    records: list[dict[str, object]] = [{"bn": "cd", "bu": "mg/L", "bt": station_ts + k * RECORDS}]
    records += [{"v": round(0.001 + i * 1.3e-7, 10), "t": i} for i in range(RECORDS)]
    return json.dumps(records).encode()


def test_a_backlog_of_maximum_size_packs_stays_within_the_memory_bound(
    fresh_mosquitto: Mosquitto, victoria: Victoria, tmp_path: Path
) -> None:
    station = f"mem{free_port()}"
    cfg = f"""
[mqtt]
url = "{fresh_mosquitto.url}"
client_id = "edge-{station}"

[admission]
unknown_stations = "accept"

[influxdb]
url = "{victoria.influx_url}"
org = "bureau"
bucket = "water"
flush_interval_s = 0.2
"""
    t0 = int(time.time()) - PACKS * RECORDS - 3600
    packs = [(0, f"river/{station}", pack(t0, k)) for k in range(PACKS)]
    assert all(MAX_PAYLOAD - 32 * 1024 < len(p) <= MAX_PAYLOAD for _, _, p in packs)
    svc = ServiceProcess(tmp_path, cfg)
    try:
        svc.start()  # the persistent session exists from now on
        time.sleep(1)
        idle_kib = svc.rss_kib()
        assert svc.terminate()[0] == 0
        sent = publish(packs, fresh_mosquitto.url, window=100, timeout=120)  # the backlog, at the broker
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                if svc.running():
                    with contextlib.suppress(OSError, AssertionError):  # exiting between the check and the read
                        peak[0] = max(peak[0], svc.rss_kib())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        svc.start(wait_connected=False)
        try:
            svc.wait(lambda: svc.metric("riverwatch_readings_accepted_total") >= sent * RECORDS, 240, "the backlog")
            inbox_peak = svc.metric("riverwatch_ingest_inbox_bytes")
            pauses = svc.metric("riverwatch_ingest_paused_total")
        finally:
            done.set()
            sampler.join(5)
        assert svc.terminate()[0] == 0
    finally:
        svc.stop()
    growth_mib = (peak[0] - idle_kib) / 1024
    print(
        f"\nbacklog of {sent} packs of {RECORDS} records ({sent * len(packs[0][2]) / 2**20:.0f} MiB): RSS idle "
        f"{idle_kib / 1024:.0f} MiB, peak {peak[0] / 1024:.0f} MiB (+{growth_mib:.0f}, bound {BOUND_MIB}); "
        f"reader paused {pauses:.0f} times; inbox at last batch {inbox_peak / 2**20:.1f} MiB"
    )
    assert sent == PACKS
    assert pauses >= 1  # the backlog was held at the broker, not read into memory
    assert growth_mib < BOUND_MIB
    assert MqttConfig().inbox_max_bytes + MAX_PAYLOAD < BOUND_MIB * 2**20
