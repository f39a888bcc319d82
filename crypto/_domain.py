"""Domain separation: every signed message is prefixed with a self-delimiting tag.

The tag binds a signature to the protocol version, the cluster and the message kind, so a
signature made for one purpose can never be replayed for another. Layout::

    b"btob" | version (1 byte) | len(cluster_id) (2 bytes, big-endian) | cluster_id
           | len(kind) (1 byte) | kind (ascii)

Because every variable part is length-prefixed, ``tag + body`` parses uniquely.
"""

from __future__ import annotations

from btob.crypto._errors import CryptoError

#: The version byte in every domain tag; bump it when the signed encodings change.
PROTOCOL_VERSION: int = 1

CLUSTER_ID_BYTES_MAX = 64
KIND_CHARS_MAX = 64

_MAGIC = b"btob"


def check_cluster_id(cluster_id: bytes) -> bytes:
    """``cluster_id`` as bytes; `CryptoError` unless it is bytes of at most 64 bytes."""
    if isinstance(cluster_id, bytearray | memoryview):
        cluster_id = bytes(cluster_id)
    if not isinstance(cluster_id, bytes):
        raise CryptoError(f"cluster_id must be bytes, not {type(cluster_id).__name__}")
    if len(cluster_id) > CLUSTER_ID_BYTES_MAX:
        raise CryptoError(
            f"cluster_id must be at most {CLUSTER_ID_BYTES_MAX} bytes, got {len(cluster_id)}"
        )
    return cluster_id


def domain_tag(cluster_id: bytes, kind: str) -> bytes:
    """The unambiguous signing prefix for messages of ``kind`` in cluster ``cluster_id``.

    ``b"btob" + version byte + 2-byte big-endian len + cluster_id + 1-byte len + kind``.
    `CryptoError` if ``cluster_id`` is longer than 64 bytes or ``kind`` is not an ascii str of
    at most 64 characters.
    """
    cluster_id = check_cluster_id(cluster_id)
    if not isinstance(kind, str):
        raise CryptoError(f"kind must be a str, not {type(kind).__name__}")
    if len(kind) > KIND_CHARS_MAX:
        raise CryptoError(f"kind must be at most {KIND_CHARS_MAX} characters, got {len(kind)}")
    try:
        kind_bytes = kind.encode("ascii")
    except UnicodeEncodeError:
        raise CryptoError(f"kind must be ascii: {kind!r}") from None
    return b"".join(
        (
            _MAGIC,
            bytes((PROTOCOL_VERSION,)),
            len(cluster_id).to_bytes(2, "big"),
            cluster_id,
            bytes((len(kind_bytes),)),
            kind_bytes,
        )
    )
