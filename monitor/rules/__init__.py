"""The rules engine: readings screened and judged per series with numpy, verdicts for the alert lifecycle."""

from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.engine import Rules
from monitor.rules.fastpath import QuietChecks
from monitor.rules.ring import Ring
from monitor.rules.screen import MAD_TO_SIGMA

__all__ = ["MAD_TO_SIGMA", "AlertKey", "QuietChecks", "Ring", "Rules", "SeriesCheck"]
