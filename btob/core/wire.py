"""Wire format: frozen message classes, signed envelopes and bounded msgpack framing.

A frame is the msgpack array ``[version, kind, sender, body, signature]``; the signature
covers ``domain_tag(cluster_id, kind) || body`` (see :func:`crypto.domain_tag`), so a frame
signed for another cluster, protocol version or message kind never verifies. ``body`` is itself
a msgpack array holding the message fields. Decoding never trusts its input: sizes, counts and
nesting are bounded, the exact shape of every body is checked, and anything malformed raises
:class:`~btob.WireError` and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, ClassVar, TypeAlias

import attrs
import msgpack

from btob._errors import WireError

__all__ = [
    "Batch",
    "BatchRef",
    "Checkpoint",
    "CheckpointCert",
    "LogSegment",
    "NewView",
    "PreparedCert",
    "Reproposal",
    "Request",
    "ViewChange",
    "Echo",
    "Fetch",
    "Final",
    "Message",
    "OrderEcho",
    "Order",
    "OrderReady",
    "Ready",
    "Send",
    "Signed",
    "SlotProof",
    "Status",
    "Vote",
    "WIRE_VERSION",
    "WireLimits",
    "decode_frame",
    "encode_frame",
    "slot_digest",
]

WIRE_VERSION = 1
DIGEST_BYTES = 32
SIGNATURE_BYTES = 64
_INT_MAX = 2**63 - 1


@attrs.frozen(kw_only=True)
class WireLimits:
    """Bounds applied while decoding untrusted bytes."""

    frame_bytes_max: int = 16 * 1024 * 1024
    """Largest frame accepted at all."""
    items_max: int = 65_536
    """Longest msgpack array anywhere in a frame."""


DEFAULT_LIMITS = WireLimits()


def _unpack(data: bytes, limits: WireLimits) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"frame must be bytes, got {type(data).__name__}")
    if len(data) > limits.frame_bytes_max:
        raise WireError(f"frame of {len(data)} bytes exceeds {limits.frame_bytes_max}")
    try:
        return msgpack.unpackb(
            data,
            use_list=False,
            raw=True,
            strict_map_key=True,
            max_bin_len=limits.frame_bytes_max,
            max_str_len=0,
            max_array_len=limits.items_max,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises a zoo of types; all mean "malformed"
        raise WireError(f"malformed msgpack: {type(exc).__name__}") from None


def _pack(obj: object) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


# -- field readers: each checks one field's type and range -------------------------------


def _int(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _INT_MAX:
        raise WireError(f"{what}: expected a non-negative integer")
    return value


def _bytes(value: object, what: str, size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise WireError(f"{what}: expected bytes")
    if size is not None and len(value) != size:
        raise WireError(f"{what}: expected {size} bytes, got {len(value)}")
    return value


def _tuple(value: object, what: str, length: int | None = None) -> tuple[Any, ...]:
    if type(value) is not tuple:
        raise WireError(f"{what}: expected an array")
    if length is not None and len(value) != length:
        raise WireError(f"{what}: expected {length} items, got {len(value)}")
    return value


def _digest(value: object, what: str) -> bytes:
    return _bytes(value, what, DIGEST_BYTES)


# -- values carried by messages -------------------------------------------------------------


@attrs.frozen
class Batch:
    """Payloads one origin disseminates together; ``first_counter`` numbers the first one.

    The payloads are the origin's messages ``first_counter``, ``first_counter + 1``, ...
    """

    first_counter: int
    payloads: tuple[bytes, ...]

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        return (self.first_counter, self.payloads)

    @classmethod
    def from_wire(cls, value: object) -> Batch:
        """Parse the msgpack form; raises :class:`WireError`."""
        first, payloads = _tuple(value, "batch", 2)
        items = _tuple(payloads, "batch payloads")
        return cls(_int(first, "batch first counter"), tuple(_bytes(p, "payload") for p in items))

    def digest(self) -> bytes:
        """SHA-256 over the canonical encoding."""
        return hashlib.sha256(_pack(self.to_wire())).digest()

    @property
    def size_bytes(self) -> int:
        """Total payload bytes."""
        return sum(len(p) for p in self.payloads)


@attrs.frozen
class BatchRef:
    """Names one BRB instance and the digest of the batch it delivered."""

    origin: int
    counter: int
    digest: bytes

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        return (self.origin, self.counter, self.digest)

    @classmethod
    def from_wire(cls, value: object) -> BatchRef:
        """Parse the msgpack form; raises :class:`WireError`."""
        origin, counter, digest = _tuple(value, "batch ref", 3)
        return cls(_int(origin, "ref origin"), _int(counter, "ref counter"), _digest(digest, "ref"))


@attrs.frozen
class Vote:
    """One member's signature inside a certificate."""

    member: int
    signature: bytes

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        return (self.member, self.signature)

    @classmethod
    def from_wire(cls, value: object) -> Vote:
        """Parse the msgpack form; raises :class:`WireError`."""
        member, signature = _tuple(value, "vote", 2)
        return cls(_int(member, "vote member"), _bytes(signature, "vote sig", SIGNATURE_BYTES))


def _votes(value: object, what: str) -> tuple[Vote, ...]:
    return tuple(Vote.from_wire(v) for v in _tuple(value, what))


def slot_digest(slot: int, refs: tuple[BatchRef, ...]) -> bytes:
    """Digest of the value of a slot (its batch references); views do not enter it."""
    return hashlib.sha256(_pack((slot, tuple(r.to_wire() for r in refs)))).digest()


# -- messages ---------------------------------------------------------------------------------


class _Message:
    """Shared encode/decode plumbing; subclasses define KIND, CODE, _fields and _parse."""

    KIND: ClassVar[str]
    CODE: ClassVar[int]

    def _fields(self) -> tuple[object, ...]:
        raise NotImplementedError

    def to_body(self) -> bytes:
        """The signed body bytes."""
        return _pack(self._fields())

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Any:
        raise NotImplementedError


@attrs.frozen
class Send(_Message):
    """BRB: the origin disseminates batch number ``counter`` (origin = the signer)."""

    KIND: ClassVar[str] = "brb.send"
    CODE: ClassVar[int] = 1
    counter: int
    batch: Batch

    def _fields(self) -> tuple[object, ...]:
        return (self.counter, self.batch.to_wire())

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Send:
        counter, batch = _tuple(fields, "send", 2)
        return cls(_int(counter, "send counter"), Batch.from_wire(batch))


@attrs.frozen
class Echo(_Message):
    """BRB: the signer echoes ``digest`` for instance (origin, counter)."""

    KIND: ClassVar[str] = "brb.echo"
    CODE: ClassVar[int] = 2
    origin: int
    counter: int
    digest: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.origin, self.counter, self.digest)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Echo:
        origin, counter, digest = _tuple(fields, cls.KIND, 3)
        return cls(_int(origin, "origin"), _int(counter, "counter"), _digest(digest, "digest"))


@attrs.frozen
class Ready(Echo):
    """Bracha BRB: the signer is ready to deliver ``digest`` for (origin, counter)."""

    KIND: ClassVar[str] = "brb.ready"
    CODE: ClassVar[int] = 3


@attrs.frozen
class Fetch(Echo):
    """BRB: the signer asks for the batch with ``digest`` of (origin, counter)."""

    KIND: ClassVar[str] = "brb.fetch"
    CODE: ClassVar[int] = 4


@attrs.frozen
class Request(_Message):
    """UUB: the signer asks the sequencer for a slot for its batch ``counter``."""

    KIND: ClassVar[str] = "uub.request"
    CODE: ClassVar[int] = 6
    counter: int
    digest: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.counter, self.digest)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Request:
        counter, digest = _tuple(fields, cls.KIND, 2)
        return cls(_int(counter, "counter"), _digest(digest, "digest"))


@attrs.frozen
class Final(_Message):
    """Signed-echo BRB: the batch with a certificate of q ECHO signatures for its digest."""

    KIND: ClassVar[str] = "brb.final"
    CODE: ClassVar[int] = 5
    origin: int
    counter: int
    batch: Batch
    certificate: tuple[Vote, ...]

    def _fields(self) -> tuple[object, ...]:
        votes = tuple(v.to_wire() for v in self.certificate)
        return (self.origin, self.counter, self.batch.to_wire(), votes)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Final:
        origin, counter, batch, votes = _tuple(fields, cls.KIND, 4)
        return cls(
            _int(origin, "origin"),
            _int(counter, "counter"),
            Batch.from_wire(batch),
            _votes(votes, "final certificate"),
        )


@attrs.frozen
class Order(_Message):
    """Ordering: the view's sequencer proposes ``refs`` for ``slot``.

    In the UB variant ``carried`` holds the origins' signed SEND frames of the batches, which
    members receive only through the ORDER; in the other variants it is empty.
    """

    KIND: ClassVar[str] = "ord.order"
    CODE: ClassVar[int] = 10
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    carried: tuple[bytes, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return (self.view, self.slot, tuple(r.to_wire() for r in self.refs), self.carried)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Order:
        view, slot, refs, carried = _tuple(fields, cls.KIND, 4)
        parsed = tuple(BatchRef.from_wire(r) for r in _tuple(refs, "order refs"))
        frames = tuple(_bytes(f, "carried frame") for f in _tuple(carried, "carried"))
        return cls(_int(view, "view"), _int(slot, "slot"), parsed, frames)

    @property
    def digest(self) -> bytes:
        """The slot value's digest (see :func:`slot_digest`)."""
        return slot_digest(self.slot, self.refs)


@attrs.frozen
class OrderEcho(_Message):
    """Ordering: the signer accepts ``digest`` for (view, slot); q of them prepare the slot."""

    KIND: ClassVar[str] = "ord.echo"
    CODE: ClassVar[int] = 11
    view: int
    slot: int
    digest: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.view, self.slot, self.digest)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> OrderEcho:
        view, slot, digest = _tuple(fields, cls.KIND, 3)
        return cls(_int(view, "view"), _int(slot, "slot"), _digest(digest, "digest"))


@attrs.frozen
class OrderReady(OrderEcho):
    """Ordering: the signer holds a prepared certificate; q of them commit the slot."""

    KIND: ClassVar[str] = "ord.ready"
    CODE: ClassVar[int] = 12


@attrs.frozen
class Status(_Message):
    """Control: the signer is in ``view`` and has delivered every slot below ``next_slot``."""

    KIND: ClassVar[str] = "ctl.status"
    CODE: ClassVar[int] = 20
    next_slot: int
    view: int = 0

    def _fields(self) -> tuple[object, ...]:
        return (self.next_slot, self.view)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Status:
        next_slot, view = _tuple(fields, cls.KIND, 2)
        return cls(_int(next_slot, "next slot"), _int(view, "view"))


@attrs.frozen
class SlotProof(_Message):
    """Catch-up: a committed slot, its commit certificate and the batches it names."""

    KIND: ClassVar[str] = "ctl.slot"
    CODE: ClassVar[int] = 21
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    certificate: tuple[Vote, ...]
    batches: tuple[Batch, ...]

    def _fields(self) -> tuple[object, ...]:
        return (
            self.view,
            self.slot,
            tuple(r.to_wire() for r in self.refs),
            tuple(v.to_wire() for v in self.certificate),
            tuple(b.to_wire() for b in self.batches),
        )

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> SlotProof:
        view, slot, refs, votes, batches = _tuple(fields, cls.KIND, 5)
        return cls(
            _int(view, "view"),
            _int(slot, "slot"),
            tuple(BatchRef.from_wire(r) for r in _tuple(refs, "slot refs")),
            _votes(votes, "commit certificate"),
            tuple(Batch.from_wire(b) for b in _tuple(batches, "slot batches")),
        )


@attrs.frozen
class Checkpoint(_Message):
    """The signer delivered every slot below ``upto`` and its log hash chain is ``digest``."""

    KIND: ClassVar[str] = "ckp.checkpoint"
    CODE: ClassVar[int] = 30
    upto: int
    digest: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.upto, self.digest)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> Checkpoint:
        upto, digest = _tuple(fields, cls.KIND, 2)
        return cls(_int(upto, "upto"), _digest(digest, "digest"))


@attrs.frozen
class CheckpointCert:
    """q CHECKPOINT signatures on (upto, digest): the log below ``upto`` is settled."""

    upto: int
    digest: bytes
    votes: tuple[Vote, ...]

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        return (self.upto, self.digest, tuple(v.to_wire() for v in self.votes))

    @classmethod
    def from_wire(cls, value: object) -> CheckpointCert:
        """Parse the msgpack form; raises :class:`WireError`."""
        upto, digest, votes = _tuple(value, "checkpoint certificate", 3)
        return cls(_int(upto, "upto"), _digest(digest, "checkpoint"), _votes(votes, "votes"))


@attrs.frozen
class PreparedCert:
    """q ordering ECHOs on (view, slot, digest of refs): the slot was prepared in ``view``."""

    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    votes: tuple[Vote, ...]

    @property
    def digest(self) -> bytes:
        """The value digest the ECHOs sign."""
        return slot_digest(self.slot, self.refs)

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        refs = tuple(r.to_wire() for r in self.refs)
        return (self.view, self.slot, refs, tuple(v.to_wire() for v in self.votes))

    @classmethod
    def from_wire(cls, value: object) -> PreparedCert:
        """Parse the msgpack form; raises :class:`WireError`."""
        view, slot, refs, votes = _tuple(value, "prepared certificate", 4)
        return cls(
            _int(view, "view"),
            _int(slot, "slot"),
            tuple(BatchRef.from_wire(r) for r in _tuple(refs, "prepared refs")),
            _votes(votes, "prepared votes"),
        )


@attrs.frozen
class ViewChange(_Message):
    """The signer leaves its view for ``view``, with its last stable checkpoint certificate
    (None before the first) and its prepared certificates above it."""

    KIND: ClassVar[str] = "vc.viewchange"
    CODE: ClassVar[int] = 40
    view: int
    checkpoint: CheckpointCert | None
    prepared: tuple[PreparedCert, ...]

    def _fields(self) -> tuple[object, ...]:
        checkpoint = () if self.checkpoint is None else self.checkpoint.to_wire()
        return (self.view, checkpoint, tuple(p.to_wire() for p in self.prepared))

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> ViewChange:
        view, checkpoint, prepared = _tuple(fields, cls.KIND, 3)
        cert = CheckpointCert.from_wire(checkpoint) if checkpoint != () else None
        return cls(
            _int(view, "view"),
            cert,
            tuple(PreparedCert.from_wire(p) for p in _tuple(prepared, "prepared")),
        )


@attrs.frozen
class Reproposal:
    """A slot the new view must order again: the prepared refs, or () for a null slot."""

    slot: int
    refs: tuple[BatchRef, ...]

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        return (self.slot, tuple(r.to_wire() for r in self.refs))

    @classmethod
    def from_wire(cls, value: object) -> Reproposal:
        """Parse the msgpack form; raises :class:`WireError`."""
        slot, refs = _tuple(value, "reproposal", 2)
        return cls(_int(slot, "slot"), tuple(BatchRef.from_wire(r) for r in _tuple(refs, "refs")))


@attrs.frozen
class NewView(_Message):
    """The new sequencer starts ``view``: q VIEW-CHANGE frames and the re-proposals they imply."""

    KIND: ClassVar[str] = "vc.newview"
    CODE: ClassVar[int] = 41
    view: int
    view_changes: tuple[bytes, ...]
    reproposals: tuple[Reproposal, ...]
    excluded: tuple[int, ...] = ()
    """Moving sequencer only: members taken out of the rotation in this view (at most f)."""

    def _fields(self) -> tuple[object, ...]:
        return (self.view, self.view_changes, tuple(r.to_wire() for r in self.reproposals),
                self.excluded)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> NewView:
        view, frames, reproposals, excluded = _tuple(fields, cls.KIND, 4)
        return cls(
            _int(view, "view"),
            tuple(_bytes(f, "view-change frame") for f in _tuple(frames, "view changes")),
            tuple(Reproposal.from_wire(r) for r in _tuple(reproposals, "reproposals")),
            tuple(_int(m, "excluded member") for m in _tuple(excluded, "excluded")),
        )


@attrs.frozen
class LogSegment(_Message):
    """Catch-up below a stable checkpoint: the slots ``start..cert.upto-1`` with their batches,
    verified against the certificate's hash chain instead of per-slot commit certificates."""

    KIND: ClassVar[str] = "ctl.segment"
    CODE: ClassVar[int] = 22
    cert: CheckpointCert
    start: int
    entries: tuple[tuple[tuple[BatchRef, ...], tuple[Batch, ...]], ...]

    def _fields(self) -> tuple[object, ...]:
        entries = tuple(
            (tuple(r.to_wire() for r in refs), tuple(b.to_wire() for b in batches))
            for refs, batches in self.entries
        )
        return (self.cert.to_wire(), self.start, entries)

    @classmethod
    def _parse(cls, fields: tuple[Any, ...]) -> LogSegment:
        cert, start, entries = _tuple(fields, cls.KIND, 3)
        parsed = []
        for entry in _tuple(entries, "segment entries"):
            refs, batches = _tuple(entry, "segment entry", 2)
            parsed.append((
                tuple(BatchRef.from_wire(r) for r in _tuple(refs, "entry refs")),
                tuple(Batch.from_wire(b) for b in _tuple(batches, "entry batches")),
            ))
        return cls(CheckpointCert.from_wire(cert), _int(start, "start"), tuple(parsed))


Message: TypeAlias = (
    Send | Echo | Final | Order | OrderEcho | Status | SlotProof | Checkpoint | ViewChange
    | NewView | LogSegment | Request
)
"""Any protocol message (Ready and Fetch are Echo subclasses; OrderReady an OrderEcho one)."""

_CLASSES: tuple[type[_Message], ...] = (
    Send, Echo, Ready, Fetch, Final, Request, Order, OrderEcho, OrderReady, Status, SlotProof,
    Checkpoint, ViewChange, NewView, LogSegment,
)
_BY_CODE: dict[int, type[_Message]] = {c.CODE: c for c in _CLASSES}
KIND_BY_CODE: dict[int, str] = {c.CODE: c.KIND for c in _CLASSES}


@attrs.frozen
class Signed:
    """A message with its sender and signature, exactly as received or sent.

    ``body`` holds the signed bytes; :meth:`to_frame` re-creates the original frame, so a
    forwarded message is byte-identical to what its signer produced.
    """

    sender: int
    message: Message
    body: bytes
    signature: bytes

    @property
    def kind(self) -> str:
        """The message kind string that the signature's domain tag covers."""
        return self.message.KIND

    def to_frame(self) -> bytes:
        """The frame ``[version, kind, sender, body, signature]``."""
        return _pack((WIRE_VERSION, self.message.CODE, self.sender, self.body, self.signature))

    @classmethod
    def create(cls, sender: int, message: Message, sign: Callable[[str, bytes], bytes]) -> Signed:
        """Sign ``message`` as ``sender`` with ``sign(kind, body)``."""
        body = message.to_body()
        return cls(sender, message, body, sign(message.KIND, body))


@attrs.frozen
class RawFrame:
    """An envelope whose signature has not been checked yet; ``parse`` decodes the body."""

    code: int
    sender: int
    body: bytes
    signature: bytes

    @property
    def kind(self) -> str:
        """The message kind string."""
        return KIND_BY_CODE[self.code]

    def parse(self, limits: WireLimits = DEFAULT_LIMITS) -> Signed:
        """Decode the (verified) body; raises :class:`WireError`."""
        fields = _unpack(self.body, limits)
        message = _BY_CODE[self.code]._parse(_tuple(fields, "body"))
        return Signed(self.sender, message, self.body, self.signature)


def decode_frame(data: bytes, limits: WireLimits = DEFAULT_LIMITS) -> RawFrame:
    """Split a frame into its envelope fields without trusting them.

    Raises :class:`WireError` for anything but a well-formed envelope of a known kind.
    """
    fields = _tuple(_unpack(data, limits), "frame", 5)
    version, code, sender, body, signature = fields
    if version != WIRE_VERSION or type(version) is not int:
        raise WireError(f"unsupported wire version {version!r}")
    if type(code) is not int or code not in _BY_CODE:
        raise WireError(f"unknown message kind {code!r}")
    signature = _bytes(signature, "sig", SIGNATURE_BYTES)
    return RawFrame(code, _int(sender, "sender"), _bytes(body, "body"), signature)


def encode_frame(signed: Signed) -> bytes:
    """Alias of :meth:`Signed.to_frame`."""
    return signed.to_frame()
