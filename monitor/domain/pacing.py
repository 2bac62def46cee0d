"""Pacing for the loops that wait: capped exponential backoff, and a nap that wakes on new work or stop."""

from __future__ import annotations

import asyncio


class Backoff:
    """Capped exponential backoff: first, 2*first, 4*first ... up to `cap`."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.next = first, cap, first

    def step(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.next = self.first


async def nap(wake: asyncio.Event | None, stop: asyncio.Event, timeout: float) -> None:
    """Sleep up to `timeout`, waking early when `wake` or `stop` is set; clears `wake`."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    if wake is not None:
        wake.clear()
