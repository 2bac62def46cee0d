"""Unit spellings and the conversions every parameter of a kind shares (mass concentrations, conductivity).

Units arrive as loggers write them: `mg/L`, `MG/L`, `µg/L` with a micro sign or a Greek mu, `m³/s` with a
superscript, `℃`. `normal` folds those spellings to one key, so the catalogue's tables list each unit once and a
declared parameter's units match however they are written. A unit riverwatch does not know is refused by the
caller, never guessed: a µg/L logger read as mg/L is 1000x too high.
"""

from __future__ import annotations

_FOLD = str.maketrans({"µ": "u", "μ": "u", "³": "3", "²": "2", "℃": "°c", "⁻": "-", "¹": "1", " ": ""})


def normal(unit: str) -> str:
    """The key a unit is looked up by: lower case, no spaces, `u` for micro, `3` for a superscript three."""
    return unit.strip().lower().translate(_FOLD)


# Factor to mg/L. For water, ppm and ppb are mass fractions of a kilogram per litre: ppm = mg/L, ppb = µg/L.
# "ppt" is not taken: it means parts per thousand to some (salinity) and per trillion to others (ng/L).
MASS: dict[str, float] = {
    "mg/l": 1.0,
    "g/m3": 1.0,
    "mg/dm3": 1.0,
    "ug/ml": 1.0,
    "ppm": 1.0,
    "g/l": 1000.0,
    "kg/m3": 1000.0,
    "ug/l": 1e-3,
    "mg/m3": 1e-3,
    "ng/ml": 1e-3,
    "ppb": 1e-3,
    "ng/l": 1e-6,
}

# Factor to µS/cm (the catalogue's conductivity unit). 1 S/m = 10 mS/cm = 10,000 µS/cm; dS/m = mS/cm.
CONDUCTIVITY: tuple[tuple[str, float], ...] = (
    ("us/cm", 1.0),
    ("ms/cm", 1000.0),
    ("ms/m", 10.0),
    ("us/m", 0.01),
    ("s/m", 10_000.0),
    ("ds/m", 1000.0),
)
