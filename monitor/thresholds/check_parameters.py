"""Checking `[parameters.<id>]`: parameters a threshold file declares, so that a station measuring something the
shipped catalogue lacks needs no code change. Checked before every other table, because standards, stations,
instruments and rules may name the declared ids."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from monitor.domain.params import QUANTITIES, Catalogue, Parameter
from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, suggest
from monitor.thresholds.model import ParameterSpec

_KEYS = ("name", "name_zh", "unit", "units", "hj212", "aliases", "quantity", "note")
# An id is a topic level and a database tag: short, lower-case, no separators to escape.
_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
_HJ212 = re.compile(r"[a-z]\d{5}")


class ParameterChecker(Checker):
    """Checks every file's [parameters.*] against the catalogue built so far (shipped, then earlier files)."""

    def check(self, f: SourceFile, seen: dict[str, str]) -> list[ParameterSpec]:
        """The parameters `f` declares; `seen` maps each declared id to the path:line that declared it.
        `self.catalogue` grows with each valid one, so later tables (and files) see them."""
        self._f = f
        table = f.data.get("parameters")
        if table is None:
            return []
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            self._add(self._at("parameters"), "'parameters' must hold [parameters.<id>] tables")
            return []
        out: list[ParameterSpec] = []
        for pid, raw in table.items():
            spec = self._parameter(f, pid, raw, seen)
            if spec is not None:
                out.append(spec)
                seen[pid] = spec.origin
                self.catalogue = self.catalogue.extended([spec.parameter])
        return out

    def _parameter(self, f: SourceFile, pid: str, raw: Mapping[str, Any], seen: dict[str, str]) -> ParameterSpec | None:
        here = ("parameters", pid)
        name = dotted(here)
        line = self._at(*here)
        before = len(self.problems)
        cat: Catalogue = self.catalogue
        if not _ID.fullmatch(pid):
            self._add(
                line,
                f"{name}: '{pid}' cannot be a parameter id (lower-case letters, digits and '_', starting with a "
                "letter, at most 32 characters)",
            )
            return None
        if pid in seen:
            self._add(line, f"{name}: parameter '{pid}' is already declared at {seen[pid]}")
            return None
        if pid in cat:
            self._add(
                line,
                f"{name}: '{pid}' is a shipped parameter ({cat[pid].name}); ids in the catalogue never change, "
                "declare a new id",
            )
            return None
        self._unknown_keys(raw, _KEYS, here)
        for key in ("name", "name_zh", "unit", "hj212", "note"):
            self._string(raw, key, here)
        title = raw.get("name")
        if title is None:
            self._add(line, f"{name}: missing 'name' (the English name notifications show)")
        elif isinstance(title, str) and not title.strip():
            self._add(self._at(*here, "name"), f"{name}.name must not be empty")
        unit = raw.get("unit", "")
        quantity = raw.get("quantity", "concentration")
        if quantity not in QUANTITIES:
            self._add(
                self._at(*here, "quantity"),
                f"{name}.quantity: {quantity!r} is not one of {', '.join(QUANTITIES)}"
                f"{suggest(str(quantity), QUANTITIES)}",
            )
        hj212 = raw.get("hj212", "")
        if isinstance(hj212, str) and hj212 and not _HJ212.fullmatch(hj212.lower()):
            self._add(self._at(*here, "hj212"), f"{name}.hj212: '{hj212}' is not an HJ 212 code (e.g. 'w01010')")
        units = self._units(raw.get("units"), here)
        aliases = self._aliases(raw.get("aliases"), here)
        names: list[tuple[str, tuple[str, ...]]] = []
        if isinstance(title, str) and title.strip():
            names.append((title, (*here, "name")))
        if isinstance(hj212, str) and hj212:
            names.append((hj212, (*here, "hj212")))
        names += aliases
        for alias, at in names:
            owner = cat.alias_owner(alias)
            if owner is not None:
                self._add(
                    self._at(*at),
                    f"{dotted(at)}: '{alias}' already names parameter '{owner}'; a name must mean one parameter",
                )
        if len(self.problems) != before:
            return None
        assert isinstance(title, str) and isinstance(unit, str) and isinstance(hj212, str)
        zh = raw.get("name_zh") or title
        parameter = Parameter(
            pid,
            title.strip(),
            str(zh),
            unit,
            hj212,
            quantity=str(quantity),
            units=tuple(units.items()),
            aliases=tuple(a for a, _ in aliases),
        )
        return ParameterSpec(parameter, f.where(*here))

    def _units(self, table: object, here: tuple[str, ...]) -> dict[str, float]:
        """`units = { "mV" = 1.0, "V" = 1000 }`: the factor from each unit to the standard one."""
        if table is None:
            return {}
        at = (*here, "units")
        if not isinstance(table, dict):
            self._add(self._at(*at), f'{dotted(at)} must be a table of unit = factor (e.g. {{ "V" = 1000 }})')
            return {}
        out: dict[str, float] = {}
        for unit, factor in table.items():
            where = (*at, unit)
            if not is_number(factor) or not math.isfinite(factor) or factor <= 0:
                self._add(
                    self._at(*where),
                    f"{dotted(where)}: the factor to the standard unit must be a positive number, not {factor!r}",
                )
                continue
            out[unit.strip().lower()] = float(factor)
        return out

    def _aliases(self, value: object, here: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        if value is None:
            return []
        at = (*here, "aliases")
        if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
            self._add(self._at(*at), f"{dotted(at)} must be a list of names")
            return []
        out: list[tuple[str, tuple[str, ...]]] = []
        mine: set[str] = set()
        for a in value:
            key = a.strip().lower()
            if key in mine:
                self._add(self._at(*at), f"{dotted(at)}: '{a}' is listed twice")
                continue
            mine.add(key)
            out.append((a, at))
        return out
