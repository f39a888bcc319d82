"""Submitted payloads waiting to be cut into batches, shared by every core that batches."""

from __future__ import annotations

from collections import deque

from btob.core.settings import Settings

__all__ = ["PendingPayloads"]


class PendingPayloads:
    """A FIFO of submitted payloads and their submit times.

    :meth:`cut` decides when a batch leaves: at once when ``batch_delay_s`` is 0, otherwise
    when the batch would be full (by count or bytes) or its oldest payload waited the delay.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._payloads: deque[bytes] = deque()
        self._times: deque[float] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._payloads)

    def add(self, payload: bytes, now: float) -> None:
        """Queue ``payload``, submitted at ``now``."""
        self._payloads.append(payload)
        self._times.append(now)
        self._bytes += len(payload)

    def cut(self, now: float) -> list[bytes] | None:
        """The payloads of the next batch if one is due at ``now``, else None."""
        settings = self._settings
        if not self._payloads:
            return None
        delay = settings.batch_delay_s
        if (delay > 0 and now - self._times[0] < delay
                and len(self._payloads) < settings.batch_payloads_max
                and self._bytes < settings.batch_bytes_max):
            return None  # not full and nobody waited long enough: let the batch fill up
        payloads: list[bytes] = []
        size = 0
        while self._payloads and len(payloads) < settings.batch_payloads_max:
            nxt = len(self._payloads[0])
            if payloads and size + nxt > settings.batch_bytes_max:
                break
            payloads.append(self._payloads.popleft())
            self._times.popleft()
            size += nxt
        self._bytes -= size
        return payloads
