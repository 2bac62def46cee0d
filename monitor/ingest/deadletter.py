"""Dead letters: rejected payloads kept for inspection, in a file or on an MQTT topic, bounded in size.

A bureau's integrator debugging a sensor gateway needs the exact bytes that were refused and why; the
counters and the rate-limited log say only that something was. Both sinks are bounded: the file rotates
to one `.1` predecessor (so at most 2 x max_bytes on disk), the topic is rate-limited, and each record
carries at most the first 64 KiB of its payload.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from monitor.domain.rejection import Rejection

log = logging.getLogger("riverwatch.deadletter")

MAX_PAYLOAD_KEPT = 64 * 1024


def record(topic: str, payload: bytes | bytearray, rejections: Sequence[Rejection]) -> bytes:
    """One JSON line: when, the topic, every reason, and the payload (text if UTF-8, else base64)."""
    kept = payload[:MAX_PAYLOAD_KEPT]
    doc: dict[str, object] = {
        "received": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "topic": topic,
        "reasons": [{"reason": r.reason, "detail": r.detail} for r in rejections],
        "size": len(payload),
        "truncated": len(payload) > len(kept),
    }
    try:
        doc["payload"] = kept.decode("utf-8")
    except UnicodeDecodeError:
        doc["payload_base64"] = base64.b64encode(kept).decode()
    # backslashreplace: a topic that was not UTF-8 reaches here with its bytes as surrogates (see ingest)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"


class DeadLetterSink(Protocol):
    def keep(self, topic: str, payload: bytes | bytearray, rejections: Sequence[Rejection]) -> bytes | None:
        """Keep a rejected payload; returns the record when it is to be published on MQTT by the caller."""
        ...


class FileSink:
    """JSON lines in a file that rotates at `max_bytes` to a single `.1` predecessor."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)

    def keep(self, topic: str, payload: bytes | bytearray, rejections: Sequence[Rejection]) -> bytes | None:
        line = record(topic, payload, rejections)
        try:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as f:
                f.write(line)
        except OSError as e:  # a dead letter is a convenience: never let it stop ingest
            log.warning("dead letters: cannot write %s: %s", self.path, e.strerror)
        return None


class TopicSink:
    """Records for the caller to publish on `topic`, at most `per_second` of them (the rest are counted)."""

    def __init__(self, topic: str, per_second: float) -> None:
        self.topic, self.per_second = topic, per_second
        self._window_start, self._in_window, self.dropped = time.monotonic(), 0, 0

    def keep(self, topic: str, payload: bytes | bytearray, rejections: Sequence[Rejection]) -> bytes | None:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            if self.dropped:
                log.warning(
                    "dead letters: %d records over %s/s not published to %s", self.dropped, self.per_second, self.topic
                )
            self._window_start, self._in_window, self.dropped = now, 0, 0
        if self._in_window >= self.per_second:
            self.dropped += 1
            return None
        self._in_window += 1
        return record(topic, payload, rejections)
