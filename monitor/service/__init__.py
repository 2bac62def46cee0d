"""Service: the running process that wires ingest, journal, store, rules, alerts and notify; its HTTP side; the demo."""
