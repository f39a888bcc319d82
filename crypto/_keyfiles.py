"""Reading and writing Ed25519 key files.

Private keys are written with mode 0600 (whatever the umask) in one of three formats: ``raw``
(the seed as 64 lowercase hex characters and a newline), ``pem`` (unencrypted PKCS#8) or
``openssh``. `load_signing_key` detects the format, and refuses a file that group or others
may access before reading a byte of it. Every failure is a one-line `KeyFileError` naming the
file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
import struct
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from btob.crypto._backends import PUBLIC_KEY_BYTES, SEED_BYTES
from btob.crypto._errors import CryptoError, KeyFileError
from btob.crypto._keys import SigningKey

#: The ``fmt`` values `save_signing_key` accepts.
KEY_FILE_FORMATS: tuple[str, ...] = ("raw", "pem", "openssh")

# Key files are tiny; anything bigger than this is not one of ours.
_KEY_FILE_BYTES_MAX = 64 * 1024

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_OPENSSH_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_FOOTER = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def _show(path: str | os.PathLike[str]) -> str:
    """The path for an error message, kept on one line."""
    text = os.fsdecode(os.fspath(path))
    return repr(text) if any(c in text for c in "\r\n") else text


def _os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


# --- writing -------------------------------------------------------------------------------


def _write_new(path: str, data: bytes, mode: int, *, force_mode: bool) -> None:
    """Create ``path`` (which must not exist) holding ``data``; fsync it."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode)
    try:
        if force_mode:
            os.fchmod(fd, mode)  # the umask may have cleared bits; make the mode exact
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def _fsync_directory(directory: str) -> None:
    """Best effort: make a rename or create in ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int,
    force_mode: bool,
    overwrite: bool,
    what: str,
) -> None:
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    try:
        if not overwrite:
            _write_new(target, data, mode, force_mode=force_mode)
        else:
            temporary = os.path.join(
                directory, f".{os.path.basename(target)}.{secrets.token_hex(8)}.tmp"
            )
            _write_new(temporary, data, mode, force_mode=force_mode)
            try:
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
    except FileExistsError:
        raise KeyFileError(
            f"{what} {_show(path)} already exists; refusing to overwrite it"
        ) from None
    except OSError as error:
        raise KeyFileError(f"cannot write {what} {_show(path)}: {_os_reason(error)}") from None
    _fsync_directory(directory)


def _encode_signing_key(key: SigningKey, fmt: str) -> bytes:
    if fmt == "raw":
        return (key.seed.hex() + "\n").encode("ascii")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(key.seed)
    if fmt == "pem":
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def save_signing_key(
    key: SigningKey,
    path: str | os.PathLike[str],
    *,
    fmt: str = "raw",
    overwrite: bool = False,
) -> None:
    """Write ``key`` to ``path`` with mode exactly 0600, in format ``fmt``.

    ``fmt``: "raw" (64 lowercase hex characters and a newline), "pem" (unencrypted PKCS#8) or
    "openssh" (unencrypted OpenSSH). The file is created exclusively (``O_EXCL``); with
    ``overwrite=True`` it is written under a temporary name in the same directory and renamed
    over ``path`` atomically. Raises `KeyFileError` naming the file if it exists and
    ``overwrite`` is False, or on any OS error; `CryptoError` for an unknown ``fmt``.
    """
    if not isinstance(key, SigningKey):
        raise CryptoError(f"key must be a SigningKey, not {type(key).__name__}")
    if fmt not in KEY_FILE_FORMATS:
        raise CryptoError(
            f"unknown key file format {fmt!r}; valid choices: {', '.join(KEY_FILE_FORMATS)}"
        )
    _write_file(
        path,
        _encode_signing_key(key, fmt),
        mode=0o600,
        force_mode=True,
        overwrite=overwrite,
        what="key file",
    )


def save_public_key(
    public_key: bytes, path: str | os.PathLike[str], *, overwrite: bool = False
) -> None:
    """Write a 32-byte public key to ``path`` as 64 lowercase hex characters and a newline.

    Same creation rules as `save_signing_key` (exclusive unless ``overwrite``; atomic
    replacement), but with an ordinary 0644-minus-umask mode. `CryptoError` if ``public_key``
    is not 32 bytes; `KeyFileError` naming the file for an existing file or an OS error.
    """
    if not isinstance(public_key, bytes | bytearray | memoryview):
        raise CryptoError(f"public_key must be bytes, not {type(public_key).__name__}")
    public_key = bytes(public_key)
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise CryptoError(
            f"a public key must be exactly {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}"
        )
    _write_file(
        path,
        (public_key.hex() + "\n").encode("ascii"),
        mode=0o644,
        force_mode=False,
        overwrite=overwrite,
        what="public key file",
    )


# --- reading -------------------------------------------------------------------------------


def _read_file(path: str | os.PathLike[str], what: str, *, private: bool) -> bytes:
    """The content of ``path``; for a private key, refuse group/world access before reading."""
    shown = _show(path)
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyFileError(f"{what} {shown} does not exist") from None
    except OSError as error:
        raise KeyFileError(f"cannot read {what} {shown}: {_os_reason(error)}") from None
    try:
        try:
            status = os.fstat(fd)
        except OSError as error:
            raise KeyFileError(f"cannot read {what} {shown}: {_os_reason(error)}") from None
        if not stat.S_ISREG(status.st_mode):
            raise KeyFileError(f"{what} {shown} is not a regular file")
        if private and status.st_mode & 0o077:
            raise KeyFileError(
                f"{what} {shown} is readable by group or others "
                f"(mode {stat.S_IMODE(status.st_mode):04o}); run chmod 600 {shown}"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= _KEY_FILE_BYTES_MAX:
                chunk = os.read(fd, _KEY_FILE_BYTES_MAX + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as error:
            raise KeyFileError(f"cannot read {what} {shown}: {_os_reason(error)}") from None
    finally:
        os.close(fd)
    if size > _KEY_FILE_BYTES_MAX:
        raise KeyFileError(f"{what} {shown} is too large to be a key file")
    return b"".join(chunks)


def _algorithm_name(key: object) -> str:
    names: tuple[tuple[type, str], ...] = (
        (rsa.RSAPrivateKey, "RSA"),
        (ec.EllipticCurvePrivateKey, "elliptic-curve (ECDSA)"),
        (dsa.DSAPrivateKey, "DSA"),
        (ed448.Ed448PrivateKey, "Ed448"),
        (x25519.X25519PrivateKey, "X25519"),
        (x448.X448PrivateKey, "X448"),
    )
    for cls, name in names:
        if isinstance(key, cls):
            return name
    return type(key).__name__


def _seed_from_private_key(key: object, shown: str) -> bytes:
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"key file {shown} holds a non-Ed25519 key ({_algorithm_name(key)})")
    return key.private_bytes_raw()


def _openssh_is_encrypted(data: bytes) -> bool:
    """True if an OpenSSH private key blob names a cipher other than "none"."""
    try:
        start = data.index(_OPENSSH_HEADER) + len(_OPENSSH_HEADER)
        end = data.index(_OPENSSH_FOOTER, start)
        blob = base64.b64decode(b"".join(data[start:end].split()), validate=True)
    except (ValueError, binascii.Error):
        return False
    if not blob.startswith(_OPENSSH_MAGIC) or len(blob) < len(_OPENSSH_MAGIC) + 4:
        return False
    (length,) = struct.unpack_from(">I", blob, len(_OPENSSH_MAGIC))
    offset = len(_OPENSSH_MAGIC) + 4
    return blob[offset : offset + length] != b"none"


def _load_openssh(data: bytes, shown: str) -> bytes:
    if _openssh_is_encrypted(data):
        raise KeyFileError(
            f"key file {shown} is encrypted; btob needs an unencrypted key "
            f"(ssh-keygen -p -N '' -f {shown})"
        )
    return _load_with(serialization.load_ssh_private_key, data, shown, "OpenSSH")


def _load_with(loader: Callable[..., Any], data: bytes, shown: str, what: str) -> bytes:
    """Run a `cryptography` private-key loader, turning its failures into KeyFileError."""
    try:
        key = loader(data, password=None)
    except TypeError:
        raise KeyFileError(
            f"key file {shown} is encrypted; btob needs an unencrypted key"
        ) from None
    except UnsupportedAlgorithm:
        raise KeyFileError(
            f"key file {shown} holds an unsupported key type (not Ed25519)"
        ) from None
    except ValueError:
        raise KeyFileError(f"key file {shown} is not a valid {what} private key") from None
    return _seed_from_private_key(key, shown)


def _pem_label(data: bytes) -> str | None:
    start = data.find(b"-----BEGIN ")
    if start < 0:
        return None
    end = data.find(b"-----", start + len(b"-----BEGIN "))
    if end < 0:
        return None
    return data[start + len(b"-----BEGIN ") : end].decode("ascii", "replace")


def _load_pem(data: bytes, label: str, shown: str) -> bytes:
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data:
        raise KeyFileError(f"key file {shown} is encrypted; btob needs an unencrypted key")
    if not label.endswith("PRIVATE KEY"):
        raise KeyFileError(
            f"key file {shown} holds a PEM {label!r} block, not an Ed25519 private key"
        )
    return _load_with(serialization.load_pem_private_key, data, shown, "PEM")


def _parse_signing_key(data: bytes, shown: str) -> bytes:
    """The 32-byte seed in a key file's content, or `KeyFileError`."""
    if len(data) == SEED_BYTES:
        if all(byte in _HEX_DIGITS for byte in data):
            # 32 hex digits is far likelier a truncated hex seed than 32 random bytes.
            raise KeyFileError(f"key file {shown} holds 32 hex characters; a hex seed needs 64")
        return data
    text = data.strip()
    if len(text) == 2 * SEED_BYTES and all(byte in _HEX_DIGITS for byte in text):
        return bytes.fromhex(text.decode("ascii"))
    if text.startswith(_OPENSSH_HEADER):
        return _load_openssh(data, shown)
    label = _pem_label(text) if text.startswith(b"-----BEGIN ") else None
    if label is not None:
        return _load_pem(data, label, shown)
    raise KeyFileError(
        f"key file {shown} is not an Ed25519 private key in a supported format "
        f"(64 hex characters, 32 raw bytes, PKCS#8 PEM or OpenSSH)"
    )


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a private key, detecting raw hex, raw 32 bytes, PKCS#8 PEM or OpenSSH.

    Only unencrypted Ed25519 keys are accepted. Raises a one-line `KeyFileError` naming the
    file if it is missing or unreadable, is accessible to group or others (checked before the
    content is read), is malformed or of an unsupported format, holds a non-Ed25519 key, or is
    encrypted.
    """
    shown = _show(path)
    data = _read_file(path, "key file", private=True)
    return SigningKey(_parse_signing_key(data, shown))


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """Read a public key file (64 hex characters, surrounding whitespace allowed).

    Returns the 32 key bytes. No mode restriction. Raises `KeyFileError` naming the file if it
    is missing, unreadable or malformed.
    """
    shown = _show(path)
    text = _read_file(path, "public key file", private=False).strip()
    if len(text) != 2 * PUBLIC_KEY_BYTES or not all(byte in _HEX_DIGITS for byte in text):
        raise KeyFileError(
            f"public key file {shown} does not hold a public key "
            f"(expected {2 * PUBLIC_KEY_BYTES} hex characters)"
        )
    return bytes.fromhex(text.decode("ascii"))
