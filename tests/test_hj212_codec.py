"""The HJ 212 codec: the standard's CRC example, frames cut from a TCP stream, segments parsed by key, replies."""

from __future__ import annotations

from monitor.domain.hj212 import (
    Frame,
    FrameError,
    FrameReader,
    Reassembler,
    crc16,
    frame,
    packet_segment,
    parse_segment,
    reply_data_ack,
    reply_request,
    unframe,
)

ANNEX_A = "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
DATA = (
    "QN=20260107100000123;ST=21;CN=2011;PW=123456;MN=LJ0001;Flag=5;"
    "CP=&&DataTime=20260107100000;w20115-Rtd=0.031,w20115-Flag=N&&"
)


def test_annex_a_example_has_length_101_and_crc_1c80() -> None:
    assert len(ANNEX_A.encode()) == 101
    assert crc16(ANNEX_A.encode()) == 0x1C80
    assert frame(ANNEX_A) == b"##0101" + ANNEX_A.encode() + b"1C80\r\n"


def test_frames_split_anywhere_joined_and_with_garbage_between() -> None:
    stream = frame(DATA) + b"garbage\r\n" + frame(ANNEX_A) + frame(DATA)
    reader = FrameReader()
    got = [item for i in range(0, len(stream), 7) for item in reader.feed(stream[i : i + 7])]
    frames = [f for f in got if isinstance(f, Frame)]
    assert [f.segment for f in frames] == [DATA, ANNEX_A, DATA]
    assert all(f.crc_ok for f in frames)
    assert any(isinstance(e, FrameError) and e.reason == "hj212_frame" for e in got)
    assert reader.buffered == 0


def test_lower_case_crc_accepted_and_a_wrong_one_flagged() -> None:
    good = frame(DATA)
    lower = good[:-6] + good[-6:-2].lower() + b"\r\n"
    assert FrameReader().feed(lower)[0] == Frame(DATA, True, lower)
    bad = good[:-6] + b"0000\r\n"
    (f,) = FrameReader().feed(bad)
    assert isinstance(f, Frame) and not f.crc_ok


def test_over_long_declared_length_missing_crlf_and_resync() -> None:
    reader = FrameReader(max_frame=200)
    got = reader.feed(b"##9999" + b"x" * 50 + frame(DATA))
    assert isinstance(got[0], FrameError) and "over the limit" in got[0].detail
    assert [f.segment for f in got if isinstance(f, Frame)] == [DATA]
    cut = frame(DATA)[:-2]  # no CR LF, then the next frame
    got = FrameReader().feed(cut + frame(ANNEX_A))
    assert any(isinstance(e, FrameError) and "CR LF" in e.detail for e in got)
    assert [f.segment for f in got if isinstance(f, Frame)] == [ANNEX_A]


def test_a_partial_frame_waits_and_the_buffer_stays_bounded() -> None:
    reader = FrameReader(max_frame=300)
    whole = frame(DATA)
    assert reader.feed(whole[:20]) == []
    assert reader.feed(whole[20:])[0].segment == DATA  # type: ignore[union-attr]
    reader.feed(b"z" * 100_000)
    assert reader.buffered <= 1


def test_segment_parsed_by_key_in_any_order_without_qn() -> None:
    p = parse_segment("MN=ABC;CN=2011;Flag=4;ST=21;PW=1;CP=&&DataTime=20260107100000;w01001-Rtd=7.1,w01001-Flag=N&&")
    assert (p.qn, p.st, p.cn, p.mn, p.pw, p.flag) == (None, "21", "2011", "ABC", "1", 4)
    assert p.version == "2017" and not p.wants_ack
    assert p.groups == [{"DataTime": "20260107100000"}, {"w01001-Rtd": "7.1", "w01001-Flag": "N"}]
    old = parse_segment("ST=32;CN=2011;PW=1;MN=12345678901234;CP=&&DataTime=20050101000000&&")
    assert old.version == "2005" and old.flag is None and not old.wants_ack
    odd = parse_segment("QN=1;ST=21;CN=2011;PW=1;MN=A;Flag=X;CP=&&&&")
    assert odd.flag is None and odd.wants_ack  # a non-standard Flag: answered all the same
    v2025 = parse_segment(packet_segment(qn="1", st="21", cn="2011", pw="1", mn="A", cp="", version="2025"))
    assert v2025.version == "2025" and v2025.wants_ack


def test_encrypted_cp_is_marked_and_missing_fields_are_errors() -> None:
    p = parse_segment("QN=1;ST=21;CN=2011;PW=1;MN=A;Flag=9;CP=&&U2FsdGVkX1+vupppZksvRf5pq5g5XjFRIipRkwB0K1Y==&&")
    assert p.encrypted and p.groups == []
    for bad, word in [
        ("ST=21;PW=1;MN=A;CP=&&&&", "CN"),
        ("ST=21;CN=2011;MN=A;Flag=5", "CP"),
        ("ST=2;CN=1;CP=&&&&", "MN"),
    ]:
        try:
            parse_segment(bad)
        except Exception as e:
            assert getattr(e, "reason", "") == "hj212_malformed" and word in str(e)
        else:
            raise AssertionError(bad)


def test_replies_carry_the_uploads_qn() -> None:
    ack = unframe(reply_data_ack("20260107100000123", "LJ0001", "123456"))
    assert isinstance(ack, Frame) and ack.crc_ok
    assert ack.segment == "QN=20260107100000123;ST=91;CN=9014;PW=123456;MN=LJ0001;Flag=4;CP=&&&&"
    rtn = parse_segment(unframe(reply_request("7", "M", "P", 9)).segment)  # type: ignore[union-attr]
    assert (rtn.cn, rtn.groups) == ("9011", [{"QnRtn": "9"}])


def test_split_packets_whole_and_released() -> None:
    def part(pno: int, cp: str) -> str:
        return packet_segment(qn="5", st="21", cn="2061", pw="1", mn="A", cp=cp, pnum=2, pno=pno)

    first = parse_segment(part(1, "DataTime=20260107100000;w20115-Avg=0.1"))
    second = parse_segment(part(2, "w20120-Avg=2"))
    r = Reassembler()
    assert r.add(second, 0) is None
    whole = r.add(first, 1)
    assert whole is not None and not whole.split
    assert whole.groups[0] == {"DataTime": "20260107100000"} and {"w20120-Avg": "2"} in whole.groups
    r2 = Reassembler()
    assert r2.release(second, 0) == []
    out = r2.release(first, 1)
    assert len(out) == 2 and out[1].groups[0] == {"DataTime": "20260107100000"}
    lost = Reassembler(max_age_ns=10)
    lost.add(second, 0)
    lost.expire(100)
    assert len(lost) == 0
