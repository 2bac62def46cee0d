"""Threshold variants: each group of files one variant, and sweeps (a grid of variants made from the first).

Why a sweep edits the TOML text instead of the parsed tables: the checker's `path:line` messages must
still point at the right line of the file the engineer wrote, so a value is replaced in place (and
checked by parsing it back), and the edited copies live in a temporary folder.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.offline.errors import UsageError
from monitor.thresholds import ThresholdError, ThresholdSet, load, shipped_path


@dataclass
class Variant:
    name: str
    files: list[Path]
    thresholds: ThresholdSet
    sweep: str = ""  # "rules[0].rise_per_hour=0.0002" for a grid point (its files are edited copies)
    origin: list[Path] = field(default_factory=list)  # the files it was made from (a sweep's), else its own

    def describe(self) -> str:
        files = ", ".join(str(p) for p in (self.origin or self.files))
        return f"{files} with {self.sweep}" if self.sweep else files


def variant_names(groups: Sequence[Sequence[Path]]) -> list[str]:
    """Names from the files: what differs between the variants (else the last file); "variant N" on a tie."""
    common = set.intersection(*(set(map(str, g)) for g in groups)) if len(groups) > 1 else set()
    names = []
    for i, g in enumerate(groups):
        own = [Path(p).stem for p in g if str(p) not in common] if common else []
        own = own or ([Path(g[-1]).stem] if g else [])
        names.append(" + ".join(own) or f"variant {i + 1}")
    return [n if names.count(n) == 1 else f"variant {i + 1}" for i, n in enumerate(names)]


def default_files() -> list[Path]:
    """GB 3838-2002 and every shipped station file (`*-stations.toml`, by name): each scenario's river has
    its stations and its river description whichever scenario is run (their station ids are distinct)."""
    folder = shipped_path("longjiang-stations.toml").parent
    return [shipped_path(), *sorted(folder.glob("*-stations.toml"))]


def load_variants(groups: Sequence[Sequence[Path]], sweeps: Sequence[str], workdir: Path) -> list[Variant]:
    """Each group of files is a variant; each point of the sweep grid is one more, made from the first."""
    if not groups:
        groups = [default_files()]
    names = variant_names(groups)
    variants = [
        Variant(n, list(map(Path, g)), _load(list(map(Path, g)), n)) for n, g in zip(names, groups, strict=True)
    ]
    axes = [(s.partition("=")[0].strip(), *parse_sweep(s)) for s in sweeps]
    base = variants[0]
    grid = itertools.product(*[[(name, path, v) for v in values] for name, path, values in axes]) if axes else iter(())
    for n, point in enumerate(grid):
        texts = [p.read_text(encoding="utf-8") for p in base.files]
        label = ", ".join(f"{name}={v}" for name, _, v in point)
        try:
            for _, path, v in point:
                texts = apply_sweep(texts, [str(p) for p in base.files], path, v)
        except tomllib.TOMLDecodeError as e:
            raise UsageError(
                f"--sweep {label}: the files are not valid TOML after the edit ({e}); "
                "riverwatch thresholds check names the line"
            ) from None
        files = []
        for i, (p, text) in enumerate(zip(base.files, texts, strict=True)):
            files.append(workdir / f"sweep-{n + 1}" / str(i) / p.name)
            files[-1].parent.mkdir(parents=True)
            files[-1].write_text(text, encoding="utf-8")
        variants.append(Variant(label, files, _load(files, label, base.files), sweep=label, origin=base.files))
    return variants


def _load(files: list[Path], name: str, shown: list[Path] | None = None) -> ThresholdSet:
    try:
        return load(files)
    except ThresholdError as e:
        text = str(e)
        for tmp, orig in zip(files, shown or files, strict=True):
            text = text.replace(str(tmp), f"{orig} ({name})" if shown else str(orig))
        raise UsageError(f"threshold files of variant {name!r} have problems:\n{text}") from None


_SEGMENT = re.compile(r"^([A-Za-z0-9_-]+)(?:\[([^\]]+)\])?$")


def parse_sweep(text: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """`rules[0].rise_per_hour=0.0001,0.0002` -> ([("rules", "0"), ("rise_per_hour", None)], ["0.0001", "0.0002"]).

    A path is TOML keys joined by dots; `rules[N]` is the N-th `[[rules]]` across the files (from 0), and
    `rules[NAME]` the rule with that name. Values are TOML literals (a bare word is taken as a string).
    """
    path, sep, values = text.partition("=")
    parts = [_SEGMENT.match(s.strip()) for s in path.strip().split(".")]
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not vals or any(m is None for m in parts) or len(parts) < 2:
        raise UsageError(
            f"--sweep {text!r}: expected TABLE.KEY=V1,V2 (e.g. rules[0].rise_per_hour=0.0001,0.0002 "
            "or screen.spike_window=6,12)"
        )
    return [(m.group(1), m.group(2)) for m in parts if m is not None], vals


def _toml_literal(value: str) -> str:
    try:
        tomllib.loads(f"x = {value}")
        return value
    except tomllib.TOMLDecodeError:
        return json.dumps(value, ensure_ascii=False)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*(\]\]?)\s*(?:#.*)?$")


def _header_path(text: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"').strip("'") for p in text.split("."))


def apply_sweep(texts: list[str], names: list[str], path: list[tuple[str, str | None]], value: str) -> list[str]:
    """Set one key in the TOML sources by editing their text (comments and line numbers stay, so the checker's
    `path:line` still points at the right place); the result is checked by parsing it back."""
    table = [seg for seg, _ in path[:-1]]
    key, index = path[-1]
    if index is not None:
        raise UsageError(f"--sweep: the last part ({key}[{index}]) must be a plain key")
    literal = _toml_literal(value)
    out = list(texts)
    target: tuple[int, int] | None = None  # (file, header line)
    rule_index = path[0][1] if path[0][0] == "rules" else None
    if rule_index is not None:
        if len(path) != 2:
            raise UsageError("--sweep: rules[N] takes one key, e.g. rules[0].window=6h")
        found = 0
        for fi, text in enumerate(out):
            data = tomllib.loads(text)
            headers = [
                i
                for i, line in enumerate(text.splitlines())
                if (m := _HEADER.match(line)) and m.group(1) == "[[" and _header_path(m.group(2)) == ("rules",)
            ]
            for hi, rule in zip(headers, data.get("rules", []), strict=False):
                if rule_index == str(found) or rule.get("name") == rule_index:
                    target = (fi, hi)
                    break
                found += 1
            if target:
                break
        if target is None:
            raise UsageError(f"--sweep: no rule {rule_index!r} in {', '.join(names)} ({found} [[rules]])")
    else:
        for fi, text in enumerate(out):
            for i, line in enumerate(text.splitlines()):
                m = _HEADER.match(line)
                if m and m.group(1) == "[" and _header_path(m.group(2)) == tuple(table):
                    target = (fi, i)
        if target is None:
            if len(table) != 1:
                raise UsageError(f"--sweep: no [{'.'.join(table)}] table in {', '.join(names)}")
            out[-1] = out[-1].rstrip("\n") + f"\n\n[{table[0]}]  # added by --sweep\n{key} = {literal}\n"
            return _verify(out, names, table, rule_index, key, literal)
    fi, hi = target
    lines = out[fi].splitlines(keepends=True)
    end = next((j for j in range(hi + 1, len(lines)) if _HEADER.match(lines[j])), len(lines))
    key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    new = f"{key} = {literal}  # set by --sweep\n"
    for j in range(hi + 1, end):
        if key_re.match(lines[j]):
            lines[j] = new
            break
    else:
        lines.insert(hi + 1, new)  # shifts the lines below by one; only for a key the file did not have
    out[fi] = "".join(lines)
    return _verify(out, names, table, rule_index, key, literal)


def _verify(
    texts: list[str], names: list[str], table: list[str], rule_index: str | None, key: str, literal: str
) -> list[str]:
    want = tomllib.loads(f"x = {literal}")["x"]
    for text in texts:
        data = tomllib.loads(text)
        if rule_index is not None:
            if any(r.get(key) == want for r in data.get("rules", [])):
                return texts
            continue
        node: Any = data
        for t in table:
            node = node.get(t, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and node.get(key) == want:
            return texts
    raise UsageError(f"--sweep: could not set {'.'.join(table)}.{key} in {', '.join(names)}")
