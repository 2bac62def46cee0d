"""Notification URLs checked when the config is read, offline: a URL apprise cannot parse would otherwise run
as a target that never sends (issue 17: `dingtalk:/broken` let the service start and drop a critical alert).

apprise's own parser decides (`Apprise.instantiate`, no network); riverwatch's `console://` sink is a plugin
that monitor.notify registers, so its scheme is known here by name. Messages name the scheme, never the URL:
URLs carry robot tokens and passwords.

`alertmanager://` and `alertmanagers://` (TLS) are riverwatch's own (monitor.notify.alertmanager): parsed
here, once, so that the config refuses a bad one and the sender reads the same fields.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise.manager_plugins import NotificationManager

CONSOLE_SCHEME = "console"  # monitor.notify.routes registers it
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_PLUGINS = NotificationManager()
ALERTMANAGER_SCHEMES = ("alertmanager", "alertmanagers")
_AM_FORM = "alertmanager://[USER:PASSWORD@]HOST:PORT[/PATH][?interval=SECONDS&console=URL&verify=no]"
_AM_OPTIONS = {"interval", "console", "verify"}


@dataclass(frozen=True, slots=True)
class AlertmanagerURL:
    """Where and how to post: `base` is http(s)://host:port[/path], the API under it at /api/v2/alerts."""

    base: str
    username: str | None = None
    password: str | None = None
    interval_s: float = 60.0  # firing alerts are posted again this often; each post is valid for 4 intervals
    console: str = ""  # the riverwatch console, for generatorURL
    verify: bool = True  # TLS certificate check (alertmanagers://)


def parse_alertmanager(url: str) -> AlertmanagerURL:
    """The fields of an alertmanager:// URL; ValueError (without the URL: it may hold a password) if it is wrong."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALERTMANAGER_SCHEMES or not url.strip().lower().startswith(f"{scheme}://"):
        raise ValueError(f"expected {_AM_FORM}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port is not a number 1-65535 (expected {_AM_FORM})") from None
    if not parts.hostname or port is None:
        raise ValueError(f"needs a host and a port (expected {_AM_FORM})")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _AM_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(_AM_OPTIONS))})")
    try:
        interval = float(query.get("interval", "60"))
    except ValueError:
        raise ValueError("interval must be a number of seconds") from None
    if not 1 <= interval <= 3600:
        raise ValueError("interval must be 1-3600 s (below Alertmanager's resolve_timeout, 5 min by default)")
    verify = query.get("verify", "yes").lower()
    if verify not in ("yes", "no"):
        raise ValueError("verify must be yes or no")
    console = query.get("console", "")
    if console and not re.match(r"https?://[^/\s]+", console):
        raise ValueError("console must be an http(s):// URL (the riverwatch console, for generatorURL)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{'https' if scheme == 'alertmanagers' else 'http'}://{host}:{port}{parts.path.rstrip('/')}"
    return AlertmanagerURL(
        base,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        interval,
        console.rstrip("/"),
        verify == "yes",
    )


def is_alertmanager(url: str) -> bool:
    return url.strip().lower().split(":", 1)[0] in ALERTMANAGER_SCHEMES


def url_problem(url: str) -> str | None:
    """Why apprise could not send to `url` (one line, without the URL), or None if it can."""
    m = _SCHEME.match(url.strip())
    if m is None:
        return "not a URL (expected scheme://..., e.g. dingtalk://TOKEN/ or json://host:port/path)"
    scheme = m.group(1).lower()
    if scheme == CONSOLE_SCHEME:
        return None if url.strip().lower().startswith("console://") else "expected console://"
    if scheme in ALERTMANAGER_SCHEMES:
        try:
            parse_alertmanager(url)
        except ValueError as e:
            return f"not an Alertmanager URL: {e}"
        return None
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
