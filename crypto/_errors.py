"""The exception root shared by every btob package.

It lives in the lowest layer (``crypto``) so that ``crypto`` never imports ``btob``;
``btob.BtobError`` is the same class.
"""

from __future__ import annotations


class BtobError(Exception):
    """Root of every error btob raises on purpose; subclasses say who is at fault."""


class CryptoError(BtobError):
    """A key, signature or backend could not be used as asked."""


class KeyFileError(CryptoError):
    """A key file is missing, malformed or readable by group or world.

    The message always names the file.
    """


class ConfigError(BtobError):
    """A setting, fault spec, network spec or cluster description is invalid (the user's fault).

    Defined here, in the lowest layer, so that ``faults`` can raise it without importing ``btob``.
    """
