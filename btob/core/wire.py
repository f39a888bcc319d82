"""Wire format: frozen message classes, signed envelopes and bounded msgpack framing.

A frame is the msgpack array ``[version, kind, sender, body, signature]``; the signature
covers ``domain_tag(cluster_id, kind) || body`` (see :func:`btob.crypto.domain_tag`), so a
frame signed for another cluster, protocol version or message kind never verifies. ``body`` is
itself a msgpack array holding the message fields. Every type below declares its fields as a
table of codecs (:mod:`btob.core.codec`): one table gives the encoder, the decoder and the
checks. Decoding never trusts its input: sizes, counts and nesting are bounded, the exact shape
of every body is checked, and anything malformed raises :class:`~btob.WireError` and nothing
else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeAlias, cast

import attrs

from btob._errors import WireError
from btob.core.codec import (
    BYTES,
    DIGEST,
    DIGEST_BYTES,
    INT,
    SIGNATURE,
    SIGNATURE_BYTES,
    Codec,
    Wired,
    array,
    optional,
    pack,
    pair,
    record,
    seq,
    unpack,
    wired,
)
from btob.core.merkle import merkle_root
from btob.core.settings import Settings

__all__ = [
    "DIGEST_BYTES",
    "KINDS",
    "SIGNATURE_BYTES",
    "WIRE_VERSION",
    "Batch",
    "BatchRef",
    "Checkpoint",
    "CheckpointCert",
    "Chunk",
    "ChunkRequest",
    "Echo",
    "Fetch",
    "Final",
    "LogSegment",
    "Message",
    "NewView",
    "Order",
    "OrderCommitted",
    "OrderEcho",
    "OrderPrepared",
    "OrderReady",
    "PreparedCert",
    "RawFrame",
    "Ready",
    "Reproposal",
    "Request",
    "Send",
    "Signed",
    "SlotProof",
    "Status",
    "ViewChange",
    "Vote",
    "WireLimits",
    "batch_digest",
    "decode_frame",
    "encode_frame",
    "slot_digest",
]

WIRE_VERSION = 3


@attrs.frozen(kw_only=True)
class WireLimits:
    """Bounds applied while decoding untrusted bytes. A member decodes with
    ``frame_bytes_max`` from its :class:`~btob.Settings` (the one frame bound of btob)."""

    frame_bytes_max: int = attrs.field(factory=lambda: Settings().frame_bytes_max)
    """Largest frame accepted at all (``Settings.frame_bytes_max``, whose default it is)."""
    items_max: int = 65_536
    """Longest msgpack array anywhere in a frame."""


DEFAULT_LIMITS = WireLimits()


# -- values carried by messages -------------------------------------------------------------


@wired("batch")
@attrs.frozen
class Batch(Wired):
    """Payloads one origin disseminates together; ``first_counter`` numbers the first one.

    The payloads are the origin's messages ``first_counter``, ``first_counter + 1``, ...;
    ``requests`` are signed client REQUEST frames the origin relays
    (:mod:`btob.core.clientwire`), which take no counter of the origin's.
    """

    WIRE: ClassVar = (INT, seq(BYTES), seq(BYTES))
    first_counter: int
    payloads: tuple[bytes, ...]
    requests: tuple[bytes, ...] = ()

    def digest(self) -> bytes:
        """The batch's Merkle digest (:func:`batch_digest`): it commits to every payload and
        request, and a receipt proves one request's place with a short audit path."""
        return batch_digest(self.first_counter, len(self.payloads),
                            merkle_root(self.payloads + self.requests or (b"",)))

    @property
    def size_bytes(self) -> int:
        """Total payload and request bytes."""
        return sum(len(p) for p in self.payloads) + sum(len(r) for r in self.requests)

    @property
    def entries(self) -> tuple[bytes, ...]:
        """The Merkle tree's leaves: the payloads, then the requests."""
        return self.payloads + self.requests


_BATCH_TAG = b"btob.batch"


def batch_digest(first_counter: int, payload_count: int, root: bytes) -> bytes:
    """A batch's digest from its first counter, its number of payloads (the leaves before
    them are payloads, the rest requests) and the Merkle root over its entries."""
    return hashlib.sha256(_BATCH_TAG + first_counter.to_bytes(8, "big")
                          + payload_count.to_bytes(8, "big") + root).digest()


@wired("batch ref")
@attrs.frozen
class BatchRef(Wired):
    """Names one dissemination instance and the digest of the batch it delivered."""

    WIRE: ClassVar = (INT, INT, DIGEST)
    origin: int
    counter: int
    digest: bytes


@wired("vote")
@attrs.frozen
class Vote(Wired):
    """One member's signature inside a certificate."""

    WIRE: ClassVar = (INT, SIGNATURE)
    member: int
    signature: bytes


REFS: Codec[tuple[BatchRef, ...]] = seq(record(BatchRef))
VOTES: Codec[tuple[Vote, ...]] = seq(record(Vote))
BATCHES: Codec[tuple[Batch, ...]] = seq(record(Batch))


def slot_digest(slot: int, refs: tuple[BatchRef, ...]) -> bytes:
    """Digest of the value of a slot (its batch references); views do not enter it."""
    return hashlib.sha256(pack((slot, REFS.encode(refs)))).digest()


@wired("checkpoint certificate")
@attrs.frozen
class CheckpointCert(Wired):
    """q CHECKPOINT signatures on (upto, digest, state): the log below ``upto`` is settled,
    and so is the state it leads to (``state``: the Merkle root of the snapshot)."""

    WIRE: ClassVar = (INT, DIGEST, VOTES, DIGEST)
    upto: int
    digest: bytes
    votes: tuple[Vote, ...]
    state: bytes = bytes(DIGEST_BYTES)

    def checkpoint(self) -> Checkpoint:
        """The CHECKPOINT every vote of this certificate signs."""
        return Checkpoint(self.upto, self.digest, self.state)


@wired("prepared certificate")
@attrs.frozen
class PreparedCert(Wired):
    """q ordering ECHOs on (view, slot, digest of refs): the slot was prepared in ``view``."""

    WIRE: ClassVar = (INT, INT, REFS, VOTES)
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    votes: tuple[Vote, ...]

    @property
    def digest(self) -> bytes:
        """The value digest the ECHOs sign."""
        return slot_digest(self.slot, self.refs)


@wired("reproposal")
@attrs.frozen
class Reproposal(Wired):
    """A slot the new view must order again: the prepared refs, or () for a null slot."""

    WIRE: ClassVar = (INT, REFS)
    slot: int
    refs: tuple[BatchRef, ...]


# -- messages ---------------------------------------------------------------------------------


class _Message(Wired):
    """A signed protocol message: ``KIND`` names it in the domain tag, ``CODE`` on the wire."""

    KIND: ClassVar[str]
    CODE: ClassVar[int]

    def to_body(self) -> bytes:
        """The signed body bytes."""
        return pack(self.to_wire())


def message(kind: str, code: int) -> Callable[[type[Any]], type[Any]]:
    """Class decorator, after ``attrs.frozen``: the message's kind, code and field table."""

    def decorate(cls: type[Any]) -> type[Any]:
        cls.KIND = kind
        cls.CODE = code
        return wired(kind)(cls)

    return decorate


@message("brb.send", 1)
@attrs.frozen
class Send(_Message):
    """Dissemination: the origin (the signer) sends its batch number ``counter``."""

    WIRE: ClassVar = (INT, record(Batch))
    counter: int
    batch: Batch


@message("brb.echo", 2)
@attrs.frozen
class Echo(_Message):
    """BRB: the signer echoes ``digest`` for instance (origin, counter)."""

    WIRE: ClassVar = (INT, INT, DIGEST)
    origin: int
    counter: int
    digest: bytes


@message("brb.ready", 3)
@attrs.frozen
class Ready(Echo):
    """Bracha BRB: the signer is ready to deliver ``digest`` for (origin, counter)."""


@message("brb.fetch", 4)
@attrs.frozen
class Fetch(Echo):
    """Dissemination: the signer asks for the batch with ``digest`` of (origin, counter)."""


@message("brb.final", 5)
@attrs.frozen
class Final(_Message):
    """Signed-echo BRB: the batch with a certificate of q ECHO signatures for its digest."""

    WIRE: ClassVar = (INT, INT, record(Batch), VOTES)
    origin: int
    counter: int
    batch: Batch
    certificate: tuple[Vote, ...]


@message("uub.request", 6)
@attrs.frozen
class Request(_Message):
    """UUB: the signer asks the sequencer for a slot for its batch ``counter``."""

    WIRE: ClassVar = (INT, DIGEST)
    counter: int
    digest: bytes


@message("ord.order", 10)
@attrs.frozen
class Order(_Message):
    """Ordering: the slot's proposer proposes ``refs`` for ``slot``.

    In the UB variant ``carried`` holds the origins' signed SEND frames of the batches, which
    members receive only through the ORDER; in the other variants it is empty.
    """

    WIRE: ClassVar = (INT, INT, REFS, seq(BYTES))
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    carried: tuple[bytes, ...] = ()

    @property
    def digest(self) -> bytes:
        """The slot value's digest (see :func:`slot_digest`)."""
        return slot_digest(self.slot, self.refs)


@message("ord.echo", 11)
@attrs.frozen
class OrderEcho(_Message):
    """Ordering: the signer accepts ``digest`` for (view, slot); q of them prepare the slot."""

    WIRE: ClassVar = (INT, INT, DIGEST)
    view: int
    slot: int
    digest: bytes


@message("ord.ready", 12)
@attrs.frozen
class OrderReady(OrderEcho):
    """Ordering: the signer holds a prepared certificate; q of them commit the slot."""


@message("ord.prepared", 13)
@attrs.frozen
class OrderPrepared(_Message):
    """Linear votes: the slot's collector forwards the q ordering ECHOs it gathered for
    ``refs`` in (view, slot), a prepared certificate anyone can check."""

    WIRE: ClassVar = (INT, INT, REFS, VOTES)
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    votes: tuple[Vote, ...]

    @property
    def digest(self) -> bytes:
        """The value digest the ECHOs sign."""
        return slot_digest(self.slot, self.refs)


@message("ord.committed", 14)
@attrs.frozen
class OrderCommitted(_Message):
    """Linear votes: the slot's collector forwards the q ordering READYs it gathered for
    ``digest`` in (view, slot), a commit certificate anyone can check."""

    WIRE: ClassVar = (INT, INT, DIGEST, VOTES)
    view: int
    slot: int
    digest: bytes
    votes: tuple[Vote, ...]


@message("ctl.status", 20)
@attrs.frozen
class Status(_Message):
    """Control: the signer is in ``view`` and has delivered every slot below ``next_slot``.

    ``seen`` holds, for each origin in turn, the next batch counter and the next payload
    counter the signer knows of (ordered or in flight): a member that lost its disk learns
    from these where its own counters stand.
    """

    WIRE: ClassVar = (INT, INT, seq(INT))
    next_slot: int
    view: int = 0
    seen: tuple[int, ...] = ()


@message("ctl.slot", 21)
@attrs.frozen
class SlotProof(_Message):
    """Catch-up: a committed slot, its commit certificate and the batches it names."""

    WIRE: ClassVar = (INT, INT, REFS, VOTES, BATCHES)
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    certificate: tuple[Vote, ...]
    batches: tuple[Batch, ...]


@message("ctl.segment", 22)
@attrs.frozen
class LogSegment(_Message):
    """Catch-up below a stable checkpoint: the slots ``start..cert.upto-1`` with their batches,
    verified against the certificate's hash chain instead of per-slot commit certificates."""

    WIRE: ClassVar = (record(CheckpointCert), INT, seq(pair(REFS, BATCHES)))
    cert: CheckpointCert
    start: int
    entries: tuple[tuple[tuple[BatchRef, ...], tuple[Batch, ...]], ...]


@message("ckp.checkpoint", 30)
@attrs.frozen
class Checkpoint(_Message):
    """The signer delivered every slot below ``upto``, its log hash chain is ``digest``, and
    ``state`` is the Merkle root of its snapshot there (:mod:`btob.core.snapshot`)."""

    WIRE: ClassVar = (INT, DIGEST, DIGEST)
    upto: int
    digest: bytes
    state: bytes = bytes(DIGEST_BYTES)


@message("vc.viewchange", 40)
@attrs.frozen
class ViewChange(_Message):
    """The signer leaves its view for ``view``, with its last stable checkpoint certificate
    (None before the first) and its prepared certificates above it."""

    WIRE: ClassVar = (INT, optional(record(CheckpointCert)), seq(record(PreparedCert)))
    view: int
    checkpoint: CheckpointCert | None
    prepared: tuple[PreparedCert, ...]


@message("vc.newview", 41)
@attrs.frozen
class NewView(_Message):
    """The new leader starts ``view``: q VIEW-CHANGE frames and the re-proposals they imply."""

    WIRE: ClassVar = (INT, seq(BYTES), seq(record(Reproposal)), seq(INT))
    view: int
    view_changes: tuple[bytes, ...]
    reproposals: tuple[Reproposal, ...]
    excluded: tuple[int, ...] = ()
    """Moving sequencer only: members taken out of the rotation in this view (at most f)."""


@message("ctl.chunkreq", 23)
@attrs.frozen
class ChunkRequest(_Message):
    """State transfer: the signer asks for chunk ``index`` of the snapshot at stable checkpoint
    ``upto`` (:mod:`btob.core.transfer`)."""

    WIRE: ClassVar = (INT, INT)
    upto: int
    index: int


@message("ctl.chunk", 24)
@attrs.frozen
class Chunk(_Message):
    """State transfer: chunk ``index`` of the ``count`` chunks of the snapshot at ``upto``,
    whose Merkle root is ``root``, with its audit path (:func:`btob.core.merkle.verify_chunk`).

    The receiver checks it against the root a stable checkpoint certificate signs, never
    against the ``root`` and ``count`` carried here, which only say what the signer claims.
    """

    WIRE: ClassVar = (INT, DIGEST, INT, INT, BYTES, seq(DIGEST))
    upto: int
    root: bytes
    count: int
    index: int
    data: bytes
    proof: tuple[bytes, ...]


Message: TypeAlias = (
    Send | Echo | Final | Order | OrderEcho | OrderPrepared | OrderCommitted | Status
    | SlotProof | Checkpoint | ViewChange | NewView | LogSegment | Request | ChunkRequest | Chunk
)
"""Any protocol message (Ready and Fetch are Echo subclasses; OrderReady an OrderEcho one)."""

_CLASSES: tuple[type[_Message], ...] = (
    Send, Echo, Ready, Fetch, Final, Request, Order, OrderEcho, OrderReady, OrderPrepared,
    OrderCommitted, Status, SlotProof, LogSegment, ChunkRequest, Chunk, Checkpoint, ViewChange,
    NewView,
)
_BY_CODE: dict[int, type[_Message]] = {c.CODE: c for c in _CLASSES}
KINDS: Mapping[str, type[_Message]] = {c.KIND: c for c in _CLASSES}
"""Every message class by its kind string (the dispatch key of the member machine)."""
KIND_BY_CODE: dict[int, str] = {c.CODE: c.KIND for c in _CLASSES}
assert len(_BY_CODE) == len(KINDS) == len(_CLASSES), "kinds and codes are unique"


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
        return pack((WIRE_VERSION, self.message.CODE, self.sender, self.body, self.signature))

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
        fields = unpack(self.body, frame_bytes_max=limits.frame_bytes_max,
                        items_max=limits.items_max)
        message = cast(Message, _BY_CODE[self.code].from_wire(array(fields, "body")))
        return Signed(self.sender, message, self.body, self.signature)


def decode_frame(data: bytes, limits: WireLimits = DEFAULT_LIMITS) -> RawFrame:
    """Split a frame into its envelope fields without trusting them.

    Raises :class:`WireError` for anything but a well-formed envelope of a known kind.
    """
    fields = array(unpack(data, frame_bytes_max=limits.frame_bytes_max,
                          items_max=limits.items_max), "frame", 5)
    version, code, sender, body, signature = fields
    if version != WIRE_VERSION or type(version) is not int:
        raise WireError(f"unsupported wire version {version!r}")
    if type(code) is not int or code not in _BY_CODE:
        raise WireError(f"unknown message kind {code!r}")
    return RawFrame(code, INT.decode(sender, "sender"), BYTES.decode(body, "body"),
                    SIGNATURE.decode(signature, "signature"))


def encode_frame(signed: Signed) -> bytes:
    """Alias of :meth:`Signed.to_frame`."""
    return signed.to_frame()
