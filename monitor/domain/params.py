"""The parameter catalogue: ids, names, aliases, units and what kind of quantity each is.

Ids are the short lower-case codes of interface.md; they never change. Aliases (English names, HJ 212-2017
codes, common spellings) are resolved here once so that everything downstream sees only ids. `SHIPPED` is the
catalogue riverwatch ships; threshold files extend it with `[parameters.<id>]` tables (`Catalogue.extended`),
so a station that measures something new needs no code change. The module functions and `PARAMETERS` are the
shipped catalogue, for callers that never see a threshold file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from monitor.domain.units import CONDUCTIVITY, MASS, normal

QUANTITIES = ("concentration", "minimum", "state")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter. `quantity` says how values behave: a concentration cannot be negative and converts by
    mass units; a minimum is a concentration held to a minimum limit (dissolved oxygen: a below-DL value never
    proves compliance); a state variable (temperature, pH, redox, flow) has only the units listed for it.
    `signed`: a negative value is a measurement, not a fault (both decoders ask it); unset, a state variable is
    signed and a concentration is not."""

    id: str
    name: str
    name_zh: str
    unit: str  # the standard unit; "" for pH
    hj212: str = ""
    quantity: str = "concentration"
    units: tuple[tuple[str, float], ...] = ()  # (lower-case unit, factor to the standard unit), besides `unit`
    aliases: tuple[str, ...] = ()  # besides the id, the English name and the HJ 212 code
    # The unit HJ 212 data loggers send the code in (HJ 212-2017 Table B.1's default); "" = `unit`.
    hj212_unit: str = ""
    signed: bool | None = None  # None: from `quantity` (set in __post_init__, so always a bool once built)

    def __post_init__(self) -> None:
        if self.signed is None:
            object.__setattr__(self, "signed", self.quantity == "state")

    @property
    def concentration(self) -> bool:
        """Cannot be negative and converts by mass units (a minimum is a concentration too)."""
        return self.quantity != "state"


_UG = (("µg/l", 1.0), ("μg/l", 1.0), ("ug/l", 1.0), ("mg/l", 1000.0), ("g/m3", 1000.0), ("mg/m3", 1.0))

_SHIPPED: tuple[Parameter, ...] = (
    Parameter("cd", "cadmium", "镉", "mg/L", "w20115", hj212_unit="µg/L"),
    Parameter("pb", "lead", "铅", "mg/L", "w20120", hj212_unit="µg/L"),
    Parameter("hg", "mercury", "汞", "mg/L", "w20111", hj212_unit="µg/L"),
    Parameter("as", "arsenic", "砷", "mg/L", "w20119", hj212_unit="µg/L"),
    Parameter(
        "cr6",
        "chromium (hexavalent)",
        "六价铬",
        "mg/L",
        "w20117",
        aliases=("chromium", "hexavalent chromium"),
        hj212_unit="µg/L",
    ),
    Parameter("cu", "copper", "铜", "mg/L", "w20122"),
    Parameter("zn", "zinc", "锌", "mg/L", "w20123"),
    Parameter("ni", "nickel", "镍", "mg/L", "w20121"),
    Parameter("tl", "thallium", "铊", "mg/L", "w20089", hj212_unit="ng/L"),
    Parameter("se", "selenium", "硒", "mg/L", "w20128", hj212_unit="µg/L"),
    Parameter("sb", "antimony", "锑", "mg/L"),
    Parameter("ph", "pH", "pH", "", "w01001", quantity="state", units=(("ph", 1.0),), signed=False),
    Parameter("do", "dissolved oxygen", "溶解氧", "mg/L", "w01009", quantity="minimum", aliases=("dissolved_oxygen",)),
    Parameter("codmn", "permanganate index", "高锰酸盐指数", "mg/L", "w01019"),
    Parameter("cod", "chemical oxygen demand", "化学需氧量", "mg/L", "w01018"),
    Parameter("nh3n", "ammonia nitrogen", "氨氮", "mg/L", "w21003", aliases=("ammonia",)),
    Parameter("tp", "total phosphorus", "总磷", "mg/L", "w21011"),
    Parameter("tn", "total nitrogen", "总氮", "mg/L", "w21001"),
    Parameter("f", "fluoride", "氟化物", "mg/L", "w21017"),
    Parameter("cn", "cyanide", "氰化物", "mg/L", "w21016"),
    Parameter("phenol", "volatile phenol", "挥发酚", "mg/L", "w23002"),
    Parameter("oil", "petroleum", "石油类", "mg/L", "w22001"),
    Parameter("s2", "sulfide", "硫化物", "mg/L", "w21019"),
    Parameter(
        "temp",
        "water temperature",
        "水温",
        "°C",
        "w01010",
        quantity="state",
        units=(("c", 1.0), ("degc", 1.0), ("cel", 1.0)),
        aliases=("temperature",),
        signed=True,
    ),
    Parameter(
        "cond",
        "conductivity",
        "电导率",
        "µS/cm",
        "w01014",
        quantity="state",
        units=CONDUCTIVITY,
        signed=False,
    ),
    Parameter("turb", "turbidity", "浊度", "NTU", quantity="state", units=(("fnu", 1.0),), signed=False),
    Parameter("hardness", "total hardness as CaCO3", "总硬度", "mg/L"),
    # Added for the rest of GB 3838-2002 Tables 1-3 (interface.md allows new ids; the ones above never change).
    Parameter("bod5", "five-day biochemical oxygen demand", "五日生化需氧量", "mg/L"),
    Parameter("las", "anionic surfactant", "阴离子表面活性剂", "mg/L"),
    Parameter("fcoli", "fecal coliform", "粪大肠菌群", "MPN/L", units=(("cfu/l", 1.0), ("个/l", 1.0))),
    Parameter("so4", "sulfate", "硫酸盐", "mg/L"),
    Parameter("cl", "chloride", "氯化物", "mg/L"),
    Parameter(
        "no3n",
        "nitrate (as N)",
        "硝酸盐",
        "mg/L",
        aliases=("nitrate", "nitrate-n", "nitrate nitrogen", "no3-n", "no3_n", "硝酸盐氮"),
    ),
    Parameter("fe", "iron", "铁", "mg/L"),
    Parameter("mn", "manganese", "锰", "mg/L"),
    Parameter("mo", "molybdenum", "钼", "mg/L"),
    Parameter("co", "cobalt", "钴", "mg/L"),
    Parameter("be", "beryllium", "铍", "mg/L"),
    Parameter("b", "boron", "硼", "mg/L"),
    Parameter("ba", "barium", "钡", "mg/L"),
    Parameter("v", "vanadium", "钒", "mg/L"),
    Parameter("ti", "titanium", "钛", "mg/L"),
    # The signals of online event detection (issue 13): drinking-water intakes and sondes measure these.
    Parameter(
        "orp",
        "redox potential",
        "氧化还原电位",
        "mV",
        quantity="state",
        units=(("v", 1000.0),),
        aliases=("redox", "orp", "oxidation-reduction potential", "eh"),
        signed=True,
    ),
    Parameter(
        "flow",
        "flow",
        "流量",
        "m3/s",
        quantity="state",
        units=(("m³/s", 1.0), ("l/s", 1e-3), ("m3/h", 1 / 3600), ("m³/h", 1 / 3600)),
        aliases=("discharge",),
        signed=False,
    ),
    Parameter("clo2", "chlorine dioxide", "二氧化氯", "mg/L"),
    Parameter("fcl", "free chlorine", "游离氯", "mg/L", aliases=("free_chlorine", "residual chlorine", "cl2", "余氯")),
    Parameter("toc", "total organic carbon", "总有机碳", "mg/L"),
    Parameter(
        "uv254",
        "UV absorbance at 254 nm",
        "紫外吸光度(UV254)",
        "1/cm",
        quantity="state",
        units=(("abs/cm", 1.0), ("cm-1", 1.0), ("abs/m", 0.01), ("1/m", 0.01), ("m-1", 0.01)),
        aliases=("uv254", "uva254", "sac254"),
        signed=False,
    ),
    Parameter("chla", "chlorophyll-a", "叶绿素a", "µg/L", units=_UG, aliases=("chlorophyll", "chl-a", "chl_a")),
    Parameter("pc", "phycocyanin", "藻蓝素", "cells/mL", units=(("cells/l", 1e-3),), aliases=("bga-pc",)),
    Parameter(
        "pc_rfu",
        "phycocyanin (RFU)",
        "藻蓝素(RFU)",
        "RFU",
        quantity="state",
        aliases=("phycocyanin rfu",),
        signed=False,
    ),
    Parameter(
        "biotox",
        "biotoxicity (% inhibition)",
        "生物毒性(抑制率)",
        "%",
        quantity="state",
        units=(("percent", 1.0),),
        aliases=("biotoxicity", "toxicity", "生物毒性"),
        signed=False,
    ),
)


def names_of(p: Parameter) -> list[str]:
    """Every lower-case name that resolves to `p`: its id, English name, HJ 212 code and aliases."""
    out = [p.id, p.name.lower()]
    if p.hj212:
        out.append(p.hj212.lower())
    out += [a.strip().lower() for a in p.aliases]
    return list(dict.fromkeys(out))


class Catalogue(Mapping[str, Parameter]):
    """The parameters one configuration knows: the shipped ones plus those its threshold files declare.

    A read-only mapping id -> Parameter, with the look-ups decode, the threshold checks and the rules make.
    Immutable, so one catalogue can be shared by ingest and the rules while a reload builds the next.
    """

    __slots__ = ("_aliases", "_by_id", "_units")

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        self._by_id: dict[str, Parameter] = {}
        self._aliases: dict[str, str] = {}
        self._units: dict[str, dict[str, float]] = {}
        for p in parameters:
            if p.id in self._by_id:
                raise ValueError(f"parameter id {p.id!r} twice in one catalogue")
            self._by_id[p.id] = p
            units = {normal(p.unit): 1.0}
            units.update((normal(u), f) for u, f in p.units)
            self._units[p.id] = units
        # Ids first, then names and aliases: an alias never hides another parameter's id.
        for p in self._by_id.values():
            self._aliases[p.id] = p.id
        for p in self._by_id.values():
            for name in names_of(p):
                self._aliases.setdefault(name, p.id)

    def extended(self, declared: Iterable[Parameter]) -> Catalogue:
        """This catalogue plus `declared` (ids not in it yet; the checks see to that)."""
        return Catalogue([*self._by_id.values(), *declared])

    # Mapping
    def __getitem__(self, pid: str) -> Parameter:
        return self._by_id[pid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, pid: object) -> bool:
        return pid in self._by_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catalogue) and self._by_id == other._by_id

    def __hash__(self) -> int:
        return hash(tuple(self._by_id.values()))

    def __repr__(self) -> str:
        return f"Catalogue({len(self._by_id)} parameters)"

    def get(self, pid: str, default: Parameter | None = None) -> Parameter | None:  # type: ignore[override]
        return self._by_id.get(pid, default)

    @property
    def by_id(self) -> dict[str, Parameter]:
        """The id -> Parameter table itself (what `PARAMETERS` has always been); do not mutate it."""
        return self._by_id

    def resolve(self, name: str) -> str | None:
        """The parameter id for an id, English name, HJ 212 code or alias; None when unknown."""
        return self._aliases.get(name.strip().lower())

    def alias_owner(self, name: str) -> str | None:
        """The id a name already resolves to (a declared alias must not take it over)."""
        return self._aliases.get(name.strip().lower())

    def unit_factor(self, pid: str, unit: str | None) -> float | None:
        """Multiplier from `unit` to the parameter's standard unit; None when the unit is unknown for it.

        A missing unit means the standard unit already (threshold files; a reading without a unit is decode's
        to refuse). A concentration in a mass unit (mg/L, µg/L, ppm...) also converts from every other mass unit;
        a state variable knows only the units listed for it. Spellings are folded by `units.normal`.
        """
        if unit is None:
            return 1.0
        u = normal(unit)
        p = self._by_id.get(pid)
        if p is None:  # the first version's rule for ids it did not know: mass units
            return MASS.get(u) if u else None
        own = self._units[pid].get(u)
        if own is not None:
            return own
        std = normal(p.unit)
        if p.concentration and std in MASS and u in MASS:
            return MASS[u] / MASS[std]
        return None


SHIPPED = Catalogue(_SHIPPED)
PARAMETERS: dict[str, Parameter] = SHIPPED.by_id


def resolve(name: str) -> str | None:
    """The shipped catalogue's id for an id, English name or HJ 212 code; None when unknown."""
    return SHIPPED.resolve(name)


def unit_factor(param_id: str, unit: str | None) -> float | None:
    """The shipped catalogue's factor from `unit` to the parameter's standard unit (see Catalogue.unit_factor)."""
    return SHIPPED.unit_factor(param_id, unit)
