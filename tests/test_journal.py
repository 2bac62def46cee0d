"""The journal: what is committed survives, each consumer sees every reading once, and nothing leaves early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.domain.reading import Reading
from monitor.journal import Journal


def readings(n: int, station: str = "s1", start: int = 0) -> list[Reading]:
    return [Reading(station, "cd", (start + i) * 10**9, 0.001 * i, None) for i in range(n)]


def test_consumers_read_in_order_from_their_own_cursor(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    assert j.append(readings(10)) == 10
    first = j.read("store", 4)
    assert [r.ts_ns for _, r in first] == [i * 10**9 for i in range(4)]
    j.advance("store", first[-1][0])
    assert [r.ts_ns for _, r in j.read("store", 100)] == [i * 10**9 for i in range(4, 10)]
    assert len(j.read("rules", 100)) == 10  # the other consumer is unaffected
    assert j.backlog("store") == 6


def test_redelivered_readings_are_absorbed(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    assert j.append(readings(5)) == 5
    assert j.append(readings(7)) == 2
    assert j.backlog("store") == 7


def test_rows_leave_only_after_every_consumer_and_the_dedup_window(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", dedup_window_s=0)
    j.append(readings(5))
    last = j.read("store", 5)[-1][0]
    j.advance("store", last)
    assert j.prune() == 0  # rules has not seen them yet
    j.advance("rules", last)
    assert j.prune() == 5


def test_committed_readings_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    code = (
        f"import os, sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r});"
        "from monitor.journal import Journal; from monitor.domain.reading import Reading;"
        f"j = Journal(__import__('pathlib').Path({str(path)!r}));"
        "j.append([Reading('s', 'cd', i, 0.1, None) for i in range(1000)]);"
        "os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    assert Journal(path).backlog("store") == 1000


def test_set_aside_keeps_refused_batches(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.set_aside([(r, "HTTP 400: field type conflict") for r in readings(3)])
    assert j.set_aside_count() == 3


def test_consumers_get_every_row_once_whether_from_memory_or_disk(tmp_path: Path) -> None:
    """The in-memory tail and SQLite must give the same rows: a lagging consumer, a redelivery in a batch, a
    tail smaller than the backlog, a restart with a backlog on disk."""
    path = tmp_path / "j.sqlite"
    j = Journal(path, tail_limit=25)
    expected: list[int] = []
    for k in range(8):
        batch = readings(10, start=10 * k)
        if k == 4:
            batch = readings(3, start=10 * k - 3) + batch  # three redeliveries: the tail must not guess
        j.append(batch)
        expected += [r.ts_ns for r in readings(10, start=10 * k)]
        if k % 2:
            rows = j.read("store", 7)  # store lags behind, rules keeps up
            j.advance("store", rows[-1][0])
        rows = j.read("rules", 1000)
        j.advance("rules", rows[-1][0])
    seen: list[int] = []
    j2 = Journal(path)  # disk only: what a restart reads
    store_disk = j2.read("store", 1000)
    while rows := j.read("store", 6):
        seen += [r.ts_ns for _, r in rows]
        j.advance("store", rows[-1][0])
    assert [r.ts_ns for _, r in store_disk] == seen[: len(store_disk)]
    done = {r.ts_ns for _, r in Journal(path).read("rules", 1000)}
    assert not done  # rules has passed everything
    consumed_by_store = len(expected) - len(seen)
    assert seen == expected[consumed_by_store:]
    assert sorted(set(seen)) == seen  # in order, no row twice


def test_tail_and_disk_agree_on_seqs(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.append(readings(5))
    j.append(readings(5, start=5))
    mem = j.read("store", 100)
    disk = Journal(tmp_path / "j.sqlite").read("store", 100)
    assert mem == disk and [s for s, _ in mem] == list(range(1, 11))
    for after, limit in ((0, 100), (3, 4), (4, 100), (10, 5)):
        from_tail = j.take("store", limit, after)
        from_disk = Journal(tmp_path / "j.sqlite").take("store", limit, after)
        assert (
            from_tail
            == from_disk
            == ([r for s, r in mem if s > after][:limit], max([s for s, _ in mem if s > after][:limit], default=0))
        )


def test_rows_another_writer_committed_are_read_from_disk(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.append(readings(3))
    Journal(tmp_path / "j.sqlite").append(readings(2, station="other"))
    j.append(readings(3, start=3))
    assert [r.station for _, r in j.read("rules", 100)] == ["s1"] * 3 + ["other"] * 2 + ["s1"] * 3


def test_cursors_survive_a_reopen_and_carry_over_from_an_older_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.append(readings(6))
    j.advance("store", j.read("store", 4)[-1][0])
    j.close()
    reopened = Journal(path)
    assert [r.ts_ns for _, r in reopened.read("store", 100)] == [i * 10**9 for i in (4, 5)]
    reopened.close()
    # A journal written before the cursors had a file of their own: its cursors table seeds the new file.
    import sqlite3

    old = sqlite3.connect(path, isolation_level=None)
    old.execute("UPDATE cursors SET seq = 5 WHERE consumer = 'rules'")
    old.close()
    for leftover in tmp_path.glob("j-cursors.sqlite*"):
        leftover.unlink()
    again = Journal(path)
    assert [r.ts_ns for _, r in again.read("rules", 100)] == [5 * 10**9]
    assert [r.ts_ns for _, r in again.read("store", 100)] == [i * 10**9 for i in range(6)]  # never moved there
