"""The reliability soak: market-making bots on the sandbox under a seeded chaos schedule, with
invariants checked against the exchange's truth (see ``harness.py``), and the fuzz pass."""
