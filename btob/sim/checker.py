"""The checker: btob's guarantees (DESIGN.md section 2) judged over delivery logs alone.

Theory of operation: the checker never looks inside a node; it reads what each member
TO-broadcast and TO-delivered (:mod:`btob.sim.logs`) and judges the properties over the *honest*
members (Reiter: honest = follows the protocol, whether or not it later crashed):

1. integrity: indexes 0, 1, 2, ... without gaps; no message id delivered twice; a message of
   an honest origin was broadcast by that origin with the same digest; one digest per message
   id across all honest members (whatever the origin);
2. prefix-order: of any two honest delivery sequences, one is a prefix of the other (gap-free
   total order; a crashed member holds a prefix, so it was never contaminated);
3. fifo: an honest origin's messages are delivered in its broadcast order, without gaps;
4. only when ``run.json`` says the run is complete (it quiesced after GST): agreement (all
   correct members hold the same sequence) and validity (it contains every message broadcast
   by a correct member).

Client requests (origin -1, ids ``c<key hex>.<session>:<seq>``) take part in the properties
over sequences (at most once per message id, one digest per id, prefix order, agreement);
the per-origin checks skip them. For every honest client of ``run.json``'s ``clients``:

5. integrity: each of its requests a member delivered is one it sent, with the same digest;
6. fifo: within each of its sessions, seqs are delivered 0, 1, 2, ... without a gap;
7. receipt: each receipt it accepted names a request that (in a complete run) every correct
   member delivered. A receipt proves the slot where the request was committed; the request
   is delivered there, earlier (a copy committed first) or later (it waited for an earlier
   request of its session), so the slot bounds nothing.

A member that took the state at a stable checkpoint instead of delivering a run of indexes one
by one (a state transfer) logs that run as settled (:class:`~btob.sim.logs.SettledRecord`). A
stable checkpoint is vouched for by a correct member, so the run holds what the honest members
delivered there: the checker fills it in from the longest honest log that delivered it one by
one, and judges the member as if it had (a run no other honest log covers is a violation:
nothing says what it held).

A Byzantine member's own logs are ignored, and its messages need no broadcast record. Each
violation is reported once per (property, kind, members, origin), and at most
:data:`MAX_VIOLATIONS` are kept, followed by one ``"truncated"`` entry saying how many more
were found.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import attrs

from btob.sim.logs import (
    CLIENT_ORIGIN,
    DeliveryRecord,
    LogDir,
    SettledRecord,
    client_parts,
    read_log_dir,
)

__all__ = ["MAX_VIOLATIONS", "PROPERTIES", "CheckReport", "Violation", "check", "format_report"]

PROPERTIES = ("integrity", "prefix-order", "fifo", "agreement", "validity", "receipt")
"""The properties a :class:`Violation` can name (plus ``"truncated"`` for the closing note)."""

MAX_VIOLATIONS = 100
"""Most violations a report lists; further ones are only counted."""

_MISSING_SHOWN = 5  # message ids a validity violation lists before "..."


@attrs.frozen
class Violation:
    """One broken property.

    ``property`` is one of :data:`PROPERTIES` (or ``"truncated"`` for the note that ends a
    report whose list was cut), ``members`` the member(s) concerned, ``index`` the first
    delivery index where it shows (``None`` when there is none), and ``detail`` a one-line
    explanation that names the members, index and messages.
    """

    property: str
    members: tuple[int, ...]
    index: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.property}: {self.detail}".replace("\n", " ")


def _own_counts(counts: Mapping[int, int]) -> Mapping[int, int]:
    return dict(counts)


@attrs.frozen
class CheckReport:
    """The checker's verdict over one log directory.

    ``ok`` is true iff no property was violated. ``members_checked`` are the honest members
    (crashed or not), ``deliveries`` the number of deliveries logged by every member (Byzantine
    ones included; a settled run counts its indexes), ``liveness_judged`` says whether
    agreement and validity were judged (only for a complete run). ``violation_count`` counts
    every violation found, including those beyond the :data:`MAX_VIOLATIONS` listed in
    ``violations``.
    """

    ok: bool
    complete: bool
    violations: tuple[Violation, ...]
    members_checked: tuple[int, ...]
    deliveries: Mapping[int, int] = attrs.field(converter=_own_counts)
    liveness_judged: bool
    violation_count: int = attrs.field(
        default=attrs.Factory(
            lambda self: sum(v.property != "truncated" for v in self.violations), takes_self=True
        )
    )


class _Collector:
    """Keeps the first violation per key, the first MAX_VIOLATIONS of them, and a count."""

    def __init__(self) -> None:
        self.kept: list[Violation] = []
        self.count = 0
        self._keys: set[tuple[object, ...]] = set()

    def add(
        self,
        key: tuple[object, ...],
        prop: str,
        members: tuple[int, ...],
        index: int | None,
        detail: str,
    ) -> None:
        key = (prop, members, *key)
        if key in self._keys:
            return
        self._keys.add(key)
        self.count += 1
        if len(self.kept) < MAX_VIOLATIONS:
            self.kept.append(Violation(prop, members, index, detail))

    def result(self) -> tuple[Violation, ...]:
        if self.count <= len(self.kept):
            return tuple(self.kept)
        hidden = self.count - len(self.kept)
        note = Violation(
            "truncated",
            (),
            None,
            f"{hidden} more violations not listed (a report lists at most {MAX_VIOLATIONS})",
        )
        return (*self.kept, note)


def _show(msg_id: str, digest: str) -> str:
    return f"{msg_id} ({digest[:8]}..)"


class _Seq(NamedTuple):
    """A member's delivery sequence as prefix order sees it: message ids and digests.

    Two parallel lists of shared strings, compared in C, rather than millions of pairs.
    """

    ids: list[str]
    digests: list[str]

    @classmethod
    def of(cls, records: Sequence[DeliveryRecord]) -> _Seq:
        return cls([r.msg_id for r in records], [r.digest for r in records])

    def show(self, index: int) -> str:
        return _show(self.ids[index], self.digests[index])

    def is_prefix_of(self, other: _Seq) -> bool:
        size = len(self.ids)
        return other.ids[:size] == self.ids and other.digests[:size] == self.digests


_BLOCK = 1024  # entries compared at once (in C) while looking for a divergence


def _divergence(a: _Seq, b: _Seq) -> int | None:
    """The first index where ``a`` and ``b`` differ, or None if one is a prefix of the other."""
    common = min(len(a.ids), len(b.ids))
    for start in range(0, common, _BLOCK):
        stop = min(start + _BLOCK, common)
        if a.ids[start:stop] != b.ids[start:stop] or a.digests[start:stop] != b.digests[start:stop]:
            return next(
                i
                for i in range(start, stop)
                if a.ids[i] != b.ids[i] or a.digests[i] != b.digests[i]
            )
    return None


def _honest_broadcasts(
    log: LogDir, honest: Sequence[int], out: _Collector
) -> dict[int, dict[str, str]]:
    """Each honest member's broadcast log as ``msg_id -> digest``, in broadcast order.

    A line naming another origin or repeating a message id is an integrity violation (the
    log cannot be the member's own broadcasts) and is left out.
    """
    result: dict[int, dict[str, str]] = {}
    for member in honest:
        own: dict[str, str] = {}
        for position, record in enumerate(log.broadcasts[member]):
            if record.origin != member:
                out.add(
                    ("broadcast-origin",),
                    "integrity",
                    (member,),
                    None,
                    f"member {member}'s broadcast log names another origin: {record.msg_id} "
                    f"(line {position + 1})",
                )
            elif record.msg_id in own:
                out.add(
                    ("broadcast-repeat",),
                    "integrity",
                    (member,),
                    None,
                    f"member {member} broadcast {record.msg_id} twice (line {position + 1})",
                )
            else:
                own[record.msg_id] = record.digest
        result[member] = own
    return result


class _Event(NamedTuple):
    """Something wrong at one index of a delivery sequence, whichever member's it is."""

    at: int
    prop: str
    key: tuple[object, ...]
    text: str
    """Completes ``"member <m> "``."""


class _Scanner:
    """Finds, in one pass over a delivery sequence, the first event of each kind and origin:
    repeated message ids, messages an honest origin never broadcast (or broadcast with other
    bytes), origins that are not members, and FIFO breaks.

    The pass is online (what it finds at index i depends on indexes <= i only), so the events
    of a prefix of a sequence are the events of the sequence before the prefix's length.
    """

    def __init__(self, n: int, broadcast: Mapping[int, Mapping[str, str]]) -> None:
        self._n = n
        self._broadcast = broadcast
        self._order = {origin: list(own) for origin, own in broadcast.items()}
        self._rank = {
            o: {msg_id: j for j, msg_id in enumerate(ids)} for o, ids in self._order.items()
        }

    def scan(self, records: Sequence[DeliveryRecord]) -> list[_Event]:
        events: list[_Event] = []
        keys: set[tuple[object, ...]] = set()

        def event(index: int, prop: str, key: tuple[object, ...], text: str) -> None:
            if key not in keys:
                keys.add(key)
                events.append(_Event(index, prop, key, text))

        delivered: dict[str, int] = {}
        due = dict.fromkeys(self._order, 0)  # honest origin -> rank of its next message
        for position, record in enumerate(records):
            msg_id, origin, digest = record.msg_id, record.origin, record.digest
            earlier = delivered.setdefault(msg_id, position)
            if earlier != position:
                event(
                    position,
                    "integrity",
                    ("duplicate", origin),
                    f"delivered {msg_id} at index {earlier} and again at index {position}",
                )
                continue
            if origin >= self._n:
                event(
                    position,
                    "integrity",
                    ("non-member",),
                    f"delivered {msg_id} at index {position} from origin {origin}, which is "
                    f"not a member (n={self._n})",
                )
                continue
            sent = self._broadcast.get(origin)
            if sent is None:
                continue  # a Byzantine origin: nothing to compare with
            sent_digest = sent.get(msg_id)
            if sent_digest is None:
                event(
                    position,
                    "integrity",
                    ("creation", origin),
                    f"delivered {msg_id} at index {position}, which honest member {origin} "
                    f"never broadcast",
                )
                continue
            if sent_digest != digest:
                event(
                    position,
                    "integrity",
                    ("alteration", origin),
                    f"delivered {_show(msg_id, digest)} at index {position}, but honest "
                    f"member {origin} broadcast it as {_show(msg_id, sent_digest)}",
                )
            expected = due.get(origin)
            if expected is None:
                continue  # FIFO already broken for this origin
            j = self._rank[origin][msg_id]
            if j == expected:
                due[origin] = expected + 1
                continue
            # j > expected: j < expected would be a repeat, handled above
            del due[origin]
            event(
                position,
                "fifo",
                ("fifo", origin),
                f"delivered {msg_id} (member {origin}'s broadcast #{j}) at index {position} "
                f"before {self._order[origin][expected]} (broadcast #{expected})",
            )
        return events


def _filled(log: LogDir, honest: Sequence[int],
            out: _Collector) -> dict[int, tuple[DeliveryRecord, ...]]:
    """Each honest member's deliveries with its settled runs filled in from another honest
    member that delivered them one by one (the longest such log)."""
    filled = {m: log.deliveries[m] for m in honest}
    donors = sorted((m for m in honest if m not in log.settled),
                    key=lambda m: (-len(log.deliveries[m]), m))
    for member in sorted(set(honest) & set(log.settled)):
        records = list(log.deliveries[member])
        for run in sorted(log.settled[member], key=lambda r: r.start, reverse=True):
            donor = next((d for d in donors if d != member and _delivers(log, d, run)), None)
            if donor is None:
                out.add(("settled", run.start), "integrity", (member,), run.start,
                        f"member {member} took deliveries {run.start}..{run.end - 1} as a "
                        f"state ({run.by}), but no other honest member's log delivers them "
                        f"one by one: nothing says what they held")
                continue
            at = next((i for i, r in enumerate(records) if r.index >= run.start), len(records))
            records[at:at] = log.deliveries[donor][run.start:run.end]
        filled[member] = tuple(records)
    return filled


def _delivers(log: LogDir, member: int, run: SettledRecord) -> bool:
    """``member``'s log holds indexes ``run.start..run.end-1`` at their own positions."""
    records = log.deliveries[member]
    return len(records) >= run.end and records[run.start].index == run.start and \
        records[run.end - 1].index == run.end - 1


def _check_indexes(member: int, records: Sequence[DeliveryRecord], out: _Collector) -> None:
    indexes = [record.index for record in records]
    if indexes == list(range(len(indexes))):
        return
    position = next(i for i, index in enumerate(indexes) if index != i)
    out.add(
        ("index",),
        "integrity",
        (member,),
        position,
        f"member {member}'s delivery at index {position} is numbered {indexes[position]} "
        f"(indexes must run 0, 1, 2, ... without gaps)",
    )


def _check_digests(sequences: Mapping[int, _Seq], covering: Sequence[int], out: _Collector) -> None:
    """One digest per message id across all honest members.

    ``covering`` are members whose sequences hold every (msg_id, digest) pair of the others.
    """
    pairs: set[tuple[str, str]] = set()
    for member in covering:
        pairs.update(zip(sequences[member].ids, sequences[member].digests, strict=True))
    if len(pairs) == len({msg_id for msg_id, _ in pairs}):
        return
    first_seen: dict[str, tuple[str, int, int]] = {}  # msg_id -> (digest, member, index)
    for member, seq in sequences.items():
        for position, (msg_id, digest) in enumerate(zip(seq.ids, seq.digests, strict=True)):
            first = first_seen.setdefault(msg_id, (digest, member, position))
            if first[0] != digest and first[1] != member:
                out.add(
                    ("digest", msg_id.partition(":")[0]),
                    "integrity",
                    (first[1], member),
                    position,
                    f"members {first[1]} and {member} delivered {msg_id} with different "
                    f"digests: {first[0][:8]}.. (index {first[2]}) vs {digest[:8]}.. "
                    f"(index {position})",
                )


def _check_prefix_order(
    sequences: Mapping[int, _Seq], prefix: Mapping[int, bool], out: _Collector
) -> None:
    """Pairwise prefix order; ``prefix[m]`` says m's sequence is a prefix of the longest."""
    for a, b in itertools.combinations(sorted(sequences), 2):
        if prefix[a] and prefix[b]:
            continue  # both prefixes of the longest, hence of one another
        index = _divergence(sequences[a], sequences[b])
        if index is not None:
            out.add(
                (),
                "prefix-order",
                (a, b),
                index,
                f"members {a} and {b} diverge at index {index}: "
                f"{sequences[a].show(index)} vs {sequences[b].show(index)}",
            )


def _check_agreement(sequences: Mapping[int, _Seq], out: _Collector) -> None:
    if not sequences:
        return
    reference = max(sorted(sequences), key=lambda m: len(sequences[m].ids))
    ref = sequences[reference]
    for member in sorted(sequences):
        seq = sequences[member]
        if member == reference or seq == ref:
            continue
        pair = (min(member, reference), max(member, reference))
        index = _divergence(seq, ref)
        if index is None:
            index = len(seq.ids)
            detail = (
                f"member {member} delivered {len(seq.ids)} messages, member {reference} "
                f"{len(ref.ids)}: member {member} misses index {index} onwards, from "
                f"{ref.show(index)}"
            )
        else:
            detail = (
                f"members {pair[0]} and {pair[1]} differ at index {index}: "
                f"{sequences[pair[0]].show(index)} vs {sequences[pair[1]].show(index)}"
            )
        out.add((), "agreement", pair, index, detail)


def _check_validity(
    sequences: Mapping[int, _Seq],
    prefix: Mapping[int, bool],
    broadcast: Mapping[int, Mapping[str, str]],
    out: _Collector,
) -> None:
    """Every message a correct member broadcast is delivered by every correct one.

    ``sequences`` are the correct members'; ``prefix[m]`` says m's sequence is a prefix of
    the longest honest one, so that prefixes of equal length share one set of ids.
    """
    correct = sorted(sequences)
    wanted = set().union(*(broadcast[origin] for origin in correct))
    sets: dict[int, set[str]] = {}  # length of a prefix -> its ids
    for member in correct:
        ids = sequences[member].ids
        delivered = sets.setdefault(len(ids), set(ids)) if prefix[member] else set(ids)
        if wanted <= delivered:
            continue
        for origin in correct:
            missing = [msg_id for msg_id in broadcast[origin] if msg_id not in delivered]
            if not missing:
                continue
            shown = ", ".join(missing[:_MISSING_SHOWN])
            more = ", ..." if len(missing) > _MISSING_SHOWN else ""
            out.add(
                (origin,),
                "validity",
                (member,),
                None,
                f"member {member} never delivered {len(missing)} message(s) broadcast by "
                f"correct member {origin}: {shown}{more}",
            )


def _honest_clients(log: LogDir, out: _Collector) -> dict[str, dict[str, str]]:
    """Each honest client's requests as ``msg_id -> digest``, by the client's key (hex).

    A line naming another client's key or repeating a message id is an integrity violation
    (the log cannot be that client's own) and is left out.
    """
    result: dict[str, dict[str, str]] = {}
    for client, info in log.run.clients.items():
        if not info.honest:
            continue
        own: dict[str, str] = {}
        for position, record in enumerate(log.client_broadcasts.get(client, ())):
            parts = client_parts(record.msg_id)
            if parts is None or parts[0] != info.key:
                out.add(("client-broadcast-key",), "integrity", (), None,
                        f"client {client}'s log names another sender: {record.msg_id} "
                        f"(line {position + 1})")
            elif record.msg_id in own:
                out.add(("client-broadcast-repeat", client), "integrity", (), None,
                        f"client {client} sent {record.msg_id} twice (line {position + 1})")
            else:
                own[record.msg_id] = record.digest
        result[info.key] = own
    return result


def _check_client_deliveries(member: int, records: Sequence[DeliveryRecord],
                             sent: Mapping[str, Mapping[str, str]], out: _Collector) -> None:
    """An honest client's requests, as ``member`` delivered them: each one it sent, with its
    bytes, and per session in seq order 0, 1, 2, ... without a gap (repeats are the
    duplicate check's)."""
    seen: set[str] = set()
    due: dict[tuple[str, int], int] = {}
    for position, record in enumerate(records):
        if record.origin != CLIENT_ORIGIN or record.msg_id in seen:
            continue
        seen.add(record.msg_id)
        parts = client_parts(record.msg_id)
        assert parts is not None, "the log reader checks client message ids"
        key, session, number = parts
        own = sent.get(key)
        if own is None:
            continue  # a Byzantine client's (or an unknown key's): nothing to compare with
        digest = own.get(record.msg_id)
        if digest is None:
            out.add(("client-creation", key), "integrity", (member,), position,
                    f"member {member} delivered {record.msg_id} at index {position}, which "
                    f"the honest client never sent")
            continue
        if digest != record.digest:
            out.add(("client-alteration", key), "integrity", (member,), position,
                    f"member {member} delivered {_show(record.msg_id, record.digest)} at "
                    f"index {position}, but the honest client sent it as "
                    f"{_show(record.msg_id, digest)}")
        expected = due.get((key, session), 0)
        if number != expected:
            out.add(("client-fifo", key, session), "fifo", (member,), position,
                    f"member {member} delivered {record.msg_id} at index {position} when "
                    f"seq {expected} of that client session was due")
        due[(key, session)] = max(expected, number + 1)


def _check_receipts(log: LogDir, deliveries: Mapping[int, Sequence[DeliveryRecord]],
                    out: _Collector) -> None:
    """In a complete run, every receipt an honest client accepted names a request that every
    correct member delivered."""
    run = log.run
    if not run.complete:
        return
    delivered = {member: {r.msg_id for r in records if r.origin == CLIENT_ORIGIN}
                 for member, records in deliveries.items()}
    for client, receipts in log.receipts.items():
        if not run.clients[client].honest:
            continue
        for receipt in receipts:
            for member in sorted(deliveries):
                if run.members[member].correct and receipt.msg_id not in delivered[member]:
                    out.add(("receipt-missing", receipt.msg_id), "receipt", (member,), None,
                            f"member {member} never delivered {receipt.msg_id}, for which "
                            f"client {client} holds a receipt at slot {receipt.slot}")


def check(log: str | os.PathLike[str] | LogDir) -> CheckReport:
    """Judge btob's guarantees over a log directory (a path, or a :class:`LogDir` in memory).

    A pure function of the logs. Raises :class:`LogFormatError` if a path's logs are
    malformed. Safety properties (integrity, prefix-order, fifo) are always judged;
    agreement and validity only when ``run.json`` says the run is complete.

    Cost: one pass over the longest honest sequence plus a comparison (in C) of every other
    one with it; members whose sequence is not a prefix of the longest get their own pass
    and pairwise comparisons, O(n^2 * L) at worst.
    """
    if not isinstance(log, LogDir):
        log = read_log_dir(log)
    run = log.run
    honest = [m for m, info in run.members.items() if info.honest]
    out = _Collector()
    broadcast = _honest_broadcasts(log, honest, out)
    deliveries = _filled(log, honest, out)
    sequences = {m: _Seq.of(deliveries[m]) for m in honest}

    prefix: dict[int, bool] = {}  # m's sequence is a prefix of the longest honest one
    if honest:
        longest = max(honest, key=lambda m: len(sequences[m].ids))
        prefix = {m: seq.is_prefix_of(sequences[longest]) for m, seq in sequences.items()}
        scanner = _Scanner(run.n, broadcast)
        longest_events = scanner.scan(deliveries[longest])
        events = {
            m: [e for e in longest_events if e.at < len(sequences[m].ids)]
            if prefix[m]
            else scanner.scan(deliveries[m])
            for m in honest
        }
        for member in honest:
            _check_indexes(member, deliveries[member], out)
            for e in events[member]:
                if e.prop == "integrity":
                    out.add(e.key, e.prop, (member,), e.at, f"member {member} {e.text}")
        _check_digests(sequences, [m for m in honest if m == longest or not prefix[m]], out)
        _check_prefix_order(sequences, prefix, out)
        for member in honest:
            for e in events[member]:
                if e.prop == "fifo":
                    out.add(e.key, e.prop, (member,), e.at, f"member {member} {e.text}")
        if run.clients:
            sent = _honest_clients(log, out)
            for member in honest:
                _check_client_deliveries(member, deliveries[member], sent, out)
            _check_receipts(log, deliveries, out)
    if run.complete:
        correct = {m: sequences[m] for m in honest if run.members[m].correct}
        _check_agreement(correct, out)
        _check_validity(correct, prefix, broadcast, out)
    return CheckReport(
        ok=out.count == 0,
        complete=run.complete,
        violations=out.result(),
        members_checked=tuple(honest),
        deliveries={m: len(records) + sum(r.end - r.start for r in log.settled.get(m, ()))
                    for m, records in log.deliveries.items()},
        liveness_judged=run.complete,
        violation_count=out.count,
    )


def format_report(report: CheckReport) -> str:
    """A short human-readable report: members, deliveries, violations and the verdict line.

    The last line is ``verdict: PASS`` or ``verdict: FAIL (k violations)``, followed by
    ``(run incomplete: agreement and validity not judged)`` when the run was not complete.
    """
    checked = ", ".join(map(str, report.members_checked)) or "none"
    others = [m for m in report.deliveries if m not in report.members_checked]
    lines = [f"members checked (honest): {checked}"]
    if others:
        lines[0] += f"; not judged (Byzantine): {', '.join(map(str, others))}"
    counts = " ".join(f"{m}={count}" for m, count in report.deliveries.items())
    lines.append(f"deliveries per member: {counts}")
    lines.extend(f"  {violation}" for violation in report.violations)
    if report.ok:
        verdict = "verdict: PASS"
    else:
        plural = "" if report.violation_count == 1 else "s"
        verdict = f"verdict: FAIL ({report.violation_count} violation{plural})"
    if not report.complete:
        verdict += " (run incomplete: agreement and validity not judged)"
    lines.append(verdict)
    return "\n".join(lines)
