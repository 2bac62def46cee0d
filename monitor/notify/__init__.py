"""Notify: the alert path (stages from incident to ledger), messages, routes, the outbox, delivery by apprise."""
