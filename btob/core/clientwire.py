"""What clients and members say to each other: signed REQUESTs, receipts and notices.

A client is anyone holding an Ed25519 key the cluster admits (``cluster.toml`` lists the
keys, or admits any). It signs ``REQUEST(client key, session, seq, payload)`` under the domain
tag of kind ``"client.request"``, so a request signed for another cluster, protocol version or
kind never verifies, and no member can make one up. A member relays the request frame as it
is, inside its own next batch (:attr:`btob.core.wire.Batch.requests`); every member checks the
signature again when the slot commits, so a relay cannot slip in a forged one.

``session`` and ``seq`` name a request: a client starts a session with a number above every
earlier session of its key (the time in microseconds does) and numbers its requests 0, 1, ...
within it. Delivery is at most once per (client, session, seq) and in seq order within a
session (:mod:`btob.core.clients`).

A *receipt* proves offline, to anyone holding ``cluster.toml``, that a request was committed:
the slot's commit certificate (q signed ``ord.ready`` votes on the slot's value) and the
Merkle audit path of the request inside one of the slot's batches, whose digest the value
names (:func:`btob.core.wire.batch_digest`). Its ``index`` (the delivery index) is what the
member that built it reports; the certificate covers slot and position, not the index.

A *reply* is an application's answer to a delivered request (BFT-SMaRt's ordered
invocation): a member signs ``REPLY(client, session, seq, index, result)`` under kind
``"client.reply"``; a client accepts a result once f+1 members sent matching replies, so at
least one honest member vouches for it.

Frames: ``[version, code, body, signature]`` for a REQUEST (the key is in the body),
``[version, code, member, body, signature]`` for a REPLY, and ``[version, code, fields...]``
for the unsigned RECEIPT and NOTICE, which need no signature of their own (a receipt carries
its proof; a notice is only a hint to try another member).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import ClassVar

import attrs

from btob._errors import WireError
from btob.core.codec import (
    BYTES,
    DIGEST,
    INT,
    SIGNATURE,
    Wired,
    array,
    pack,
    seq,
    unpack,
    wired,
)
from btob.core.merkle import root_from_path
from btob.core.quorum import Quorums
from btob.core.wire import (
    REFS,
    VOTES,
    WIRE_VERSION,
    BatchRef,
    OrderReady,
    Vote,
    batch_digest,
    slot_digest,
)

__all__ = [
    "CLIENT_HANDSHAKE_KIND",
    "CLIENT_HELLO",
    "CLIENT_KEY_BYTES",
    "HANDSHAKE_NONCE_BYTES",
    "HANDSHAKE_VERSION",
    "MEMBER_ANSWER",
    "MEMBER_HANDSHAKE_KIND",
    "REPLY_KIND",
    "REQUEST_KIND",
    "ClientRequest",
    "Notice",
    "Receipt",
    "Reply",
    "SignedReply",
    "client_proof_body",
    "decode_client_frame",
    "decode_request",
    "member_proof_body",
    "receipt_problem",
    "sign_request",
]

REQUEST_KIND = "client.request"
"""The signature kind of a client REQUEST (bound to the cluster id by the domain tag)."""
REPLY_KIND = "client.reply"
"""The signature kind of a member's REPLY to a client."""

CLIENT_KEY_BYTES = 32

# -- the client connection's handshake (btob.runtime.clientport serves it, btob.client dials)

CLIENT_HANDSHAKE_KIND = "client.handshake"
"""The signature kind of a client's handshake proof."""
MEMBER_HANDSHAKE_KIND = "client.handshake.member"
"""The signature kind of a member's handshake answer."""
HANDSHAKE_VERSION = 1
"""The version byte of both handshake messages."""
HANDSHAKE_NONCE_BYTES = 32
CLIENT_HELLO = struct.Struct(">4sB32s32s")
"""``magic b"btcl", version, client key, client nonce``."""
MEMBER_ANSWER = struct.Struct(">4sBH32s64s")
"""``magic b"btcm", version, member id, member nonce, member signature``."""


def member_proof_body(*, client_nonce: bytes, member_nonce: bytes, client: bytes) -> bytes:
    """What the member signs in its answer."""
    return client_nonce + member_nonce + client


def client_proof_body(*, member_nonce: bytes, client_nonce: bytes, member: int) -> bytes:
    """What the client signs in its proof."""
    return member_nonce + client_nonce + member.to_bytes(2, "big")

_REQUEST_CODE = 50
_RECEIPT_CODE = 51
_NOTICE_CODE = 52
_REPLY_CODE = 53
_CLIENT_KEY = BYTES  # checked for length in ClientRequest's decoder
_REASON_BYTES_MAX = 200


@wired("client request")
@attrs.frozen
class ClientRequest(Wired):
    """A client's request: ``payload`` as number ``seq`` of session ``session``."""

    WIRE: ClassVar = (_CLIENT_KEY, INT, INT, BYTES)
    client: bytes
    session: int
    seq: int
    payload: bytes

    def to_body(self) -> bytes:
        """The signed body bytes."""
        return pack(self.to_wire())


def sign_request(request: ClientRequest, sign: Callable[[str, bytes], bytes]) -> bytes:
    """The REQUEST frame of ``request``, signed with ``sign(kind, body)`` (a client's
    :class:`~btob.crypto.Signer`)."""
    body = request.to_body()
    return pack((WIRE_VERSION, _REQUEST_CODE, body, sign(REQUEST_KIND, body)))


def decode_request(frame: bytes, *, frame_bytes_max: int) -> tuple[ClientRequest, bytes, bytes]:
    """``(request, body, signature)`` of a REQUEST frame, unverified; raises
    :class:`WireError` for anything else."""
    fields = array(unpack(frame, frame_bytes_max=frame_bytes_max, items_max=8), "request", 4)
    version, code, body, signature = fields
    if type(version) is not int or version != WIRE_VERSION:
        raise WireError(f"unsupported wire version {version!r}")
    if code != _REQUEST_CODE:
        raise WireError(f"not a client request: code {code!r}")
    body = BYTES.decode(body, "request body")
    signature = SIGNATURE.decode(signature, "request signature")
    request = ClientRequest.from_wire(unpack(body, frame_bytes_max=frame_bytes_max, items_max=8))
    if len(request.client) != CLIENT_KEY_BYTES:
        raise WireError(f"request client: expected {CLIENT_KEY_BYTES} bytes")
    return request, body, signature


@wired("receipt")
@attrs.frozen
class Receipt(Wired):
    """Proof that ``request`` (a REQUEST frame) was committed at ``slot``.

    ``refs`` is the slot's value and ``certificate`` its commit certificate (signed in
    ``view``); the request is entry ``entry`` of the ``entries`` of the batch ``refs[batch]``,
    whose first counter and number of payloads are ``first_counter`` and ``payloads``,
    and ``path`` is its Merkle audit path. ``index`` is the delivery index the member reports.
    """

    WIRE: ClassVar = (BYTES, INT, INT, REFS, VOTES, INT, INT, INT, INT, INT, seq(DIGEST), INT)
    request: bytes
    view: int
    slot: int
    refs: tuple[BatchRef, ...]
    certificate: tuple[Vote, ...]
    batch: int
    first_counter: int
    payloads: int
    entries: int
    entry: int
    path: tuple[bytes, ...]
    index: int

    def to_frame(self) -> bytes:
        """The RECEIPT frame."""
        return pack((WIRE_VERSION, _RECEIPT_CODE, *self.to_wire()))


@attrs.frozen
class Notice:
    """A member's word that it did not take request ``seq`` of session ``session``
    (``reason`` says why); only a hint: the client tries another member."""

    session: int
    seq: int
    reason: str

    def to_frame(self) -> bytes:
        """The NOTICE frame."""
        return pack((WIRE_VERSION, _NOTICE_CODE, self.session, self.seq,
                     self.reason.encode()[:_REASON_BYTES_MAX]))


@wired("reply")
@attrs.frozen
class Reply(Wired):
    """A member's application answered request ``seq`` of the client's ``session``,
    delivered at ``index``, with ``result``."""

    WIRE: ClassVar = (_CLIENT_KEY, INT, INT, INT, BYTES)
    client: bytes
    session: int
    seq: int
    index: int
    result: bytes

    def to_body(self) -> bytes:
        """The signed body bytes."""
        return pack(self.to_wire())


@attrs.frozen
class SignedReply:
    """A REPLY as received: the reply, its signer and the signature (unverified)."""

    member: int
    reply: Reply
    body: bytes
    signature: bytes

    def to_frame(self) -> bytes:
        """The REPLY frame."""
        return pack((WIRE_VERSION, _REPLY_CODE, self.member, self.body, self.signature))

    @classmethod
    def create(cls, member: int, reply: Reply,
               sign: Callable[[str, bytes], bytes]) -> SignedReply:
        """``reply`` signed by ``member`` with ``sign(kind, body)``."""
        body = reply.to_body()
        return cls(member, reply, body, sign(REPLY_KIND, body))


def decode_client_frame(frame: bytes, *,
                        frame_bytes_max: int) -> Receipt | Notice | SignedReply:
    """A RECEIPT, NOTICE or REPLY frame a member sent (a reply's signature unchecked);
    raises :class:`WireError` otherwise."""
    fields = array(unpack(frame, frame_bytes_max=frame_bytes_max, items_max=65_536), "frame")
    if len(fields) < 2 or type(fields[0]) is not int or fields[0] != WIRE_VERSION:
        raise WireError("unsupported or malformed client frame")
    code, rest = fields[1], fields[2:]
    if code == _RECEIPT_CODE:
        return Receipt.from_wire(rest)
    if code == _NOTICE_CODE:
        session, number, reason = array(rest, "notice", 3)
        text = BYTES.decode(reason, "notice reason")
        if len(text) > _REASON_BYTES_MAX:
            raise WireError("notice reason too long")
        return Notice(INT.decode(session, "notice session"), INT.decode(number, "notice seq"),
                      text.decode(errors="replace"))
    if code == _REPLY_CODE:
        member, body, signature = array(rest, "reply", 3)
        body = BYTES.decode(body, "reply body")
        reply = Reply.from_wire(unpack(body, frame_bytes_max=frame_bytes_max, items_max=8))
        return SignedReply(INT.decode(member, "reply member"), reply, body,
                           SIGNATURE.decode(signature, "reply signature"))
    raise WireError(f"unknown client frame code {code!r}")


def receipt_problem(receipt: Receipt, *, quorums: Quorums,
                    verify_member: Callable[[int, str, bytes, bytes], bool],
                    verify_client: Callable[[bytes, str, bytes, bytes], bool],
                    frame_bytes_max: int) -> str | None:
    """None if ``receipt`` proves its request committed, else what is wrong with it.

    ``verify_member`` checks a member's signature (:meth:`btob.crypto.Verifier.verify`),
    ``verify_client`` a client's (:meth:`btob.crypto.Verifier.verify_key`).
    """
    try:
        request, body, signature = decode_request(receipt.request,
                                                  frame_bytes_max=frame_bytes_max)
    except WireError as exc:
        return f"the request is malformed: {exc}"
    if not verify_client(request.client, REQUEST_KIND, body, signature):
        return "the request's signature does not verify under its client key"
    if not 0 <= receipt.batch < len(receipt.refs):
        return f"batch {receipt.batch} is not one of the slot's {len(receipt.refs)} batches"
    if not receipt.payloads <= receipt.entry < receipt.entries:
        return "the request's place is not among the batch's requests"
    root = root_from_path(receipt.entries, receipt.entry, receipt.request, receipt.path)
    if root is None:
        return "the audit path has the wrong length for the request's place"
    digest = batch_digest(receipt.first_counter, receipt.payloads, root)
    if digest != receipt.refs[receipt.batch].digest:
        return "the audit path does not lead to the batch digest the slot names"
    body = OrderReady(receipt.view, receipt.slot,
                      slot_digest(receipt.slot, receipt.refs)).to_body()
    voters: set[int] = set()
    for vote in receipt.certificate:
        if vote.member in voters or not 0 <= vote.member < quorums.n:
            return f"the certificate repeats or names an unknown member ({vote.member})"
        if not verify_member(vote.member, OrderReady.KIND, body, vote.signature):
            return f"member {vote.member}'s commit vote does not verify"
        voters.add(vote.member)
    if len(voters) < quorums.quorum:
        return f"the certificate has {len(voters)} votes; a commit needs {quorums.quorum}"
    return None
