"""Writing a batch and finding what the database refuses in it, shared by the store's drain and redrive.

A 400 from the database can be one bad point or a fault in front of it (a proxy answering 400 to
everything for a while). `isolate` tells the two apart cheaply: a refused batch is first probed with one
of its lines; if even that is refused, the database refuses everything now and the batch is reported
refused whole (two requests, not a bisection of thousands); otherwise the batch is bisected so that only
the lines it refuses are reported, and every other line is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RetryableError(Exception):
    """The database may take this batch later: outage, timeout, 5xx, 429."""


class BadBatchError(Exception):
    """The database refused this batch (4xx): resending it as it is will not help now."""


class Writer(Protocol):
    name: str

    async def write(self, lines: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


WHOLE = " (the database refused even one line of its batch alone: it refuses everything now)"


async def isolate(
    writer: Writer, lines: Sequence[str], probe: int = 0, *, probes: bool = True
) -> list[tuple[int, str]]:
    """Write `lines`; the (index, error) of each the database refuses, every other line written.

    When the whole batch is refused, two of its lines (from index `probe`, and half-way round) are tried
    alone first: if both are refused too, the whole batch is reported refused (the database refuses
    everything now); `probes=False` bisects regardless (a last attempt, where every good line must get
    through). Writes are idempotent per series and time, so resending a line a partial write already took is
    harmless. RetryableError propagates (nothing is known refused then).
    """
    try:
        await writer.write(lines)
        return []
    except BadBatchError as e:
        if len(lines) == 1:
            return [(0, str(e))]
        if not probes:
            return await _bisect(writer, lines)
    n = len(lines)
    tried: list[int] = []
    last = BadBatchError("")
    for i in dict.fromkeys((probe % n, (probe + n // 2) % n)):
        try:
            await writer.write([lines[i]])
        except BadBatchError as e:
            tried.append(i)
            last = e
            continue
        # The database takes lines now: this batch holds bad ones. Bisect what was not tried yet.
        rest = [j for j in range(n) if j != i and j not in tried]
        refused = [(rest[k], err) for k, err in await _bisect(writer, [lines[j] for j in rest])]
        return sorted([(j, str(last)) for j in tried] + refused)
    return [(i, f"{last}{WHOLE}") for i in range(n)]


async def _bisect(writer: Writer, lines: Sequence[str]) -> list[tuple[int, str]]:
    """About log2(n) extra requests per refused line."""
    if not lines:
        return []
    try:
        await writer.write(lines)
        return []
    except BadBatchError as e:
        if len(lines) == 1:
            return [(0, str(e))]
    mid = len(lines) // 2
    low = await _bisect(writer, lines[:mid])
    high = await _bisect(writer, lines[mid:])
    return low + [(mid + i, err) for i, err in high]
