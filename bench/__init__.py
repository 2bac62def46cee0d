"""The benchmark harness (``scripts/bench``) and the loopback servers that it and the tests start."""
