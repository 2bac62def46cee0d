"""Retained messages: taken once, whatever the reconnects and restarts.

A broker re-sends a topic's retained message at every subscription: every reconnect and every restart. Without
a time of its own it would be stamped anew each time and stored (and alerted on) again. So, with
`[mqtt] retained = "accept"`, each topic's retained payload is remembered by its hash, with the receipt time
it was given, in `retained.json` next to the journal:

- saved (not yet taken) before the readings are journaled, so a crash in between gives the redelivery the same
  time, which the journal's key then recognises;
- marked taken after the commit, so a later copy is dropped before it reaches the journal at all, even after
  the journal has pruned the readings.

One entry per topic (a new payload replaces it), at most MAX_TOPICS entries (the oldest go first).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import NamedTuple

from monitor.journal import JournalError

log = logging.getLogger("riverwatch.ingest")

MAX_TOPICS = 10_000


class Memo(NamedTuple):
    digest: str
    ts_ns: int  # the receipt time the payload was given the first time
    taken: bool  # journaled


def digest(payload: bytes | bytearray) -> str:
    return hashlib.sha256(payload).hexdigest()


class RetainedMemo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._memo: dict[str, Memo] = {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            for topic, (d, ts, taken) in doc.items():
                self._memo[topic] = Memo(str(d), int(ts), bool(taken))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as e:
            # Unreadable: retained messages may be taken once more (duplicates, never a loss).
            log.warning("retained messages: cannot read %s (%s); starting afresh", path, e)

    def get(self, topic: str) -> Memo | None:
        return self._memo.get(topic)

    def remember(self, topic: str, memo: Memo) -> None:
        """In memory at once (a later batch decoded before this one's commit sees it); durable at `write`."""
        self._memo.pop(topic, None)
        self._memo[topic] = memo
        while len(self._memo) > MAX_TOPICS:
            del self._memo[next(iter(self._memo))]

    def mark_taken(self, topics: list[str]) -> None:
        for topic in topics:
            memo = self._memo.get(topic)
            if memo is not None:
                self._memo[topic] = memo._replace(taken=True)

    def snapshot(self) -> dict[str, list[object]]:
        """What `write` saves, taken in the event loop (decoding goes on while the file is written)."""
        return {t: list(m) for t, m in self._memo.items()}

    def write(self, snapshot: dict[str, list[object]]) -> None:
        """Durably (fsync, rename); one commit at a time calls it, from a worker thread."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(snapshot, f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)
        except OSError as e:  # as the journal's own failure: nothing of the batch is acknowledged
            raise JournalError(f"retained messages {self.path}: {e.strerror or e}") from None
