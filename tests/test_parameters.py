"""Parameters users can declare (`[parameters.<id>]`) and the ones shipped for online event detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.domain.params import PARAMETERS, SHIPPED, resolve, unit_factor
from monitor.ingest.decode import decode
from monitor.thresholds import check, load

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("name", "pid", "unit", "value", "expected"),
    [
        ("redox", "orp", "V", 0.25, 250.0),
        ("ORP", "orp", "mV", 180.0, 180.0),
        ("flow", "flow", "L/s", 2500.0, 2.5),
        ("chlorine dioxide", "clo2", "mg/L", 0.4, 0.4),
        ("free chlorine", "fcl", "ug/L", 300.0, 0.3),
        ("toc", "toc", "mg/L", 3.1, 3.1),
        ("UV254", "uv254", "abs/m", 12.0, 0.12),
        ("chlorophyll-a", "chla", "mg/L", 0.012, 12.0),
        ("phycocyanin", "pc", "cells/mL", 20000.0, 20000.0),
        ("biotoxicity", "biotox", "%", 35.0, 35.0),
        ("nitrate", "no3n", "mg/L", 1.2, 1.2),
        ("NO3-N", "no3n", "mg/L", 1.2, 1.2),
    ],
)
def test_shipped_event_signals_resolve_and_convert(
    name: str, pid: str, unit: str, value: float, expected: float
) -> None:
    assert resolve(name) == pid
    factor = unit_factor(pid, unit)
    assert factor is not None and value * factor == pytest.approx(expected)


def test_existing_ids_and_their_units_are_unchanged() -> None:
    assert PARAMETERS["cd"].unit == "mg/L" and unit_factor("cd", "µg/L") == pytest.approx(1e-3)
    assert unit_factor("ph", "mg/L") is None and unit_factor("cd", "") is None
    assert unit_factor("cond", "mS/cm") == 1000.0
    assert resolve("w20115") == "cd" and resolve("ammonia") == "nh3n"
    assert SHIPPED["do"].quantity == "minimum" and SHIPPED["temp"].signed and not SHIPPED["cd"].signed
    assert unit_factor("orp", "mg/L") is None  # a state variable has no mass units


def write(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


DECLARED = """
[parameters.microcystin]
name = "microcystin-LR"
name_zh = "微囊藻毒素-LR"
unit = "µg/L"
hj212 = "w99001"
aliases = ["MC-LR", "microcystin"]
quantity = "concentration"

[parameters.salinity]
name = "salinity"
unit = "PSU"
units = { "ppt" = 1.0, "g/kg" = 1.0 }
quantity = "state"
"""


def test_declared_parameters_extend_the_catalogue_for_rules_stations_and_decode(tmp_path: Path) -> None:
    params = write(tmp_path, "params.toml", DECLARED)
    uses = write(
        tmp_path,
        "uses.toml",
        '[stations.estuary]\nname = "Estuary"\nriver = "Pearl"\n\n'
        "[instruments.microcystin]\nrange = [0, 50]\n\n"
        '[[rules]]\nkind = "rate"\nparameters = ["microcystin"]\nwindow = "6h"\nrise_per_hour = 0.5\n\n'
        '[[rules]]\nkind = "event"\nstations = ["estuary"]\nparameters = ["salinity", "cond", "orp"]\n',
    )
    t = load([params, uses])
    cat = t.catalogue
    assert "microcystin" in cat and "salinity" in cat and "cd" in cat
    assert cat.resolve("MC-LR") == "microcystin" and cat.resolve("W99001") == "microcystin"
    assert cat.unit_factor("microcystin", "mg/L") == pytest.approx(1000.0)  # a concentration: mass units
    assert cat.unit_factor("salinity", "g/kg") == 1.0 and cat.unit_factor("salinity", "mg/L") is None
    assert cat["microcystin"].name_zh == "微囊藻毒素-LR" and cat["salinity"].signed
    assert "microcystin" not in PARAMETERS  # the shipped table is not touched
    assert [r.kind for r in t.rules] == ["rate", "event"]
    decoded = decode("river/estuary/MC-LR", b'{"value": 0.002, "unit": "mg/L"}', NOW, catalogue=cat)
    assert [(r.parameter, r.value) for r in decoded.readings] == [("microcystin", pytest.approx(2.0))]
    refused = decode("river/estuary/MC-LR", b'{"value": 2.0}', NOW)  # without the declared catalogue
    assert [r.reason for r in refused.rejections] == ["unknown_parameter"]


def test_without_the_declaring_file_a_declared_id_is_unknown(tmp_path: Path) -> None:
    uses = write(tmp_path, "uses.toml", "[instruments.microcystin]\nrange = [0, 50]\n")
    assert [p.message for p in check([uses])] == ["instruments.microcystin: unknown parameter id 'microcystin'"]


def test_parameter_table_problems_name_file_and_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "bad.toml",
        "[parameters.cd]\n"  # 1: a shipped id
        'name = "my cadmium"\n\n'
        "[parameters.Bad-Id]\n"  # 4
        'name = "x"\n\n'
        "[parameters.algae]\n"  # 7: no name
        'unit = "cells/mL"\n'
        'quantity = "count"\n'  # 9
        'units = { "cells/L" = 0 }\n\n'  # 10
        "[parameters.nitrate2]\n"  # 12
        'name = "nitrate two"\n'
        'aliases = ["nitrate"]\n'  # 14: an alias of no3n
        'hj212 = "12345"\n'  # 15
        "colour = 1\n",  # 16
    )
    problems = [str(p) for p in check([f])]
    assert problems == [
        f"{f}:1: parameters.cd: 'cd' is a shipped parameter (cadmium); ids in the catalogue never change, "
        "declare a new id",
        f"{f}:4: parameters.Bad-Id: 'Bad-Id' cannot be a parameter id (lower-case letters, digits and '_', "
        "starting with a letter, at most 32 characters)",
        f"{f}:7: parameters.algae: missing 'name' (the English name notifications show)",
        f"{f}:9: parameters.algae.quantity: 'count' is not one of concentration, minimum, state",
        f"{f}:10: parameters.algae.units.cells/L: the factor to the standard unit must be a positive number, not 0",
        f"{f}:14: parameters.nitrate2.aliases: 'nitrate' already names parameter 'no3n'; a name must mean one "
        "parameter",
        f"{f}:15: parameters.nitrate2.hj212: '12345' is not an HJ 212 code (e.g. 'w01010')",
        f"{f}:16: parameters.nitrate2.colour: unknown key 'colour'",
    ]


def test_one_id_declared_in_two_files_is_a_problem(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", '[parameters.salinity]\nname = "salinity"\nunit = "PSU"\nquantity = "state"\n')
    b = write(tmp_path, "b.toml", '[parameters.salinity]\nname = "salt"\nunit = "PSU"\n')
    assert [str(p) for p in check([a, b])] == [
        f"{b}:1: parameters.salinity: parameter 'salinity' is already declared at {a}:1"
    ]


def test_a_standard_can_set_a_limit_on_a_declared_parameter(tmp_path: Path) -> None:
    params = write(tmp_path, "params.toml", DECLARED)
    std = write(
        tmp_path,
        "who-mc.toml",
        '[standard]\nid = "WHO MC-LR"\nname = "WHO provisional guideline"\n\n'
        '[items.microcystin]\nkind = "max"\nunit = "µg/L"\nlimit = 1.0\nsource = "WHO GDWQ 4th ed."\n',
    )
    t = load([params, std])
    spec = t.spec("estuary", "microcystin", "III")
    assert spec is not None and spec.at().value == pytest.approx(1.0) and spec.at().unit == "µg/L"
    assert next(p.message for p in check([std])).startswith("items.microcystin: unknown parameter id")
