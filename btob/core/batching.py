"""Submitted payloads and relayed client requests waiting to be cut into batches."""

from __future__ import annotations

from collections import deque

from btob.core.settings import Settings

__all__ = ["PendingPayloads"]


class PendingPayloads:
    """A FIFO of submitted payloads and client REQUEST frames, with their submit times.

    :meth:`cut` decides when a batch leaves: at once when ``batch_delay_s`` is 0, otherwise
    when the batch would be full (by count or bytes) or its oldest entry waited the delay.
    ``len()`` counts payloads only (they hold the member's counters); :attr:`requests` the
    requests.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._entries: deque[tuple[bytes, bool]] = deque()
        self._times: deque[float] = deque()
        self._bytes = 0
        self._payloads = 0
        self.requests = 0
        """Client requests waiting."""

    def __len__(self) -> int:
        return self._payloads

    def add(self, payload: bytes, now: float) -> None:
        """Queue ``payload``, submitted at ``now``."""
        self._entries.append((payload, False))
        self._times.append(now)
        self._bytes += len(payload)
        self._payloads += 1

    def add_request(self, frame: bytes, now: float) -> None:
        """Queue a client's REQUEST ``frame``, received at ``now``."""
        self._entries.append((frame, True))
        self._times.append(now)
        self._bytes += len(frame)
        self.requests += 1

    def cut(self, now: float) -> tuple[list[bytes], list[bytes]] | None:
        """The payloads and requests of the next batch if one is due at ``now``, else None."""
        settings = self._settings
        if not self._entries:
            return None
        delay = settings.batch_delay_s
        if (delay > 0 and now - self._times[0] < delay
                and len(self._entries) < settings.batch_payloads_max
                and self._bytes < settings.batch_bytes_max):
            return None  # not full and nobody waited long enough: let the batch fill up
        payloads: list[bytes] = []
        requests: list[bytes] = []
        size = 0
        entries = self._entries
        while entries and len(payloads) + len(requests) < settings.batch_payloads_max:
            entry, is_request = entries[0]
            if (payloads or requests) and size + len(entry) > settings.batch_bytes_max:
                break
            entries.popleft()
            self._times.popleft()
            (requests if is_request else payloads).append(entry)
            size += len(entry)
        self._bytes -= size
        self._payloads -= len(payloads)
        self.requests -= len(requests)
        return payloads, requests
