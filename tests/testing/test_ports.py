"""free_ports and free_port_range: loopback ports that can be listened on."""

from __future__ import annotations

import socket

from btob.testing import free_port_range, free_ports
from btob.testing.ports import _ephemeral_range


def _listen_on_all(ports: list[int]) -> None:
    """Listen on every one of ``ports`` at once (raises if one is taken), then close them."""
    listeners = []
    try:
        for port in ports:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
            listeners.append(s)
    finally:
        for s in listeners:
            s.close()


def test_the_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8 and all(0 < p < 65536 for p in ports)
    _listen_on_all(ports)


def test_a_port_range_is_bindable_and_outside_the_outgoing_connections_ports() -> None:
    low, high = _ephemeral_range()
    for _ in range(20):
        base = free_port_range(8)
        assert not (base + 7 >= low and base <= high)
        _listen_on_all(list(range(base, base + 8)))
