"""Domain types at the bottom of every layer: a reading, parameter names and units, rejection reasons, retry pacing."""
