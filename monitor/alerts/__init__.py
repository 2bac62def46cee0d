"""Alerts: readings judged into firing and resolved events, flap holds, incidents along a river, the alert ledger."""
