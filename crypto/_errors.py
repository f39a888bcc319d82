"""The errors of the cryptography layer, below btob's root :class:`~btob.BtobError`."""

from __future__ import annotations

from btob._errors import BtobError, ConfigError

__all__ = ["BtobError", "ConfigError", "CryptoError", "KeyFileError"]


class CryptoError(BtobError):
    """A key, signature or backend could not be used as asked."""


class KeyFileError(CryptoError):
    """A key file is missing, malformed or readable by group or world.

    The message always names the file.
    """
