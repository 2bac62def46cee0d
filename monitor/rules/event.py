"""Rule kind `event`: water-quality event detection without fixed limits, in the manner of US EPA CANARY.

For signals that have no standard, or whose normal level drifts with the season (conductivity, turbidity, pH,
redox, chlorine, TOC, UV254, temperature), each station learns its own normal behaviour online from a moving
window of recent steps; there are no labels and no training step. Per step:

1. Linear prediction (CANARY's LPCF): per signal, an AR(2) model with intercept is fitted by least squares to
   the window and predicts the step; the residual in standard deviations of the window's own fit residuals is
   the signal's deviation.
2. Outlier step: at least `min_signals` signals deviate by more than `threshold` σ together. One signal alone
   (a blip, a drifting probe) never makes one; the sensor-health screens speak about single instruments.
3. Binomial event discriminator (BED) over the last `steps` steps: with k outlier steps among them, an event
   opens when P(k or more | steps, outlier_probability) < 1 - confidence, and ends when that probability is
   back above one half (CANARY's return to normal).
4. Learning: a step that is not an outlier enters the window, so slow (seasonal) change is followed; outlier
   steps never do, so an event is not learnt away while it lasts. After `timeout` steps of one event its level
   is taken as the new normal (CANARY's event timeout): the window is refilled from the latest steps.

Defaults (EVENT_DEFAULTS): a window of 72 steps (CANARY's history window is a count of steps, typically one to
three days of data), a BED window of 6 steps and an event timeout of one window, as in CANARY's examples;
threshold 2.5 σ, outlier_probability 0.05 and confidence 0.99 put the chance of a false event in Gaussian noise
below one in a million steps while a step change in two signals opens an event at its third step.

Steps: readings of a station's signals are merged in time order; a step closes when every signal that is
reporting has a value in it, or when a signal reports again. A signal silent for more than three learnt step
intervals (6 h until learnt) is not waited for. A signal without a value in a step keeps its last one in the
window and is not judged in that step. Readings reach the detector series by series (each once per batch), so
a step is closed only when every live signal has reported past it: results do not depend on batching, except
that a signal silent for longer than the wait is stopped being waited for at the next batch.

Memory: O(window × signals) per station and rule (two windows of floats) plus the pending readings of one batch.
Time: O(signals × window) per step (one batched least-squares fit), about 30-60 µs per step in numpy.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from monitor.rules.checks import SeriesCheck
from monitor.rules.wording import number, unit_suffix
from monitor.thresholds.model import Limit, RuleSpec

DEFAULT_WAIT_NS = 6 * 3600 * 1_000_000_000  # how long a silent signal is waited for, until the cadence is learnt
_ORDER = 2  # AR order of the linear prediction
_RIDGE = 1e-6  # keeps the fit of a constant signal solvable


def binomial_tail(n: int, p: float) -> list[float]:
    """tail[k] = P(X >= k) for X ~ Binomial(n, p), k = 0..n+1."""
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    tail = [0.0] * (n + 2)
    for k in range(n, -1, -1):
        tail[k] = tail[k + 1] + pmf[k]
    return tail


def settings_of(rule: RuleSpec) -> tuple[object, ...]:
    """What a detector's state depends on: a reload that keeps these keeps what the station has learnt."""
    return (
        rule.parameters,
        rule.history,
        rule.sigma,
        rule.outlier_probability,
        rule.confidence,
        rule.steps,
        rule.min_signals,
        rule.timeout,
    )


@dataclass(slots=True)
class _Step:
    ts: int
    values: np.ndarray  # NaN: no reading of that signal in the step
    z: np.ndarray  # deviation in σ (NaN: not judged)
    expected: np.ndarray
    sigma: np.ndarray
    open: bool
    outlier: bool
    k: int
    chance: float
    relearnt: bool = False


@dataclass(slots=True)
class StationEvents:
    """One event rule at one station: the pending readings, the learnt window and the BED state."""

    rule: RuleSpec
    signals: tuple[str, ...]
    tail: list[float] = field(init=False)
    pending: list[deque[tuple[int, float]]] = field(init=False)
    last_ts: list[int | None] = field(init=False)
    live: list[bool] = field(init=False)
    fed: set[int] = field(default_factory=set)  # signals fed since the last batch boundary
    first_ts: int | None = None
    newest: int | None = None
    done_ts: int | None = None  # time of the last step closed
    current: dict[int, tuple[int, float]] = field(default_factory=dict)
    last: np.ndarray = field(init=False)  # each signal's last value (carried into steps without one)
    hist: np.ndarray = field(init=False)  # the window of normal steps, oldest first: rows [0, n)
    n: int = 0
    recent: np.ndarray = field(init=False)  # the latest steps whatever they were: the new normal at a timeout
    n_recent: int = 0
    bed: deque[bool] = field(init=False)
    open: bool = False
    open_steps: int = 0
    peak: dict[int, float] = field(default_factory=dict)  # signal -> largest |z| of the open event
    interval: float = 0.0  # learnt step interval, ns (EMA)
    gap: int = 0  # steps since the last one learnt: the prediction's horizon is gap + 1

    def __post_init__(self) -> None:
        s = len(self.signals)
        w = self.rule.history
        self.tail = binomial_tail(self.rule.steps, self.rule.outlier_probability)
        self.pending = [deque() for _ in range(s)]
        self.last_ts = [None] * s
        self.live = [True] * s
        self.last = np.full(s, np.nan)
        self.hist = np.empty((w, s))
        self.recent = np.empty((w, s))
        self.bed = deque(maxlen=self.rule.steps)

    @property
    def min_history(self) -> int:
        return max(12, self.rule.history // 4)

    # ---- readings in, steps out

    def feed(self, j: int, ts: np.ndarray, values: np.ndarray) -> list[_Step]:
        """Take one series' readings of a batch (time order) and close every step that is complete."""
        steps: list[_Step] = []
        if j in self.fed:  # this signal again: the batch before has ended, so silence there is real
            steps += self._drain(boundary=True)
            self.fed.clear()
        self.fed.add(j)
        q = self.pending[j]
        for t, v in zip(ts.tolist(), values.tolist(), strict=True):
            if self.done_ts is not None and t <= self.done_ts:
                continue  # older than a step already judged (a signal that was not waited for)
            q.append((t, v))
        if len(ts):
            t_last = int(ts[-1])
            before = self.last_ts[j]
            self.last_ts[j] = t_last if before is None else max(before, t_last)
            self.newest = t_last if self.newest is None else max(self.newest, t_last)
            if self.first_ts is None:
                self.first_ts = int(ts[0])
            self.live[j] = True
        steps += self._drain(boundary=False)
        return steps

    def _wait_ns(self) -> float:
        return max(3.0 * self.interval, 60e9) if self.interval else float(DEFAULT_WAIT_NS)

    def _drain(self, boundary: bool) -> list[_Step]:
        if boundary and self.newest is not None:
            wait = self._wait_ns()
            for j, t in enumerate(self.last_ts):
                seen = t if t is not None else self.first_ts
                if seen is not None and self.newest - seen > wait and not self.pending[j]:
                    self.live[j] = False
        live = [j for j in range(len(self.signals)) if self.live[j]]
        if not live:
            return []
        marks = [self.last_ts[j] for j in live]
        if any(m is None for m in marks):
            return []
        watermark = min(m for m in marks if m is not None)
        merged: list[tuple[int, int, float]] = []
        for j in range(len(self.signals)):
            q = self.pending[j]
            while q and q[0][0] <= watermark:
                t, v = q.popleft()
                merged.append((t, j, v))
        merged.sort()
        out: list[_Step] = []
        for t, j, v in merged:
            if j in self.current:
                out.append(self._close())
            self.current[j] = (t, v)
            if all(i in self.current for i in live):
                out.append(self._close())
        return out

    # ---- one step

    def _close(self) -> _Step:
        cur = self.current
        self.current = {}
        s = len(self.signals)
        values = np.full(s, np.nan)
        ts = 0
        for j, (t, v) in cur.items():
            values[j] = v
            ts = max(ts, t)
        if self.done_ts is not None:
            gap = ts - self.done_ts
            self.interval = gap if not self.interval else 0.9 * self.interval + 0.1 * gap
        self.done_ts = ts
        present = ~np.isnan(values)
        self.last = np.where(present, values, self.last)
        row = np.where(np.isnan(self.last), 0.0, self.last)
        rule = self.rule
        expected = np.full(s, np.nan)
        sigma = np.full(s, np.nan)
        z = np.full(s, np.nan)
        if self.n >= self.min_history:
            expected, sigma = self._predict(self.gap + 1)
            z = np.where(present, (values - expected) / sigma, np.nan)
        moved = np.abs(np.nan_to_num(z)) > rule.sigma
        outlier = int(moved.sum()) >= rule.min_signals
        self.bed.append(outlier)
        k = sum(self.bed)
        chance = self.tail[k]
        relearnt = False
        if not self.open and chance < 1.0 - rule.confidence:
            self.open, self.open_steps, self.peak = True, 0, {}
        elif self.open and chance > 0.5:
            self.open = False
        if self.open:
            self.open_steps += 1
            for j in np.flatnonzero(moved).tolist():
                zj = float(z[j])
                if abs(zj) > abs(self.peak.get(j, 0.0)):
                    self.peak[j] = zj
        if not outlier:
            self._learn(row)
            self.gap = 0
        else:
            self.gap += 1
        self._remember(row)
        if self.open and rule.timeout and self.open_steps >= rule.timeout:
            self.hist[: self.n_recent] = self.recent[: self.n_recent]
            self.n = self.n_recent
            self.gap = 0
            self.bed.clear()
            self.open = False
            relearnt = True
        return _Step(ts, values, z, expected, sigma, self.open, outlier, k, chance, relearnt)

    def _learn(self, row: np.ndarray) -> None:
        w = self.rule.history
        if self.n < w:
            self.hist[self.n] = row
            self.n += 1
        else:
            self.hist[:-1] = self.hist[1:]
            self.hist[-1] = row

    def _remember(self, row: np.ndarray) -> None:
        w = self.rule.history
        if self.n_recent < w:
            self.recent[self.n_recent] = row
            self.n_recent += 1
        else:
            self.recent[:-1] = self.recent[1:]
            self.recent[-1] = row

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Per signal, the AR(2) prediction `horizon` steps on from the last step learnt, and its σ (the fit's
        residual σ, widened by the forecast's error growth). Forecasting from the last normal state, rather than
        from the last readings, keeps a level shift visible for as long as it lasts, while a daily cycle that
        merely goes on is predicted as going on."""
        h = self.hist[: self.n]  # (n, s)
        m = self.n - _ORDER
        y = h[_ORDER:].T  # (s, m)
        x = np.stack([np.ones_like(y), h[1:-1].T, h[:-2].T], axis=2)  # (s, m, 3)
        scale = np.maximum(np.abs(h).max(axis=0), 1.0)  # keeps the ridge relative to each signal's size
        xtx = np.einsum("smi,smj->sij", x, x) + _RIDGE * m * np.eye(3) * (scale**2)[:, None, None]
        xty = np.einsum("smi,sm->si", x, y)
        coef = np.linalg.solve(xtx, xty[..., None])[..., 0]  # (s, 3)
        fit = np.einsum("smi,si->sm", x, coef)
        dof = max(m - 3, 1)
        sigma = np.sqrt(((y - fit) ** 2).sum(axis=1) / dof)
        floor = np.maximum(1e-3 * np.abs(h.mean(axis=0)), 1e-9)
        sigma = np.maximum(sigma, floor)
        c0, c1, c2 = coef[:, 0], coef[:, 1], coef[:, 2]
        a, b = h[-1].copy(), h[-2].copy()
        psi, psi_before, spread = np.ones_like(c1), np.zeros_like(c1), np.ones_like(c1)
        for step in range(horizon):
            a, b = c0 + c1 * a + c2 * b, a
            if step + 1 < horizon:
                psi, psi_before = c1 * psi + c2 * psi_before, psi
                spread += psi * psi
        wide = sigma * np.sqrt(spread)
        bad = ~(np.isfinite(a) & np.isfinite(wide))
        if bad.any():  # an explosive fit: fall back on the window's mean and spread
            a = np.where(bad, h.mean(axis=0), a)
            wide = np.where(bad, np.maximum(h.std(axis=0), floor), wide)
        return a, wide

    # ---- what the alert says

    def detail(self, step: _Step) -> str:
        rule = self.rule
        parts: list[str] = []
        shown = [j for j in range(len(self.signals)) if not math.isnan(step.z[j]) and abs(step.z[j]) > rule.sigma]
        shown.sort(key=lambda j: -abs(float(step.z[j])))
        for j in shown:
            pid = self.signals[j]
            unit = unit_suffix(pid)
            parts.append(
                f"{pid} {float(step.z[j]):+.1f}σ ({number(float(step.values[j]))}{unit} against "
                f"{number(float(step.expected[j]))} ± {number(float(step.sigma[j]))} expected)"
            )
        if not parts and step.open and self.peak:
            parts = [
                f"{self.signals[j]} up to {z:+.1f}σ" for j, z in sorted(self.peak.items(), key=lambda x: -abs(x[1]))
            ]
        moved = "; ".join(parts) if parts else "no signal outside its normal behaviour now"
        tail = f"{step.k} outlier steps of the last {rule.steps} (chance {step.chance:.2g} in normal water)"
        if step.relearnt:
            return f"{moved}: after {rule.timeout} steps this level is learnt as the station's new normal"
        if self.n < self.min_history and not step.open:
            return f"learning the station's normal behaviour ({self.n} of {self.min_history} steps)"
        return f"{moved}: {tail}"


class EventBook:
    """The event detectors of every station, one per (station, rule name); kept across reloads while the rule's
    settings are unchanged (see `settings_of`), so a reload does not make a station learn again."""

    __slots__ = ("_detectors",)

    def __init__(self) -> None:
        self._detectors: dict[tuple[str, str], tuple[tuple[object, ...], StationEvents]] = {}

    def __len__(self) -> int:
        return len(self._detectors)

    def detector(self, rule: RuleSpec, station: str) -> StationEvents:
        key = (station, rule.name)
        settings = settings_of(rule)
        entry = self._detectors.get(key)
        if entry is None or entry[0] != settings:
            entry = (settings, StationEvents(rule, rule.parameters))
            self._detectors[key] = entry
        return entry[1]

    def feed(
        self, rule: RuleSpec, station: str, parameter: str, ts: np.ndarray, values: np.ndarray, severity: str
    ) -> list[SeriesCheck]:
        """One series' accepted readings of a batch; a SeriesCheck (on the rule's first signal, key the rule's
        name) for the steps this completes, or none."""
        if parameter not in rule.parameters or not len(ts):
            return []
        det = self.detector(rule, station)
        steps = det.feed(rule.parameters.index(parameter), ts, values)
        if not steps:
            return []
        return [self._check(det, station, severity, steps)]

    @staticmethod
    def _check(det: StationEvents, station: str, severity: str, steps: list[_Step]) -> SeriesCheck:
        rule = det.rule
        first = rule.parameters[0]
        n = len(steps)
        ts = np.fromiter((s.ts for s in steps), dtype=np.int64, count=n)
        values = np.fromiter(
            (s.values[0] if not math.isnan(s.values[0]) else det.last[0] for s in steps), dtype=np.float64, count=n
        )
        ratio = np.fromiter(
            (float(np.nanmax(np.abs(s.z))) / rule.sigma if not np.isnan(s.z).all() else 0.0 for s in steps),
            dtype=np.float64,
            count=n,
        )
        violated = np.fromiter((s.open for s in steps), dtype=bool, count=n)
        details = [det.detail(s) for s in steps]
        signals = ", ".join(rule.parameters)
        limit = Limit(
            first,
            "event",
            rule.sigma,
            None,
            "σ",
            "event rule",
            "",
            rule.origin,
            origin=rule.origin,
            text=f"the normal behaviour of {signals} learnt over the last {rule.history} steps",
        )
        return SeriesCheck(
            station,
            first,
            limit,
            ts,
            values,
            ratio,
            violated,
            rule="event",
            key=rule.name,
            calm=~violated,
            severity=rule.severity or severity,
            clear_hold_ns=rule.clear_hold_ns if rule.clear_hold_ns is not None else 0,
            detail=details.__getitem__,
            category="water",
            confirm=1,  # the discriminator has already asked for several steps: no unconfirmed step
        )
