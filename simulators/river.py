"""A pollutant travelling down a river: 1-D advection, dispersion and first-order loss over a chain of reaches.

Why a transport model rather than a curve per station: the figures of an incident (a peak at one dam, a level
at the next, dilution at a confluence, what the dosing removed) are only consistent with each other through a
mass balance. One released mass and one set of reach hydraulics, and every station downstream follows.

Finite volumes on a uniform grid, explicit in time. Advection is upwind, and its numerical dispersion is
subtracted from the physical one so that the plume spreads as specified; dispersion is central; the loss
(settling, adsorption on sediment) is an exact exponential per step. Dams and dosing points sit on the faces
between cells: a dam stops back-mixing and both remove a fraction of the load that passes. A tributary brings
clean water, so below it the flow is larger and the concentration smaller by the flow ratio.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_DAY = 86_400 * 1_000_000_000
_M_PER_KM = 1000.0
_S_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Reach:
    """A stretch with uniform hydraulics: a dam pool is slow and well mixed, a free-flowing reach fast."""

    name: str
    start_km: float
    end_km: float
    velocity_km_d: float
    dispersion_km2_d: float
    loss_per_d: float = 0.0  # first-order: settling and adsorption on the bed


@dataclass(frozen=True)
class Tributary:
    """Clean water joining at `km`; `dilution` is the flow below the confluence over the flow above it.

    `mixing_km`: a wide, slow river does not mix a tributary across its channel at once (full lateral mixing
    takes about 0.4 u W^2 / e_t: tens of km). The model is one-dimensional, so the tributary's water joins the
    plume-carrying water in equal shares over that distance: a station inside the zone samples water only
    partly diluted, and below it the dilution is complete. 0: mixed at the confluence.
    """

    name: str
    km: float
    dilution: float
    mixing_km: float = 0.0

    def __post_init__(self) -> None:
        if self.dilution < 1.0:
            raise ValueError(f"tributary {self.name!r}: dilution must be >= 1")
        if self.mixing_km < 0.0:
            raise ValueError(f"tributary {self.name!r}: mixing_km must be >= 0")

    def factor(self, km: float) -> float:
        """The flow at `km` over the flow above the confluence: 1 above it, `dilution` once fully mixed."""
        if km < self.km:
            return 1.0
        if self.mixing_km <= 0.0 or km >= self.km + self.mixing_km:
            return self.dilution
        return 1.0 + (self.dilution - 1.0) * (km - self.km) / self.mixing_km


@dataclass(frozen=True)
class Dam:
    """A dam: no back-mixing across it, and `trap` of the passing load stays behind it (particulate settling)."""

    name: str
    km: float
    trap: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.trap < 1.0:
            raise ValueError(f"dam {self.name!r}: trap must be in [0, 1)")


@dataclass(frozen=True)
class Dosing:
    """A coagulant dosing point (PAC and lime precipitate cadmium): from `start_ns` it removes `removal` of the
    load passing it, reaching full effect over `ramp_h` hours as crews and chemicals arrive."""

    name: str
    km: float
    removal: float
    start_ns: int
    ramp_h: float = 12.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.removal < 1.0:
            raise ValueError(f"dosing point {self.name!r}: removal must be in [0, 1)")

    def fraction(self, t_ns: float) -> float:
        """The share of the passing load removed at time t_ns."""
        if t_ns <= self.start_ns:
            return 0.0
        if self.ramp_h <= 0:
            return self.removal
        return self.removal * min(1.0, (t_ns - self.start_ns) / (self.ramp_h * 3.6e12))


@dataclass(frozen=True)
class Release:
    """`mass_kg` entering at `km` at a triangular rate: nothing at start, the most at peak, nothing at end.

    A spill is rarely a single instant: leachate from a waste site or an illegal discharge runs for days.
    """

    km: float
    mass_kg: float
    start_ns: int
    peak_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if not self.start_ns <= self.peak_ns <= self.end_ns or self.start_ns == self.end_ns:
            raise ValueError("a release needs start <= peak <= end and start < end")
        if self.mass_kg < 0:
            raise ValueError("a release cannot have a negative mass")

    def released_kg(self, t_ns: float) -> float:
        """Mass released from the start up to t_ns: the integral of the triangular rate."""
        a, p, b = float(self.start_ns), float(self.peak_ns), float(self.end_ns)
        if t_ns <= a:
            return 0.0
        if t_ns >= b:
            return self.mass_kg
        if t_ns <= p:
            return self.mass_kg * (t_ns - a) ** 2 / ((b - a) * (p - a))
        return self.mass_kg * (1.0 - (b - t_ns) ** 2 / ((b - a) * (b - p)))


@dataclass(frozen=True)
class Transport:
    """Concentrations above background (mg/L) at the requested km, and where the released mass went (kg)."""

    times_ns: np.ndarray  # int64, the output times
    km: tuple[float, ...]
    conc: np.ndarray  # float64, shape (len(km), len(times_ns))
    through_kg: tuple[float, ...]  # mass carried past each requested km over the run
    released_kg: float
    lost_kg: float  # first-order loss in the reaches
    removed_kg: dict[str, float]  # per dam or dosing point
    outflow_kg: float  # carried past the last reach
    remaining_kg: float  # still in the river at the end

    def at(self, km: float) -> np.ndarray:
        """The concentration series at one of the requested km."""
        row: np.ndarray = self.conc[self.km.index(km)]
        return row

    def load_kg(self, km: float) -> float:
        """Mass carried past one of the requested km over the run."""
        return self.through_kg[self.km.index(km)]


@dataclass(frozen=True)
class River:
    """A chain of contiguous reaches, downstream order, with the flow entering the first one."""

    name: str
    flow_m3s: float
    reaches: tuple[Reach, ...]
    tributaries: tuple[Tributary, ...] = ()
    dams: tuple[Dam, ...] = ()
    dosing: tuple[Dosing, ...] = ()

    def __post_init__(self) -> None:
        if not self.reaches:
            raise ValueError("a river needs at least one reach")
        for up, down in zip(self.reaches, self.reaches[1:], strict=False):
            if not math.isclose(up.end_km, down.start_km):
                raise ValueError(f"reaches {up.name!r} and {down.name!r} are not contiguous")
        for r in self.reaches:
            if r.end_km <= r.start_km or r.velocity_km_d <= 0 or min(r.dispersion_km2_d, r.loss_per_d) < 0:
                raise ValueError(f"reach {r.name!r}: needs end > start, velocity > 0, dispersion and loss >= 0")
        for point in self.points():
            if not self.start_km < point.km < self.end_km:
                raise ValueError(f"{point.name!r} at km {point.km} is outside the river")

    def points(self) -> tuple[Tributary | Dam | Dosing, ...]:
        """Everything that acts at one km: confluences, dams, dosing points."""
        return (*self.tributaries, *self.dams, *self.dosing)

    @property
    def start_km(self) -> float:
        return self.reaches[0].start_km

    @property
    def end_km(self) -> float:
        return self.reaches[-1].end_km

    def flow_at(self, km: float) -> float:
        """Discharge (m3/s) at `km`: the inflow times every tributary's dilution above it."""
        return self.flow_m3s * math.prod(t.factor(km) for t in self.tributaries)

    def reach_at(self, km: float) -> Reach:
        return next((r for r in self.reaches if r.start_km <= km < r.end_km), self.reaches[-1])

    def transport(
        self,
        releases: Sequence[Release],
        start_ns: int,
        step_ns: int,
        steps: int,
        at_km: Sequence[float],
        dx_km: float = 0.5,
    ) -> Transport:
        """Concentrations at `at_km` every step_ns for `steps` outputs from start_ns (the first is the state at
        start_ns). A release that began earlier is run from its own start, so no mass is lost before the
        window. Deterministic: no randomness, a fixed step count."""
        first = min((r.start_ns for r in releases), default=start_ns)
        lead = max(0, -(-(start_ns - first) // step_ns))
        full = _Grid(self, dx_km).run(releases, start_ns - lead * step_ns, step_ns, steps + lead, at_km)
        # what passed a station during the lead-in still passed it: through_kg covers the whole run
        return dataclasses.replace(full, times_ns=full.times_ns[lead:], conc=full.conc[:, lead:])


class _Grid:
    """The river discretised: per-cell hydraulics and per-face exchange, built once per run."""

    def __init__(self, river: River, dx_km: float) -> None:
        self.river = river
        n = max(2, round((river.end_km - river.start_km) / dx_km))
        self.n = n
        self.dx = (river.end_km - river.start_km) / n
        centres = river.start_km + (np.arange(n) + 0.5) * self.dx
        reaches = [river.reach_at(float(x)) for x in centres]
        self.u = np.array([r.velocity_km_d for r in reaches])  # km/day
        self.disp = np.array([r.dispersion_km2_d for r in reaches])  # km2/day
        self.loss = np.array([r.loss_per_d for r in reaches])  # 1/day
        self.flow = np.full(n, river.flow_m3s * _S_PER_DAY)  # m3/day leaving each cell downstream
        ends = river.start_km + (np.arange(n) + 1.0) * self.dx  # the face below each cell
        for t in river.tributaries:
            j = self.face(t.km)
            if t.mixing_km <= 0.0:
                self.flow[j:] *= t.dilution
            else:  # the water leaving cell i has taken up the tributary's share down to the cell's lower face
                self.flow[j:] *= np.array([t.factor(max(float(x), t.km)) for x in ends[j:]])
        self.volume = self.flow / (self.u * _M_PER_KM) * self.dx * _M_PER_KM  # m3: area (Q/u) x length
        self.keep_dams = np.ones(n + 1)  # per face: share of the advective load a dam lets pass
        self.barrier = np.zeros(n + 1, dtype=bool)  # per face: no dispersion across (a dam)
        self.dam_faces: dict[str, int] = {}
        self.dosing_faces: dict[str, int] = {}
        for d in river.dams:
            j = self.interior_face(d.km, d.name)
            if j in self.dam_faces.values():
                raise ValueError(f"dam {d.name!r} shares a grid face with another dam")
            self.dam_faces[d.name] = j
            self.keep_dams[j] = 1.0 - d.trap
            self.barrier[j] = True
        for point in river.dosing:
            j = self.interior_face(point.km, point.name)
            if j in self.dosing_faces.values():
                raise ValueError(f"dosing point {point.name!r} shares a grid face with another dosing point")
            self.dosing_faces[point.name] = j

    def face(self, km: float) -> int:
        """The face a point (dam, dosing, confluence) acts on: the first one at or below its km."""
        return math.ceil((km - self.river.start_km) / self.dx - 1e-9)

    def interior_face(self, km: float, name: str) -> int:
        j = self.face(km)
        if not 0 < j < self.n:
            raise ValueError(f"{name!r} at km {km} falls on the river's boundary at this grid spacing")
        return j

    def cell(self, km: float) -> int:
        """The cell a station reads: the one ending at or just below its km, so a station at a dam head reads
        the pool above the dam."""
        return min(self.n - 1, max(0, math.floor((km - self.river.start_km) / self.dx - 1e-9)))

    def run(
        self, releases: Sequence[Release], start_ns: int, step_ns: int, steps: int, at_km: Sequence[float]
    ) -> Transport:
        if step_ns <= 0 or steps <= 0:
            raise ValueError("step_ns and steps must be positive")
        river, n, dx = self.river, self.n, self.dx
        self._check_order(at_km)
        cells = np.array([self.cell(km) for km in at_km], dtype=np.intp)
        sources = []
        for r in releases:
            if not river.start_km <= r.km < river.end_km:
                raise ValueError(f"release at km {r.km} is outside the river")
            sources.append((self.cell(r.km), r))
        step_d = step_ns / NS_PER_DAY
        # Stable and positive: advection plus dispersion out of a cell never exceed its content in one step.
        rate = float(np.max(self.u / dx + 2.0 * self.disp / dx**2))
        substeps = max(1, math.ceil(step_d * rate / 0.9))
        dt = step_d / substeps  # days
        dt_ns = step_ns / substeps
        decay = np.exp(-self.loss * dt)
        flow_in, flow_out, conduct = self._hydraulics(dt)
        dosing = [(self.dosing_faces[d.name], d) for d in river.dosing]
        first_release = min((r.start_ns for r in releases), default=None)

        conc = np.zeros(n)  # g/m3, which is mg/L
        out = np.zeros((len(cells), steps))
        removed_face = np.zeros(n - 1)  # g, per interior face
        removed_dosing = np.zeros(n - 1)  # g, the dosing point's part of it
        keep, dose_share = self.keep_dams[1:-1], np.zeros(n - 1)
        fractions: tuple[float, ...] = ()
        below = np.minimum(cells, n - 2)  # the interior face below each station's cell
        at_end = cells == n - 1
        through = np.zeros(len(cells))
        released = [r.released_kg(float(start_ns)) for r in releases]
        lost = outflow = 0.0
        for k in range(steps):
            t_ns = start_ns + k * step_ns
            out[:, k] = conc[cells]
            if first_release is None or (t_ns + step_ns <= first_release and not conc.any()):
                continue
            for s in range(substeps):
                t0 = t_ns + s * dt_ns
                now = tuple(d.fraction(t0) for _, d in dosing)
                if now != fractions:
                    fractions = now
                    keep, dose_share = self._keep(dosing, fractions)
                flux = flow_in * conc[:-1]  # g/day through the interior faces, upwind
                passed = flux * keep
                mix = conduct * (conc[:-1] - conc[1:])
                across = passed + mix
                net = np.zeros(n)
                net[1:] += across
                net[:-1] -= flux + mix
                exit_flux = flow_out * conc[-1]
                net[-1] -= exit_flux
                outflow += dt * exit_flux
                through += dt * np.where(at_end, exit_flux, across[below])
                taken = dt * (flux - passed)
                removed_face += taken
                removed_dosing += taken * dose_share
                mass = conc * self.volume + dt * net
                for i, (c, r) in enumerate(sources):
                    now_kg = r.released_kg(t0 + dt_ns)
                    mass[c] += (now_kg - released[i]) * 1000.0
                    released[i] = now_kg
                lost += float(np.dot(mass, 1.0 - decay))
                conc = mass * decay / self.volume
        removed: dict[str, float] = {}
        for name, j in self.dam_faces.items():
            removed[name] = float(removed_face[j - 1] - removed_dosing[j - 1]) / 1000.0
        for name, j in self.dosing_faces.items():
            removed[name] = float(removed_dosing[j - 1]) / 1000.0
        end_ns = start_ns + steps * step_ns
        return Transport(
            times_ns=start_ns + np.arange(steps, dtype=np.int64) * step_ns,
            km=tuple(at_km),
            conc=out,
            through_kg=tuple(float(x) / 1000.0 for x in through),
            released_kg=sum(r.released_kg(float(end_ns)) - r.released_kg(float(start_ns)) for r in releases),
            lost_kg=lost / 1000.0,
            removed_kg=removed,
            outflow_kg=outflow / 1000.0,
            remaining_kg=float(np.dot(conc, self.volume)) / 1000.0,
        )

    def _hydraulics(self, dt: float) -> tuple[np.ndarray, float, np.ndarray]:
        """Flows through the interior faces (m3/day), the outflow, and the dispersive conductances (m3/day)."""
        u, dx = self.u, self.dx
        disp_eff = np.maximum(self.disp - u * dx * (1.0 - u * dt / dx) / 2.0, 0.0)  # minus upwind's own
        area = self.volume / (dx * _M_PER_KM)
        d_face = np.minimum(disp_eff[:-1], disp_eff[1:]) * 1e6  # m2/day on the interior faces 1..n-1
        a_face = np.minimum(area[:-1], area[1:])
        conduct = np.where(self.barrier[1:-1], 0.0, d_face * a_face / (dx * _M_PER_KM))
        return self.flow[:-1], float(self.flow[-1]), conduct

    def _keep(self, dosing: list[tuple[int, Dosing]], fractions: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Per interior face: the share of the load that passes, and the dosing point's share of what is removed
        there (a dam and a dosing point on one face split it by their removal rates)."""
        keep = self.keep_dams.copy()
        dose = np.zeros(self.n + 1)
        for (j, _), f in zip(dosing, fractions, strict=True):
            dose[j] = f
        keep *= 1.0 - dose
        with np.errstate(divide="ignore", invalid="ignore"):
            rate_dose = -np.log1p(-dose)
            rate_all = -np.log(np.maximum(keep, 1e-300))
            share = np.where(rate_all > 0, rate_dose / rate_all, 0.0)
        return keep[1:-1], share[1:-1]

    def _check_order(self, at_km: Sequence[float]) -> None:
        """A station below a dam or dosing point must read water that has passed it: a finer grid otherwise."""
        for km in at_km:
            c = self.cell(km)
            for p in self.river.points():
                if p.km <= km and self.face(p.km) > c:
                    raise ValueError(f"km {km} is too close below {p.name!r} at km {p.km} for dx={self.dx:g} km")
