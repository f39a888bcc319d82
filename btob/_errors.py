"""btob's exception hierarchy: one root, subclasses that say who is at fault."""

from __future__ import annotations

from crypto._errors import BtobError, ConfigError

__all__ = ["BtobError", "ConfigError", "LogFormatError", "WireError"]


class WireError(BtobError):
    """Bytes from a peer are not a well-formed, bounded btob frame (their fault, not ours)."""


class LogFormatError(BtobError):
    """A log directory is missing files or holds malformed lines; the message names the file."""
