"""Rule kind `event`: CANARY-like detection of several signals leaving a station's normal behaviour together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.rules.event import EventBook, binomial_tail
from monitor.thresholds import check, load
from monitor.thresholds.model import EVENT_DEFAULTS, RuleSpec

H = 3600 * 10**9
SIGNALS = ("cond", "turb", "ph", "temp")


def rule(**kw: object) -> RuleSpec:
    d = EVENT_DEFAULTS
    settings: dict[str, object] = dict(
        history=int(d["window"]),
        sigma=d["threshold"],
        outlier_probability=d["outlier_probability"],
        confidence=d["confidence"],
        steps=int(d["steps"]),
        min_signals=int(d["min_signals"]),
        timeout=int(d["timeout"]),
    )
    settings.update(kw)
    return RuleSpec("event", "event", SIGNALS, origin="t.toml:1", **settings)  # type: ignore[arg-type]


def river(days: float, seed: int, step_h: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Seasonal drift, a daily cycle (pH and temperature in phase, as photosynthesis makes them) and noise."""
    rng = np.random.default_rng(seed)
    n = int(days * 24 / step_h)
    t = 1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * int(step_h * H)
    day = np.arange(n) * step_h / 24
    daily = np.sin(2 * np.pi * day)
    return t, {
        "cond": 500 + 150 * np.sin(2 * np.pi * day / 120) + 10 * daily + rng.normal(0, 8, n),
        "turb": 20 + 8 * np.sin(2 * np.pi * day / 90 + 1) + rng.normal(0, 1.5, n),
        "ph": 7.6 + 0.2 * daily + rng.normal(0, 0.03, n),
        "temp": 18 + 8 * np.sin(2 * np.pi * day / 365) + 1.5 * daily + rng.normal(0, 0.2, n),
    }


def run(r: RuleSpec, t: np.ndarray, sig: dict[str, np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feed the detector series by series, one batch at a time, as the rules engine does."""
    book = EventBook()
    checks = []
    for a in range(0, len(t), batch):
        for p in r.parameters:
            checks += book.feed(r, "lalang", p, t[a : a + batch], sig[p][a : a + batch], "warning")
    ts = np.concatenate([c.ts_ns for c in checks])
    open_ = np.concatenate([c.violated for c in checks])
    details = [c.detail_at(i) for c in checks for i in range(len(c.ts_ns))]
    assert all(c.rule == "event" and c.category == "water" and c.parameter == "cond" for c in checks)
    return ts, open_, details


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seasonal_drift_with_noise_raises_no_event_in_60_days(seed: int) -> None:
    t, sig = river(60, seed, step_h=0.5)
    ts, open_, _ = run(rule(), t, sig, batch=500)
    assert len(ts) == len(t)  # every time step judged
    assert not open_.any()


def test_conductivity_and_turbidity_stepping_together_raise_an_event_within_a_few_steps() -> None:
    t, sig = river(30, seed=4)
    sig["cond"][500:] += 120  # a discharge: +15 σ in conductivity ...
    sig["turb"][500:] += 25  # ... and in turbidity, from the same step
    _, open_, details = run(rule(), t, sig, batch=24)
    assert not open_[:500].any()
    first = int(np.flatnonzero(open_)[0])
    assert 500 <= first <= 503
    assert "cond" in details[first] and "turb" in details[first] and "σ" in details[first]
    assert "ph" not in details[first].split(":")[0]  # the signals that did not move are not named


def test_a_single_signal_blip_raises_no_event() -> None:
    t, sig = river(30, seed=5)
    sig["cond"][400] += 400
    sig["turb"][410:413] += 60  # a short turbidity pulse, still one signal
    _, open_, _ = run(rule(), t, sig, batch=24)
    assert not open_.any()


def test_a_lasting_change_is_learnt_as_the_new_normal_after_the_timeout() -> None:
    t, sig = river(30, seed=6)
    sig["cond"][300:] += 150
    sig["turb"][300:] += 30
    _, open_, details = run(rule(timeout=24), t, sig, batch=24)
    opened = np.flatnonzero(open_)
    assert opened[0] <= 303 and opened[-1] < 340  # open for the timeout, then the level is the new normal
    assert any("new normal" in d for d in details)
    assert not open_[400:].any()


def test_results_do_not_depend_on_how_the_readings_were_batched() -> None:
    t, sig = river(20, seed=7)
    sig["cond"][200:240] -= 100
    sig["turb"][200:240] += 20
    results = [run(rule(), t, sig, batch=b)[:2] for b in (1, 5, 10_000)]
    for ts, open_ in results[1:]:
        assert np.array_equal(ts, results[0][0]) and np.array_equal(open_, results[0][1])
    assert results[0][1].any()


def test_a_dead_signal_is_not_waited_for_after_the_next_batch() -> None:
    t, sig = river(10, seed=8)
    sig["ph"][100:] = np.nan  # the pH probe stops reporting at step 100
    book = EventBook()
    r = rule()
    judged = 0
    for a in range(0, len(t), 12):
        for p in r.parameters:
            keep = ~np.isnan(sig[p][a : a + 12])
            for c in book.feed(r, "s", p, t[a : a + 12][keep], sig[p][a : a + 12][keep], "warning"):
                judged += len(c.ts_ns)
    assert judged >= len(t) - 24  # the other signals go on being judged


def test_binomial_tail() -> None:
    tail = binomial_tail(6, 0.05)
    assert tail[0] == pytest.approx(1.0)
    assert tail[3] == pytest.approx(0.00223, rel=0.01)
    assert tail[7] == 0.0


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "t.toml"
    f.write_text(text, encoding="utf-8")
    return f


def test_event_rule_loads_with_defaults_and_its_own_settings(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[rules]]\nkind = "event"\nparameters = ["cond", "turb", "orp"]\n\n'
        '[[rules]]\nkind = "event"\nname = "intake"\nparameters = ["fcl", "toc"]\nwindow = 144\nthreshold = 3.0\n'
        "steps = 10\nmin_signals = 2\nconfidence = 0.999\noutlier_probability = 0.1\ntimeout = 0\n",
    )
    a, b = load([f]).rules
    assert (a.history, a.sigma, a.steps, a.min_signals, a.timeout) == (72, 2.5, 6, 2, 72)
    assert (b.history, b.sigma, b.steps, b.confidence, b.outlier_probability, b.timeout) == (
        144,
        3.0,
        10,
        0.999,
        0.1,
        0,
    )


def test_event_rule_problems_name_file_and_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[rules]]\nkind = "event"\nparameters = ["cond"]\n\n'  # 1: one signal
        '[[rules]]\nkind = "event"\nparameters = ["cond", "turb"]\nwindow = "24h"\n\n'  # 5: a duration
        '[[rules]]\nkind = "event"\nparameters = ["cond", "turb"]\nmin_signals = 3\nthreshold = -1\n\n'  # 10
        '[[rules]]\nkind = "event"\nparameters = ["cond", "turb"]\noutlier_probability = 0.9\nsteps = 3\n\n'  # 16
        '[[rules]]\nkind = "event"\nparameters = ["cond", "turb"]\nwndow = 10\n',  # 22
    )
    problems = [str(p) for p in check([f])]
    assert len(problems) == 6, problems
    assert problems[0].startswith(f"{f}:1: rules[0]: an event rule needs 'parameters' with at least two")
    assert problems[1].startswith(f"{f}:8: rules[1].window: for an event rule, the number of steps")
    assert problems[2].startswith(f"{f}:13: rules[2].min_signals (3) is more than the 2 signals")
    assert problems[3].startswith(f"{f}:14: rules[2].threshold")
    assert problems[4].startswith(f"{f}:16: rules[3]: this event rule can never fire")
    assert problems[5].startswith(f"{f}:25: rules[4].wndow: unknown key 'wndow'")
