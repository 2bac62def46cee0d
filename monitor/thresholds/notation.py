"""How numbers and durations are written in threshold files and in the messages made from them."""

from __future__ import annotations

import math
import re
from decimal import Decimal

NS_PER_HOUR = 3_600_000_000_000


def fmt_number(value: float) -> str:
    """A limit as people write it: 0.00005, not 5e-05; 6, not 6.0."""
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_DURATION_UNITS = {
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "min": 60 * 10**9,
    "h": NS_PER_HOUR,
    "d": 24 * NS_PER_HOUR,
    "w": 7 * 24 * NS_PER_HOUR,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d|w)")


def parse_duration(text: object) -> int | None:
    """ "90s", "15min", "2h", "1h30m", "7d", "1w" in nanoseconds; None when it is not such a duration.

    A bare number is refused on purpose: "24" could be hours or readings, and a threshold file must not guess.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            if text[pos:].strip():
                return None
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return round(total)


def format_duration(ns: int) -> str:
    """The short human form used in messages: "24 h", "7 d", "90 s", "1 h 30 min"."""
    if ns <= 0:
        return "0 s"
    parts: list[str] = []
    rest = ns
    for unit, size in (("d", 24 * NS_PER_HOUR), ("h", NS_PER_HOUR), ("min", 60 * 10**9), ("s", 10**9)):
        if rest >= size:
            n, rest = divmod(rest, size)
            parts.append(f"{n} {unit}")
    if rest and not parts:
        parts.append(f"{rest / 10**6:g} ms")
    return " ".join(parts)
