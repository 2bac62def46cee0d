"""A river as its bureau knows it: reaches with their speed, dams, tributaries and their flows.

Why in the station files: where a plume goes next, how fast and how diluted, is the same knowledge a bureau
already keeps beside its stations (published travel times, dam positions, gauged flows). The forecast reads
it from here and never from the simulator, so a forecast is only as good as the figures a bureau wrote down.

Chainage is the stations' `river_km`, increasing downstream. Outside the described reaches the nearest
reach's figures are used, so a station a little beyond the last reach still gets a travel time.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

REACH_KINDS = ("free", "pool")


@dataclass(frozen=True)
class Reach:
    """A stretch of uniform hydraulics: a dam pool (slow, well mixed) or a free-flowing reach.

    `velocity_km_per_day` is the speed at the river's described flow; `velocity_by_flow` ((flow m3/s,
    km/day), ascending flow) gives it at other flows, interpolated and held at the ends.
    """

    from_km: float
    to_km: float
    velocity_km_per_day: float
    kind: str = "free"  # "free" | "pool"
    dispersion_km2_per_day: float = 16.0
    decay_per_day: float = 0.0
    velocity_by_flow: tuple[tuple[float, float], ...] = ()
    name: str = ""
    name_zh: str = ""  # the river's Chinese name along this reach when it differs (below a confluence)

    @property
    def length_km(self) -> float:
        return self.to_km - self.from_km

    def velocity(self, flow_m3s: float | None = None) -> float:
        """km/day at a flow through this reach (the described one when None or when there is no table)."""
        table = self.velocity_by_flow
        if flow_m3s is None or not table:
            return self.velocity_km_per_day
        flows = [f for f, _ in table]
        if flow_m3s <= flows[0]:
            return table[0][1]
        if flow_m3s >= flows[-1]:
            return table[-1][1]
        i = bisect.bisect_right(flows, flow_m3s)
        (f0, v0), (f1, v1) = table[i - 1], table[i]
        return v0 + (v1 - v0) * (flow_m3s - f0) / (f1 - f0)


@dataclass(frozen=True)
class Dam:
    """A dam at `km`: its pool lies in the reach above it."""

    km: float
    name: str


@dataclass(frozen=True)
class Tributary:
    """Clean water joining at `km` with `flow_m3s`: below it the plume is diluted by the flow ratio."""

    km: float
    name: str
    flow_m3s: float
    name_zh: str = ""


@dataclass(frozen=True)
class Treatment:
    """An emergency response's dosing point (lime, PAC precipitate cadmium): from `from_ns` until `until_ns`
    it removes `removal` of the load passing `km`.

    Why in the description: a bureau knows where and since when it doses, and no station upstream of the
    point can show its effect. The forecast counts a point from `planned_ns` (the time the bureau knew it
    was coming: a plan announced ahead; None: from `from_ns`, once it runs), never earlier, and then on the
    load that passes the point while it runs, not on what passed before it started."""

    km: float
    name: str
    removal: float
    from_ns: int
    until_ns: int
    planned_ns: int | None = None

    def known(self, now_ns: int) -> bool:
        """Whether a forecast issued at `now_ns` may count this point."""
        return now_ns >= (self.from_ns if self.planned_ns is None else self.planned_ns)

    def running(self, at_ns: int) -> bool:
        """Whether the point treats the load passing it at `at_ns`."""
        return self.from_ns <= at_ns < self.until_ns


@dataclass(frozen=True)
class RiverDescription:
    """`[rivers.<name>]`: the reaches in downstream order (contiguous), dams and tributaries.

    `flow_m3s` is the flow entering the first reach; `source` says where the figures come from; `origin`
    is the `path:line` of the table; `name_zh` the river's Chinese name for messages (a reach's own
    `name_zh` overrides it along that reach: `name_zh_at`).
    """

    name: str
    flow_m3s: float
    reaches: tuple[Reach, ...]
    dams: tuple[Dam, ...] = ()
    tributaries: tuple[Tributary, ...] = ()
    source: str = ""
    origin: str = ""
    name_zh: str = ""
    treatments: tuple[Treatment, ...] = ()

    @property
    def from_km(self) -> float:
        return self.reaches[0].from_km if self.reaches else 0.0

    @property
    def to_km(self) -> float:
        return self.reaches[-1].to_km if self.reaches else 0.0

    def reach_at(self, km: float) -> Reach | None:
        """The reach holding `km` (a boundary belongs to the reach below it, the river's end to the last)."""
        for r in self.reaches:
            if r.from_km <= km < r.to_km:
                return r
        if self.reaches and km == self.reaches[-1].to_km:
            return self.reaches[-1]
        return None

    def name_zh_at(self, km: float | None) -> str:
        """The Chinese name of the river at `km`: the reach's where it has one (the Longjiang becomes the
        Liujiang below the Rongjiang), else the river's; "" when neither is written down."""
        r = self._nearest(km) if km is not None else None
        return (r.name_zh if r is not None else "") or self.name_zh

    def _nearest(self, km: float) -> Reach | None:
        found = self.reach_at(km)
        if found is not None or not self.reaches:
            return found
        return self.reaches[0] if km < self.reaches[0].from_km else self.reaches[-1]

    def flow_at(self, km: float) -> float:
        """m3/s at `km`: the inflow plus every tributary joining at or above it."""
        return self.flow_m3s + sum(t.flow_m3s for t in self.tributaries if t.km <= km)

    def velocity_at(self, km: float, flow_m3s: float | None = None) -> float:
        """km/day at `km` (the nearest reach's outside them); `flow_m3s`: today's flow at the river's head,
        the flow along it scaled in proportion (a dry spell lowers every reach's flow alike)."""
        r = self._nearest(km)
        if r is None:
            return 0.0
        if flow_m3s is None or self.flow_m3s <= 0:
            return r.velocity()
        return r.velocity(self.flow_at(km) * flow_m3s / self.flow_m3s)

    def travel_days(self, a_km: float, b_km: float, flow_m3s: float | None = None) -> float:
        """Days for water to go from a_km to b_km, summed over the reaches (negative when b is upstream)."""
        if b_km < a_km:
            return -self.travel_days(b_km, a_km, flow_m3s)
        if not self.reaches or a_km == b_km:
            return 0.0
        cuts = sorted({a_km, b_km, *(x for r in self.reaches for x in (r.from_km, r.to_km) if a_km < x < b_km)})
        days = 0.0
        for lo, hi in itertools.pairwise(cuts):
            v = self.velocity_at((lo + hi) / 2.0, flow_m3s)
            if v > 0:
                days += (hi - lo) / v
        return days

    def dilution(self, a_km: float, b_km: float) -> float:
        """Flow at the downstream km over flow at the upstream one (>= 1): the tributaries between."""
        lo, hi = min(a_km, b_km), max(a_km, b_km)
        up = self.flow_at(lo)
        return self.flow_at(hi) / up if up > 0 else 1.0

    def dispersion_at(self, km: float) -> float:
        """km2/day at `km` (the nearest reach's outside them)."""
        r = self._nearest(km)
        return r.dispersion_km2_per_day if r is not None else 0.0

    def decay_at(self, km: float) -> float:
        """1/day at `km` (the nearest reach's outside them)."""
        r = self._nearest(km)
        return r.decay_per_day if r is not None else 0.0

    def dams_between(self, a_km: float, b_km: float) -> tuple[Dam, ...]:
        """Dams strictly below the upstream km and at or above the downstream one, in river order."""
        lo, hi = min(a_km, b_km), max(a_km, b_km)
        return tuple(sorted((d for d in self.dams if lo < d.km <= hi), key=lambda d: d.km))

    def treatments_known(self, a_km: float, b_km: float, now_ns: int) -> tuple[Treatment, ...]:
        """The dosing points below a and at or above b that a forecast issued at `now_ns` may count."""
        lo, hi = min(a_km, b_km), max(a_km, b_km)
        return tuple(t for t in self.treatments if lo < t.km <= hi and t.known(now_ns))

    def tributaries_between(self, a_km: float, b_km: float) -> tuple[Tributary, ...]:
        """Tributaries joining below the upstream km and at or above the downstream one, in river order."""
        lo, hi = min(a_km, b_km), max(a_km, b_km)
        return tuple(sorted((t for t in self.tributaries if lo < t.km <= hi), key=lambda t: t.km))
