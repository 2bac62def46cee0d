"""Fuzzing the HJ 212 frame reader: any bytes never raise and stay bounded; any split gives the same frames."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.domain.hj212 import Frame, FrameReader, HJ212Error, frame, parse_segment

_SEGMENT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="#"), max_size=300)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8))
def test_any_bytes_never_raise_and_stay_bounded(chunks: list[bytes]) -> None:
    reader = FrameReader(max_frame=1000)
    for chunk in chunks:
        for item in reader.feed(chunk):
            if isinstance(item, Frame):
                with contextlib.suppress(HJ212Error):
                    parse_segment(item.segment)
        assert reader.buffered <= 1000 + 12


@settings(max_examples=200, deadline=None)
@given(_SEGMENT)
def test_frames_round_trip(segment: str) -> None:
    (got,) = FrameReader().feed(frame(segment))
    assert isinstance(got, Frame) and got.crc_ok and got.segment == segment


@settings(max_examples=200, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=5), st.lists(st.integers(min_value=0, max_value=2000), max_size=10))
def test_any_split_gives_the_same_frames(segments: list[str], cuts: list[int]) -> None:
    stream = b"".join(frame(s) for s in segments)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    reader = FrameReader()
    got: list[str] = []
    prev = 0
    for p in [*points, len(stream)]:
        got += [f.segment for f in reader.feed(stream[prev:p]) if isinstance(f, Frame)]
        prev = p
    assert got == segments
