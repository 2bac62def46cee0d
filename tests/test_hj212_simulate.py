"""`riverwatch simulate --hj212`: one HJ 212 data logger per station, against a real TCP server in the test
that checks every frame's CRC, answers CN=9014 (dropping one reply, to see the logger re-send), and records
what arrived. The readings it got must be the scenario's, at the right stations and times, exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

import simulators.hj212 as sim_hj212
from bench.servers import free_port
from monitor.cli import main
from monitor.domain.hj212 import Frame, FrameError, FrameReader, Packet, crc16, parse_segment, reply_data_ack
from monitor.domain.params import SHIPPED
from monitor.domain.reading import Reading
from monitor.thresholds import shipped_path
from simulators.hj212 import CST, uploads
from simulators.scenarios import make_scenario

DAYS = "0.5"
SEED = 7


class Platform:
    """An HJ 212 platform on its own thread and event loop: every frame parsed, CRC checked, 9014 sent
    back, except for the `drop`-th upload (1-based), whose first reply is withheld; `silent`: no replies."""

    def __init__(self, drop: int | None = None, silent: bool = False) -> None:
        self.drop, self.silent = drop, silent
        self.packets: list[Packet] = []
        self.bad_crc = 0
        self.not_frames: list[FrameError] = []
        self.peers: set[str] = set()
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        try:
            while chunk := await reader.read(4096):
                for item in frames.feed(chunk):
                    if not isinstance(item, Frame):
                        self.not_frames.append(item)
                        continue
                    if not item.crc_ok or crc16(item.segment.encode()) != int(item.raw[-6:-2], 16):
                        self.bad_crc += 1
                        continue
                    packet = parse_segment(item.segment)
                    self.packets.append(packet)
                    self.peers.add(f"{packet.mn}@{writer.get_extra_info('peername')[1]}")
                    if self.silent or (self.drop is not None and len(self.packets) == self.drop):
                        continue
                    writer.write(reply_data_ack(packet.qn, packet.mn, packet.pw, version=packet.version))
                    await writer.drain()
        finally:
            writer.close()

    def __enter__(self) -> Platform:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    def unique(self) -> list[Packet]:
        """The uploads once each (a re-send has the same MN and QN), checking a re-send is the same upload."""
        seen: dict[tuple[str, str | None], Packet] = {}
        for p in self.packets:
            first = seen.setdefault((p.mn, p.qn), p)
            assert first.cp == p.cp
        return list(seen.values())


@pytest.fixture
def quick_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sim_hj212, "ACK_TIMEOUT_S", 0.4)
    yield


def _data_time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, CST).strftime("%Y%m%d%H%M%S")


def _cadmium_expected() -> dict[tuple[str, str], tuple[float, str]]:
    scenario = make_scenario("longjiang-2012", SEED, None, float(DAYS))
    flags = {None: "N", "<DL": "N", "maintenance": "M", "calibration": "C", "fault": "D"}
    return {
        ("RW" + r.station.upper(), _data_time(r.ts_ns)): (r.value, flags[r.flag])
        for r in scenario.readings()
        if r.parameter == "cd"
    }


def test_realtime_uploads_carry_every_cadmium_reading_once(
    quick_timeout: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = SHIPPED["cd"].hj212  # w20115, sent in µg/L
    with Platform(drop=5) as platform:
        rc = main(["simulate", "--scenario", "longjiang-2012", "--seed", str(SEED), "--days", DAYS,
                   "--hj212", f"127.0.0.1:{platform.port}"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert platform.bad_crc == 0 and not platform.not_frames
    assert len(platform.packets) == len(platform.unique()) + 1  # the dropped reply's upload came again
    got: Counter[tuple[str, str]] = Counter()
    values: dict[tuple[str, str], tuple[float, str]] = {}
    for p in platform.unique():
        assert (p.st, p.cn, p.pw, p.flag, p.version, p.wants_ack) == ("21", "2011", "123456", 5, "2017", True)
        fields = {k: v for g in p.groups for k, v in g.items()}
        if f"{code}-Rtd" in fields:
            key = (p.mn, fields["DataTime"])
            got[key] += 1
            values[key] = (float(fields[f"{code}-Rtd"]) / 1000.0, fields[f"{code}-Flag"])
    expected = _cadmium_expected()
    assert set(got) == set(expected) and set(got.values()) == {1}
    for key, (value, flag) in expected.items():
        assert values[key][0] == pytest.approx(value, rel=1e-5, abs=1e-12), key
        assert values[key][1] == flag, key
    assert len({mn for mn, _ in expected}) == 6
    assert len({peer.split("@")[0] for peer in platform.peers}) == 6  # one logger per station
    assert "1 re-sent" in err and "skipped" in err and "turb" in err  # turbidity has no HJ 212 code


def test_hourly_uploads_in_2025_carry_the_hour_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    # The baseline's sonde reads every 10 minutes, with every fault kind: six pH readings an hour, some flagged.
    scenario = make_scenario("baseline", SEED, None, float(DAYS))
    hours: dict[tuple[str, str], list[tuple[float, str | None]]] = defaultdict(list)
    for r in scenario.readings():
        if r.parameter == "ph":
            hours[("RW" + r.station.upper(), _data_time(r.ts_ns - r.ts_ns % 3_600_000_000_000))].append(
                (r.value, r.flag)
            )
    assert max(len(v) for v in hours.values()) == 6
    with Platform() as platform:
        hj212 = ["--hj212", f"127.0.0.1:{platform.port}", "--hj212-version", "2025", "--hj212-cn", "2061"]
        rc = main(["simulate", "--scenario", "baseline", "--seed", str(SEED), "--days", DAYS, *hj212])
    assert rc == 0, capsys.readouterr().err
    got: Counter[tuple[str, str]] = Counter()
    mixed = 0
    for p in platform.unique():
        assert (p.cn, p.version, p.flag) == ("2061", "2025", 9)
        fields = {k: v for g in p.groups for k, v in g.items()}
        key = (p.mn, fields["DataTime"])
        if "w01001-Avg" not in fields:
            continue
        got[key] += 1
        readings = hours[key]
        good = [v for v, f in readings if f in (None, "<DL")]
        vals = good or [v for v, _ in readings]
        mixed += len(good) not in (0, len(readings))
        assert (fields["w01001-Flag"] == "N") == bool(good), key
        assert float(fields["w01001-Avg"]) == pytest.approx(sum(vals) / len(vals), rel=1e-5), key
        assert float(fields["w01001-Min"]) == pytest.approx(min(vals), rel=1e-5), key
        assert float(fields["w01001-Max"]) == pytest.approx(max(vals), rel=1e-5), key
    assert set(got) == set(hours) and set(got.values()) == {1}
    assert mixed  # an hour with a flagged reading: left out of that hour's statistics


def test_a_platform_that_never_answers_is_exit_1_after_the_tries(
    quick_timeout: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with Platform(silent=True) as platform:
        rc = main(["simulate", "--scenario", "baseline", "--days", "0.1", "--hj212", f"127.0.0.1:{platform.port}"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "gave up after 3 tries" in err and "no CN=9014" in err
    per_mn = Counter(p.mn for p in platform.packets)
    assert per_mn and set(per_mn.values()) == {3}  # each logger sent its first upload three times, then stopped


def test_refused_connection_is_exit_1(quick_timeout: None, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", "--scenario", "baseline", "--days", "0.1", "--hj212", f"127.0.0.1:{free_port()}"])
    assert rc == 1
    assert "connection to 127.0.0.1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hj212", "127.0.0.1:9212", "--mqtt", "mqtt://127.0.0.1:1883"], "--hj212 and --mqtt: give one of them"),
        (["--hj212", "localhost"], "--hj212: 'localhost' is not HOST:PORT"),
        (["--hj212", "127.0.0.1:9212", "--hj212-version", "2005"], "--hj212-version must be one of 2017, 2025"),
        (["--hj212", "127.0.0.1:9212", "--hj212-cn", "2051"], "--hj212-cn must be one of 2011, 2061"),
    ],
)
def test_bad_hj212_usage_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "r.csv"
    assert main(["simulate", "--scenario", "baseline", "--out", str(out), *extra]) == 2
    assert f"riverwatch: {message}" in capsys.readouterr().err
    assert not out.exists()


def test_flags_units_and_skipped_parameters() -> None:
    t0 = 1_325_520_000_000_000_000  # 2012-01-03 00:00 +08:00
    minute = 60_000_000_000
    readings = [
        Reading("lalang", "cd", t0, 0.0021),
        Reading("lalang", "cd", t0 + 10 * minute, 0.0005, "<DL"),
        Reading("lalang", "cd", t0 + 20 * minute, 0.004, "maintenance"),
        Reading("lalang", "cd", t0 + 30 * minute, 0.004, "calibration"),
        Reading("lalang", "cd", t0 + 40 * minute, 0.004, "fault"),
        Reading("lalang", "turb", t0, 5.0),
        Reading("lalang", "tl", t0 + 70 * minute, 0.00002, "maintenance"),
    ]
    realtime, skipped = uploads(readings)
    assert skipped == {"turb": 1}
    cps = [u.segment_cp for u in realtime["lalang"]]
    assert cps[:5] == [
        "DataTime=20120103000000;w20115-Rtd=2.1,w20115-Flag=N",
        "DataTime=20120103001000;w20115-Rtd=0.5,w20115-Flag=N",
        "DataTime=20120103002000;w20115-Rtd=4,w20115-Flag=M",
        "DataTime=20120103003000;w20115-Rtd=4,w20115-Flag=C",
        "DataTime=20120103004000;w20115-Rtd=4,w20115-Flag=D",
    ]
    assert cps[5] == "DataTime=20120103011000;w20089-Rtd=20,w20089-Flag=M"  # thallium goes in ng/L
    hourly, _ = uploads(readings, "2061")
    assert [u.segment_cp for u in hourly["lalang"]] == [
        "DataTime=20120103000000;w20115-Avg=1.3,w20115-Min=0.5,w20115-Max=2.1,w20115-Flag=N",
        "DataTime=20120103010000;w20089-Avg=20,w20089-Min=20,w20089-Max=20,w20089-Flag=M",
    ]


def test_mn_and_password_come_from_the_station_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = shipped_path("longjiang-stations.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[stations.lalang]\n", '[stations.lalang]\nmn = "45010000LALANG01"\npw_env = "RW_TEST_LALANG_PW"\n', 1
    )
    stations = tmp_path / "stations.toml"
    stations.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RW_TEST_LALANG_PW", "s3cret-lalang")
    with Platform() as platform:
        argv = ["--days", "0.1", "--hj212", f"127.0.0.1:{platform.port}", "--hj212-stations", str(stations)]
        rc = main(["simulate", "--scenario", "longjiang-2012", *argv])
    assert rc == 0, capsys.readouterr().err
    logins = {(p.mn, p.pw) for p in platform.unique()}
    assert ("45010000LALANG01", "s3cret-lalang") in logins
    assert ("RWYEMAO", "123456") in logins  # a station without mn: the made-up one
    assert not any(mn == "RWLALANG" for mn, _ in logins)


def test_a_station_file_with_problems_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "stations.toml"
    bad.write_text('[stations.lalang]\nriver_km = "far"\n', encoding="utf-8")
    argv = ["--hj212", "127.0.0.1:9212", "--hj212-stations", str(bad)]
    assert main(["simulate", "--scenario", "baseline", *argv]) == 2
    assert "riverwatch: --hj212-stations: " in capsys.readouterr().err
