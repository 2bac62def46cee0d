"""One source of the alert settings: an AlertBook follows the `[alerts]` table it is given in every setting, and
a bare one acts as an empty `[alerts]` (the AlertPolicy defaults), so a test or tool that builds its own book
judges as the service does."""

from __future__ import annotations

import dataclasses

from monitor.alerts.evaluator import AlertBook
from monitor.alerts.trend import TrendSettings
from monitor.thresholds.model import AlertPolicy


def settings(book: AlertBook) -> tuple[object, ...]:
    return (book.tiers, book.confirm, book.clear_readings, book.clear_hold_ns, book.trend.settings)


def test_a_bare_book_has_the_policy_defaults() -> None:
    p = AlertPolicy()
    assert settings(AlertBook()) == settings(AlertBook.of(p))
    assert AlertBook().trend.settings == TrendSettings.of(p) == TrendSettings()


def test_a_book_follows_every_key_of_its_policy_and_a_reload() -> None:
    p = dataclasses.replace(
        AlertPolicy(),
        tiers=((1.0, "warning"), (3.0, "critical")),
        confirm=3,
        clear_readings=4,
        clear_hold_ns=7,
        near_band=0.0,
        sudden_band=8.0,
    )
    book = AlertBook.of(p)
    assert settings(book) == (p.tiers, 3, 4, 7, TrendSettings(0.0, p.near_rise, p.trend_readings, p.clear_band, 8.0))
    book.use(AlertPolicy())
    assert settings(book) == settings(AlertBook())
