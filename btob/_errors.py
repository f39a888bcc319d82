"""btob's exception hierarchy: one root, subclasses that say who is at fault.

This module imports nothing of btob, so every layer (``btob.crypto`` included) can raise these.
"""

from __future__ import annotations

__all__ = [
    "BtobError", "ConfigError", "DeliveryNotRetained", "LogFormatError", "MemberCrashed",
    "StateDiverged", "WireError",
]


class BtobError(Exception):
    """Root of every error btob raises on purpose; subclasses say who is at fault."""


class ConfigError(BtobError):
    """A setting, fault spec, network spec, cluster description, data directory or address
    cannot be used as given (the user's or operator's fault); the message names it."""


class WireError(BtobError):
    """Bytes from a peer are not a well-formed, bounded btob frame (their fault, not ours)."""


class LogFormatError(BtobError):
    """A log directory is missing files or holds malformed lines; the message names the file."""


class DeliveryNotRetained(BtobError):
    """A delivery older than a node keeps was asked for; ``oldest`` is the oldest index it
    still holds (``Settings.deliveries_retained_max`` and ``_bytes_max`` bound them, and after
    a restart or a state transfer nothing below the snapshot is held). What lies below is in
    the snapshot: an application that must start there runs as a :class:`~btob.StateMachine`
    (``open_node(app=...)``), which is restored from the snapshot instead."""

    def __init__(self, index: int, oldest: int) -> None:
        super().__init__(f"delivery {index} is no longer retained (the oldest kept is {oldest}; "
                         f"what lies below it is in the snapshot, which restores an app)")
        self.index = index
        self.oldest = oldest

    def __reduce__(self) -> tuple[type[DeliveryNotRetained], tuple[int, int], dict[str, object]]:
        # The arguments are not the message: pickle and copy must call __init__ with them.
        return type(self), (self.index, self.oldest), self.__dict__


class MemberCrashed(BtobError):
    """The member crashed (an injected ``crash`` fault): it takes no more payloads."""


class StateDiverged(BtobError):
    """This member's state at a stable checkpoint is not the one a quorum certified.

    The log below the checkpoint is the same everywhere (that is what the protocol
    guarantees), so the application state built from it differs: the application is not
    deterministic, or this member's data directory was altered. The member stops rather than
    serve or sign a state nobody else has.
    """
