"""HJ 212 packets to readings: codes, units, flags, station time, backfill, rejections; and over MQTT."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.domain.hj212 import Packet, frame, packet_segment, parse_segment
from monitor.ingest.decode import decode
from monitor.ingest.hj212_decode import HJ212Lookup, decode_packet

NOW = int(datetime(2026, 1, 7, 3, 0, tzinfo=UTC).timestamp()) * 10**9
T0 = int(datetime(2026, 1, 7, 2, 0, tzinfo=UTC).timestamp()) * 10**9  # 10:00 China Standard Time


def _packet(cp: str, cn: str = "2011") -> Packet:
    return parse_segment(packet_segment(qn="1", st="21", cn=cn, pw="p", mn="LJ0001", cp=cp))


def test_cadmium_in_ug_per_l_becomes_mg_per_l_at_china_time() -> None:
    d = decode_packet(_packet("DataTime=20260107100000;w20115-Rtd=0.031,w20115-Flag=N"), "s1", now_ns=NOW)
    assert d.rejections == []
    (r,) = d.readings
    assert (r.station, r.parameter, r.ts_ns, r.flag) == ("s1", "cd", T0, None)
    assert abs(r.value - 0.000031) < 1e-12


def test_flags_mapped_and_avg_for_hourly_data() -> None:
    cp = "DataTime=20260107100000;w01001-Avg=7.1,w01001-Min=7,w01001-Max=7.3,w01001-Flag=M;w01009-Avg=8,w01009-Flag=K"
    d = decode_packet(_packet(cp, cn="2061"), "s1", now_ns=NOW)
    assert [(r.parameter, r.value, r.flag) for r in d.readings] == [("ph", 7.1, "maintenance"), ("do", 8.0, "hj212:K")]


def test_backfill_by_rf_and_by_newest() -> None:
    d = decode_packet(_packet("DataTime=20260107100000;RF=1;w20115-Rtd=1"), "s1", now_ns=NOW)
    assert d.readings[0].flag == "backfill"
    d = decode_packet(
        _packet("DataTime=20260107100000;w20115-Rtd=1,w20115-Flag=N"), "s1", now_ns=NOW, newest=lambda s, p: T0 + 1
    )
    assert d.readings[0].flag == "backfill"


def test_rejections_name_mn_field_and_value() -> None:
    d = decode_packet(_packet("DataTime=20260107100000;w99999-Rtd=1;w20115-Rtd=abc;w20120-Rtd=-1"), "s1", now_ns=NOW)
    assert [r.reason for r in d.rejections] == ["unknown_parameter", "not_numeric", "negative"]
    assert all("MN LJ0001" in r.detail for r in d.rejections)
    assert "w20115-Rtd='abc'" in d.rejections[1].detail
    future = decode_packet(_packet("DataTime=20300101000000;w20115-Rtd=1"), "s1", now_ns=NOW)
    assert future.rejections[0].reason == "future_timestamp"
    bad = decode_packet(_packet("DataTime=2026;w20115-Rtd=1"), "s1", now_ns=NOW)
    assert bad.rejections[0].reason == "bad_timestamp"
    enc = decode_packet(_packet("QUJDREVGR0g="), "s1", now_ns=NOW)
    assert enc.rejections[0].reason == "hj212_encrypted"
    cmd = decode_packet(_packet("RtdInterval=30", cn="1062"), "s1", now_ns=NOW)
    assert cmd.rejections[0].reason == "hj212_command"


def test_hj212_over_mqtt_station_from_mn_or_topic() -> None:
    payload = frame(
        packet_segment(qn="1", st="21", cn="2011", pw="p", mn="LJ0001", cp="DataTime=20260107100000;w20115-Rtd=2")
    )
    by_topic = decode("river/lalang", payload, NOW)
    assert [(r.station, r.parameter) for r in by_topic.readings] == [("lalang", "cd")]
    lookup = HJ212Lookup(by_mn={"LJ0001": "hechi"})
    by_mn = decode("hj212/anything", payload.rstrip(b"\r\n"), NOW, hj212=lookup)
    assert [r.station for r in by_mn.readings] == ["hechi"]
    broken = decode("river/lalang", payload[:-6] + b"0000\r\n", NOW)
    assert broken.rejections[0].reason == "hj212_crc"
