"""Who may use the console: passwords checked against argon2id hashes, sessions, CSRF tokens, throttled logins.

Sessions live in the service's memory only: a restart logs everybody out, which costs a duty officer one
login and keeps session secrets off the disk. A session is a random token in an HttpOnly, SameSite=Strict
cookie; every POST also carries the session's CSRF token (a form field or the X-CSRF-Token header), so a
page from elsewhere cannot acknowledge or silence in a logged-in officer's name even where SameSite is not
honoured. The login form, before any session, uses a double-submit token (cookie and field must match).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.config import ConfigError, ConsoleUser, load_users

MAX_FAILURES = 5  # wrong passwords for one name in a row ...
LOCKOUT_NS = 60 * 10**9  # ... and that name cannot log in for a minute (a guesser gets 5 tries a minute)
MAX_SESSIONS = 1000  # the oldest session goes first beyond this (a login loop cannot fill the memory)

_HASHER = PasswordHasher()
# Checked for a name that does not exist, so a wrong name takes as long as a wrong password.
_DUMMY = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


class UserFile:
    """The users file, read again when it changes (a user added with `console add-user` can log in at once).

    A file that became unreadable or wrong keeps the users last read: the error is returned by `problem`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users: dict[str, ConsoleUser] = load_users(path)
        self._stamp = self._mtime()
        self.problem = ""

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return -1

    def current(self) -> dict[str, ConsoleUser]:
        stamp = self._mtime()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.users, self.problem = load_users(self.path), ""
            except ConfigError as e:
                self.problem = str(e)
        return self.users


@dataclass
class Session:
    token: str
    user: str
    role: str
    csrf: str
    created_ns: int
    seen_ns: int

    @property
    def duty(self) -> bool:
        return self.role == "duty"


@dataclass
class _Failures:
    count: int = 0
    locked_until_ns: int = 0


@dataclass
class Auth:
    """Logins and sessions; `clock` is monotonic ns (a wall-clock step neither ends nor extends a session)."""

    users: Callable[[], dict[str, ConsoleUser]]
    session_ns: int
    idle_ns: int
    clock: Callable[[], int] = time.monotonic_ns
    sessions: dict[str, Session] = field(default_factory=dict)
    _failures: dict[str, _Failures] = field(default_factory=dict)

    def login(self, name: str, password: str) -> Session | None:
        """A new session for the right password; None for a wrong one, an unknown name or a locked name."""
        now = self.clock()
        f = self._failures.get(name)
        if f is not None and f.locked_until_ns > now:
            return None
        user = self.users().get(name)
        if not _verify(user.password_hash if user else _DUMMY, password) or user is None:
            f = self._failures.setdefault(name, _Failures())
            f.count += 1
            if f.count >= MAX_FAILURES:
                f.count, f.locked_until_ns = 0, now + LOCKOUT_NS
            if len(self._failures) > MAX_SESSIONS:  # names that never log in are not kept for ever
                self._failures.pop(next(iter(self._failures)))
            return None
        self._failures.pop(name, None)
        s = Session(secrets.token_urlsafe(32), user.name, user.role, secrets.token_urlsafe(32), now, now)
        self.sessions[s.token] = s
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.pop(next(iter(self.sessions)))
        return s

    def locked(self, name: str) -> bool:
        f = self._failures.get(name)
        return f is not None and f.locked_until_ns > self.clock()

    def session(self, token: str | None) -> Session | None:
        """The session of a cookie, if it is still good; its idle time starts again. A user removed from the
        users file, or whose role changed, is logged out."""
        if not token:
            return None
        s = self.sessions.get(token)
        if s is None:
            return None
        now = self.clock()
        user = self.users().get(s.user)
        old = now - s.created_ns >= self.session_ns or now - s.seen_ns >= self.idle_ns
        if old or user is None or user.role != s.role:
            del self.sessions[token]
            return None
        s.seen_ns = now
        return s

    def logout(self, token: str | None) -> None:
        if token:
            self.sessions.pop(token, None)


def csrf_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
