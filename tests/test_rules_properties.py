"""Property tests: every numpy rule against a plain-Python reference, reading by reading.

Random series with gaps, duplicates and shuffled (out-of-order) timestamps, cut into random batches, go
through the Evaluator; a straightforward reference that handles one reading at a time must produce the same
verdicts and the same alert events. Values are multiples of 1/1024 and times multiples of 15 min, so that sums,
means and slopes are exact in binary floating point and both sides can be compared with ==.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.domain.reading import Reading
from monitor.rules import MAD_TO_SIGMA, Rules, SeriesCheck
from monitor.thresholds import NS_PER_HOUR, ThresholdSet, load

T0 = 1_326_585_600 * 10**9
STEP = 15 * 60 * 10**9  # 15 min
WALL = 1_750_000_000 * 10**9  # a replay in 2025: stream time follows the data (never past the wall clock)
LIMIT = 32 / 1024  # cd limit (max)
DO_MIN = 16 / 1024  # a minimum, for the min kind
TIERS = ((1.0, "warning"), (1.5, "serious"), (2.0, "critical"))
FLAGS = [None] * 12 + ["calibration", "suspect", "<DL"]
Verdict = tuple[int, float, float, bool, bool]  # (time, value or statistic, ratio, condition, calm) per reading

PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# --------------------------------------------------------------------------- the configuration drawn


@dataclass(frozen=True)
class Config:
    persistence: tuple[int, int] | None  # (readings, duration in steps)
    mean_window: int  # steps; 0 = no mean rule
    mean_min: int
    rate: tuple[int, float, float] | None  # (window steps, rise per hour, above)
    clear_ratio: float
    hold: int  # steps
    flatline: int  # 0 = off
    spike: tuple[int, float, float] | None  # (window, mads, floor)
    instrument_range: tuple[float, float] | None
    detection_limit: float | None
    expect: int  # steps; 0 = no no-data rule

    def toml(self) -> str:
        text = f"""
            [standard]
            id = "P"

            [items.cd]
            kind = "max"
            limit = {LIMIT!r}

            [items.do]
            kind = "min"
            limit = {DO_MIN!r}

            [stations.s]
            class = "III"
            """
        if self.expect:
            text += f'expect = {{ cd = "{self.expect * 15}min", do = "{self.expect * 15}min" }}\n'
        text += """
            [alerts]
            severity = { warning = 1, serious = 1.5, critical = 2 }
            """
        # one step per transition (the lifecycle's two steps are the Evaluator's, tested in test_alerts*)
        text += f'clear_ratio = {self.clear_ratio!r}\nclear_hold = "{self.hold * 15}min"\n'
        text += "confirm = 1\nclear_readings = 1\n"
        text += "clear_band = 0\n"  # the noise band under the limit is the Evaluator's (tests/test_alert_trend.py)
        if self.persistence:
            n, d = self.persistence
            text += '\n[[rules]]\nkind = "persistence"\n'
            text += (f"readings = {n}\n" if n else "") + (f'duration = "{d * 15}min"\n' if d else "")
        if self.mean_window:
            text += (
                f'\n[[rules]]\nkind = "mean"\nwindow = "{self.mean_window * 15}min"\nmin_readings = {self.mean_min}\n'
            )
        if self.rate:
            w, rise, above = self.rate
            text += f'\n[[rules]]\nkind = "rate"\nwindow = "{w * 15}min"\nrise_per_hour = {rise!r}\nabove = {above!r}\n'
        # only the screens drawn here: no shipped instrument defaults, no learnt-gap, below-DL-run or
        # maintenance sensor alerts (sensor health has its own tests)
        screen = ["instrument_defaults = false", "gap_factor = 0", "below_dl_run = 0", 'maintenance_max = "0s"']
        if self.flatline:
            screen.append(f"flatline = {self.flatline}")
        if self.spike:
            w, mads, floor = self.spike
            screen += [f"spike_window = {w}", f"spike_mads = {mads!r}", f"spike_floor = {floor!r}"]
        text += "\n[screen]\n" + "\n".join(screen) + "\n"
        inst = []
        if self.instrument_range:
            inst.append(f"range = [{self.instrument_range[0]!r}, {self.instrument_range[1]!r}]")
        if self.detection_limit:
            inst.append(f"detection_limit = {self.detection_limit!r}")
        if inst:
            text += "\n[instruments.cd]\n" + "\n".join(inst) + "\n"
        return textwrap.dedent(text)


configs = st.builds(
    Config,
    persistence=st.none() | st.tuples(st.integers(0, 3), st.integers(0, 6)).filter(lambda x: x != (0, 0)),
    mean_window=st.sampled_from([0, 1, 4, 12]),
    mean_min=st.integers(1, 3),
    rate=st.none()
    | st.tuples(st.sampled_from([2, 4, 8]), st.sampled_from([1 / 1024, 4 / 1024, 1 / 64]), st.sampled_from([0.0, 0.5])),
    clear_ratio=st.sampled_from([1.0, 0.75, 0.5]),
    hold=st.sampled_from([0, 0, 2, 5]),
    flatline=st.sampled_from([0, 0, 2, 3]),
    spike=st.none() | st.tuples(st.integers(3, 6), st.sampled_from([2.0, 3.0]), st.sampled_from([0.0, 1 / 1024])),
    instrument_range=st.none() | st.just((0.0, 56 / 1024)),
    detection_limit=st.none() | st.just(2 / 1024),
    expect=st.sampled_from([0, 0, 3]),
)


@st.composite
def streams(draw: st.DrawFn) -> list[list[Reading]]:
    """Readings of two series (cd: a maximum, do: a minimum) with gaps and repeats, cut into shuffled batches."""
    n = draw(st.integers(1, 70))
    steps = draw(st.lists(st.sampled_from([0, 1, 1, 1, 2, 5, 13]), min_size=n, max_size=n))
    levels = draw(st.lists(st.integers(0, 72), min_size=n, max_size=n))
    flags = draw(st.lists(st.sampled_from(FLAGS), min_size=n, max_size=n))
    readings: list[Reading] = []
    t = T0
    for i in range(n):
        t += steps[i] * STEP
        param = "do" if i % 5 == 4 else "cd"
        readings.append(Reading("s", param, t, levels[i] / 1024, flags[i]))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=6))))
    batches = [readings[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True) if readings[a:b]]
    shuffled = []
    for b in batches:
        order = draw(st.permutations(range(len(b))))
        shuffled.append([b[i] for i in order])
    if draw(st.booleans()) and len(shuffled) > 1:  # a batch that arrives late as a whole
        shuffled[0], shuffled[1] = shuffled[1], shuffled[0]
    return shuffled


# --------------------------------------------------------------------------- the reference


@dataclass
class _SeriesRef:
    last_ts: int | None = None
    last_value: float = math.nan
    flat_value: float = math.nan
    flat_run: int = 0
    spike_prev: int = 0
    screen: list[float] = field(default_factory=list)
    held: tuple[Reading, int] | None = None  # a first spike waiting for the next judged reading, its direction
    accepted: list[tuple[int, float]] = field(default_factory=list)  # (ts, stat) of evaluated readings
    run: tuple[int, int] | None = None  # persistence (start, length)


@dataclass
class _AlertRef:
    alert_id: str
    started: int
    tier: int
    peak: tuple[float, float]


class Reference:
    """One reading at a time, lists and loops only."""

    def __init__(self, c: Config) -> None:
        self.c = c
        self.series: dict[str, _SeriesRef] = {}
        self.open: dict[tuple[str, str], _AlertRef] = {}
        self.calm_start: dict[tuple[str, str], int | None] = {}
        self.events: list[tuple[object, ...]] = []
        self.verdicts: dict[tuple[str, str], list[Verdict]] = {}
        self.started: int | None = None

    def process(self, batch: Sequence[Reading]) -> None:
        if self.started is None:
            self.started = min(r.ts_ns for r in batch)
        batch_events: list[tuple[object, ...]] = []
        for param in ("cd", "do"):
            rows = sorted((r for r in batch if r.parameter == param), key=lambda r: r.ts_ns)
            s = self.series.setdefault(param, _SeriesRef())
            fresh: list[Reading] = []
            for r in rows:
                if (s.last_ts is not None and r.ts_ns <= s.last_ts) or (fresh and fresh[-1].ts_ns == r.ts_ns):
                    continue
                fresh.append(r)
            if not fresh:
                continue
            batch_events += self._no_data(param, s, fresh)
            s.last_ts, s.last_value = fresh[-1].ts_ns, fresh[-1].value
            for r in fresh:
                batch_events += self._reading(param, s, r)
        batch_events.sort(key=lambda e: e[2])  # type: ignore[arg-type,return-value]
        self.events += batch_events

    def _no_data(self, param: str, s: _SeriesRef, fresh: list[Reading]) -> list[tuple[object, ...]]:
        if not self.c.expect:
            return []
        limit = 3 * self.c.expect * STEP
        prev = s.last_ts if s.last_ts is not None else self.started
        prev_value = s.last_value
        out: list[tuple[object, ...]] = []
        for r in fresh:
            assert prev is not None
            if r.ts_ns - prev > limit:
                out += self._transition(
                    param, "no_data", True, 1.0, False, prev + limit, prev_value, fixed=True, hold=0
                )
            out += self._transition(param, "no_data", False, 0.0, True, r.ts_ns, r.value, fixed=True, hold=0)
            prev, prev_value = r.ts_ns, r.value
        return out

    def _screen(self, s: _SeriesRef, r: Reading) -> tuple[str, float, int]:
        """(quality, detection limit, spike direction): the spike screen sees only what passed the others."""
        c = self.c
        flag = (r.flag or "").lower()
        if flag in ("calibration", "maintenance"):
            return "ignored", math.nan, 0
        if flag in ("suspect", "fault", "invalid"):
            return "suspect", math.nan, 0
        if flag in ("<dl", "l", "<lod", "nd", "below_dl"):
            configured = c.detection_limit if r.parameter == "cd" else None
            return "below", r.value if r.value > 0 else (configured or 0.0), 0
        if r.parameter == "cd" and c.instrument_range and not c.instrument_range[0] <= r.value <= c.instrument_range[1]:
            return "range", math.nan, 0
        if r.parameter == "cd" and c.detection_limit and r.value < c.detection_limit:
            return "below", c.detection_limit, 0
        if c.flatline:
            s.flat_run = s.flat_run + 1 if r.value == s.flat_value else 1
            s.flat_value = r.value
            if s.flat_run >= c.flatline:
                return "flatline", math.nan, 0
        raw = 0
        quality = "ok"
        if c.spike:
            w, mads, floor = c.spike
            raw = 0
            if len(s.screen) >= w:
                window = s.screen[-w:]
                med = statistics.median(window)
                mad = statistics.median([abs(x - med) for x in window])
                thr = mads * max(MAD_TO_SIGMA * mad, floor)
                raw = 1 if r.value - med > thr else -1 if -(r.value - med) > thr else 0
            if raw != 0 and s.spike_prev != raw:
                quality = "spike"
            s.spike_prev = raw
            s.screen.append(r.value)
        return quality, math.nan, raw

    def _reading(self, param: str, s: _SeriesRef, r: Reading) -> list[tuple[object, ...]]:
        """A first spike is held until the next judged reading: one in the same direction (a below-DL reading
        goes down) releases it, judged at its own time before that reading; any other sets it aside."""
        quality, dl, raw = self._screen(s, r)
        if quality not in ("ok", "below", "spike"):
            return []
        out: list[tuple[object, ...]] = []
        if s.held is not None:
            held, direction = s.held
            s.held = None
            if (-1 if quality == "below" else raw) == direction:
                out += self._judged(param, s, held, False, math.nan)
        if quality == "spike":
            s.held = (r, raw)
            return out
        return out + self._judged(param, s, r, quality == "below", dl)

    def _judged(self, param: str, s: _SeriesRef, r: Reading, below: bool, dl: float) -> list[tuple[object, ...]]:
        v = dl if below else r.value
        out: list[tuple[object, ...]] = []
        # below the detection limit is never a violation, of a maximum or of a minimum (sensor health says it)
        if param == "cd":
            ratio = v / LIMIT
            viol = (v > LIMIT) and not below
        else:
            ratio = DO_MIN / v if v > 0 else math.inf
            viol = v < DO_MIN and not below
        calm = (not viol) and ratio <= self.c.clear_ratio and not (below and param == "do")
        cond = viol
        if self.c.persistence:
            n, d = self.c.persistence
            if viol:
                s.run = (s.run[0], s.run[1] + 1) if s.run else (r.ts_ns, 1)
                cond = (not n or s.run[1] >= n) and (not d or r.ts_ns - s.run[0] >= d * STEP)
            else:
                s.run = None
        self.verdicts.setdefault((param, ""), []).append((r.ts_ns, v, ratio, cond, calm))
        out += self._transition(param, "", cond, ratio, calm, r.ts_ns, v)
        stat = dl / 2 if below else r.value
        s.accepted.append((r.ts_ns, stat))
        if self.c.mean_window:
            w = self.c.mean_window * STEP
            window = [x for t, x in s.accepted if r.ts_ns - w < t <= r.ts_ns]
            mean = sum(window) / len(window)
            filled = r.ts_ns - w >= s.accepted[0][0] and len(window) >= self.c.mean_min
            mratio = mean / LIMIT if param == "cd" else (DO_MIN / mean if mean > 0 else math.inf)
            mviol = filled and ((mean > LIMIT) if param == "cd" else mean < DO_MIN)
            mcalm = filled and not mviol and mratio <= self.c.clear_ratio
            self.verdicts.setdefault((param, "mean"), []).append((r.ts_ns, mean, mratio, mviol, mcalm))
            out += self._transition(param, "mean", mviol, mratio, mcalm, r.ts_ns, mean)
        if self.c.rate:
            wsteps, rise, above = self.c.rate
            w = wsteps * STEP
            pts = [(t, x) for t, x in s.accepted if r.ts_ns - w < t <= r.ts_ns]
            n = len(pts)
            t0 = pts[0][0]
            ts_h = [(t - t0) / NS_PER_HOUR for t, _ in pts]
            xs = [x for _, x in pts]
            stt = sum(t * t for t in ts_h)
            st_ = sum(ts_h)
            denom = n * stt - st_ * st_
            ok = n >= 3 and denom > 0
            slope = (
                (n * sum(t * x for t, x in zip(ts_h, xs, strict=True)) - st_ * sum(xs)) / denom
                if denom > 0
                else math.nan
            )
            rising = ok and slope >= rise
            settled = ok and slope <= 0
            rcond = rising and not viol and ratio >= above
            rcalm = settled and not viol and (ratio < above if above else ratio <= self.c.clear_ratio)
            self.verdicts.setdefault((param, "rate"), []).append((r.ts_ns, v, ratio, rcond, rcalm))
            out += self._transition(param, "rate", rcond, ratio, rcalm, r.ts_ns, v, fixed=True, hold=wsteps)
        return out

    def _transition(
        self,
        param: str,
        key: str,
        violated: bool,
        ratio: float,
        calm: bool,
        ts: int,
        value: float,
        fixed: bool = False,
        hold: int | None = None,
    ) -> list[tuple[object, ...]]:
        """The alert lifecycle of one series-rule, one point at a time (what AlertBook does with numpy)."""
        hold_ns = (self.c.hold if hold is None else hold) * STEP
        k = (param, key)
        out: list[tuple[object, ...]] = []
        if violated:
            self.calm_start[k] = None
            tier = 1 if fixed else max(1, sum(1 for bound, _ in TIERS if ratio >= bound))
            a = self.open.get(k)
            if a is None:
                when = np.datetime64(ts, "ns").astype("datetime64[m]").item().strftime("%Y%m%dT%H%MZ")
                a = self.open[k] = _AlertRef(f"s/{param}/{key + '/' if key else ''}{when}", ts, tier, (value, ratio))
                out.append((a.alert_id, "firing", ts, TIERS[tier - 1][1]))
            elif tier > a.tier:
                a.tier = tier
                if ratio > a.peak[1]:
                    a.peak = (value, ratio)
                out.append((a.alert_id, "escalated", ts, TIERS[tier - 1][1]))
            if ratio > a.peak[1]:
                a.peak = (value, ratio)
        elif calm:
            start = self.calm_start.get(k)
            if start is None:
                start = self.calm_start[k] = ts
            a = self.open.get(k)
            if a is not None and ts - start >= hold_ns:
                del self.open[k]
                out.append((a.alert_id, "resolved", ts, TIERS[a.tier - 1][1]))
        else:
            self.calm_start[k] = None
        return out


# --------------------------------------------------------------------------- the properties


def thresholds_for(c: Config, tmp: Path) -> ThresholdSet:
    path = tmp / "p.toml"
    path.write_text(c.toml(), encoding="utf-8")
    return load([path])


def summary(events: Sequence[AlertEvent]) -> list[tuple[object, ...]]:
    return [(e.alert_id, e.state, e.ts_ns, e.severity) for e in events]


def engine_verdicts(rules: Rules, batches: list[list[Reading]]) -> dict[tuple[str, str], list[Verdict]]:
    out: dict[tuple[str, str], list[Verdict]] = {}
    for batch in batches:
        for chk in rules.evaluate(batch, now_ns=WALL):
            assert isinstance(chk, SeriesCheck)  # small batches: quiet series come expanded
            if chk.rule == "no_data" or chk.category == "sensor":  # sensor health has its own tests
                continue
            calm = chk.calm if chk.calm is not None else ~chk.violated
            key = (chk.parameter, chk.key if chk.rule != "rate" else "rate")
            out.setdefault(key, []).extend(
                (int(t), float(v), float(r), bool(x), bool(c))
                for t, v, r, x, c in zip(chk.ts_ns, chk.values, chk.ratio, chk.violated, calm, strict=True)
            )
    return out


@PROPS
@given(c=configs, batches=streams())
def test_every_rule_matches_the_reference(tmp_path_factory: object, c: Config, batches: list[list[Reading]]) -> None:
    tmp = tmp_path_factory.mktemp("p")  # type: ignore[attr-defined]
    ts = thresholds_for(c, tmp)
    ref = Reference(c)
    for batch in batches:
        ref.process(batch)
    got = engine_verdicts(Rules(ts, "III"), batches)
    for key in set(got) | set(ref.verdicts):
        g, r = got.get(key, []), ref.verdicts.get(key, [])
        assert len(g) == len(r), (key, c)
        for a, b in zip(g, r, strict=True):
            assert a[0] == b[0] and a[3:] == b[3:], (key, a, b, c)
            assert a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1])), (key, a, b)
            assert a[2] == b[2] or (math.isinf(a[2]) and math.isinf(b[2])), (key, a, b)


@PROPS
@given(c=configs, batches=streams())
def test_alert_events_match_the_reference(tmp_path_factory: object, c: Config, batches: list[list[Reading]]) -> None:
    tmp = tmp_path_factory.mktemp("p")  # type: ignore[attr-defined]
    ev = Evaluator(thresholds_for(c, tmp), "III")
    ref = Reference(c)
    got: list[AlertEvent] = []
    for b in batches:
        got += [e for e in ev.process(b, now_ns=WALL) if e.category == "water" or e.rule == "no_data"]
        ref.process(b)
    assert sorted(summary(got)) == sorted(ref.events)


@PROPS
@given(c=configs, batches=streams())
def test_batching_never_changes_the_outcome(tmp_path_factory: object, c: Config, batches: list[list[Reading]]) -> None:
    """The same readings one by one, or all at once, give the same events as in the drawn batches, as long as
    no reading arrives after a newer one of its series (then it is late in one cut and not in another)."""
    tmp = tmp_path_factory.mktemp("p")  # type: ignore[attr-defined]
    ts = thresholds_for(c, tmp)
    ordered = sorted((r for b in batches for r in b), key=lambda r: r.ts_ns)
    whole = Evaluator(ts, "III").process(ordered, now_ns=WALL)
    one = Evaluator(ts, "III")
    singles = [e for r in ordered for e in one.process([r], now_ns=WALL)]
    assert sorted(summary(singles)) == sorted(summary(whole))


SPIKE_ONLY = Config(None, 0, 1, None, 1.0, 0, 0, (3, 2.0, 0.0), None, None, 0)


def _cd(i: int, value: float, flag: str | None = None) -> Reading:
    return Reading("s", "cd", T0 + i * STEP, value, flag)


def _by_cut(tmp: Path, readings: list[Reading]) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    """Events for the readings in one batch and one by one, and how many readings were set aside as spikes."""
    ts = thresholds_for(SPIKE_ONLY, tmp)
    whole = Evaluator(ts, "III")
    together = summary(whole.process(readings, now_ns=WALL))
    spikes = sum(1 for *_, why in whole.rules.suspects if why == "spike")
    one = Evaluator(ts, "III")
    singles = summary([e for r in readings for e in one.process([r], now_ns=WALL)])
    return together, singles, spikes


def test_a_spike_followed_by_a_below_dl_reading_is_set_aside_however_the_batches_are_cut(tmp_path: Path) -> None:
    """The below-DL reading after a lone high cd reading decides it (the river went back): no alert, in one
    batch or one at a time, and the high reading is counted as a spike."""
    readings = [_cd(0, 0.0), _cd(1, 0.0), _cd(2, 0.0), _cd(3, 40 / 1024), _cd(4, 0.0, "<DL"), _cd(5, 1 / 1024)]
    together, singles, spikes = _by_cut(tmp_path, readings)
    assert together == singles == []
    assert spikes == 1


def test_a_plume_front_held_by_the_spike_screen_alerts_at_its_own_time(tmp_path: Path) -> None:
    """Two high readings in a row: the first one is released by the second and fires at its own time."""
    readings = [_cd(0, 0.0), _cd(1, 0.0), _cd(2, 0.0), _cd(3, 40 / 1024), _cd(4, 44 / 1024)]
    together, singles, spikes = _by_cut(tmp_path, readings)
    front = T0 + 3 * STEP
    assert [(state, t) for _, state, t, _ in together] == [("firing", front)]
    assert sorted(singles) == sorted(together)
    assert spikes == 0
