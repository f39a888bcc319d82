"""The sans-IO protocol cores: pure state machines that take events and return actions.

Nothing in this package awaits, touches a socket or a file, reads a clock or draws random
numbers: time arrives as an argument and randomness never enters. The simulator
(:mod:`btob.sim`) and the Trio runtime (:mod:`btob.runtime`) drive the very same objects.
Import public names from :mod:`btob`; the modules here are private.
"""
