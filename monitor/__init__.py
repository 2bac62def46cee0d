"""riverwatch: watches rivers for pollution incidents."""

__version__ = "0.1.0"
