"""Key files: formats, modes, and one-line errors that name the file."""

from __future__ import annotations

import base64
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from btob.crypto import (
    CryptoError,
    KeyFileError,
    SigningKey,
    load_public_key,
    load_signing_key,
    save_public_key,
    save_signing_key,
)

FORMATS = ["raw", "pem", "openssh"]
SEED = bytes(range(32))


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(SEED)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def write_private(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def assert_names_file(error: pytest.ExceptionInfo[KeyFileError], path: Path) -> None:
    message = str(error.value)
    assert str(path) in message
    assert "\n" not in message


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path: Path, key: SigningKey, fmt: str) -> None:
    path = tmp_path / f"node.{fmt}"
    save_signing_key(key, path, fmt=fmt)
    assert load_signing_key(path) == key
    assert load_signing_key(str(path)).seed == SEED


def test_formats_on_disk(tmp_path: Path, key: SigningKey) -> None:
    for fmt in FORMATS:
        save_signing_key(key, tmp_path / fmt, fmt=fmt)
    assert (tmp_path / "raw").read_bytes() == SEED.hex().encode() + b"\n"
    assert (tmp_path / "pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    openssh = (tmp_path / "openssh").read_bytes()
    assert openssh.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    # Interoperable: the cryptography package reads both back as the same Ed25519 key.
    pem_key = serialization.load_pem_private_key((tmp_path / "pem").read_bytes(), None)
    ssh_key = serialization.load_ssh_private_key(openssh, None)
    for loaded in (pem_key, ssh_key):
        assert isinstance(loaded, ed25519.Ed25519PrivateKey)
        assert loaded.private_bytes_raw() == SEED


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.usefixtures("permissive_umask")
def test_created_mode_is_0600_despite_umask(tmp_path: Path, key: SigningKey, fmt: str) -> None:
    path = tmp_path / "node.key"
    save_signing_key(key, path, fmt=fmt)
    assert mode_of(path) == 0o600
    save_signing_key(key, path, fmt=fmt, overwrite=True)
    assert mode_of(path) == 0o600
    assert load_signing_key(path) == key


def test_umask_restored_by_fixture() -> None:
    current = os.umask(0o022)
    os.umask(current)
    assert current != 0o000


def test_refuses_to_overwrite(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "node.key"
    save_signing_key(key, path)
    other = SigningKey.generate()
    with pytest.raises(KeyFileError, match="already exists") as error:
        save_signing_key(other, path)
    assert_names_file(error, path)
    assert load_signing_key(path) == key
    save_signing_key(other, path, overwrite=True)
    assert load_signing_key(path) == other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]  # no temp files left


def test_save_errors(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(CryptoError, match="raw, pem, openssh"):
        save_signing_key(key, tmp_path / "k", fmt="der")
    assert not (tmp_path / "k").exists()
    with pytest.raises(CryptoError):
        save_signing_key(SEED, tmp_path / "k")  # type: ignore[arg-type]
    missing_dir = tmp_path / "no" / "such" / "dir" / "k"
    with pytest.raises(KeyFileError) as error:
        save_signing_key(key, missing_dir)
    assert_names_file(error, missing_dir)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o601, 0o666])
def test_group_or_world_accessible_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_private(tmp_path / "node-0.key", SEED.hex().encode() + b"\n", mode)
    with pytest.raises(KeyFileError) as error:
        load_signing_key(path)
    assert_names_file(error, path)
    assert f"(mode {mode:04o}); run chmod 600 {path}" in str(error.value)


def test_mode_is_checked_before_content(tmp_path: Path) -> None:
    path = write_private(tmp_path / "junk.key", b"not a key at all", 0o644)
    with pytest.raises(KeyFileError, match="readable by group or others"):
        load_signing_key(path)


def test_owner_only_modes_are_accepted(tmp_path: Path) -> None:
    for mode in (0o600, 0o400, 0o700):
        path = write_private(tmp_path / f"k{mode:o}", SEED.hex().encode(), mode)
        assert load_signing_key(path).seed == SEED


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="does not exist") as error:
        load_signing_key(path)
    assert_names_file(error, path)
    with pytest.raises(KeyFileError, match="does not exist") as error:
        load_public_key(path)
    assert_names_file(error, path)


def test_directory_is_not_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as error:
        load_signing_key(tmp_path)
    assert_names_file(error, tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write_private(tmp_path / "locked.key", SEED.hex().encode(), 0o000)
    with pytest.raises(KeyFileError, match="cannot read") as error:
        load_signing_key(path)
    assert_names_file(error, path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"hello world\n",
        SEED.hex().encode()[:-1] + b"\n",  # 63 hex chars
        SEED.hex().encode() + b"00\n",  # 66 hex chars
        b"zz" * 32,
        SEED.hex().encode()[:32],  # 32 hex chars: a truncated seed, not 32 raw bytes
        bytes(31),
        bytes(33),
        b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnonsense\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\n",
        b"x" * 100_000,
    ],
    ids=lambda c: repr(c[:20]),
)
def test_malformed_content(tmp_path: Path, content: bytes) -> None:
    path = write_private(tmp_path / "bad.key", content)
    with pytest.raises(KeyFileError) as error:
        load_signing_key(path)
    assert_names_file(error, path)


def test_raw_variants(tmp_path: Path) -> None:
    variants = [
        SEED,  # 32 binary bytes
        SEED.hex().encode(),
        SEED.hex().upper().encode() + b"\r\n",
        b"  \n" + SEED.hex().encode() + b"\n\n",
    ]
    for i, content in enumerate(variants):
        path = write_private(tmp_path / f"k{i}", content)
        assert load_signing_key(path).seed == SEED


def _other_algorithm_pems() -> list[tuple[str, bytes]]:
    pkcs8 = serialization.PrivateFormat.PKCS8
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    pem = serialization.Encoding.PEM
    none = serialization.NoEncryption()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed448_key = ed448.Ed448PrivateKey.generate()
    return [
        ("rsa-pkcs8", rsa_key.private_bytes(pem, pkcs8, none)),
        ("rsa-traditional", rsa_key.private_bytes(pem, traditional, none)),
        ("ec-pkcs8", ec_key.private_bytes(pem, pkcs8, none)),
        ("ed448-pkcs8", ed448_key.private_bytes(pem, pkcs8, none)),
        ("ec-openssh", ec_key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, none)),
    ]


@pytest.mark.parametrize(("name", "content"), _other_algorithm_pems(), ids=lambda x: str(x)[:16])
def test_other_algorithms_are_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = write_private(tmp_path / f"{name}.key", content)
    with pytest.raises(KeyFileError, match=r"non-Ed25519|not Ed25519") as error:
        load_signing_key(path)
    assert_names_file(error, path)


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _encrypted_openssh_key() -> bytes:
    """An OpenSSH key in the layout ``ssh-keygen -N pw`` writes (aes256-ctr, bcrypt KDF).

    Built by hand because encrypting with ``cryptography`` needs the optional bcrypt module;
    the private section is random bytes, as the loader must refuse before decrypting.
    """
    public_blob = _ssh_string(b"ssh-ed25519") + _ssh_string(SigningKey.from_seed(SEED).public_key())
    blob = b"".join(
        [
            b"openssh-key-v1\x00",
            _ssh_string(b"aes256-ctr"),
            _ssh_string(b"bcrypt"),
            _ssh_string(_ssh_string(os.urandom(16)) + struct.pack(">I", 16)),
            struct.pack(">I", 1),
            _ssh_string(public_blob),
            _ssh_string(os.urandom(144)),
        ]
    )
    body = base64.b64encode(blob)
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return b"\n".join(
        [b"-----BEGIN OPENSSH PRIVATE KEY-----", *lines, b"-----END OPENSSH PRIVATE KEY-----", b""]
    )


def _encrypted_keys() -> list[tuple[str, bytes]]:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(SEED)
    pem = serialization.Encoding.PEM
    encryption = serialization.BestAvailableEncryption(b"secret")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return [
        ("pkcs8", private.private_bytes(pem, serialization.PrivateFormat.PKCS8, encryption)),
        (
            "rsa-traditional",
            rsa_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, encryption),
        ),
        ("openssh", _encrypted_openssh_key()),
    ]


@pytest.mark.parametrize(("name", "content"), _encrypted_keys(), ids=lambda x: str(x)[:16])
def test_encrypted_keys_are_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = write_private(tmp_path / f"{name}.key", content)
    with pytest.raises(KeyFileError, match="encrypted") as error:
        load_signing_key(path)
    assert_names_file(error, path)


def test_public_key_round_trip(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "node.pub"
    save_public_key(key.public_key(), path)
    assert path.read_text() == key.public_key().hex() + "\n"
    assert load_public_key(path) == key.public_key()
    path.chmod(0o644)  # no mode restriction on public keys
    assert load_public_key(path) == key.public_key()
    with pytest.raises(KeyFileError, match="already exists") as error:
        save_public_key(key.public_key(), path)
    assert_names_file(error, path)
    other = SigningKey.generate().public_key()
    save_public_key(other, path, overwrite=True)
    assert load_public_key(path) == other


def test_public_key_errors(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        save_public_key(bytes(31), tmp_path / "short.pub")
    for i, content in enumerate([b"", b"abc\n", b"zz" * 32, bytes(32), b"00" * 33]):
        path = tmp_path / f"bad{i}.pub"
        path.write_bytes(content)
        with pytest.raises(KeyFileError) as error:
            load_public_key(path)
        assert_names_file(error, path)
