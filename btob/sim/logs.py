"""Delivery logs: the files a run leaves behind and the checker reads (DESIGN.md section 4).

A log directory holds:

* ``run.json``: ``n``, ``f``, ``complete``, ``members`` (``honest``/``crashed`` per member id)
  and any other keys (seed, variant, faults, ...), which are kept as they are;
* ``node-<id>.broadcast.jsonl``: one line per payload member ``<id>`` TO-broadcast, in order:
  ``{"digest": "<sha256 hex>", "msg_id": "<origin>:<counter>"}``;
* ``node-<id>.deliver.jsonl``: one line per TO-delivery at member ``<id>``, in order:
  ``{"digest": ..., "index": 0, "msg_id": ..., "origin": 2}``; and, where the member took the
  state at a stable checkpoint instead of delivering one by one (a state transfer), one line
  for the run of indexes it jumped over: ``{"by": "transfer", "settled": [start, end]}``
  (:class:`SettledRecord`); a delivery may also carry its ``slot``, and a client's request
  has origin -1 and the id ``c<client key hex>.<session>:<seq>``;
* with clients outside the cluster (``run.json``'s ``clients``), ``clients/client-<j>``
  ``.broadcast.jsonl`` (the requests client ``j`` sent) and ``.receipts.jsonl`` (the
  receipts it accepted: :class:`ReceiptRecord`).

Writers are deterministic: JSON lines use sorted keys and no spaces and end in ``"\\n"``,
``run.json`` is indented with sorted keys, so two identical runs give byte-identical files.
Readers are strict: anything malformed raises :class:`LogFormatError` with a one-line message
naming the file (and line number), and no line may exceed :data:`MAX_LINE_BYTES`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

import attrs

from btob._errors import LogFormatError

__all__ = [
    "MAX_LINE_BYTES",
    "CLIENTS_DIR",
    "CLIENT_ORIGIN",
    "BroadcastRecord",
    "ClientInfo",
    "DeliveryRecord",
    "LogAppender",
    "LogDir",
    "MemberInfo",
    "ReceiptRecord",
    "RunInfo",
    "SettledRecord",
    "client_parts",
    "next_delivery_index",
    "read_log_dir",
    "write_log_dir",
    "write_run_info",
]

MAX_LINE_BYTES = 1 << 20
"""Longest line (without its newline) a reader accepts; ``run.json`` as a whole is bounded alike."""

RUN_FILE = "run.json"

_CHUNK_BYTES = 1 << 22
_FAST_LINE_CHARS = MAX_LINE_BYTES // 4  # a line of at most this many characters fits in UTF-8
_DECODER = json.JSONDecoder()

_RUN_KEYS = frozenset({"n", "f", "complete", "members", "clients"})
_CLIENT_KEYS = frozenset({"honest", "key"})
_MEMBER_KEYS = frozenset({"honest", "crashed"})
_ID = "(?:0|[1-9][0-9]*)"
_ID_RE = re.compile(_ID)
_MSG_ID_RE = re.compile(f"{_ID}:{_ID}")
_CLIENT_ID_RE = re.compile(f"c([0-9a-f]{{64}})\\.({_ID}):({_ID})")
_KEY_RE = re.compile("[0-9a-f]{64}")
_DIGEST_RE = re.compile("[0-9a-f]{64}")
_NODE_FILE_RE = re.compile(r"node-([0-9]+)\.(?:broadcast|deliver)\.jsonl")
_CLIENT_FILE_RE = re.compile(r"client-([0-9]+)\.(?:broadcast|receipts)\.jsonl")
CLIENTS_DIR = "clients"
"""The subdirectory that holds the clients' logs."""
CLIENT_ORIGIN = -1
"""The ``origin`` of a client's request (no member's counter numbers it)."""

_R = TypeVar("_R")


def _broadcast_name(member: int) -> str:
    return f"node-{member}.broadcast.jsonl"


def _deliver_name(member: int) -> str:
    return f"node-{member}.deliver.jsonl"


def _show(value: object) -> str:
    """A short, one-line rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dump_line(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def _client_broadcast_name(client: int) -> str:
    return f"client-{client}.broadcast.jsonl"


def _receipts_name(client: int) -> str:
    return f"client-{client}.receipts.jsonl"


def _check_msg_id(value: object) -> None:
    if not isinstance(value, str) or (_MSG_ID_RE.fullmatch(value) is None
                                      and _CLIENT_ID_RE.fullmatch(value) is None):
        raise ValueError(f"key 'msg_id' must be a string '<origin>:<counter>' or "
                         f"'c<client key hex>.<session>:<seq>', got {_show(value)}")


def _msg_origin(msg_id: str) -> int:
    """The origin a (checked) message id names: a member id, or -1 for a client's."""
    return CLIENT_ORIGIN if msg_id.startswith("c") else int(msg_id.partition(":")[0])


def client_parts(msg_id: str) -> tuple[str, int, int] | None:
    """``(client key hex, session, seq)`` of a client's message id; None for a member's."""
    match = _CLIENT_ID_RE.fullmatch(msg_id)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def _check_digest(value: object) -> None:
    if not isinstance(value, str) or _DIGEST_RE.fullmatch(value) is None:
        raise ValueError(f"key 'digest' must be 64 lowercase hex digits, got {_show(value)}")


def _get(obj: Mapping[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise ValueError(f"missing key {key!r}") from None


@attrs.frozen
class MemberInfo:
    """What ``run.json`` says about one member.

    ``honest`` is false iff a Byzantine behaviour was injected into the member; ``crashed``
    says an honest member stopped (it is meaningless for a Byzantine member).
    """

    honest: bool
    crashed: bool

    def __attrs_post_init__(self) -> None:
        for key, value in (("honest", self.honest), ("crashed", self.crashed)):
            if not isinstance(value, bool):
                raise ValueError(f"key {key!r} must be true or false, got {_show(value)}")

    @property
    def correct(self) -> bool:
        """Honest and never crashed: the members liveness (agreement, validity) is owed to."""
        return self.honest and not self.crashed


@attrs.frozen
class ClientInfo:
    """What ``run.json`` says about one client: whether it is honest (it follows the client
    rules: one payload per (session, seq), at most a window in flight) and its public key
    as 64 lowercase hex digits (the key its message ids name)."""

    honest: bool
    key: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.honest, bool):
            raise ValueError(f"key 'honest' must be true or false, got {_show(self.honest)}")
        if not isinstance(self.key, str) or _KEY_RE.fullmatch(self.key) is None:
            raise ValueError(f"key 'key' must be 64 lowercase hex digits, got {_show(self.key)}")


# Converters: a frozen value keeps its own copy of every mapping it is given, so the caller's
# dict cannot change it later; plain dicts (typed read-only) keep values picklable.


def _own_members(members: Mapping[int, MemberInfo]) -> Mapping[int, MemberInfo]:
    return dict(sorted(members.items()))


def _own_extra(extra: Mapping[str, object]) -> Mapping[str, object]:
    return dict(extra)


def _own_clients(clients: Mapping[int, ClientInfo]) -> Mapping[int, ClientInfo]:
    return dict(sorted(clients.items()))


@attrs.frozen
class RunInfo:
    """The contents of ``run.json``: cluster size, fault budget, completeness and members.

    ``members`` must hold exactly the ids ``0..n-1``. ``extra`` holds every other key of
    ``run.json`` (seed, variant, faults, ...); it is written back unchanged. ``clients``
    (optional) describes the clients outside the cluster by client id ``0..k-1``.
    Raises :class:`ValueError` when built with inconsistent values.
    """

    n: int
    f: int
    complete: bool
    """True when the run quiesced after GST, so agreement and validity may be judged."""
    members: Mapping[int, MemberInfo] = attrs.field(converter=_own_members)
    extra: Mapping[str, object] = attrs.field(factory=dict, converter=_own_extra)
    clients: Mapping[int, ClientInfo] = attrs.field(factory=dict, converter=_own_clients)

    def __attrs_post_init__(self) -> None:
        if not _is_int(self.n) or self.n < 1:
            raise ValueError(f"key 'n' must be a positive integer, got {_show(self.n)}")
        if not _is_int(self.f) or self.f < 0:
            raise ValueError(f"key 'f' must be a non-negative integer, got {_show(self.f)}")
        if not isinstance(self.complete, bool):
            raise ValueError(f"key 'complete' must be true or false, got {_show(self.complete)}")
        for member, info in self.members.items():
            if not _is_int(member) or not 0 <= member < self.n:
                raise ValueError(
                    f"key 'members': member id {_show(member)} is outside 0..{self.n - 1}"
                )
            if not isinstance(info, MemberInfo):
                raise ValueError(f"key 'members': {_show(info)} is not a MemberInfo")
        missing = [m for m in range(self.n) if m not in self.members]
        if missing:
            raise ValueError(f"key 'members' lacks member ids {missing[:10]} (n={self.n})")
        if list(self.clients) != list(range(len(self.clients))) or not all(
                isinstance(info, ClientInfo) for info in self.clients.values()):
            raise ValueError("key 'clients' must hold ClientInfo for exactly the client ids "
                             f"0..{len(self.clients) - 1}")
        keys = [info.key for info in self.clients.values()]
        if len(set(keys)) != len(keys):
            raise ValueError("key 'clients': two clients share a key")
        clashes = sorted(str(key) for key in self.extra if key in _RUN_KEYS)
        if clashes or not all(isinstance(key, str) for key in self.extra):
            raise ValueError(f"extra keys must be strings other than {sorted(_RUN_KEYS)}")

    @classmethod
    def from_json(cls, obj: object, *, source: str) -> RunInfo:
        """Validate a parsed ``run.json`` strictly and build the :class:`RunInfo`.

        Raises :class:`LogFormatError` naming ``source`` and the bad key when a required key
        is missing, has the wrong type, or the member ids are not exactly ``0..n-1``.
        """
        if not isinstance(obj, dict):
            raise LogFormatError(f"{source}: expected a JSON object, got {_show(obj)}")
        try:
            members_obj = _get(obj, "members")
            if not isinstance(members_obj, dict):
                raise ValueError(f"key 'members' must be an object, got {_show(members_obj)}")
            members: dict[int, MemberInfo] = {}
            for key, value in members_obj.items():
                if _ID_RE.fullmatch(key) is None:
                    raise ValueError(f"key 'members': member id {key!r} is not an integer")
                if not isinstance(value, dict) or set(value) != _MEMBER_KEYS:
                    raise ValueError(
                        f"key 'members.{key}' must be an object with exactly the keys "
                        f"'honest' and 'crashed', got {_show(value)}"
                    )
                try:
                    members[int(key)] = MemberInfo(honest=value["honest"], crashed=value["crashed"])
                except ValueError as exc:
                    raise ValueError(f"key 'members.{key}': {exc}") from None
            extra = {key: value for key, value in obj.items() if key not in _RUN_KEYS}
            return cls(
                n=_get(obj, "n"),
                f=_get(obj, "f"),
                complete=_get(obj, "complete"),
                members=members,
                extra=extra,
                clients=_clients_from_json(obj.get("clients", {})),
            )
        except ValueError as exc:
            raise LogFormatError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, object]:
        """The ``run.json`` object: the four contract keys, ``clients`` if there are any,
        plus a deep copy of ``extra``."""
        out: dict[str, object] = copy.deepcopy(dict(self.extra))
        out.update(
            n=self.n,
            f=self.f,
            complete=self.complete,
            members={
                str(member): {"honest": info.honest, "crashed": info.crashed}
                for member, info in self.members.items()
            },
        )
        if self.clients:
            out["clients"] = {str(client): {"honest": info.honest, "key": info.key}
                              for client, info in self.clients.items()}
        return out


def _clients_from_json(obj: object) -> dict[int, ClientInfo]:
    if not isinstance(obj, dict):
        raise ValueError(f"key 'clients' must be an object, got {_show(obj)}")
    clients: dict[int, ClientInfo] = {}
    for key, value in obj.items():
        if _ID_RE.fullmatch(key) is None:
            raise ValueError(f"key 'clients': client id {key!r} is not an integer")
        if not isinstance(value, dict) or set(value) != _CLIENT_KEYS:
            raise ValueError(f"key 'clients.{key}' must be an object with exactly the keys "
                             f"'honest' and 'key', got {_show(value)}")
        try:
            clients[int(key)] = ClientInfo(honest=value["honest"], key=value["key"])
        except ValueError as exc:
            raise ValueError(f"key 'clients.{key}': {exc}") from None
    return clients


@attrs.frozen
class BroadcastRecord:
    """One line of ``node-<id>.broadcast.jsonl``: a payload the member TO-broadcast.

    ``msg_id`` is ``"<origin>:<counter>"`` (canonical decimal, no leading zeros) and
    ``digest`` the SHA-256 of the payload in lowercase hex. Raises :class:`ValueError`
    otherwise.
    """

    msg_id: str
    digest: str

    def __attrs_post_init__(self) -> None:
        _check_msg_id(self.msg_id)
        _check_digest(self.digest)

    @property
    def origin(self) -> int:
        """The member id part of ``msg_id`` (-1 for a client's request)."""
        return _msg_origin(self.msg_id)

    @classmethod
    def from_json(cls, obj: object, *, source: str) -> BroadcastRecord:
        """Build a record from one parsed JSON line; unknown keys are ignored.

        Raises :class:`LogFormatError` naming ``source`` (e.g. ``"path:line"``).
        """
        try:
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {_show(obj)}")
            return cls(msg_id=_get(obj, "msg_id"), digest=_get(obj, "digest"))
        except ValueError as exc:
            raise LogFormatError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, object]:
        """The JSON object of this line."""
        return {"msg_id": self.msg_id, "digest": self.digest}


@attrs.frozen
class DeliveryRecord:
    """One line of ``node-<id>.deliver.jsonl``: the member's ``index``-th TO-delivery.

    ``origin`` must equal the origin part of ``msg_id`` (-1 for a client's request, whose
    id is ``c<client key hex>.<session>:<seq>``); ``index`` must be a non-negative integer
    (gaps and repeats are for the checker to judge); ``slot``, when known, is the
    non-negative slot that delivered it. Raises :class:`ValueError` otherwise.
    """

    index: int
    msg_id: str
    origin: int
    digest: str
    slot: int | None = None

    def __attrs_post_init__(self) -> None:
        if not _is_int(self.index) or self.index < 0:
            raise ValueError(f"key 'index' must be a non-negative integer, got {_show(self.index)}")
        _check_msg_id(self.msg_id)
        if not _is_int(self.origin) or _msg_origin(self.msg_id) != self.origin:
            raise ValueError(
                f"key 'origin' ({_show(self.origin)}) does not match msg_id {self.msg_id!r}"
            )
        _check_digest(self.digest)
        if self.slot is not None and (not _is_int(self.slot) or self.slot < 0):
            raise ValueError(f"key 'slot' must be a non-negative integer, got {_show(self.slot)}")

    @classmethod
    def from_json(cls, obj: object, *, source: str) -> DeliveryRecord:
        """Build a record from one parsed JSON line; unknown keys are ignored.

        Raises :class:`LogFormatError` naming ``source`` (e.g. ``"path:line"``).
        """
        try:
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {_show(obj)}")
            return cls(
                index=_get(obj, "index"),
                msg_id=_get(obj, "msg_id"),
                origin=_get(obj, "origin"),
                digest=_get(obj, "digest"),
                slot=obj.get("slot"),
            )
        except ValueError as exc:
            raise LogFormatError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, object]:
        """The JSON object of this line (``slot`` only when known)."""
        out: dict[str, object] = {
            "index": self.index,
            "msg_id": self.msg_id,
            "origin": self.origin,
            "digest": self.digest,
        }
        if self.slot is not None:
            out["slot"] = self.slot
        return out


@attrs.frozen
class ReceiptRecord:
    """One line of ``clients/client-<j>.receipts.jsonl``: a receipt client ``j`` verified
    and accepted, for its request ``msg_id``, proving it committed at ``slot`` (``index``
    is the delivery index the member reported, ``member`` the member that sent it).

    Raises :class:`ValueError` unless ``msg_id`` is a client's message id and the numbers
    are non-negative integers.
    """

    msg_id: str
    slot: int
    index: int
    member: int

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.msg_id, str) or _CLIENT_ID_RE.fullmatch(self.msg_id) is None:
            raise ValueError(f"key 'msg_id' must be a client's message id "
                             f"'c<client key hex>.<session>:<seq>', got {_show(self.msg_id)}")
        for key in ("slot", "index", "member"):
            value = getattr(self, key)
            if not _is_int(value) or value < 0:
                raise ValueError(f"key {key!r} must be a non-negative integer, got "
                                 f"{_show(value)}")

    @classmethod
    def from_json(cls, obj: object, *, source: str) -> ReceiptRecord:
        """Build a record from one parsed JSON line; unknown keys are ignored.

        Raises :class:`LogFormatError` naming ``source``.
        """
        try:
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {_show(obj)}")
            return cls(msg_id=_get(obj, "msg_id"), slot=_get(obj, "slot"),
                       index=_get(obj, "index"), member=_get(obj, "member"))
        except ValueError as exc:
            raise LogFormatError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, object]:
        """The JSON object of this line."""
        return {"msg_id": self.msg_id, "slot": self.slot, "index": self.index,
                "member": self.member}


@attrs.frozen
class SettledRecord:
    """A line of ``node-<id>.deliver.jsonl`` that stands for deliveries ``start..end-1``: the
    member never made them one by one, it took the state at a stable checkpoint in which they
    are settled (``by`` says how, e.g. ``"transfer"``). A stable checkpoint is vouched for by
    at least one correct member, so the checker judges the run as what the correct members
    delivered there (:func:`btob.sim.checker.check`).

    Raises :class:`ValueError` unless ``0 <= start < end`` and ``by`` is a non-empty string.
    """

    start: int
    end: int
    by: str

    def __attrs_post_init__(self) -> None:
        if not (_is_int(self.start) and _is_int(self.end) and 0 <= self.start < self.end):
            raise ValueError(f"key 'settled' must be [start, end] with 0 <= start < end, got "
                             f"{_show([self.start, self.end])}")
        if not isinstance(self.by, str) or not self.by:
            raise ValueError(f"key 'by' must be a non-empty string, got {_show(self.by)}")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, source: str) -> SettledRecord:
        """Build a record from one parsed JSON line (an object with a ``settled`` key).

        Raises :class:`LogFormatError` naming ``source``.
        """
        try:
            span = _get(obj, "settled")
            if not isinstance(span, list) or len(span) != 2:
                raise ValueError(f"key 'settled' must be [start, end], got {_show(span)}")
            return cls(start=span[0], end=span[1], by=_get(obj, "by"))
        except ValueError as exc:
            raise LogFormatError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, object]:
        """The JSON object of this line."""
        return {"settled": [self.start, self.end], "by": self.by}


def _own_broadcasts(
    logs: Mapping[int, Sequence[BroadcastRecord]],
) -> Mapping[int, tuple[BroadcastRecord, ...]]:
    return {member: tuple(logs[member]) for member in sorted(logs)}


def _own_deliveries(
    logs: Mapping[int, Sequence[DeliveryRecord]],
) -> Mapping[int, tuple[DeliveryRecord, ...]]:
    return {member: tuple(logs[member]) for member in sorted(logs)}


def _own_receipts(
    logs: Mapping[int, Sequence[ReceiptRecord]],
) -> Mapping[int, tuple[ReceiptRecord, ...]]:
    return {client: tuple(logs[client]) for client in sorted(logs)}


def _own_settled(
    logs: Mapping[int, Sequence[SettledRecord]],
) -> Mapping[int, tuple[SettledRecord, ...]]:
    return {member: tuple(logs[member]) for member in sorted(logs) if logs[member]}


@attrs.frozen
class LogDir:
    """A whole log directory in memory: the run and every member's two logs.

    ``broadcasts`` and ``deliveries`` hold exactly the member ids ``0..run.n-1`` (an empty
    tuple for a member that logged nothing); :class:`ValueError` otherwise. ``settled`` holds,
    for the members that have any, the runs of indexes they took as a state instead of
    delivering them (their ``deliveries`` skip those indexes). ``client_broadcasts`` and
    ``receipts`` hold, by client id of ``run.clients``, what each client sent and the
    receipts it accepted (a client that logged nothing may be left out).
    """

    run: RunInfo
    broadcasts: Mapping[int, tuple[BroadcastRecord, ...]] = attrs.field(converter=_own_broadcasts)
    deliveries: Mapping[int, tuple[DeliveryRecord, ...]] = attrs.field(converter=_own_deliveries)
    settled: Mapping[int, tuple[SettledRecord, ...]] = attrs.field(
        factory=dict, converter=_own_settled)
    client_broadcasts: Mapping[int, tuple[BroadcastRecord, ...]] = attrs.field(
        factory=dict, converter=_own_broadcasts)
    receipts: Mapping[int, tuple[ReceiptRecord, ...]] = attrs.field(
        factory=dict, converter=_own_receipts)

    def __attrs_post_init__(self) -> None:
        ids = list(range(self.run.n))
        for name, logs in (("broadcasts", self.broadcasts), ("deliveries", self.deliveries)):
            if list(logs) != ids:
                raise ValueError(f"{name} must hold exactly the member ids 0..{self.run.n - 1}")
        if not set(self.settled) <= set(ids):
            raise ValueError(f"settled must hold member ids within 0..{self.run.n - 1}")
        for name, client_logs in (("client_broadcasts", self.client_broadcasts),
                                  ("receipts", self.receipts)):
            if not set(client_logs) <= set(self.run.clients):
                raise ValueError(f"{name} must hold client ids of run.clients")


def _decode(data: bytes, path: Path, lineno: int) -> str:
    """UTF-8 text of ``data``, whose first line is line ``lineno + 1`` of ``path``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = lineno + data.count(b"\n", 0, exc.start) + 1
        raise LogFormatError(f"{path}:{where}: not valid UTF-8") from None


def _too_long(path: Path, lineno: int) -> LogFormatError:
    return LogFormatError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} bytes")


def _chunks(handle: BinaryIO, path: Path) -> Iterator[tuple[int, list[str]]]:
    """The lines of ``handle``, a chunk at a time: ``(number of the first line, texts)``.

    Never holds more than a chunk plus one line; refuses a line longer than
    :data:`MAX_LINE_BYTES`.
    """
    lineno = 0  # lines yielded so far
    pending = b""
    while chunk := handle.read(_CHUNK_BYTES):
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if len(pending) > MAX_LINE_BYTES:
            raise _too_long(path, lineno + data.count(b"\n") + 1)
        if not cut:
            continue
        lines = _decode(data[: cut - 1], path, lineno).split("\n")
        if max(map(len, lines)) > _FAST_LINE_CHARS:
            for offset, line in enumerate(lines, lineno + 1):
                if len(line.encode("utf-8")) > MAX_LINE_BYTES:
                    raise _too_long(path, offset)
        yield lineno + 1, lines
        lineno += len(lines)
    if pending:
        yield lineno + 1, [_decode(pending, path, lineno)]


def _read_jsonl(
    path: Path, parse: Callable[[object, str], _R], cache: dict[str, _R]
) -> tuple[_R, ...]:
    """Parse every line of ``path`` with ``parse(obj, source)``; a missing file is empty.

    ``cache`` maps line texts already parsed (in this directory) to their records: members
    mostly log the same lines, and sharing one immutable record per distinct line saves
    both the parsing and the memory.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise LogFormatError(f"{path}: cannot read: {exc.strerror}") from None
    records: list[_R] = []
    append, lookup = records.append, cache.get
    with handle:
        for first, lines in _chunks(handle, path):
            for lineno, line in enumerate(lines, first):
                record = lookup(line)
                if record is None:
                    try:
                        obj = _DECODER.decode(line)
                    except (ValueError, RecursionError) as exc:
                        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else repr(exc)
                        raise LogFormatError(f"{path}:{lineno}: malformed JSON: {reason}") from None
                    record = cache[line] = parse(obj, f"{path}:{lineno}")
                append(record)
    return tuple(records)


def _parse_broadcast(obj: object, source: str) -> BroadcastRecord:
    return BroadcastRecord.from_json(obj, source=source)


def _parse_receipt(obj: object, source: str) -> ReceiptRecord:
    return ReceiptRecord.from_json(obj, source=source)


def _parse_delivery(obj: object, source: str) -> DeliveryRecord | SettledRecord:
    if isinstance(obj, dict) and "settled" in obj:
        return SettledRecord.from_json(obj, source=source)
    return DeliveryRecord.from_json(obj, source=source)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _read_run_info(path: Path) -> RunInfo:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LINE_BYTES + 1)
    except FileNotFoundError:
        raise LogFormatError(f"{path}: missing (a log directory needs run.json)") from None
    except OSError as exc:
        raise LogFormatError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_LINE_BYTES:
        raise LogFormatError(f"{path}: longer than {MAX_LINE_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise LogFormatError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
        raise LogFormatError(f"{path}: malformed JSON: {reason}") from None
    return RunInfo.from_json(obj, source=str(path))


def read_log_dir(path: str | os.PathLike[str]) -> LogDir:
    """Read and validate a whole log directory.

    Missing node files count as empty logs; files other than ``run.json`` and
    ``node-<id>.{broadcast,deliver}.jsonl`` are ignored. Raises :class:`LogFormatError`
    (one line, naming the file and, for JSON lines, the line number) if the directory or
    ``run.json`` is missing, JSON is malformed, a field is missing or has the wrong type or
    value, the member ids of ``run.json`` are not exactly ``0..n-1``, a node file exists for
    an id outside ``0..n-1``, or a line is longer than :data:`MAX_LINE_BYTES`.
    """
    root = Path(path)
    if not root.is_dir():
        raise LogFormatError(f"{root}: no such log directory")
    run = _read_run_info(root / RUN_FILE)
    _check_file_ids(root, _NODE_FILE_RE, lambda i: i < run.n,
                    lambda name, member: f"{root / name}: names member {member}, but "
                                         f"{RUN_FILE} has members 0..{run.n - 1}")
    broadcast_cache: dict[str, BroadcastRecord] = {}
    delivery_cache: dict[str, DeliveryRecord | SettledRecord] = {}
    broadcasts = {
        m: _read_jsonl(root / _broadcast_name(m), _parse_broadcast, broadcast_cache)
        for m in range(run.n)
    }
    deliveries: dict[int, list[DeliveryRecord]] = {}
    settled: dict[int, list[SettledRecord]] = {}
    for m in range(run.n):
        deliveries[m], settled[m] = [], []
        for record in _read_jsonl(root / _deliver_name(m), _parse_delivery, delivery_cache):
            if isinstance(record, SettledRecord):
                settled[m].append(record)
            else:
                deliveries[m].append(record)
    client_broadcasts, receipts = _read_clients(root, run, broadcast_cache)
    return LogDir(run=run, broadcasts=broadcasts, deliveries=deliveries, settled=settled,
                  client_broadcasts=client_broadcasts, receipts=receipts)


def _check_file_ids(folder: Path, pattern: re.Pattern[str], known: Callable[[int], bool],
                    wrong: Callable[[str, str], str]) -> None:
    """Every file of ``folder`` that ``pattern`` matches must name a ``known`` id (its first
    group); otherwise :class:`LogFormatError` with ``wrong(file name, id)``."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise LogFormatError(f"{folder}: cannot list: {exc.strerror}") from None
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        ident = match.group(1)
        if _ID_RE.fullmatch(ident) is None or not known(int(ident)):
            raise LogFormatError(wrong(name, ident))


def _read_clients(root: Path, run: RunInfo, cache: dict[str, BroadcastRecord],
                  ) -> tuple[dict[int, tuple[BroadcastRecord, ...]],
                             dict[int, tuple[ReceiptRecord, ...]]]:
    """The clients' logs of ``root/clients`` (none if the folder is missing)."""
    folder = root / CLIENTS_DIR
    if not folder.is_dir():
        return {}, {}
    _check_file_ids(folder, _CLIENT_FILE_RE, lambda i: i in run.clients,
                    lambda name, client: f"{folder / name}: names client {client}, but "
                                         f"{RUN_FILE} has {len(run.clients)} clients")
    receipt_cache: dict[str, ReceiptRecord] = {}
    broadcasts = {c: _read_jsonl(folder / _client_broadcast_name(c), _parse_broadcast, cache)
                  for c in run.clients}
    receipts = {c: _read_jsonl(folder / _receipts_name(c), _parse_receipt, receipt_cache)
                for c in run.clients}
    return broadcasts, receipts


def next_delivery_index(path: str | os.PathLike[str], member: int) -> int:
    """The index member ``member``'s delivery log in directory ``path`` continues at: one
    past its last line's index, or its settled run's end (0 for a missing or empty log).

    Reads only the end of the file; a partial last line (a killed writer) does not count.
    Raises :class:`LogFormatError` if the last complete line is malformed.
    """
    file = Path(path) / _deliver_name(member)
    try:
        with file.open("rb") as handle:
            size, window, tail = _tail(handle)
    except FileNotFoundError:
        return 0
    end = tail.rfind(b"\n")
    if end < 0:
        return 0  # nothing complete yet
    start = tail.rfind(b"\n", 0, end) + 1
    if start == 0 and window < size:
        raise LogFormatError(f"{file}: last line longer than {MAX_LINE_BYTES} bytes")
    return _next_after(tail[start:end], file)


def _next_after(line: bytes, file: Path) -> int:
    try:
        record = _parse_delivery(json.loads(line), f"{file}:last line")
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, LogFormatError):
            raise
        raise LogFormatError(f"{file}: last line is malformed JSON") from None
    return record.end if isinstance(record, SettledRecord) else record.index + 1


def write_run_info(path: str | os.PathLike[str], run: RunInfo, *,
                   replace: bool = True) -> bool:
    """Write ``run.json`` into the log directory ``path`` (created with its parents); with
    ``replace=False`` only if none exists yet. Returns whether this call wrote it.

    The file appears whole, so a reader never sees half of it, and several processes may
    write it at once (the members of one run create it together).
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(run.to_json(), sort_keys=True, indent=2) + "\n"
    # Each writer has a temporary file of its own: a shared name lets one writer's rename
    # take away the file another is about to rename.
    handle, tmp = tempfile.mkstemp(dir=root, prefix=RUN_FILE + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
        os.chmod(tmp, 0o644)  # a log, not a secret (the temporary file starts at 0600)
        if replace:
            os.replace(tmp, root / RUN_FILE)
            return True
        try:
            os.link(tmp, root / RUN_FILE)  # fails if another writer was first
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_log_dir(
    path: str | os.PathLike[str],
    run: RunInfo,
    broadcasts: Mapping[int, Sequence[BroadcastRecord]],
    deliveries: Mapping[int, Sequence[DeliveryRecord]],
    settled: Mapping[int, Sequence[SettledRecord]] | None = None,
    *,
    client_broadcasts: Mapping[int, Sequence[BroadcastRecord]] | None = None,
    receipts: Mapping[int, Sequence[ReceiptRecord]] | None = None,
) -> None:
    """Write a whole log directory deterministically (same arguments, same bytes).

    Creates ``path`` with its parents, writes ``run.json`` and, for every member
    ``0..run.n-1``, both JSON-lines files (empty when the mapping has no records for it),
    overwriting files of those names; a member's ``settled`` records go into its delivery
    log where their indexes begin. With clients in ``run.clients``, the folder ``clients``
    gets both files of every client (``client_broadcasts`` and ``receipts``). Other files
    in ``path`` are left alone. Raises :class:`ValueError` if a mapping holds a member id
    outside ``0..run.n-1`` or a client id not in ``run.clients``.
    """
    settled = settled or {}
    unknown = sorted((set(broadcasts) | set(deliveries) | set(settled)) - set(range(run.n)))
    if unknown:
        raise ValueError(f"records for member ids {unknown} outside 0..{run.n - 1}")
    client_broadcasts, receipts = client_broadcasts or {}, receipts or {}
    strangers = sorted((set(client_broadcasts) | set(receipts)) - set(run.clients))
    if strangers:
        raise ValueError(f"records for client ids {strangers} not in run.clients")
    root = Path(path)
    write_run_info(root, run)
    for member in range(run.n):
        delivered: list[DeliveryRecord | SettledRecord] = [*deliveries.get(member, ())]
        for record in sorted(settled.get(member, ()), key=lambda r: r.start, reverse=True):
            at = next((i for i, d in enumerate(delivered)
                       if isinstance(d, DeliveryRecord) and d.index >= record.start),
                      len(delivered))
            delivered.insert(at, record)
        for name, records in (
            (_broadcast_name(member), broadcasts.get(member, ())),
            (_deliver_name(member), delivered),
        ):
            text = "".join(_dump_line(record.to_json()) for record in records)
            (root / name).write_bytes(text.encode("utf-8"))
    if run.clients:
        folder = root / CLIENTS_DIR
        folder.mkdir(exist_ok=True)
        for client in run.clients:
            for name, lines in (
                (_client_broadcast_name(client),
                 [r.to_json() for r in client_broadcasts.get(client, ())]),
                (_receipts_name(client), [r.to_json() for r in receipts.get(client, ())]),
            ):
                text = "".join(_dump_line(line) for line in lines)
                (folder / name).write_bytes(text.encode("utf-8"))


def _tail(handle: BinaryIO) -> tuple[int, int, bytes]:
    """The file's size, and its last bytes: enough to hold its last line whole, newline
    and all, if that line is within :data:`MAX_LINE_BYTES`."""
    size = handle.seek(0, os.SEEK_END)
    window = min(size, MAX_LINE_BYTES + 2)
    handle.seek(size - window)
    return size, window, handle.read(window)


def _open_append(path: Path) -> io.TextIOWrapper:
    """Open ``path`` for appending lines, first cutting off a partial last line.

    A member killed in the middle of a write can leave a line without its newline; that
    record was never complete, and appending after it would corrupt the next one.
    """
    try:
        with path.open("r+b") as handle:
            size, window, tail = _tail(handle)
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                if cut < 0 and window < size:
                    raise LogFormatError(f"{path}: last line longer than {MAX_LINE_BYTES} bytes")
                handle.truncate(size - window + cut + 1)
    except FileNotFoundError:
        pass
    return path.open("a", encoding="utf-8", newline="\n", buffering=1)


class LogAppender:
    """Appends one member's broadcast and delivery lines as they happen, across restarts.

    ``LogAppender(path, member)`` creates the directory if needed and opens
    ``node-<member>.broadcast.jsonl`` and ``node-<member>.deliver.jsonl`` in append mode
    (creating them empty), line-buffered, so every appended record reaches the file as a
    whole line. A partial last line left by a killed process is removed on open. Use as a
    context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], member: int) -> None:
        if not _is_int(member) or member < 0:
            raise ValueError(f"member must be a non-negative integer, got {member!r}")
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        self._broadcast = _open_append(root / _broadcast_name(member))
        try:
            self._deliver = _open_append(root / _deliver_name(member))
        except BaseException:
            self._broadcast.close()
            raise

    def append_broadcast(self, record: BroadcastRecord) -> None:
        """Append one line to the broadcast log."""
        self._broadcast.write(_dump_line(record.to_json()))

    def append_delivery(self, record: DeliveryRecord | SettledRecord) -> None:
        """Append one line to the delivery log: a delivery, or a run of them settled."""
        self._deliver.write(_dump_line(record.to_json()))

    def flush(self) -> None:
        """Push buffered data of both files to the operating system."""
        self._broadcast.flush()
        self._deliver.flush()

    def close(self) -> None:
        """Flush and close both files; closing twice is harmless."""
        self._broadcast.close()
        self._deliver.close()

    def __enter__(self) -> LogAppender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
