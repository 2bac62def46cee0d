"""One PNG per station for backtest and report: concentration, class limits as bands, alerts, exceedances.

Why these layers: an engineer comparing threshold variants needs to see, on one picture, where the river
really was against each class limit (the bands), when it truly crossed the station's limit (red spans) and
when each variant's alert was open (one bar per variant above the data), so "caught 40 minutes later" can
be checked by eye. Drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it
works headless and does not disturb other users of matplotlib in the process. matplotlib is imported by
the functions that draw: half a second that the commands which never draw should not pay.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from monitor.domain.params import PARAMETERS
from monitor.offline.dataset import Exceedance
from monitor.offline.scoring import AlertSpan
from monitor.offline.tables import offset_label
from monitor.offline.tallies import SeriesStats
from monitor.thresholds import Limit, ThresholdSet

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

SEVERITY_COLOURS = {"warning": "#e0a800", "serious": "#e46c0a", "critical": "#c00000"}
VARIANT_COLOURS = ("#1f77b4", "#9467bd", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
CLASS_COLOURS = ("#2e7d32", "#7cb342", "#c0ca33", "#fbc02d", "#fb8c00", "#e53935")  # I .. V, then worse than V
MAX_PANELS = 6


@dataclass(frozen=True)
class AlertMarks:
    """The alerts of one variant (or the ledger's), drawn as one row of bars above each panel."""

    label: str
    alerts: Sequence[AlertSpan]
    screened: Sequence[tuple[str, str, int, float, str]] = ()  # readings its screens set aside (Rules.suspects)


def station_pngs(
    stats: SeriesStats,
    thresholds: ThresholdSet,
    default_class: str,
    marks: Sequence[AlertMarks],
    reference: Sequence[Exceedance],
    tz: timezone,
    progress: bool = False,
) -> list[tuple[str, bytes]]:
    """(station, PNG bytes) for every station with readings, in river order where the stations file says it."""

    ds = stats.ds
    order = sorted(range(len(ds.stations)), key=lambda i: _river_key(thresholds, ds.stations[i], i))
    out = []
    for si in tqdm(order, desc="plots", unit=" station", file=sys.stderr, disable=not progress or len(order) < 5):
        station = ds.stations[si]
        png = station_png(stats, thresholds, default_class, station, marks, reference, tz)
        if png is not None:
            out.append((station, png))
    return out


def file_name(station: str) -> str:
    """A station id as a file name (for its PNG)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", station) or "station"


def _river_key(t: ThresholdSet, station: str, i: int) -> tuple[str, float, int]:
    st = t.stations.get(station)
    if st is None or st.river_km is None:
        return ("~", 0.0, i)
    return (st.river, st.river_km, i)


def station_png(
    stats: SeriesStats,
    thresholds: ThresholdSet,
    default_class: str,
    station: str,
    marks: Sequence[AlertMarks],
    reference: Sequence[Exceedance],
    tz: timezone,
) -> bytes | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415  heavy, only when plotting
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # noqa: PLC0415  heavy, only when plotting
    from matplotlib.figure import Figure  # noqa: PLC0415  heavy, only when plotting

    ds = stats.ds
    si = ds.stations.index(station)
    alerted = {a.parameter for m in marks for a in m.alerts if a.station == station}
    present = [p for pi, p in enumerate(ds.parameters) if stats.count[si * stats.P + pi]]
    panels = [p for p in present if stats.limits[stats.series(station, p)] or p in alerted]
    if not panels:
        panels = present
    if not panels:
        return None
    panels = sorted(
        panels, key=lambda p: (p not in alerted, not stats.limits[stats.series(station, p)], ds.parameters.index(p))
    )[:MAX_PANELS]
    klass, _ = thresholds.class_of(station, default_class)
    st = thresholds.stations.get(station)
    fig = Figure(figsize=(11, 1.0 + 2.5 * len(panels)), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    offset_ns = int((tz.utcoffset(None) or timedelta(0)).total_seconds() * 1e9)
    handles: dict[str, Artist] = {}
    for ax, p in zip(axes, panels, strict=True):
        _panel(ax, stats, thresholds, default_class, station, p, klass, marks, reference, offset_ns, handles)
    axes[-1].set_xlabel(f"time ({offset_label(tz)})")
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    title = f"{station}" + (f" — {st.name}" if st is not None and st.name else "") + f" (class {klass})"
    fig.suptitle(title, fontsize=12)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=min(len(handles), 5),
        fontsize=8,
        frameon=False,
    )
    buf = BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _x(ts_ns: np.ndarray | int, offset_ns: int) -> np.ndarray:
    """Epoch ns to naive datetime64 in the report's offset (matplotlib plots datetime64 as it is)."""
    return (np.asarray(ts_ns, dtype=np.int64) + offset_ns).astype("datetime64[ns]")


def _panel(
    ax: Axes,
    stats: SeriesStats,
    thresholds: ThresholdSet,
    default_class: str,
    station: str,
    parameter: str,
    klass: str,
    marks: Sequence[AlertMarks],
    reference: Sequence[Exceedance],
    offset_ns: int,
    handles: dict[str, Artist],
) -> None:
    from matplotlib.lines import Line2D  # noqa: PLC0415  heavy, only when plotting

    s = stats.series(station, parameter)
    t, lo, mean, hi = stats.plot_series(s)
    ft, fv = stats.flagged_points(s)
    limits = stats.limits[s]
    in_force = thresholds.limit(station, parameter, default_class, int(t[-1]) if len(t) else None)
    unit = PARAMETERS[parameter].unit if parameter in PARAMETERS else ""
    # Vertical extent: the data, and the limits near it.
    data = np.concatenate([lo, hi]) if len(t) else fv  # flagged values (rinse water, check standards) only
    data = data[np.isfinite(data)]  # stretch the axis when there is nothing else
    if not len(data):
        data = np.array([0.0, 1.0])
    dmin, dmax = float(data.min()), float(data.max())
    near = [x for lim in limits for x in (lim.value, lim.low) if x is not None and x <= dmax * 3 + 1e-12]
    if in_force is not None and in_force.kind in ("max", "min", "range"):
        near.append(in_force.value)
    top = max([dmax, *near]) if near else dmax
    bottom = min([dmin, *near]) if near else dmin
    kind = limits[0].kind if limits else (in_force.kind if in_force is not None else "max")
    log = kind == "max" and bottom > 0 and top / bottom > 30
    reserve = 0.1 + 0.08 * len(marks)  # the top of the panel holds one bar row per variant
    if log:
        ax.set_yscale("log")
        lb, lt = np.log10(bottom) - 0.1, np.log10(top) + 0.1
        lt = lt + (lt - lb) * reserve / (1 - reserve)
        y0, y1 = 10**lb, 10**lt
    else:
        y0 = 0.0 if bottom >= 0 and kind != "min" else bottom - 0.05 * (top - bottom + 1e-12)
        if kind in ("min", "range") and bottom > 0:
            y0 = bottom - 0.1 * (top - bottom + 1e-12)
        span = top - y0 or abs(top) or 1.0
        y1 = top + span * 0.05
        y1 = y1 + (y1 - y0) * reserve / (1 - reserve)
    ax.set_ylim(y0, y1)
    _bands(ax, limits, y0, y1, handles)
    if in_force is not None and in_force.kind in ("max", "min", "range"):
        for v in (in_force.value, in_force.low):
            if v is not None and y0 < v < y1:
                line = ax.axhline(v, color="#b00000", lw=1.3, ls="--")
                handles.setdefault(f"limit in force (class {klass})", line)
    # Exceedances of the station's class limit.
    label = "true exceedance" if any(e.source == "truth" for e in reference) else "measured exceedance"
    end = stats.ds.end_ns
    for e in reference:
        if (e.station, e.parameter, e.klass) == (station, parameter, klass):
            x0, x1 = _x(e.start_ns, offset_ns), _x(e.end(end), offset_ns)
            # matplotlib takes datetime64 through its date units; its stubs say float
            handles.setdefault(label, ax.axvspan(x0, x1, color="#6a1b9a", alpha=0.10, lw=0))  # type: ignore[arg-type]
            handles.setdefault("crossing", ax.axvline(x0, color="#6a1b9a", lw=1.0, ls=":"))  # type: ignore[arg-type]
    # The data: mean per time bucket, min-max envelope where a bucket holds several readings.
    x = _x(t, offset_ns)
    if len(t):
        handles.setdefault(
            "reading", ax.plot(x, mean, color="#1f3b57", lw=1.0, marker="." if len(t) < 400 else None, ms=3)[0]
        )
        if (hi > lo).any():
            handles.setdefault("min–max per bucket", ax.fill_between(x, lo, hi, color="#1f3b57", alpha=0.25, lw=0))
    if len(ft):
        handles.setdefault("flagged (not evaluated)", ax.plot(_x(ft, offset_ns), fv, "x", color="#888888", ms=4)[0])
    for i, m in enumerate(marks):
        pts = [(t_, v_) for st_, pa_, t_, v_, _ in m.screened if st_ == station and pa_ == parameter]
        if pts:
            colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
            ax.plot(
                _x(np.array([p_[0] for p_ in pts]), offset_ns),
                [p_[1] for p_ in pts],
                "o",
                mfc="none",
                mec=colour,
                ms=6 + 2 * i,
                mew=1.0,
            )
            handles.setdefault(
                "set aside by a screen (ring in the variant's colour)",
                Line2D([], [], marker="o", mfc="none", mec="#444444", ls=""),
            )
    _alert_rows(ax, marks, station, parameter, offset_ns, end, handles)
    ax.set_ylabel(f"{parameter}" + (f" ({unit})" if unit else ""))
    ax.grid(True, which="major", alpha=0.3)


def _bands(ax: Axes, limits: Sequence[Limit], y0: float, y1: float, handles: dict[str, Artist]) -> None:
    """Class limits as coloured bands (class I green to worse than V red) and labelled lines."""
    from matplotlib.patches import Patch  # noqa: PLC0415  heavy, only when plotting
    from matplotlib.transforms import blended_transform_factory  # noqa: PLC0415  heavy, only when plotting

    if not limits:
        return
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    kind = limits[0].kind
    if kind == "range":
        low = (
            min(lim.low for lim in limits if lim.low is not None)
            if any(lim.low is not None for lim in limits)
            else None
        )
        high = max(lim.value for lim in limits)
        if low is not None and y0 < low:
            ax.axhspan(y0, low, color=CLASS_COLOURS[-1], alpha=0.12, lw=0)
        if high < y1:
            ax.axhspan(high, y1, color=CLASS_COLOURS[-1], alpha=0.12, lw=0)
        for v in (low, high):
            if v is not None and y0 < v < y1:
                ax.axhline(v, color="#555555", lw=0.6)
                ax.text(1.002, v, "I–V", transform=trans, fontsize=7, va="center")
        handles.setdefault("outside every class", Patch(color=CLASS_COLOURS[-1], alpha=0.3))
        return
    # Distinct limit values with the classes that share them, from the cleanest class to the worst.
    groups: list[tuple[float, list[str]]] = []
    for lim in limits:
        if groups and groups[-1][0] == lim.value:
            groups[-1][1].append(lim.klass)
        else:
            groups.append((lim.value, [lim.klass]))
    edges = [g[0] for g in groups]
    colours = [CLASS_COLOURS[min(i, len(CLASS_COLOURS) - 2)] for i in range(len(groups))]
    if kind == "max":
        lows = [y0, *edges]
        highs = [*edges, y1]
    else:  # min: class I is above its limit, worse classes below
        lows = [*edges, y0]
        highs = [y1, *edges]
    for i, (a, b) in enumerate(zip(lows, highs, strict=True)):
        lo, hi = max(min(a, b), y0), min(max(a, b), y1)
        if hi > lo:
            ax.axhspan(lo, hi, color=colours[i] if i < len(groups) else CLASS_COLOURS[-1], alpha=0.10, lw=0)
    for value, names in groups:
        if y0 < value < y1:
            ax.axhline(value, color="#555555", lw=0.6)
            name = names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"
            ax.text(1.002, value, name, transform=trans, fontsize=7, va="center")
    handles.setdefault("class I … V bands", Patch(color=CLASS_COLOURS[1], alpha=0.3))
    handles.setdefault("worse than the last class", Patch(color=CLASS_COLOURS[-1], alpha=0.3))


def _alert_rows(
    ax: Axes,
    marks: Sequence[AlertMarks],
    station: str,
    parameter: str,
    offset_ns: int,
    end_ns: int,
    handles: dict[str, Artist],
) -> None:
    """One row per variant at the top of the panel: a bar while an alert is open, a triangle where it fired."""
    from matplotlib.lines import Line2D  # noqa: PLC0415  heavy, only when plotting
    from matplotlib.transforms import blended_transform_factory  # noqa: PLC0415  heavy, only when plotting

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, m in enumerate(marks):
        y = 0.95 - 0.08 * i
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        ax.text(0.003, y + 0.035, m.label[:60], transform=ax.transAxes, fontsize=7, color=colour, va="center")
        for a in m.alerts:
            if (a.station, a.parameter) != (station, parameter):
                continue
            x0 = _x(a.started_ns, offset_ns)
            x1 = _x(a.resolved_ns if a.resolved_ns is not None else end_ns, offset_ns)
            ax.plot([x0, x1], [y, y], transform=trans, color=colour, lw=4, solid_capstyle="butt", alpha=0.8)
            sev = SEVERITY_COLOURS.get(a.severity, "#555555")
            ax.plot([x0], [y], transform=trans, marker="v", color=sev, ms=7, mec="black", mew=0.5)
            handles.setdefault(
                f"alert: {a.severity}", Line2D([], [], marker="v", color=sev, ls="", mec="black", mew=0.5)
            )
        handles.setdefault("alert open (bar per variant)", Line2D([], [], color=VARIANT_COLOURS[0], lw=4))
