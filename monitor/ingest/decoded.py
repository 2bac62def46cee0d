"""What a decoder returns: the readings accepted and the rejections, each with its reason.

Its own module so that every payload form's decoder (JSON and SenML in `decode`, HJ 212 in `hj212_decode`)
returns the same type without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.domain.reading import Reading
from monitor.domain.rejection import Rejection


class Decoded(NamedTuple):
    readings: list[Reading]
    rejections: list[Rejection]
    # What was taken but not all understood (a single reading's unknown keys): counted and logged by ingest.
    warnings: tuple[str, ...] = ()
