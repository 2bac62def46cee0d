"""What every section's parser shares: typed access to one TOML table that names the file and key in every
error, and remembers which keys were read so that an unknown one is an error too."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("riverwatch.config")


class ConfigError(Exception):
    pass


class Section:
    """Typed access to one TOML table that remembers which keys were used, to flag unknown ones."""

    def __init__(self, file: str, name: str, data: Any, secrets: bool = True) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: [{name}] must be a table")
        self.file, self.name, self.data, self.used = file, name, data, set[str]()
        # False for a command that does not use this section's secrets (`riverwatch alerts` needs no token):
        # `<key>_env` / `<key>_file` are checked for form but not read, and `secret` returns None.
        self.resolves_secrets = secrets

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: [{self.name}].{key}: {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.err(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.err(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = float(self.get(key, (int, float), default))
        if value < minimum:
            raise self.err(key, f"must be at least {minimum}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key, list, list(default))
        if not all(isinstance(v, str) and v for v in value):
            raise self.err(key, "expected a list of non-empty strings")
        return tuple(value)

    def secret(self, key: str, base: Path, warn_inline: bool = True) -> str | None:
        """`<key>_env` names an environment variable, `<key>_file` a file. An inline value works, with a
        warning: config files get copied, committed and pasted into tickets."""
        env, file = self.get(f"{key}_env", str, None), self.get(f"{key}_file", str, None)
        inline = self.get(key, str, None)
        if sum(x is not None for x in (env, file, inline)) > 1:
            raise self.err(key, f"set only one of {key}, {key}_env and {key}_file")
        if inline is not None:
            if not warn_inline:
                return inline
            log.warning(
                "%s: [%s].%s: a secret written in the config file; use %s_env or %s_file instead",
                self.file,
                self.name,
                key,
                key,
                key,
            )
            return inline
        if not self.resolves_secrets:
            return None
        if env is not None:
            if env not in os.environ:
                raise self.err(f"{key}_env", f"environment variable {env} is not set")
            return os.environ[env]
        if file is not None:
            try:
                return (base / file).read_text().strip()
            except OSError as e:
                raise self.err(f"{key}_file", f"cannot read {base / file}: {e.strerror}") from None
        return None

    def path(self, value: str, base: Path) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.err(unknown[0], "unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        bool: "true or false",
        dict: "a table",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "min": 60 * 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


def duration(s: Section, key: str, default_ns: int, minimum_ns: int = 0) -> int:
    """ "48h", "90min", "1d12h" (or a number of seconds) in ns."""
    raw = s.get(key, (str, int, float), None)
    if raw is None:
        return default_ns
    if isinstance(raw, int | float):
        ns = int(raw * 10**9)
    else:
        text = raw.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise s.err(key, f'expected a duration such as "48h", "90min" or "1d12h", got "{raw}"')
        ns = int(sum(float(n) * _UNIT_NS[u] for n, u in parts))
    if ns < minimum_ns:
        raise s.err(key, f"must be at least {minimum_ns / 1e9:g} s")
    return ns
