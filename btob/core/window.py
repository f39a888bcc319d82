"""A per-origin window of counters: everything below ``low`` is finished."""

from __future__ import annotations

__all__ = ["DoneCounters"]


class DoneCounters:
    """Tracks which counters of each origin are finished, in O(window) memory.

    ``low(origin)`` is the smallest unfinished counter; finished counters above it are kept
    in a set until the gap below them closes.
    """

    def __init__(self) -> None:
        self._low: dict[int, int] = {}
        self._above: dict[int, set[int]] = {}

    def low(self, origin: int) -> int:
        """Smallest counter of ``origin`` not yet finished."""
        return self._low.get(origin, 0)

    def is_done(self, origin: int, counter: int) -> bool:
        """True if (origin, counter) was finished."""
        return counter < self.low(origin) or counter in self._above.get(origin, ())

    def finish(self, origin: int, counter: int) -> None:
        """Mark (origin, counter) finished and slide ``low`` over every closed gap."""
        low = self.low(origin)
        if counter < low:
            return
        above = self._above.setdefault(origin, set())
        above.add(counter)
        while low in above:
            above.discard(low)
            low += 1
        self._low[origin] = low
        if not above:
            del self._above[origin]

    def held(self) -> int:
        """Finished counters remembered above the lows (a memory-bound probe)."""
        return sum(len(s) for s in self._above.values())

    def export(self) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
        """Every origin's ``(origin, low, finished counters above low)``, sorted: the window
        as a snapshot holds it."""
        origins = sorted(set(self._low) | set(self._above))
        return tuple((o, self.low(o), tuple(sorted(self._above.get(o, ())))) for o in origins)

    @classmethod
    def restored(cls, windows: tuple[tuple[int, int, tuple[int, ...]], ...]) -> DoneCounters:
        """The counters :meth:`export` described."""
        done = cls()
        for origin, low, above in windows:
            if low:
                done._low[origin] = low
            for counter in above:
                done.finish(origin, counter)
        return done
