"""Notification URLs checked when the config is read, offline: a URL apprise cannot parse would otherwise run
as a target that never sends (issue 17: `dingtalk:/broken` let the service start and drop a critical alert).

apprise's own parser decides (`Apprise.instantiate`, no network); riverwatch's `console://` sink is a plugin
that monitor.notify registers, so its scheme is known here by name. Messages name the scheme, never the URL:
URLs carry robot tokens and passwords.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import apprise
from apprise.manager_plugins import NotificationManager

CONSOLE_SCHEME = "console"  # monitor.notify.routes registers it
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_PLUGINS = NotificationManager()


def url_problem(url: str) -> str | None:
    """Why apprise could not send to `url` (one line, without the URL), or None if it can."""
    m = _SCHEME.match(url.strip())
    if m is None:
        return "not a URL (expected scheme://..., e.g. dingtalk://TOKEN/ or json://host:port/path)"
    scheme = m.group(1).lower()
    if scheme == CONSOLE_SCHEME:
        return None if url.strip().lower().startswith("console://") else "expected console://"
    known = scheme in _PLUGINS.schemas()
    if not known:
        return f"unknown scheme {scheme!r}: apprise has no such notification service"
    # apprise logs why a URL fails at WARNING, with the URL in it: keep its logger quiet while asking.
    quiet = logging.getLogger("apprise")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        ok = apprise.Apprise.instantiate(url) is not None
    finally:
        quiet.setLevel(level)
    if ok:
        return None
    plugin = _PLUGINS[scheme]
    forms = [t.format_map(_Placeholders(schema=scheme)) for t in getattr(plugin, "templates", ())[:2]]
    shape = f"expected {' or '.join(forms)}" if forms else "its form is wrong"
    if not url.strip().lower().startswith(f"{scheme}://"):
        shape = f"needs {scheme}:// ({shape})"
    where = getattr(plugin, "setup_url", None)
    return f"not a {scheme} URL apprise can send to: {shape}" + (f"; see {where}" if where else "")


class _Placeholders(dict[str, str]):
    """A template's {token}, {host}... shown as TOKEN, HOST."""

    def __missing__(self, key: str) -> str:
        return key.upper()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_WHERE = re.compile(r"(line \d+|entry #\d+)")


def apprise_config_problem(path: Path) -> str | None:
    """Why apprise's own config file would not give every target it lists (one line, where in the file but
    not the URLs), or None. apprise skips a bad YAML entry with a warning, and a TEXT file with one bad line
    loads nothing at all."""
    collect = _Collect()
    quiet = logging.getLogger("apprise")
    level, propagate = quiet.level, quiet.propagate
    quiet.addHandler(collect)
    quiet.setLevel(logging.WARNING)
    quiet.propagate = False
    try:
        ac = apprise.AppriseConfig()
        ac.add(str(path))
        services = ac.services()
    finally:
        quiet.removeHandler(collect)
        quiet.setLevel(level)
        quiet.propagate = propagate
    bad = sorted({w for m in collect.messages for w in _WHERE.findall(m)})
    if bad:
        return (
            f"apprise cannot use {', '.join(bad)} of {path} (`apprise -vv --dry-run --config {path} -b test` says why)"
        )
    if collect.messages or not services:
        return f"apprise found no notification target in {path}"
    return None
