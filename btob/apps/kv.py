"""A replicated key-value store with expiry: the session store the web clones share.

Every member applies the same committed commands in the same order, so every honest member
holds the same map, snapshots the same bytes at every checkpoint, and answers each client's
command with the same result (the member's signed REPLY; a client takes a result that f+1
members sent). Commands and results are msgpack arrays of byte strings and integers
(:func:`command`, :func:`decode_result`):

- ``["set", key, value, ttl_ms, now_ms]``: store ``value`` under ``key``; with ``ttl_ms > 0``
  it expires ``ttl_ms`` after ``now_ms``. Result ``["ok", b""]``.
- ``["get", key, now_ms]``: result ``["ok", value]`` or ``["missing", b""]``.
- ``["del", key, now_ms]``: result ``["ok", b""]`` or ``["missing", b""]``.

Time. The store has no clock of its own (that would differ between members): its time is the
largest ``now_ms`` any command carried, a logical clock every member advances alike. Admitted
clients are trusted with it: a Byzantine client could make entries expire early, never forge or
alter one. Bounds: ``keys_max`` keys (a ``set`` of a new key beyond it gets ``["full", b""]``)
and keys and values of at most ``key_bytes_max`` and the cluster's payload bound.
"""

from __future__ import annotations

import heapq

from btob._errors import WireError
from btob.core.codec import pack, unpack
from btob.core.delivery import Delivery

__all__ = ["KVStore", "command", "decode_result"]

_KEY_BYTES_MAX = 1024
_COMMAND_BYTES_MAX = 1 << 20


def command(op: str, key: bytes, value: bytes = b"", *, ttl_ms: int = 0,
            now_ms: int = 0) -> bytes:
    """The payload of one command (``op`` is ``set``, ``get`` or ``del``)."""
    if op == "set":
        return pack((b"set", key, value, ttl_ms, now_ms))
    if op in ("get", "del"):
        return pack((op.encode(), key, now_ms))
    raise ValueError(f"unknown kv operation {op!r}")


def decode_result(result: bytes) -> tuple[str, bytes]:
    """``(status, value)`` of a result; raises :class:`~btob.WireError` if malformed."""
    value = unpack(result, frame_bytes_max=_COMMAND_BYTES_MAX, items_max=4)
    if (type(value) is not tuple or len(value) != 2 or type(value[0]) is not bytes
            or type(value[1]) is not bytes):
        raise WireError("malformed kv result")
    return value[0].decode(errors="replace"), value[1]


def _result(status: str, value: bytes = b"") -> bytes:
    return pack((status.encode(), value))


class KVStore:
    """The store as a :class:`~btob.StateMachine`; ``entries`` maps a key to
    ``(value, expires_at_ms)`` (0: never)."""

    def __init__(self, *, keys_max: int = 100_000) -> None:
        self.keys_max = keys_max
        self.entries: dict[bytes, tuple[bytes, int]] = {}
        self.clock_ms = 0
        """The store's logical time: the largest ``now_ms`` of any command applied."""
        self._expiry: list[tuple[int, bytes]] = []  # (expires_at, key), maybe stale

    def apply(self, delivery: Delivery) -> bytes | None:
        """Apply one delivered command; its result for a client's request, else None.
        Anything malformed is ignored alike at every member (result ``["bad", b""]``)."""
        result = self._apply(delivery.payload)
        return result if delivery.client else None

    def _apply(self, payload: bytes) -> bytes:
        try:
            cmd = unpack(payload, frame_bytes_max=_COMMAND_BYTES_MAX, items_max=8)
        except WireError:
            return _result("bad")
        if type(cmd) is not tuple or not cmd or cmd[0] not in (b"set", b"get", b"del"):
            return _result("bad")
        if cmd[0] == b"set":
            if len(cmd) != 5 or not _valid(cmd[1], cmd[3], cmd[4]) or type(cmd[2]) is not bytes:
                return _result("bad")
            key, value, ttl, now = cmd[1], cmd[2], cmd[3], cmd[4]
        else:
            if len(cmd) != 3 or not _valid(cmd[1], 0, cmd[2]):
                return _result("bad")
            key, now = cmd[1], cmd[2]
        self._advance(now)
        if cmd[0] == b"get":
            held = self.entries.get(key)
            return _result("missing") if held is None else _result("ok", held[0])
        if cmd[0] == b"del":
            return _result("ok") if self.entries.pop(key, None) is not None \
                else _result("missing")
        if key not in self.entries and len(self.entries) >= self.keys_max:
            return _result("full")
        expires = self.clock_ms + ttl if ttl > 0 else 0
        self.entries[key] = (value, expires)
        if expires:
            heapq.heappush(self._expiry, (expires, key))
        return _result("ok")

    def _advance(self, now_ms: int) -> None:
        self.clock_ms = max(self.clock_ms, now_ms)
        expiry = self._expiry
        while expiry and expiry[0][0] <= self.clock_ms:
            expires, key = heapq.heappop(expiry)
            held = self.entries.get(key)
            if held is not None and held[1] == expires:  # not set again since
                del self.entries[key]

    def snapshot(self) -> bytes:
        """The whole store, canonically encoded (keys sorted)."""
        return pack((self.clock_ms, tuple((k, v, e) for k, (v, e)
                                          in sorted(self.entries.items()))))

    def restore(self, snapshot: bytes) -> None:
        """Replace the store by a snapshot (``b""``: the empty store)."""
        self.entries, self._expiry, self.clock_ms = {}, [], 0
        if not snapshot:
            return
        clock, rows = unpack(snapshot, frame_bytes_max=len(snapshot) + 1,
                             items_max=len(snapshot) + 1)
        self.clock_ms = clock
        for key, value, expires in rows:
            self.entries[key] = (value, expires)
            if expires:
                heapq.heappush(self._expiry, (expires, key))


def _valid(key: object, ttl: object, now: object) -> bool:
    return (type(key) is bytes and len(key) <= _KEY_BYTES_MAX
            and type(ttl) is int and ttl >= 0 and type(now) is int and now >= 0)
