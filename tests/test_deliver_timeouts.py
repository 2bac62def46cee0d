"""A target that answers 200 late gets no copies: a URL without its own `rto`/`cto` waits
`[notify].timeout_s` (60 s) for the answer. Real apprise `json://` against a real HTTP receiver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from monitor.metrics import Metrics
from monitor.notify.deliver import deliver, with_timeouts
from monitor.notify.outbox import Outbox
from monitor.notify.render import Message
from tests.slow_http import SlowReceiver


def send(tmp_path: Path, url: str, messages: int, window_s: float) -> Metrics:
    """Deliver `messages` to `url` for `window_s` seconds with the service's default timeouts."""
    outbox = Outbox(tmp_path / "outbox.sqlite", [url])
    for i in range(messages):
        outbox.add(Message(f"alert-{i}", f"title {i}", f"body {i}", "warning"))
    metrics = Metrics()

    async def go() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(deliver(outbox, url, metrics, wake, stop, retry_cap_s=1.0))
        deadline = time.monotonic() + window_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        wake.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(go())
    outbox.close()
    return metrics


def test_a_receiver_that_answers_after_5_s_gets_each_message_once(tmp_path: Path) -> None:
    with SlowReceiver(5.0) as receiver:
        metrics = send(tmp_path, receiver.json_url(), 2, 14.0)
        got = receiver.received
    assert len(got) == 2 and len(set(got)) == 2
    assert (metrics.registry.get_sample_value("riverwatch_notifications_sent_total") or 0) == 2


def test_a_url_with_its_own_short_read_timeout_keeps_it(tmp_path: Path) -> None:
    """Per target: apprise's `rto` in the URL wins; shorter than the answer, the target gets copies."""
    with SlowReceiver(3.0) as receiver:
        metrics = send(tmp_path, receiver.json_url("rto=1"), 1, 9.0)
        got = receiver.received
    assert len(got) >= 2 and len(set(got)) == 1  # one message, sent again after each timeout
    assert (metrics.registry.get_sample_value("riverwatch_notifications_failed_total") or 0) >= 2


def test_timeouts_are_added_only_where_the_url_sets_none() -> None:
    assert with_timeouts("json://h:1/a", 60, 10) == ("json://h:1/a?rto=60&cto=10", 75.0)
    assert with_timeouts("json://h:1/a?rto=5&x=1", 60, 10) == ("json://h:1/a?rto=5&x=1&cto=10", 20.0)
    assert with_timeouts("dingtalk://tok/?cto=3&rto=2", 60, 10) == ("dingtalk://tok/?cto=3&rto=2", 10.0)
