"""Cluster configuration: members, their public keys and addresses, in ``cluster.toml``.

Format::

    cluster_id = "demo"            # any string up to 64 bytes; signatures cover it
    f = 1                          # optional, default (n-1)//3
    [[member]]
    id = 0
    public_key = "<64 hex chars>"
    host = "127.0.0.1"
    port = 7000
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import attrs

from btob._errors import ConfigError
from btob.core.quorum import Quorums
from btob.crypto import KeyRegistry

__all__ = ["ClusterConfig", "MemberAddress", "load_cluster_config", "write_cluster_config"]


@attrs.frozen
class MemberAddress:
    """Where a member listens."""

    host: str
    port: int


@attrs.frozen
class ClusterConfig:
    """Everything members must agree on: the cluster id, f, keys and addresses."""

    cluster_id: bytes
    registry: KeyRegistry
    addresses: tuple[MemberAddress, ...]
    f: int | None = None

    def __attrs_post_init__(self) -> None:
        if not 1 <= len(self.cluster_id) <= 64:
            raise ConfigError("cluster_id must be 1 to 64 bytes")
        if len(self.addresses) != self.registry.n:
            raise ConfigError("one address per member is needed")
        Quorums.for_cluster(self.registry.n, self.f)

    @property
    def n(self) -> int:
        """Number of members."""
        return self.registry.n

    @property
    def quorums(self) -> Quorums:
        """The cluster's thresholds."""
        return Quorums.for_cluster(self.n, self.f)


def load_cluster_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read ``cluster.toml``; raises :class:`ConfigError` with a one-line message naming the
    file for a missing, unreadable or malformed file."""
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"cluster config {source} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cluster config {source} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cluster config {source} is not valid TOML: {exc}") from None
    try:
        cluster_id = data["cluster_id"]
        members = data["member"]
        if not isinstance(cluster_id, str) or not isinstance(members, list):
            raise TypeError("cluster_id must be a string and member an array of tables")
        unknown = set(data) - {"cluster_id", "f", "member"}
        if unknown:
            raise TypeError(f"unknown keys {sorted(unknown)}")
        f = data.get("f")
        if f is not None and (not isinstance(f, int) or isinstance(f, bool)):
            raise TypeError("f must be an integer")
        rows = sorted(members, key=lambda m: m["id"])
        if [m["id"] for m in rows] != list(range(len(rows))):
            raise TypeError("member ids must be 0..n-1, each once")
        keys = []
        addresses = []
        for m in rows:
            if set(m) != {"id", "public_key", "host", "port"}:
                raise TypeError(f"member {m.get('id')} needs exactly id, public_key, host, port")
            if not isinstance(m["host"], str) or not isinstance(m["port"], int):
                raise TypeError(f"member {m['id']}: host must be a string and port an integer")
            if not 0 < m["port"] < 65536:
                raise TypeError(f"member {m['id']}: port {m['port']} is out of range")
            keys.append(bytes.fromhex(m["public_key"]))
            addresses.append(MemberAddress(m["host"], m["port"]))
        return ClusterConfig(cluster_id.encode(), KeyRegistry(tuple(keys)), tuple(addresses), f)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cluster config {source} is malformed: {exc}") from None
    except Exception as exc:  # a registry or quorum check with its own message
        raise ConfigError(f"cluster config {source} is invalid: {exc}") from None


def write_cluster_config(path: str | os.PathLike[str], config: ClusterConfig) -> None:
    """Write ``cluster.toml`` for ``config``."""
    lines = [f"cluster_id = {config.cluster_id.decode()!r}".replace("'", '"')]
    if config.f is not None:
        lines.append(f"f = {config.f}")
    for i, (key, address) in enumerate(zip(config.registry.public_keys, config.addresses,
                                           strict=True)):
        lines += ["", "[[member]]", f"id = {i}", f'public_key = "{key.hex()}"',
                  f'host = "{address.host}"', f"port = {address.port}"]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
