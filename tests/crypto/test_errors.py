"""The errors of the cryptography layer sit below btob's root error and say what failed."""

from __future__ import annotations

from pathlib import Path

import pytest

import btob
from btob.crypto import BtobError, CryptoError, KeyFileError, KeyRegistry, load_signing_key


def test_the_crypto_errors_are_btob_errors() -> None:
    assert BtobError is btob.BtobError
    assert issubclass(CryptoError, btob.BtobError)
    assert issubclass(KeyFileError, CryptoError)
    assert not issubclass(CryptoError, btob.ConfigError)
    assert not issubclass(btob.ConfigError, CryptoError)


def test_a_missing_key_file_is_a_key_file_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node-0.key"
    with pytest.raises(KeyFileError, match=r"node-0\.key") as exc:
        load_signing_key(path)
    assert isinstance(exc.value, btob.BtobError)  # an application catches the root


def test_a_bad_key_is_a_crypto_error_but_no_key_file_error() -> None:
    with pytest.raises(CryptoError) as exc:
        KeyRegistry(())
    assert not isinstance(exc.value, KeyFileError)
