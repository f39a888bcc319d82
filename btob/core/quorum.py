"""All quorum arithmetic of btob, in one place.

Theory of operation: with n members of which at most f are Byzantine (n >= 3f+1), a quorum
q = ceil((n+f+1)/2) has two properties every protocol rule leans on:

* intersection: any two quorums share at least f+1 members, so at least one honest member,
  which never votes for two values; hence two conflicting values can never both gather a quorum;
* availability: q <= n-f, so the correct members alone can always form a quorum.

Bracha's reliable broadcast adds two thresholds: f+1 READYs contain at least one honest READY
(safe to amplify), and 2f+1 READYs contain f+1 honest ones (enough to guarantee totality).
"""

from __future__ import annotations

import attrs

from btob._errors import ConfigError

__all__ = ["Quorums", "default_faults"]


def default_faults(n: int) -> int:
    """The largest f that n members tolerate: ``(n - 1) // 3``."""
    if n < 1:
        raise ConfigError(f"a cluster needs at least 1 member, got n={n}")
    return (n - 1) // 3


@attrs.frozen
class Quorums:
    """Thresholds for a cluster of ``n`` members tolerating ``f`` Byzantine ones.

    Build with :meth:`for_cluster`, which validates ``n >= 3f + 1``.
    """

    n: int
    f: int
    quorum: int
    """q = ceil((n+f+1)/2): ECHO quorum, prepared and commit certificates, checkpoints."""
    one_honest: int
    """f+1: a set this large holds at least one honest member (READY amplification)."""
    deliver: int
    """2f+1: READYs needed for Bracha delivery."""

    @classmethod
    def for_cluster(cls, n: int, f: int | None = None) -> Quorums:
        """Thresholds for ``n`` members and ``f`` faults (default: the largest tolerable f).

        Raises :class:`ConfigError` unless ``n >= 1``, ``f >= 0`` and ``n >= 3f + 1``.
        """
        if n < 1:
            raise ConfigError(f"a cluster needs at least 1 member, got n={n}")
        if f is None:
            f = default_faults(n)
        if f < 0:
            raise ConfigError(f"f must be >= 0, got f={f}")
        if n < 3 * f + 1:
            raise ConfigError(
                f"n={n} members tolerate at most f={default_faults(n)} faults, got f={f}"
            )
        quorum = (n + f + 2) // 2  # ceil((n+f+1)/2) in integers
        return cls(n=n, f=f, quorum=quorum, one_honest=f + 1, deliver=2 * f + 1)
