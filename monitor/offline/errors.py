"""How an offline command fails: bad arguments or files (exit 2), or data that cannot be read (exit 1)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or files: exit 2 with this one-line message."""


class DataError(Exception):
    """The data could not be read (a server down, a file gone): exit 1."""
