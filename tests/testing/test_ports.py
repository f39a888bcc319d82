"""free_ports: distinct loopback ports that can be listened on."""

from __future__ import annotations

import socket

from btob.testing import free_ports


def test_the_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8 and all(0 < p < 65536 for p in ports)
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
