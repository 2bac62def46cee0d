"""The benchmark harness (``scripts/bench``): riverwatch and a Node-RED flow side by side. Not part of the tests."""
