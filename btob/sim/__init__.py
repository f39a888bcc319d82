"""The deterministic simulator, seeded sweeps, delivery logs and the property checker.
Import public names from :mod:`btob`; the modules here are private."""
