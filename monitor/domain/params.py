"""The parameter catalogue: ids, aliases and unit conversion.

Ids are the short lower-case codes of interface.md; they never change. Aliases (English names, HJ 212-2017
codes) are resolved here once so that everything downstream sees only ids.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parameter:
    id: str
    name: str
    name_zh: str
    unit: str  # the standard's unit; "" for pH
    hj212: str = ""
    concentration: bool = True  # a concentration cannot be negative and converts by mass units


_CATALOGUE: tuple[Parameter, ...] = (
    Parameter("cd", "cadmium", "镉", "mg/L", "w20115"),
    Parameter("pb", "lead", "铅", "mg/L", "w20120"),
    Parameter("hg", "mercury", "汞", "mg/L", "w20111"),
    Parameter("as", "arsenic", "砷", "mg/L", "w20119"),
    Parameter("cr6", "chromium (hexavalent)", "六价铬", "mg/L", "w20117"),
    Parameter("cu", "copper", "铜", "mg/L", "w20122"),
    Parameter("zn", "zinc", "锌", "mg/L", "w20123"),
    Parameter("ni", "nickel", "镍", "mg/L", "w20121"),
    Parameter("tl", "thallium", "铊", "mg/L", "w20089"),
    Parameter("se", "selenium", "硒", "mg/L"),
    Parameter("sb", "antimony", "锑", "mg/L"),
    Parameter("ph", "pH", "pH", "", "w01001", concentration=False),
    Parameter("do", "dissolved oxygen", "溶解氧", "mg/L", "w01009"),
    Parameter("codmn", "permanganate index", "高锰酸盐指数", "mg/L", "w01019"),
    Parameter("cod", "chemical oxygen demand", "化学需氧量", "mg/L", "w01018"),
    Parameter("nh3n", "ammonia nitrogen", "氨氮", "mg/L", "w21003"),
    Parameter("tp", "total phosphorus", "总磷", "mg/L", "w21011"),
    Parameter("tn", "total nitrogen", "总氮", "mg/L", "w21001"),
    Parameter("f", "fluoride", "氟化物", "mg/L", "w21017"),
    Parameter("cn", "cyanide", "氰化物", "mg/L", "w21016"),
    Parameter("phenol", "volatile phenol", "挥发酚", "mg/L", "w23002"),
    Parameter("oil", "petroleum", "石油类", "mg/L", "w22001"),
    Parameter("s2", "sulfide", "硫化物", "mg/L", "w21019"),
    Parameter("temp", "water temperature", "水温", "°C", concentration=False),
    Parameter("cond", "conductivity", "电导率", "µS/cm", concentration=False),
    Parameter("turb", "turbidity", "浊度", "NTU", concentration=False),
    Parameter("hardness", "total hardness as CaCO3", "总硬度", "mg/L"),
    # Added for the rest of GB 3838-2002 Tables 1-3 (interface.md allows new ids; the ones above never change).
    Parameter("bod5", "five-day biochemical oxygen demand", "五日生化需氧量", "mg/L"),
    Parameter("las", "anionic surfactant", "阴离子表面活性剂", "mg/L"),
    Parameter("fcoli", "fecal coliform", "粪大肠菌群", "MPN/L", concentration=False),
    Parameter("so4", "sulfate", "硫酸盐", "mg/L"),
    Parameter("cl", "chloride", "氯化物", "mg/L"),
    Parameter("no3n", "nitrate (as N)", "硝酸盐", "mg/L"),
    Parameter("fe", "iron", "铁", "mg/L"),
    Parameter("mn", "manganese", "锰", "mg/L"),
    Parameter("mo", "molybdenum", "钼", "mg/L"),
    Parameter("co", "cobalt", "钴", "mg/L"),
    Parameter("be", "beryllium", "铍", "mg/L"),
    Parameter("b", "boron", "硼", "mg/L"),
    Parameter("ba", "barium", "钡", "mg/L"),
    Parameter("v", "vanadium", "钒", "mg/L"),
    Parameter("ti", "titanium", "钛", "mg/L"),
)

PARAMETERS: dict[str, Parameter] = {p.id: p for p in _CATALOGUE}

_ALIASES: dict[str, str] = {}
for _p in _CATALOGUE:
    _ALIASES[_p.id] = _p.id
    _ALIASES[_p.name.lower()] = _p.id
    if _p.hj212:
        _ALIASES[_p.hj212] = _p.id
_ALIASES.update(
    {
        "chromium": "cr6",
        "hexavalent chromium": "cr6",
        "ammonia": "nh3n",
        "temperature": "temp",
        "conductivity": "cond",
        "dissolved_oxygen": "do",
    }
)

# Factor to mg/L. "g/m3" is numerically mg/L.
_MASS_UNITS: dict[str, float] = {
    "mg/l": 1.0,
    "g/m3": 1.0,
    "g/m³": 1.0,
    "ug/l": 1e-3,
    "µg/l": 1e-3,  # micro sign U+00B5
    "μg/l": 1e-3,  # greek mu U+03BC
    "ng/l": 1e-6,
}

_OTHER_UNITS: dict[str, dict[str, float]] = {
    "ph": {"": 1.0, "ph": 1.0},
    "temp": {"°c": 1.0, "c": 1.0, "degc": 1.0, "cel": 1.0},
    "cond": {"µs/cm": 1.0, "μs/cm": 1.0, "us/cm": 1.0, "ms/cm": 1000.0, "ms/m": 10.0},
    "turb": {"ntu": 1.0, "fnu": 1.0},
    "fcoli": {"mpn/l": 1.0, "cfu/l": 1.0, "个/l": 1.0},
}


def resolve(name: str) -> str | None:
    """The parameter id for an id, English name or HJ 212 code; None when unknown."""
    return _ALIASES.get(name.strip().lower())


def unit_factor(param_id: str, unit: str | None) -> float | None:
    """Multiplier from `unit` to the parameter's standard unit; None when the unit is unknown for it.

    A missing unit means the standard unit already.
    """
    if unit is None:
        return 1.0
    u = unit.strip().lower()
    if param_id in _OTHER_UNITS:
        return _OTHER_UNITS[param_id].get(u)
    if u == "":
        return None
    return _MASS_UNITS.get(u)
