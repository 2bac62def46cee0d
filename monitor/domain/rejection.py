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
)


class Rejection(NamedTuple):
    reason: str  # one of REASONS
    detail: str
