"""Where things are in a TOML file, so that every problem reads `path:line: message`.

tomllib keeps no positions: `Locator` finds the lines of keys again, and `syntax_problem` turns tomllib's
own "(at line N, column M)" into a line.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import re
import tomllib

from monitor.thresholds.model import Problem

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class Locator:
    """Maps key paths such as ("items", "cd", "limits", "III") to 1-based lines.

    tomllib keeps no positions, so this re-scans the (already valid) TOML text for table headers and keys,
    including inline-table keys. Best effort: whatever it could not locate falls back to its parent's line.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        self._s = text
        self._i = 0
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        with contextlib.suppress(IndexError, ValueError, tomllib.TOMLDecodeError):
            self._document()

    def line(self, *path: str) -> int:
        """The line of `path`, or of its nearest located ancestor, or 1."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return 1

    def _mark(self, path: tuple[str, ...], offset: int) -> None:
        line = bisect.bisect_right(self._starts, offset)
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    def _skip(self, newlines: bool) -> None:
        s = self._s
        while self._i < len(s):
            c = s[self._i]
            if c in " \t" or (newlines and c in "\r\n"):
                self._i += 1
            elif newlines and c == "#":
                end = s.find("\n", self._i)
                self._i = len(s) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: tuple[str, ...] = ()
        arrays: dict[tuple[str, ...], int] = {}
        while True:
            self._skip(newlines=True)
            if self._i >= len(self._s):
                return
            if self._s[self._i] == "[":
                start = self._i
                double = self._s.startswith("[[", self._i)
                self._i += 2 if double else 1
                key = self._key()
                self._skip(newlines=False)
                self._i += 2 if double else 1
                if double:
                    arrays[key] = arrays.get(key, -1) + 1
                    key = (*key, str(arrays[key]))
                self._mark(key, start)
                table = key
            else:
                self._keyval(table)

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip(newlines=False)
            if self._s[self._i] in "\"'":
                parts.append(self._string())
            else:
                m = _BARE_KEY.match(self._s, self._i)
                if m is None:
                    raise ValueError(self._i)
                parts.append(m.group())
                self._i = m.end()
            self._skip(newlines=False)
            if self._s[self._i] != ".":
                return tuple(parts)
            self._i += 1

    def _keyval(self, prefix: tuple[str, ...]) -> None:
        start = self._i
        path = (*prefix, *self._key())
        self._mark(path, start)
        self._skip(newlines=False)
        if self._s[self._i] != "=":
            raise ValueError(self._i)
        self._i += 1
        self._skip(newlines=False)
        self._value(path)

    def _value(self, path: tuple[str, ...]) -> None:
        s = self._s
        c = s[self._i]
        if c == "{":
            self._i += 1
            while True:
                self._skip(newlines=True)
                if s[self._i] == "}":
                    self._i += 1
                    return
                if s[self._i] == ",":
                    self._i += 1
                    continue
                self._keyval(path)
        elif c == "[":
            self._i += 1
            n = 0
            while True:
                self._skip(newlines=True)
                if s[self._i] == "]":
                    self._i += 1
                    return
                if s[self._i] == ",":
                    self._i += 1
                    continue
                self._mark((*path, str(n)), self._i)
                self._value((*path, str(n)))
                n += 1
        elif c in "\"'":
            self._string()
        else:  # number, bool, date-time (which may contain a space): up to a delimiter
            while self._i < len(s) and s[self._i] not in ",]}#\r\n":
                self._i += 1

    def _string(self) -> str:
        s = self._s
        q = s[self._i]
        if s.startswith(q * 3, self._i):
            end = s.find(q * 3, self._i + 3)
            if end < 0:
                raise ValueError(self._i)
            end += 3
            while end < len(s) and s[end] == q and end - self._i < 8:  # up to two quotes inside the closer
                end += 1
            self._i = end
            return ""
        j = self._i + 1
        while s[j] != q:
            if s[j] in "\r\n":
                raise ValueError(j)
            j += 2 if q == '"' and s[j] == "\\" else 1
        raw = s[self._i : j + 1]
        self._i = j + 1
        return str(tomllib.loads(f"k = {raw}")["k"])


_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def syntax_problem(path: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message with its position turned into our line (it reports duplicates this way too)."""
    msg = str(exc)
    m = _POSITION.search(msg)
    if m is None:
        return Problem(path, 1, f"invalid TOML: {msg}")
    base = msg[: m.start()]
    if m.group(1):
        line, column = int(m.group(1)), int(m.group(2))
        where = f" (column {column})"
    else:  # the last line that has content
        line = max(1, len(text.rstrip().splitlines()))
        where = " (at end of file)"
    if base == "Cannot overwrite a value":
        lines = text.splitlines()
        key = re.match(r"\s*([A-Za-z0-9_.\"' -]+?)\s*=", lines[line - 1] if 0 < line <= len(lines) else "")
        name = f" '{key.group(1)}'" if key else ""
        return Problem(path, line, f"invalid TOML: duplicate key{name} (cannot overwrite a value){where}")
    dup = re.fullmatch(r"Cannot declare (\(.*\)) twice", base)
    if dup:
        try:
            table = ".".join(ast.literal_eval(dup.group(1)))
        except (ValueError, SyntaxError, TypeError):
            table = dup.group(1)
        return Problem(path, line, f"invalid TOML: duplicate table [{table}] (declared twice){where}")
    return Problem(path, line, f"invalid TOML: {base}{where}")
