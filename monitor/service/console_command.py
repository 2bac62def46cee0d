"""`riverwatch console add-user`: put a user with an argon2id hash of their password into the users file.

The password is read from the terminal (twice) or, for scripts, one line of standard input
(--password-stdin), never from an argument (`ps` shows arguments). The file is rewritten whole, atomically
and readable by its owner only; other users in it are kept as they are.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from monitor.config import ConfigError, ConsoleUser, load_config, load_users
from monitor.config.console import ROLES
from monitor.service.console_auth import hash_password

MIN_PASSWORD = 10


def console_command(args: argparse.Namespace) -> int:
    try:
        path = _users_file(args)
        users = load_users(path) if path.exists() else {}
    except ConfigError as e:
        print(f"riverwatch: {e}", file=sys.stderr)
        return 2
    if args.role not in ROLES:
        print(f"riverwatch: --role {args.role!r}: must be one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else _prompt()
    if password is None:
        return 2
    if len(password) < MIN_PASSWORD:
        print(f"riverwatch: the password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    existed = args.name in users
    users[args.name] = ConsoleUser(args.name, hash_password(password), args.role)
    write_users(path, users)
    print(f"{'updated' if existed else 'added'} {args.name} ({args.role}) in {path}")
    return 0


def _users_file(args: argparse.Namespace) -> Path:
    if args.users_file is not None:
        return Path(args.users_file)
    if args.config is None:
        raise ConfigError("pass --users-file, or --config with a [console].users_file")
    cfg = load_config(args.config, secrets=())
    if cfg.console.users_file is None:
        raise ConfigError(f"{args.config}: [console].users_file: not set")
    return cfg.console.users_file


def _prompt() -> str | None:
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("riverwatch: the passwords differ", file=sys.stderr)
        return None
    return first


def write_users(path: Path, users: dict[str, ConsoleUser]) -> None:
    """TOML, or JSON for a `.json` file; via a temporary file, so a crash leaves the old file whole."""
    if path.suffix.lower() == ".json":
        data = {"users": {u.name: {"password_hash": u.password_hash, "role": u.role} for u in users.values()}}
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        # JSON strings are TOML basic strings for every character a name or a hash holds.
        text = "# riverwatch console users: written by `riverwatch console add-user`\n" + "".join(
            f"\n[users.{json.dumps(u.name, ensure_ascii=False)}]\npassword_hash = {json.dumps(u.password_hash)}\n"
            f"role = {json.dumps(u.role)}\n"
            for u in users.values()
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
