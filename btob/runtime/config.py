"""Cluster configuration: everything members must agree on, in ``cluster.toml``.

Format::

    cluster_id = "demo"            # any string up to 64 bytes; signatures cover it
    f = 1                          # optional, default (n-1)//3
    brb = "bracha"                 # optional: bracha or echo
    variant = "bb"                 # optional: bb, ub, uub or moving

    [settings]                     # optional: cluster-wide Settings fields (CLUSTER_SETTINGS)
    checkpoint_interval = 16
    votes = "linear"               # all (the default) or linear: see Settings.votes

    [[member]]
    id = 0
    public_key = "<64 hex chars>"
    host = "127.0.0.1"
    port = 7000
    client_port = 8000             # optional: where it serves clients (same host)

    [[client]]                     # optional, repeated: the client keys admitted,
    id = 0                         # ids 0..K-1 (or, instead, clients = "open" at the top:
    public_key = "<64 hex chars>"  # any key is admitted)

A member without ``client_port`` serves no clients: clients are opt-in per member, so a
file written before clients existed loads, and runs, as it did. Admission (``[[client]]`` or
``clients = "open"``) is cluster-wide - every member must apply the same rule to committed
requests - while a member serves clients only on its own ``client_port``.

A member's own tuning (timeouts, pipelining, retention) is not part of the cluster's
agreement: it is given to :func:`btob.open_node` (or ``btob node --setting``) per member.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeGuard

import attrs

from btob._errors import ConfigError
from btob.core.clients import ClientAdmission
from btob.core.quorum import Quorums
from btob.core.settings import CLUSTER_SETTINGS, Settings
from btob.core.variants import check_brb, variant
from btob.crypto import KeyRegistry

__all__ = ["ClusterConfig", "MemberAddress", "load_cluster_config", "write_cluster_config"]


@attrs.frozen
class MemberAddress:
    """Where a member listens."""

    host: str
    port: int


@attrs.frozen
class ClusterConfig:
    """Everything members must agree on: the cluster id, f, keys and addresses, the
    reliable broadcast, the sequencer variant and the cluster-wide settings."""

    cluster_id: bytes
    registry: KeyRegistry
    addresses: tuple[MemberAddress, ...]
    f: int | None = None
    brb: str = "bracha"
    variant: str = "bb"
    settings: Settings = attrs.field(factory=Settings)
    """Its cluster-wide fields bind every member; the others are defaults for members that
    bring no tuning of their own."""
    client_keys: tuple[bytes, ...] = ()
    """The admitted client keys (32 bytes each), client ``j`` at index ``j``."""
    clients_open: bool = False
    """Any client key is admitted (then ``client_keys`` must be empty)."""
    client_addresses: tuple[MemberAddress | None, ...] = ()
    """Where each member serves clients (None: it serves none); ``()`` when no member does."""

    def __attrs_post_init__(self) -> None:
        if not 1 <= len(self.cluster_id) <= 64:
            raise ConfigError("cluster_id must be 1 to 64 bytes")
        if len(self.addresses) != self.registry.n:
            raise ConfigError("one address per member is needed")
        if self.client_addresses and len(self.client_addresses) != self.registry.n:
            raise ConfigError("client addresses must be given for every member or none")
        if all(a is None for a in self.client_addresses):
            # One spelling of "no member serves clients", so equal configs compare equal.
            object.__setattr__(self, "client_addresses", ())
        if self.clients_open and self.client_keys:
            raise ConfigError("clients are either open or listed, not both")
        for j, key in enumerate(self.client_keys):
            if type(key) is not bytes or len(key) != 32:
                raise ConfigError(f"client {j}'s public key must be 32 bytes")
        if len(set(self.client_keys)) != len(self.client_keys):
            raise ConfigError("a client public key is listed twice")
        Quorums.for_cluster(self.registry.n, self.f)
        check_brb(self.brb)
        variant(self.variant)

    def member_settings(self, settings: Settings | None) -> Settings:
        """The settings a member runs with: ``settings`` (its own tuning) if given, which
        must agree with the cluster's on every cluster-wide field, else the cluster's.

        Raises :class:`ConfigError` naming the first field that disagrees.
        """
        if settings is None:
            return self.settings
        differs = self.settings.disagreement(settings)
        if differs is not None:
            name = differs.split("=", 1)[0]
            raise ConfigError(f"setting {name} is cluster-wide and the cluster says "
                              f"{getattr(self.settings, name)!r}, not "
                              f"{getattr(settings, name)!r} (change it in cluster.toml)")
        return settings

    def agreed(self, name: str, value: str | None) -> str:
        """The cluster's ``brb``, ``variant`` or ``votes`` (its settings' vote mode); a
        different ``value`` is a ConfigError."""
        ours: str = getattr(self.settings if name == "votes" else self, name)
        if value is not None and value != ours:
            where = "cluster.toml's [settings]" if name == "votes" else "cluster.toml"
            raise ConfigError(f"{name} {value!r} disagrees with the cluster's {name} {ours!r} "
                              f"(set it in {where})")
        return ours

    def client_address(self, member: int) -> MemberAddress | None:
        """Where ``member`` serves clients, or None if it serves none."""
        return self.client_addresses[member] if self.client_addresses else None

    def client_admission(self) -> ClientAdmission:
        """The client keys the cluster admits, as the members apply it."""
        return ClientAdmission(keys=frozenset(self.client_keys), open=self.clients_open)

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
    except OSError as exc:
        raise ConfigError(
            f"cluster config {source} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cluster config {source} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cluster config {source} is not valid TOML: {exc}") from None
    try:
        return _parse(data)
    except _Malformed as exc:
        raise ConfigError(f"cluster config {source} is malformed: {exc}") from None
    except Exception as exc:  # a registry or quorum check with its own message
        raise ConfigError(f"cluster config {source} is invalid: {exc}") from None


class _Malformed(Exception):
    """A field of ``cluster.toml`` is missing, unknown or of the wrong type; the message
    names it."""


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse(data: dict[str, object]) -> ClusterConfig:
    unknown = set(data) - {"cluster_id", "f", "member", "brb", "variant", "settings",
                           "client", "clients"}
    if unknown:
        raise _Malformed(f"unknown keys {sorted(unknown)}")
    for key in ("brb", "variant"):
        if key in data and not isinstance(data[key], str):
            raise _Malformed(f"{key} must be a string")
    settings = _settings(data.get("settings", {}))
    if "cluster_id" not in data:
        raise _Malformed("cluster_id is missing")
    cluster_id = data["cluster_id"]
    if not isinstance(cluster_id, str):
        raise _Malformed("cluster_id must be a string")
    members = data.get("member")
    if not isinstance(members, list) or not members:
        raise _Malformed("member must be a non-empty array of tables ([[member]])")
    f = data.get("f")
    if f is not None and not _integer(f):
        raise _Malformed("f must be an integer")
    fields = ("id", "public_key", "host", "port")
    optional = ("client_port",)
    for position, m in enumerate(members):
        where = _entry(m, position, "member", fields, optional)
        if not isinstance(m["host"], str):
            raise _Malformed(f"{where}: host must be a string")
        for name in ("port", *(k for k in optional if k in m)):
            if not _integer(m[name]):
                raise _Malformed(f"{where}: {name} must be an integer")
            if not 0 < m[name] < 65536:
                raise _Malformed(f"{where}: {name} {m[name]} is out of range (1 to 65535)")
    rows = _in_id_order(members, "member ids must be 0..n-1, each once")
    keys = tuple(bytes.fromhex(m["public_key"]) for m in rows)
    addresses = tuple(MemberAddress(m["host"], m["port"]) for m in rows)
    client_addresses = tuple(
        MemberAddress(m["host"], m["client_port"]) if "client_port" in m else None
        for m in rows)
    taken = {(a.host, a.port): f"member {i}'s port" for i, a in enumerate(addresses)}
    for i, served in enumerate(client_addresses):
        if served is not None:
            other = taken.setdefault((served.host, served.port), "")
            if other:
                raise _Malformed(f"member {i}: client_port {served.port} is also {other}")
            taken[(served.host, served.port)] = f"member {i}'s client_port"
    client_keys, clients_open = _clients(data)
    return ClusterConfig(cluster_id.encode(), KeyRegistry(keys), addresses,
                         f if _integer(f) else None, brb=str(data.get("brb", "bracha")),
                         variant=str(data.get("variant", "bb")), settings=settings,
                         client_keys=client_keys, clients_open=clients_open,
                         client_addresses=client_addresses)


def _entry(entry: object, position: int, what: str, fields: tuple[str, ...],
           optional: tuple[str, ...] = ()) -> str:
    """Check one ``[[member]]`` or ``[[client]]`` table's keys, id and public key; returns
    how messages name it."""
    if not isinstance(entry, dict):
        raise _Malformed(f"{what} entry {position} is not a table")
    where = f"{what} {entry['id']}" if _integer(entry.get("id")) else f"{what} entry {position}"
    missing = [k for k in fields if k not in entry]
    extra = sorted(set(entry) - set(fields) - set(optional))
    if missing or extra:
        wrong = ", ".join([*(f"{k} is missing" for k in missing),
                           *(f"unknown key {k}" for k in extra)])
        may = f"; may have {', '.join(optional)}" if optional else ""
        raise _Malformed(f"{where}: {wrong} (needs exactly {', '.join(fields)}{may})")
    if not _integer(entry["id"]):
        raise _Malformed(f"{where}: id must be an integer")
    key = entry["public_key"]
    if not isinstance(key, str) or len(key) != 64 or not _is_hex(key):
        raise _Malformed(f"{where}: public_key must be 64 hex characters")
    return where


def _in_id_order(entries: list[Any], wrong: str) -> list[dict[str, Any]]:
    """The checked tables sorted by id, which must run 0, 1, 2, ... (``wrong`` otherwise)."""
    rows = sorted(entries, key=lambda e: e["id"])
    if [e["id"] for e in rows] != list(range(len(rows))):
        raise _Malformed(wrong)
    return rows


def _clients(data: dict[str, object]) -> tuple[tuple[bytes, ...], bool]:
    """The ``[[client]]`` keys, or ``clients = "open"``: ``(keys, open)``."""
    if "clients" in data:
        if data["clients"] != "open":
            raise _Malformed('clients must be "open" (or list the keys as [[client]] tables)')
        if "client" in data:
            raise _Malformed('clients = "open" and [[client]] tables exclude each other')
        return (), True
    clients = data.get("client", [])
    if not isinstance(clients, list):
        raise _Malformed("client must be an array of tables ([[client]])")
    fields = ("id", "public_key")
    for position, c in enumerate(clients):
        _entry(c, position, "client", fields)
    rows = _in_id_order(clients, "client ids must be 0..K-1, each once")
    keys = tuple(bytes.fromhex(c["public_key"]) for c in rows)
    if len(set(keys)) != len(keys):
        raise _Malformed("a client public key is listed twice")
    return keys, False


def _settings(table: object) -> Settings:
    """The ``[settings]`` table: cluster-wide fields only, each a number (``votes``: a
    string)."""
    if not isinstance(table, dict):
        raise _Malformed("settings must be a table ([settings])")
    fields = {a.name: a for a in attrs.fields(Settings)}
    for name, value in table.items():
        if name not in CLUSTER_SETTINGS:
            known = {a.name for a in attrs.fields(Settings)}
            why = "a member's own setting, not the cluster's" if name in known \
                else "not a setting"
            raise _Malformed(f"settings.{name} is {why} (cluster-wide: "
                             f"{', '.join(CLUSTER_SETTINGS)})")
        text = fields[name].type in (str, "str")
        if text and not isinstance(value, str):
            raise _Malformed(f"settings.{name} must be a string")
        if not text and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise _Malformed(f"settings.{name} must be a number")
    try:
        return Settings(**table)
    except ConfigError as exc:
        raise _Malformed(f"settings: {exc}") from None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def write_cluster_config(path: str | os.PathLike[str], config: ClusterConfig) -> None:
    """Write ``cluster.toml`` for ``config``, every cluster-wide setting spelled out (so a
    change of btob's defaults never changes what an existing cluster agreed on)."""
    lines = [f"cluster_id = {config.cluster_id.decode()!r}".replace("'", '"')]
    if config.f is not None:
        lines.append(f"f = {config.f}")
    lines += [f'brb = "{config.brb}"', f'variant = "{config.variant}"', "", "[settings]"]
    lines += [f'{name} = "{value}"' if isinstance(value, str) else f"{name} = {value!r}"
              for name, value in config.settings.cluster_wide().items()]
    if config.clients_open:
        lines.insert(lines.index("[settings]") - 1, 'clients = "open"')
    for i, (key, address) in enumerate(zip(config.registry.public_keys, config.addresses,
                                           strict=True)):
        lines += ["", "[[member]]", f"id = {i}", f'public_key = "{key.hex()}"',
                  f'host = "{address.host}"', f"port = {address.port}"]
        served = config.client_address(i)
        if served is not None:
            if served.host != address.host:
                raise ConfigError(f"member {i} serves clients on host {served.host}, not its "
                                  f"own {address.host}: cluster.toml cannot say that")
            lines.append(f"client_port = {served.port}")
    for j, key in enumerate(config.client_keys):
        lines += ["", "[[client]]", f"id = {j}", f'public_key = "{key.hex()}"']
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
