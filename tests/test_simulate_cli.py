"""`simulate` and `replay` as the CLI calls them (simulators.commands): exit codes, one-line usage errors,
byte-identical output for a seed, the ground-truth file, every reading delivered exactly once to a real
mosquitto, and replay keeping the recorded timing."""

from __future__ import annotations

import collections
import json
import time
import uuid
from pathlib import Path

import pytest

from bench.servers import Mosquitto, free_port
from simulators.commands import replay, simulate
from simulators.longjiang import longjiang_2012, single_messages
from tests.test_simulators import Subscriber


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "yangtze-2030"}, "unknown scenario 'yangtze-2030' (known: baseline, beijiang-2005"),
        ({"mqtt": None, "out": None}, "simulate needs --mqtt URL, --out FILE.csv or --ground-truth FILE"),
        ({"speed": -1.0}, "--speed must be a number >= 0"),
        ({"speed": float("nan")}, "--speed must be a number >= 0"),
        ({"seed": -3}, "--seed must be >= 0"),
        ({"mqtt": "http://127.0.0.1:1883"}, "--mqtt: MQTT URL must start with mqtt:// or mqtts://"),
        ({"start": "next tuesday"}, "--start 'next tuesday' is not a date or an RFC 3339 time"),
        ({"start": "2012-01-03T00:00:00"}, "--start '2012-01-03T00:00:00' needs a UTC offset"),
        ({"root": "river/#"}, "--root 'river/#' must be a topic prefix"),
    ],
)
def test_simulate_bad_usage_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "scenario": "baseline",
        "mqtt": None,
        "speed": 0.0,
        "seed": 1,
        "start": None,
        "out": tmp_path / "out.csv",
        "ground_truth": None,
        **kwargs,
    }
    assert simulate(**args) == 2  # type: ignore[arg-type]
    assert _err_line(capsys).startswith(f"riverwatch: {message}")
    assert not (tmp_path / "out.csv").exists()  # nothing written when the arguments are wrong


def test_simulate_unwritable_out_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing" / "out.csv"
    assert simulate("baseline", None, 0.0, 1, None, out, None) == 2
    assert _err_line(capsys) == f"riverwatch: cannot write {out}: No such file or directory"


def test_same_seed_gives_byte_identical_csv(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        assert simulate("longjiang-2012", None, 0.0, seed, None, path, None) == 0
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c
    assert a.startswith(b"ts,station,parameter,value,unit,flag\n2012-01-03T00:00:00+08:00,lalang,cd,")


def test_start_and_ground_truth_file(tmp_path: Path) -> None:
    out, gt = tmp_path / "r.csv", tmp_path / "truth.json"
    assert simulate("longjiang-2012", None, 0.0, 2012, "2026-01-03", out, gt) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("2026-01-03T00:00:00+08:00,lalang,cd,")
    doc = json.loads(gt.read_text(encoding="utf-8"))
    assert doc["scenario"] == "longjiang-2012" and doc["seed"] == 2012 and doc["start"] == "2026-01-03T00:00:00+08:00"
    lalang = next(e for e in doc["episodes"] if e["station"] == "lalang" and e["class"] == "III")
    assert lalang["from"].startswith("2026-01-05") and lalang["back"].startswith("2026-01-29")
    assert simulate("baseline", None, 0.0, 1, None, None, tmp_path / "truth.csv") == 0
    assert (tmp_path / "truth.csv").read_text(encoding="utf-8").startswith("station,parameter,class,")


def test_simulate_publishes_every_reading_exactly_once(
    fresh_mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    root = f"sim-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(fresh_mosquitto.port, f"{root}/#")
    try:
        assert simulate("longjiang-2012", fresh_mosquitto.url, 0.0, 2012, None, None, None, root=root) == 0
        expected = collections.Counter((t, p) for _, t, p in single_messages(longjiang_2012().readings(), root))
        sub.wait_for(sum(expected.values()), timeout=60)
        time.sleep(0.3)  # room for a stray duplicate
        assert collections.Counter(sub.received) == expected
    finally:
        sub.close()
    err = capsys.readouterr().err
    assert "sim 2012-02-07" in err and "reading/s" in err  # the bar: simulated time, count and rate
    assert f"published {sum(expected.values())} readings of longjiang-2012" in err


def test_simulate_broker_down_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert simulate("baseline", f"mqtt://127.0.0.1:{port}", 0.0, 1, None, None, None) == 1
    assert f"cannot connect to MQTT broker 127.0.0.1:{port}" in capsys.readouterr().err


def test_replay_keeps_relative_timing(tmp_path: Path, fresh_mosquitto: Mosquitto) -> None:
    path = tmp_path / "three.csv"
    path.write_text(  # out of order on purpose: replay sorts by time
        "ts,station,parameter,value,unit\n"
        "2012-01-15T08:00:04+08:00,lalang,cd,0.3,mg/L\n"
        "2012-01-15T08:00:00+08:00,lalang,cd,0.1,mg/L\n"
        "2012-01-15T08:00:02+08:00,lalang,cd,0.2,mg/L\n",
        encoding="utf-8",
    )
    root = f"rp-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(fresh_mosquitto.port, f"{root}/#")
    try:
        started = time.monotonic()
        assert replay(path, fresh_mosquitto.url, 10.0, root=root) == 0
        took = time.monotonic() - started
        sub.wait_for(3, timeout=10)
    finally:
        sub.close()
    assert 0.38 <= took < 1.5  # 4 s of record at 10x
    assert [json.loads(p)["value"] for _, p in sub.received] == [0.1, 0.2, 0.3]
    assert {t for t, _ in sub.received} == {f"{root}/lalang/cd"}


def test_replay_bad_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,station,parameter,value,unit\n2012-01-15T08:00:00,lalang,cd,0.1,mg/L\n", encoding="utf-8")
    assert replay(bad, "mqtt://127.0.0.1:1883", 0.0) == 2
    assert _err_line(capsys).startswith(f"riverwatch: {bad}:2: timestamp")
    assert replay(tmp_path / "none.csv", "mqtt://127.0.0.1:1883", 0.0) == 2
    assert _err_line(capsys) == f"riverwatch: cannot read {tmp_path / 'none.csv'}: No such file or directory"
    assert replay(bad, "mqtt://127.0.0.1:1883", -2.0) == 2
    assert "--speed" in _err_line(capsys)
