"""`[console]`: the duty officer's web console, and the file of the people allowed in.

Off by default, and it cannot be switched on without a users file: a console that anyone who reaches the
port can use to acknowledge alerts is worse than none. The file holds password hashes (argon2id, written by
`riverwatch console add-user`), never passwords, so it can be kept with the config; it is TOML or, named
`.json`, JSON:

    [users.li]
    password_hash = "$argon2id$v=19$..."
    role = "duty"      # or "read": sees everything, acknowledges and silences nothing
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config.section import ConfigError, Section, duration

ROLES = ("read", "duty")
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    password_hash: str
    role: str  # "read" | "duty"

    @property
    def duty(self) -> bool:
        return self.role == "duty"


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool = False
    users_file: Path | None = None
    session_ns: int = 12 * 3600 * 10**9  # a login lasts a duty shift at most ...
    idle_ns: int = 2 * 3600 * 10**9  # ... and ends sooner on a screen left alone
    secure_cookie: bool = False  # behind an https proxy: the session cookie is sent over https only
    language: str = "en"  # the console's language until a user picks the other one
    poll_ns: int = 5 * 10**9  # how often the page asks for the state


def parse_console(s: Section, base: Path) -> ConsoleConfig:
    d = ConsoleConfig()
    enabled = s.get("enabled", bool, False)
    raw_file = s.get("users_file", str, None)
    users_file = s.path(raw_file, base) if raw_file else None
    language = s.get("language", str, d.language)
    if language not in LANGUAGES:
        raise s.err("language", f"must be one of {', '.join(LANGUAGES)}")
    cfg = ConsoleConfig(
        enabled=enabled,
        users_file=users_file,
        session_ns=duration(s, "session", d.session_ns, 60 * 10**9),
        idle_ns=duration(s, "idle_timeout", d.idle_ns, 60 * 10**9),
        secure_cookie=s.get("secure_cookie", bool, False),
        language=language,
        poll_ns=duration(s, "poll", d.poll_ns, 10**9),
    )
    s.done()
    if enabled:
        if users_file is None:
            raise s.err("users_file", "required with enabled = true: nobody could log in (riverwatch console add-user)")
        try:
            load_users(users_file)
        except ConfigError as e:
            raise s.err("users_file", str(e)) from None
    return cfg


def load_users(path: Path) -> dict[str, ConsoleUser]:
    """The users of the file; ConfigError naming the file and the user's key when one is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not users:
        raise ConfigError(f"{path}: no [users.<name>] table (riverwatch console add-user writes one)")
    out = {}
    for name, entry in users.items():
        where = f"{path}: users.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table with password_hash and role")
        unknown = sorted(set(entry) - {"password_hash", "role"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key")
        pw, role = entry.get("password_hash"), entry.get("role", "read")
        if not isinstance(pw, str) or not pw.startswith("$argon2"):
            raise ConfigError(f"{where}.password_hash: expected an argon2 hash ($argon2id$...), not a password")
        if role not in ROLES:
            raise ConfigError(f"{where}.role: must be one of {', '.join(ROLES)}")
        out[name] = ConsoleUser(name, pw, role)
    return out
