"""Bounded msgpack and the field codecs every wire type is described with.

A codec turns one field into its msgpack-ready form and back, checking type and range on the
way in: untrusted bytes meet nothing else. Wire types declare their fields as a table of
codecs (:func:`wired`), so the encoder, the decoder and the checks are written once, here,
for every message kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import attrs
import msgpack

from btob._errors import WireError

__all__ = [
    "BYTES", "DIGEST", "DIGEST_BYTES", "INT", "INT_MAX", "SIGNATURE", "SIGNATURE_BYTES",
    "Codec", "Wired", "optional", "pack", "pair", "record", "seq", "unpack", "wired",
]

DIGEST_BYTES = 32
SIGNATURE_BYTES = 64
INT_MAX = 2**63 - 1

T = TypeVar("T")
U = TypeVar("U")
W = TypeVar("W", bound="Wired")


def unpack(data: bytes, *, frame_bytes_max: int, items_max: int) -> Any:
    """Decode msgpack without trusting it: bounded sizes, no maps, strings or extensions,
    nesting bounded by msgpack's own stack limit. Raises :class:`WireError` only."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"frame must be bytes, got {type(data).__name__}")
    if len(data) > frame_bytes_max:
        raise WireError(f"frame of {len(data)} bytes exceeds {frame_bytes_max}")
    try:
        return msgpack.unpackb(
            data, use_list=False, raw=True, strict_map_key=True,
            max_bin_len=frame_bytes_max, max_str_len=0, max_array_len=items_max,
            max_map_len=0, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises a zoo of types; all mean "malformed"
        raise WireError(f"malformed msgpack: {type(exc).__name__}") from None


def pack(obj: object) -> bytes:
    """The canonical msgpack encoding (binary type for bytes)."""
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def array(value: object, what: str, length: int | None = None) -> tuple[Any, ...]:
    """``value`` as a decoded msgpack array, of ``length`` items if given."""
    if type(value) is not tuple:
        raise WireError(f"{what}: expected an array")
    if length is not None and len(value) != length:
        raise WireError(f"{what}: expected {length} items, got {len(value)}")
    return value


class Codec(Protocol[T]):
    """How one field travels: ``encode`` to a msgpack-ready value, ``decode`` checked back."""

    identity: bool
    """True if ``encode`` returns its argument unchanged (so sequences of it need no copy)."""

    def encode(self, value: T) -> object:
        """The msgpack-ready form of ``value``."""

    def decode(self, value: object, what: str) -> T:
        """``value`` checked and converted; raises :class:`WireError` naming ``what``."""


class _Int:
    identity = True

    def encode(self, value: int) -> object:
        return value

    def decode(self, value: object, what: str) -> int:
        if type(value) is not int or not 0 <= value <= INT_MAX:
            raise WireError(f"{what}: expected a non-negative integer")
        return value


class _Bytes:
    identity = True

    def __init__(self, size: int | None = None) -> None:
        self.size = size

    def encode(self, value: bytes) -> object:
        return value

    def decode(self, value: object, what: str) -> bytes:
        if type(value) is not bytes:
            raise WireError(f"{what}: expected bytes")
        if self.size is not None and len(value) != self.size:
            raise WireError(f"{what}: expected {self.size} bytes, got {len(value)}")
        return value


class _Seq(Generic[T]):
    def __init__(self, item: Codec[T]) -> None:
        self.item = item
        self.identity = item.identity

    def encode(self, value: tuple[T, ...]) -> object:
        if self.identity:
            return value
        if isinstance(self.item, _Record):  # the common case, without a call per item
            return tuple([v.to_wire() for v in value])  # type: ignore[attr-defined]
        encode = self.item.encode
        return tuple([encode(v) for v in value])

    def decode(self, value: object, what: str) -> tuple[T, ...]:
        if isinstance(self.item, _Record):
            parse = self.item.cls.from_wire
            return tuple([parse(v) for v in array(value, what)])
        decode = self.item.decode
        return tuple([decode(v, what) for v in array(value, what)])


class _Optional(Generic[T]):
    """``None`` travels as an empty array (a record is never one)."""

    identity = False

    def __init__(self, inner: Codec[T]) -> None:
        self.inner = inner

    def encode(self, value: T | None) -> object:
        return () if value is None else self.inner.encode(value)

    def decode(self, value: object, what: str) -> T | None:
        return None if value == () else self.inner.decode(value, what)


class _Pair(Generic[T, U]):
    identity = False

    def __init__(self, first: Codec[T], second: Codec[U]) -> None:
        self.first = first
        self.second = second

    def encode(self, value: tuple[T, U]) -> object:
        return (self.first.encode(value[0]), self.second.encode(value[1]))

    def decode(self, value: object, what: str) -> tuple[T, U]:
        a, b = array(value, what, 2)
        return (self.first.decode(a, what), self.second.decode(b, what))


class _Record(Generic[W]):
    identity = False

    def __init__(self, cls: type[W]) -> None:
        self.cls = cls

    def encode(self, value: W) -> object:
        return value.to_wire()

    def decode(self, value: object, what: str) -> W:
        return self.cls.from_wire(value)


INT: Codec[int] = _Int()
BYTES: Codec[bytes] = _Bytes()
DIGEST: Codec[bytes] = _Bytes(DIGEST_BYTES)
SIGNATURE: Codec[bytes] = _Bytes(SIGNATURE_BYTES)


def seq(item: Codec[T]) -> Codec[tuple[T, ...]]:
    """An array of ``item`` values (any length up to the decoder's item bound)."""
    return _Seq(item)


def optional(inner: Codec[T]) -> Codec[T | None]:
    """``inner`` or None (sent as an empty array)."""
    return _Optional(inner)


def pair(first: Codec[T], second: Codec[U]) -> Codec[tuple[T, U]]:
    """A two-item array."""
    return _Pair(first, second)


def record(cls: type[W]) -> Codec[W]:
    """A nested wire type, as its own field array."""
    return _Record(cls)


class Wired:
    """Base of every wire type: fields travel as a msgpack array, in declaration order, each
    through the codec its class's ``WIRE`` table gives (see :func:`wired`)."""

    WIRE: ClassVar[Sequence[Codec[Any]]]

    def to_wire(self) -> tuple[object, ...]:
        """The msgpack-ready form."""
        raise NotImplementedError  # generated by @wired

    @classmethod
    def from_wire(cls: type[W], value: object) -> W:
        """Parse the msgpack form; raises :class:`WireError`."""
        raise NotImplementedError  # generated by @wired


def wired(name: str) -> Callable[[type[W]], type[W]]:
    """Class decorator, applied after ``attrs.frozen``: pair the attrs fields with the
    class's ``WIRE`` codecs (one per field, in order) and give the class an encoder and a
    decoder specialised to that table, as attrs generates its methods: one tuple built or
    unpacked per value, no per-field loop, identity codecs skipped, error texts made once."""

    def decorate(cls: type[W]) -> type[W]:
        names = [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
        codecs = list(cls.WIRE)
        assert len(names) == len(codecs), f"{cls.__name__}: one codec per field"
        scope: dict[str, Any] = {"array": array, "cls": cls, "__name__": cls.__module__}
        encoded, decoded = [], []
        for i, (field, codec) in enumerate(zip(names, codecs, strict=True)):
            scope[f"e{i}"], scope[f"d{i}"] = codec.encode, codec.decode
            scope[f"w{i}"] = f"{name} {field}"
            encoded.append(f"self.{field}" if codec.identity else f"e{i}(self.{field})")
            decoded.append(f"d{i}(v[{i}], w{i})")
        source = (
            f"def to_wire(self):\n    return ({', '.join(encoded)},)\n"
            f"def from_wire(value):\n"
            f"    v = array(value, {name!r}, {len(names)})\n"
            f"    return cls({', '.join(decoded)})\n"
        )
        exec(compile(source, f"<wire codec of {cls.__name__}>", "exec"), scope)
        scope["to_wire"].__doc__ = Wired.to_wire.__doc__
        cls.to_wire = scope["to_wire"]  # type: ignore[method-assign]
        scope["from_wire"].__doc__ = "Parse the msgpack form; raises :class:`WireError`."
        cls.from_wire = staticmethod(scope["from_wire"])  # type: ignore[method-assign]
        return cls

    return decorate
