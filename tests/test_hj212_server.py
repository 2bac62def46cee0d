"""The HJ 212 server with real TCP clients (one per data logger) and a real journal on disk.

What a bureau's loggers would notice: every upload answered with 9014 only once it is journaled, a refused
packet answered with the standard's QnRtn and the connection kept, a logger cut off mid-frame costing
nothing but its re-send, and one misbehaving connection closed without affecting the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.config import HJ212Config
from monitor.domain.hj212 import Frame, Packet, frame, packet_segment, parse_segment, unframe
from monitor.domain.params import SHIPPED
from monitor.domain.reading import Reading
from monitor.ingest.deadletter import FileSink
from monitor.ingest.hj212_server import HJ212Server
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.thresholds.model import Station

PW = "s3cret-pw"
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=CST)


def mn_of(i: int) -> str:
    return f"88888880000{i:03d}"


def stations(n: int) -> dict[str, Station]:
    return {
        f"st{i}": Station(
            f"st{i}", f"Station {i}", "", "Longjiang", float(i), "III", False, mn=mn_of(i), pw_env="HJ212_TEST_PW"
        )
        for i in range(n)
    }


def upload(i: int, k: int, *, pw: str = PW, mn: str | None = None, cd_ug_l: float | None = None) -> bytes:
    """Logger i's k-th real-time upload: cadmium and pH, one minute apart, 2017, reply wanted."""
    when = (T0 + timedelta(minutes=k)).strftime("%Y%m%d%H%M%S")
    cd = cd_ug_l if cd_ug_l is not None else 0.1 + k / 1000
    cp = f"DataTime={when};w20115-Rtd={cd:.3f},w20115-Flag=N;w01001-Rtd=7.{k % 10},w01001-Flag=N"
    return frame(packet_segment(qn=qn_of(i, k), st="21", cn="2011", pw=pw, mn=mn or mn_of(i), cp=cp))


def qn_of(i: int, k: int) -> str:
    return (T0 + timedelta(minutes=k)).strftime("%Y%m%d%H%M%S") + f"{i:03d}"


def ts_ns(k: int) -> int:
    return int((T0 + timedelta(minutes=k)).timestamp()) * 10**9


class CountingJournal(Journal):
    """The real journal, counting commits; `hold` keeps the next commits from finishing, `fail` makes them fail
    as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits = 0
        self.hold = threading.Event()
        self.hold.set()
        self.fail = False

    def append(self, readings: Sequence[Reading]) -> int:
        self.hold.wait(10)
        if self.fail:
            raise JournalError("journal: database or disk is full")
        self.commits += 1
        return super().append(readings)


class Running:
    def __init__(self, server: HJ212Server, journal: CountingJournal, metrics: Metrics, dead: Path) -> None:
        self.server, self.journal, self.metrics, self.dead_letters = server, journal, metrics, dead

    def rows(self) -> list[Reading]:
        return [r for _, r in self.journal.read("store", 1_000_000)]

    def count(self, result: str) -> float:
        return self.metrics.registry.get_sample_value("riverwatch_hj212_packets_total", {"result": result}) or 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.server.port)


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, n_stations: int = 20, **cfg: object) -> AsyncIterator[Running]:
    journal = CountingJournal(tmp_path / "journal.sqlite")
    metrics = Metrics()
    dead = tmp_path / "dead.jsonl"
    known = stations(n_stations)
    server = HJ212Server(
        HJ212Config(enabled=True, port=0, **cfg),  # type: ignore[arg-type]
        journal,
        metrics,
        lambda: None,
        lambda: known,
        lambda: SHIPPED,
        FileSink(dead, 1 << 20),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    await asyncio.wait_for(server.listening.wait(), 5)
    try:
        yield Running(server, journal, metrics, dead)
    finally:
        journal.hold.set()
        stop.set()
        await asyncio.wait_for(task, 10)
        journal.close()


async def reply(reader: asyncio.StreamReader, timeout: float = 5.0) -> Packet:
    line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
    f = unframe(line)
    assert isinstance(f, Frame) and f.crc_ok, line
    return parse_segment(f.segment)


def qn_rtn(p: Packet) -> int:
    assert p.cn == "9011", p
    return int(p.groups[0]["QnRtn"])


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HJ212_TEST_PW", PW)


@pytest.mark.asyncio
async def test_twenty_loggers_at_once_each_upload_acknowledged_and_journaled_once(tmp_path: Path) -> None:
    loggers, uploads = 20, 15
    async with serve(tmp_path) as srv:

        async def logger(i: int) -> list[str]:
            reader, writer = await srv.connect()
            acked = []
            for k in range(uploads):  # as real loggers do: the next upload after the 9014 of this one
                writer.write(upload(i, k))
                await writer.drain()
                r = await reply(reader)
                assert (r.cn, r.st, r.mn) == ("9014", "91", mn_of(i))
                acked.append(r.qn or "")
            writer.close()
            return acked

        acks = await asyncio.gather(*(logger(i) for i in range(loggers)))
        assert acks == [[qn_of(i, k) for k in range(uploads)] for i in range(loggers)]
        rows = srv.rows()
        assert len(rows) == loggers * uploads * 2
        got = {(r.station, r.parameter, r.ts_ns): (r.value, r.flag) for r in rows}
        for i in range(loggers):
            for k in range(uploads):
                value, flag = got[(f"st{i}", "cd", ts_ns(k))]
                assert value == pytest.approx((0.1 + k / 1000) / 1000)  # µg/L as sent, mg/L as stored
                assert flag is None
                assert got[(f"st{i}", "ph", ts_ns(k))][0] == pytest.approx(7 + (k % 10) / 10)
        assert srv.count("accepted") == loggers * uploads
        # Loggers that upload together share commits.
        assert srv.journal.commits < loggers * uploads


@pytest.mark.asyncio
async def test_9014_only_after_the_journal_commit_and_never_when_it_fails(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=1) as srv:
        reader, writer = await srv.connect()
        srv.journal.hold.clear()  # the commit is under way (fsync) and has not returned
        writer.write(upload(0, 0))
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n"), 0.5)
        assert srv.rows() == []
        srv.journal.hold.set()
        assert (await reply(reader)).cn == "9014"
        assert len(srv.rows()) == 2

        srv.journal.fail = True  # disk full: no 9014, the connection stays up, the logger re-sends
        writer.write(upload(0, 1))
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n"), 1.0)
        assert srv.count("not_journaled") == 1
        srv.journal.fail = False
        writer.write(upload(0, 1))  # the logger's re-send, on the same connection
        await writer.drain()
        r = await reply(reader, timeout=15)
        assert (r.cn, r.qn) == ("9014", qn_of(0, 1))
        writer.write(upload(0, 1))  # and a copy after a lost reply: answered, absorbed by the journal
        await writer.drain()
        assert (await reply(reader)).cn == "9014"
        assert sorted(r.ts_ns for r in srv.rows() if r.parameter == "cd") == [ts_ns(0), ts_ns(1)]
        writer.close()


@pytest.mark.asyncio
async def test_wrong_crc_password_and_mn_answered_with_qnrtn_and_the_connection_kept(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=2) as srv:
        reader, writer = await srv.connect()
        good = upload(1, 0)
        bad_crc = good[:-6] + (b"0000" if good[-6:-2] != b"0000" else b"1111") + b"\r\n"
        writer.write(bad_crc)
        r = await reply(reader)
        assert (qn_rtn(r), r.qn, r.mn) == (9, qn_of(1, 0), mn_of(1))
        writer.write(upload(1, 0, pw="guessed"))
        assert qn_rtn(await reply(reader)) == 3
        writer.write(upload(1, 0, mn="99999999999999"))
        r = await reply(reader)
        assert (qn_rtn(r), r.mn) == (4, "99999999999999")
        assert srv.rows() == []
        writer.write(good)  # the same connection still takes the logger's good upload
        assert (await reply(reader)).cn == "9014"
        assert {r.station for r in srv.rows()} == {"st1"}
        writer.close()
        assert [srv.count(x) for x in ("bad_crc", "bad_password", "unknown_mn", "accepted")] == [1, 1, 1, 1]
        reasons = {
            "hj212_crc": 1.0,
            "hj212_password": 1.0,
            "hj212_unknown_mn": 1.0,
        }
        for reason, n in reasons.items():
            assert srv.metrics.registry.get_sample_value("riverwatch_readings_rejected_total", {"reason": reason}) == n
        kept = [json.loads(line) for line in srv.dead_letters.read_text().splitlines()]
        assert [(d["topic"], d["reasons"][0]["reason"]) for d in kept] == [
            (f"hj212/{mn_of(1)}", "hj212_crc"),
            (f"hj212/{mn_of(1)}", "hj212_password"),
            ("hj212/99999999999999", "hj212_unknown_mn"),
        ]
        assert kept[0]["payload"] == bad_crc.decode()


@pytest.mark.asyncio
async def test_a_logger_cut_off_mid_frame_loses_only_that_frame_and_its_resend_lands_once(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=2) as srv:
        other_r, other_w = await srv.connect()
        reader, writer = await srv.connect()
        writer.write(upload(0, 0))
        assert (await reply(reader)).cn == "9014"
        second = upload(0, 1)
        writer.write(second[: len(second) // 2])  # then the line drops
        await writer.drain()
        writer.transport.abort()
        other_w.write(upload(1, 0))  # another logger is not affected
        assert (await reply(other_r)).cn == "9014"
        reader, writer = await srv.connect()  # the logger reconnects and re-sends what got no 9014
        writer.write(second)
        assert (await reply(reader)).qn == qn_of(0, 1)
        cd = sorted((r.station, r.ts_ns) for r in srv.rows() if r.parameter == "cd")
        assert cd == [("st0", ts_ns(0)), ("st0", ts_ns(1)), ("st1", ts_ns(0))]
        writer.close()
        other_w.close()


@pytest.mark.asyncio
async def test_silent_and_garbage_connections_are_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=1, idle_timeout_s=1.0) as srv:
        silent_r, _silent_w = await srv.connect()
        garbage_r, garbage_w = await srv.connect()
        good_r, good_w = await srv.connect()
        started = time.monotonic()
        closed: dict[str, float] = {}

        async def garbage() -> None:
            with contextlib.suppress(ConnectionError):
                while "garbage" not in closed:
                    garbage_w.write(b"#garbage 1234 no frame here\r\n" * 10)
                    await garbage_w.drain()
                    await asyncio.sleep(0.05)

        async def keeps_sending() -> None:
            for k in range(8):  # a valid upload every 0.4 s: under the timeout, so the connection stays
                good_w.write(upload(0, k))
                assert (await reply(good_r)).cn == "9014"
                await asyncio.sleep(0.4)

        async def eof(name: str, reader: asyncio.StreamReader) -> None:
            assert await asyncio.wait_for(reader.read(), 5) == b""
            closed[name] = time.monotonic() - started

        sender = asyncio.create_task(garbage())
        await asyncio.gather(eof("silent", silent_r), eof("garbage", garbage_r), keeps_sending())
        await sender
        assert 0.9 <= closed["silent"] < 3 and 0.9 <= closed["garbage"] < 3
        assert srv.count("bad_frame") > 0
        assert len(srv.rows()) == 16  # the connection that kept sending was never cut
        good_w.close()


@pytest.mark.asyncio
async def test_connections_over_max_are_closed_and_an_oversized_frame_is_refused_unread(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=1, max_connections=2, max_frame_bytes=1024) as srv:
        a_r, a_w = await srv.connect()
        _b_r, b_w = await srv.connect()
        await asyncio.sleep(0.1)
        c_r, _c_w = await srv.connect()
        assert await asyncio.wait_for(c_r.read(), 5) == b""
        assert srv.server.connections == 2
        # A declared length over the limit is refused at once: the server does not wait for 9000 bytes.
        a_w.write(b"##9000QN=1;ST=21;")
        a_w.write(upload(0, 0))
        assert (await reply(a_r)).cn == "9014"
        assert srv.count("bad_frame") >= 1
        for w in (a_w, b_w):
            w.close()


@pytest.mark.asyncio
async def test_a_split_upload_is_answered_part_by_part_once_journaled(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=1) as srv:
        reader, writer = await srv.connect()
        when = T0.strftime("%Y%m%d%H%M%S")
        parts = [
            f"DataTime={when};w20115-Rtd=0.020,w20115-Flag=N",
            "w01001-Rtd=7.5,w01001-Flag=N",
        ]
        seg = [
            packet_segment(qn="20260301080000001", st="21", cn="2011", pw=PW, mn=mn_of(0), cp=cp, pnum=2, pno=n + 1)
            for n, cp in enumerate(parts)
        ]
        writer.write(frame(seg[1]))  # the part without DataTime first: it waits for the other
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n"), 0.5)
        writer.write(frame(seg[0]))
        assert [(await reply(reader)).cn for _ in range(2)] == ["9014", "9014"]
        got = {(r.parameter, r.ts_ns) for r in srv.rows()}
        assert got == {("cd", ts_ns(0)), ("ph", ts_ns(0))}
        writer.close()


@pytest.mark.asyncio
async def test_backfilled_data_is_stored_flagged_backfill(tmp_path: Path) -> None:
    async with serve(tmp_path, n_stations=1) as srv:
        reader, writer = await srv.connect()
        for k in (5, 2):  # the logger's memory sends an older minute after a newer one
            writer.write(upload(0, k))
            assert (await reply(reader)).cn == "9014"
        flags = {r.ts_ns: r.flag for r in srv.rows() if r.parameter == "cd"}
        assert flags == {ts_ns(5): None, ts_ns(2): "backfill"}
        writer.close()


@pytest.mark.asyncio
async def test_a_busy_port_is_a_clear_unhealthy_check_until_it_is_free(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    journal = Journal(tmp_path / "journal.sqlite")
    metrics = Metrics()
    server = HJ212Server(
        HJ212Config(enabled=True, port=port), journal, metrics, lambda: None, lambda: stations(1), lambda: SHIPPED
    )
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    try:
        for _ in range(50):
            checks = metrics.health.report()["checks"]
            if "hj212" in checks:  # type: ignore[operator]
                break
            await asyncio.sleep(0.05)
        check = metrics.health.report()["checks"]["hj212"]  # type: ignore[index]
        assert check["status"] == "unhealthy"
        assert f"cannot listen on 127.0.0.1:{port}" in check["detail"] and "in use" in check["detail"]
        assert metrics.health.status() == "unhealthy"
        blocker.close()
        await asyncio.wait_for(server.listening.wait(), 10)
        assert server.port == port
        assert metrics.health.report()["checks"]["hj212"]["status"] == "ok"  # type: ignore[index]
    finally:
        blocker.close()
        stop.set()
        await asyncio.wait_for(task, 10)
        journal.close()
