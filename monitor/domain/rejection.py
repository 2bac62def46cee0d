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
)


class Rejection(NamedTuple):
    reason: str  # one of REASONS
    detail: str
    # The series and time a record-level rejection is about, where the decoder got that far: a clock fault is
    # raised per series, and admission counts series.
    station: str | None = None
    parameter: str | None = None
    ts_ns: int | None = None
