"""Why a payload or record was refused: the reasons the contract names, and one rejection value."""

from __future__ import annotations

from typing import NamedTuple

# Every reason a payload or record can be rejected for; metrics are labelled with these names.
REASONS = (
    "too_large",
    "malformed",
    "bad_topic",
    "bad_station",
    "unknown_parameter",
    "unknown_unit",
    "not_numeric",
    "not_finite",
    "negative",
    "bad_timestamp",
    "bad_flag",
    "future_timestamp",  # dated more than [mqtt].max_clock_skew_s ahead of the receiving clock
    "unknown_station",  # a station no station file declares ([admission].unknown_stations = "reject")
    "admission",  # an undeclared series over [admission].new_series_per_hour
    # HJ 212 (issue 15); the names are monitor.domain.hj212's constants.
    "hj212_frame",  # bytes that are not a frame: length field, CR LF, over max_frame_bytes, CRC not hex
    "hj212_crc",  # a frame whose CRC does not match its data segment (QnRtn 9)
    "hj212_malformed",  # a data segment without ST, CN or MN, or with a field that is not key=value
    "hj212_encrypted",  # an encrypted CP (HJ 212-2025): not decodable until keys are supported
    "hj212_command",  # a CN that carries no readings where readings were expected
    "hj212_split",  # parts of a split packet (PNUM/PNO) dropped: no part with a DataTime arrived in time
    "hj212_password",  # a PW that is not the station's (QnRtn 3)
    "hj212_unknown_mn",  # an MN no station file maps (QnRtn 4)
    "hj212_version",  # a protocol version [hj212].versions does not accept
)


class Rejection(NamedTuple):
    reason: str  # one of REASONS
    detail: str
    # The series and time a record-level rejection is about, where the decoder got that far: a clock fault is
    # raised per series, and admission counts series.
    station: str | None = None
    parameter: str | None = None
    ts_ns: int | None = None
