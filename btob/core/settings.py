"""Every tunable and every bound a peer can push against, in one settings object.

Two scopes. *Cluster-wide* fields (:data:`CLUSTER_SETTINGS`) must be equal at every member,
because members judge each other's messages by them (a batch one member sends within its
bounds must fit the others', a checkpoint boundary must be everybody's, delivery must be the
same function of the log everywhere): they live in ``cluster.toml`` and in the identity of
every data directory. The other fields are each member's own tuning (timeouts, pipelining,
retention of what it serves its application) and may differ between members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from btob._errors import ConfigError

__all__ = ["CLUSTER_SETTINGS", "LINEAR_VOTES_FROM_N", "VOTE_MODES", "Settings",
           "default_vote_mode", "settings_with"]

_CLUSTER = {"scope": "cluster"}
# A REQUEST frame's bytes besides its payload: key, session, seq, signature and msgpack
# headers take 120; the rest is slack so that no format detail decides what fits.
_REQUEST_ENVELOPE_BYTES = 256


def _integral(attribute: attrs.Attribute[Any]) -> bool:
    return attribute.type in (int, "int")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # ``not value > 0`` refuses NaN, which every comparison - hence every bound - lets through.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"setting {attribute.name} must be a positive number, got {value!r}")
    if _integral(attribute) and not isinstance(value, int):  # a count, not a measure
        raise ConfigError(f"setting {attribute.name} must be a positive integer, got {value!r}")


VOTE_MODES: tuple[str, ...] = ("all", "linear")
"""How ordering votes travel (``Settings.votes``)."""


LINEAR_VOTES_FROM_N = 7
"""Clusters of at least this many members are created with linear votes (``btob keygen``):
measured over TCP on 2 cores, linear votes with the signed echo gave 0.27 of the baseline's
flat-out throughput at n=7 and 0.15 at n=10, against 0.12 and 0.06 all-to-all with Bracha's
broadcast; at n=4 the two modes were level (0.33 against 0.36) and linear costs two message
delays, so smaller clusters keep all-to-all."""


def default_vote_mode(n: int) -> str:
    """The vote mode a new cluster of ``n`` members gets unless told otherwise."""
    return "linear" if n >= LINEAR_VOTES_FROM_N else "all"


def _vote_mode(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in VOTE_MODES:
        raise ConfigError(f"setting {attribute.name} must be one of {', '.join(VOTE_MODES)}, "
                          f"got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ConfigError(f"setting {attribute.name} must be zero or positive, got {value!r}")


@attrs.frozen(kw_only=True)
class Settings:
    """Protocol limits and timings shared by every member of a cluster.

    Every map, queue or buffer that a peer can make a member grow is bounded by one of these
    fields; a message that would exceed a bound is dropped and counted, never stored.
    """

    payload_bytes_max: int = attrs.field(default=64 * 1024, validator=_positive, metadata=_CLUSTER)
    """Largest payload accepted by :meth:`submit` and inside a batch."""
    batch_payloads_max: int = attrs.field(default=1024, validator=_positive, metadata=_CLUSTER)
    """Most payloads one batch (one BRB instance) may carry. Batches form only under load
    (or with ``batch_delay_s``), so a large bound costs a lone payload nothing; measured on
    2 cores, 4 members, 100-byte payloads flat out: 256 gave 33,000 payloads/s, 1024
    gave 59,000-70,000 (a batch costs ~56 frames cluster-wide whatever its size)."""
    batch_bytes_max: int = attrs.field(default=512 * 1024, validator=_positive, metadata=_CLUSTER)
    """Most payload bytes one batch may carry."""
    batch_delay_s: float = attrs.field(default=0.0, validator=_non_negative)
    """Longest a payload waits for company before its batch is cut; 0 cuts a batch as soon
    as fewer than ``own_batches_in_flight_max`` are in flight (batches then form under load
    only). A full batch never waits."""
    own_batches_in_flight_max: int = attrs.field(default=2, validator=_positive)
    """Own batches disseminated but not yet ordered; further payloads wait and batch up."""
    pending_payloads_max: int = attrs.field(default=100_000, validator=_positive)
    """Submitted payloads waiting for a batch; :meth:`submit` refuses more (backpressure)."""
    pending_requests_max: int = attrs.field(default=10_000, validator=_positive)
    """Client requests this member accepted and has not yet put in a batch; past it the
    member refuses requests (the client tries another member)."""
    client_window: int = attrs.field(default=64, validator=_positive, metadata=_CLUSTER)
    """Requests of one client session that may be committed ahead of its next undelivered
    one (held back for FIFO order); a client keeps at most this many in flight."""
    client_hold_slots: int = attrs.field(default=64, validator=_positive, metadata=_CLUSTER)
    """Slots a client request held back for an earlier one of its session waits before the
    gap is skipped and it is delivered (see :mod:`btob.core.clients`)."""
    clients_tracked_max: int = attrs.field(default=100_000, validator=_positive,
                                           metadata=_CLUSTER)
    """Client keys the delivery log keeps state for (their session and next seq, forever, so
    no replay is delivered twice); requests of further keys are not delivered."""
    brb_window: int = attrs.field(default=64, validator=_positive, metadata=_CLUSTER)
    """BRB instances accepted per origin beyond its lowest unordered one."""
    slot_window: int = attrs.field(default=128, validator=_positive, metadata=_CLUSTER)
    """Watermark window: slots accepted beyond the next slot to deliver."""
    slot_refs_max: int = attrs.field(default=64, validator=_positive, metadata=_CLUSTER)
    """Most batch references one ORDER may carry."""
    slots_in_flight_max: int = attrs.field(default=4, validator=_positive)
    """Slots the sequencer proposes before earlier ones commit (pipelining depth)."""
    early_payloads_max_per_origin: int = attrs.field(default=4096, validator=_positive,
                                                     metadata=_CLUSTER)
    """Committed payloads held back per origin while an earlier one of that origin is missing."""
    votes: str = attrs.field(default="all", validator=_vote_mode, metadata=_CLUSTER)
    """How ordering ECHOs and READYs travel: ``all`` sends each to every member (n^2 frames
    per slot, three message delays from ORDER to commit); ``linear`` sends each to the slot's
    proposer, the collector, which forwards the q-signature certificates it gathers (about
    5n frames per slot, five delays). A member whose slot has not committed a retransmit
    interval after it voted sends its votes to everyone (and a view change replaces a
    collector that stays silent), so a Byzantine collector costs time, never safety."""
    retransmit_interval_s: float = attrs.field(default=0.25, validator=_positive)
    """Own messages of unfinished instances are sent again after this long."""
    status_interval_s: float = attrs.field(default=0.5, validator=_positive)
    """How often a member tells its peers how far it has delivered."""
    catchup_slots_max: int = attrs.field(default=64, validator=_positive)
    """Committed slots sent to a lagging peer in answer to one STATUS."""
    catchup_grace_s: float = attrs.field(default=0.1, validator=_positive)
    """A slot is offered to a lagging peer only once it has been committed this long."""
    transfer_serve_bytes_per_s: int = attrs.field(default=32 * 1024 * 1024, validator=_positive)
    """Snapshot bytes served to any one peer per second, at most (with a burst of
    ``transfer_chunks_in_flight`` chunks): a request of a hundred bytes asks for a chunk of
    up to ``chunk_bytes``, and a Byzantine peer asking again and again must not make this
    member spend its bandwidth on it. An honest fetcher spreads its requests over its peers,
    so its transfer goes at up to ``n - 1`` times this."""
    transfer_chunks_in_flight: int = attrs.field(default=4, validator=_positive)
    """Snapshot chunks a member fetching a state asks for at once (each of one peer); an
    unanswered request is asked of the next peer after ``retransmit_interval_s``."""
    checkpoint_interval: int = attrs.field(default=16, validator=_positive, metadata=_CLUSTER)
    """K: members sign a CHECKPOINT of their log every K slots; q of them make it stable."""
    log_retention_slots: int = attrs.field(default=1024, validator=_positive, metadata=_CLUSTER)
    """Delivered slots (refs and batches) kept in memory to serve lagging peers."""
    view_change_timeout_s: float = attrs.field(default=1.0, validator=_positive)
    """Base time known work may wait before the sequencer is suspected."""
    view_change_timeout_max_s: float = attrs.field(default=32.0, validator=_positive)
    """Cap on the timeout, which doubles on consecutive view changes."""
    view_window: int = attrs.field(default=16, validator=_positive, metadata=_CLUSTER)
    """VIEW-CHANGEs accepted for views at most this far above the current one."""
    future_view_messages_max: int = attrs.field(default=1024, validator=_positive)
    """Ordering messages of a view not yet installed, held until its NEW-VIEW arrives."""
    frame_bytes_max: int = attrs.field(default=4 * 1024 * 1024, validator=_positive,
                                       metadata=_CLUSTER)
    """Largest frame a member decodes, and sends or accepts on a TCP connection (the one
    frame bound of btob); bigger ones are dropped unread."""
    verify_cache_entries_max: int = attrs.field(default=65536, validator=_positive)
    """Successful signature checks remembered so a forwarded certificate is verified once."""
    deliveries_retained_max: int = attrs.field(default=262_144, validator=_positive)
    """Deliveries a running node keeps for ``Node.deliveries(start)``; older ones are
    dropped (a reader that falls this far behind gets :class:`~btob.DeliveryNotRetained`).
    At least one slot's worth: ``slot_refs_max * batch_payloads_max``."""
    deliveries_retained_bytes_max: int = attrs.field(default=128 * 1024 * 1024,
                                                     validator=_positive)
    """The same bound in payload bytes. At least ``slot_refs_max * batch_bytes_max``."""
    snapshot_chunk_bytes: int = attrs.field(default=64 * 1024, validator=_positive,
                                            metadata=_CLUSTER)
    """Snapshots travel, and are hashed into their Merkle root, in chunks of this size (at
    most a quarter frame: see :attr:`chunk_bytes`)."""
    snapshot_bytes_max: int = attrs.field(default=256 * 1024 * 1024, validator=_positive,
                                          metadata=_CLUSTER)
    """Largest snapshot (protocol and application state) a member takes, serves or fetches."""

    def __attrs_post_init__(self) -> None:
        if self.payload_bytes_max > self.batch_bytes_max:
            raise ConfigError("payload_bytes_max must not exceed batch_bytes_max")
        if self.frame_bytes_max < 2 * self.batch_bytes_max:
            raise ConfigError("frame_bytes_max must be at least 2 * batch_bytes_max")
        if self.log_retention_slots < 2 * self.checkpoint_interval:
            raise ConfigError("log_retention_slots must be at least 2 * checkpoint_interval")
        if 2 * self.own_batches_in_flight_max > self.brb_window:
            # Own batches not yet ordered all lie in the window of its instances, and the
            # next one is cut while they wait: half the window keeps every counter inside.
            raise ConfigError("own_batches_in_flight_max must be at most brb_window / 2")
        if self.slot_window < self.checkpoint_interval:
            raise ConfigError("slot_window must be at least checkpoint_interval")
        # One slot delivers at most slot_refs_max batches at once: a reader must be able to
        # see all of it before any of it is dropped.
        if self.deliveries_retained_max < self.slot_refs_max * self.batch_payloads_max:
            raise ConfigError("deliveries_retained_max must be at least "
                              "slot_refs_max * batch_payloads_max")
        if self.deliveries_retained_bytes_max < self.slot_refs_max * self.batch_bytes_max:
            raise ConfigError("deliveries_retained_bytes_max must be at least "
                              "slot_refs_max * batch_bytes_max")

    @property
    def chunk_bytes(self) -> int:
        """The snapshot chunk size in use: ``snapshot_chunk_bytes``, but small enough that a
        chunk with its proof fits a frame."""
        return min(self.snapshot_chunk_bytes, self.frame_bytes_max // 4)

    @property
    def request_bytes_max(self) -> int:
        """Largest client REQUEST frame: a largest payload and the request's envelope."""
        return self.payload_bytes_max + _REQUEST_ENVELOPE_BYTES

    def cluster_wide(self) -> dict[str, int | float | str]:
        """The fields every member must agree on, by name."""
        return {name: getattr(self, name) for name in CLUSTER_SETTINGS}

    def disagreement(self, other: Settings) -> str | None:
        """The first cluster-wide field in which ``other`` differs, as ``name=mine vs
        name=theirs`` text; None if they agree."""
        for name in CLUSTER_SETTINGS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                return f"{name}={mine!r} vs {name}={theirs!r}"
        return None


CLUSTER_SETTINGS: tuple[str, ...] = tuple(
    a.name for a in attrs.fields(Settings) if a.metadata.get("scope") == "cluster"
)
"""The names of the fields every member of a cluster must agree on (``cluster.toml``)."""


def settings_with(base: Settings, texts: Sequence[str], *, what: str = "--setting") -> Settings:
    """``base`` with ``NAME=VALUE`` overrides (``texts``, as ``--setting`` takes them).

    Raises :class:`ConfigError` with one line naming the text for an unknown field, a value
    that is not a number, or a value the field refuses.
    """
    fields = {a.name: a for a in attrs.fields(Settings)}
    changes: dict[str, int | float | str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        field = fields.get(name.strip())
        if not sep or field is None:
            raise ConfigError(f"{what} {text!r}: Settings has no field {name.strip()!r}")
        if field.type in (str, "str"):
            changes[field.name] = value.strip()
            continue
        try:
            number = float(value) if field.type in (float, "float") else int(value)
        except ValueError:
            kind = "a number" if field.type in (float, "float") else "a whole number"
            raise ConfigError(f"{what} {text!r}: {value!r} is not {kind}") from None
        changes[field.name] = number
    try:
        return attrs.evolve(base, **changes)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
