"""Free loopback ports for clusters started by tests, demos and benchmarks."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port_range", "free_ports"]


def _bound(host: str, ports: list[int]) -> list[int]:
    """Bind a socket to each of ``ports`` on ``host`` at once (0: any free one), close them
    all, and return the ports they had; raises `OSError` if one is taken."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((host, port))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago (bound, then closed)."""
    return _bound(host, [0] * count)


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """A port ``p`` such that ``p`` .. ``p + count - 1`` were free on ``host`` a moment ago,
    for configurations that number ports consecutively (``btob keygen --base-port``).

    The range lies outside the kernel's range for outgoing connections' local ports, so the
    members' own connections cannot take one of its ports before a member listens there."""
    low, high = _ephemeral_range()
    spans = [(1024, low - count), (high + 1, 65536 - count)]
    spans = [(a, b) for a, b in spans if b > a]
    for _ in range(200):
        a, b = random.choice(spans)
        base = random.randrange(a, b)
        try:
            _bound(host, list(range(base, base + count)))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports on {host}")
