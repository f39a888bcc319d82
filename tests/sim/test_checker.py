"""The checker: a hand-made log that breaks each property, and random consistent runs."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
from hypothesis import assume, given
from hypothesis import strategies as st

from btob.sim.checker import (
    MAX_VIOLATIONS,
    CheckReport,
    Violation,
    _Collector,
    _honest_broadcasts,
    _Scanner,
    check,
    format_report,
)
from btob.sim.logs import (
    BroadcastRecord,
    ClientInfo,
    DeliveryRecord,
    LogDir,
    MemberInfo,
    ReceiptRecord,
    RunInfo,
    SettledRecord,
    next_delivery_index,
    read_log_dir,
    write_log_dir,
)


def digest_of(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def payload(msg_id: str) -> bytes:
    origin, counter = msg_id.split(":")
    return f"p-{origin}-{counter}".encode()


def rec(index: int, msg_id: str, data: bytes | None = None) -> DeliveryRecord:
    """A delivery record; ``data`` overrides the payload the digest is computed from."""
    return DeliveryRecord(
        index=index,
        msg_id=msg_id,
        origin=int(msg_id.split(":")[0]),
        digest=digest_of(payload(msg_id) if data is None else data),
    )


Entry = str | DeliveryRecord


def make_log(
    deliveries: Mapping[int, Sequence[Entry]],
    *,
    n: int = 4,
    broadcasts: Mapping[int, Sequence[str]] | None = None,
    byzantine: Iterable[int] = (),
    crashed: Iterable[int] = (),
    complete: bool = True,
) -> LogDir:
    """A log directory in memory.

    A ``str`` entry is a message id delivered at its position with the digest of its
    payload ``b"p-<origin>-<counter>"``; a :class:`DeliveryRecord` is taken as it is. An
    honest member missing from ``broadcasts`` broadcast, in counter order, each of its
    messages that an honest member delivered.
    """
    byzantine, crashed = set(byzantine), set(crashed)
    records = {
        m: tuple(
            e if isinstance(e, DeliveryRecord) else rec(i, e)
            for i, e in enumerate(deliveries.get(m, ()))
        )
        for m in range(n)
    }
    seen = {r.msg_id for m, rs in records.items() if m not in byzantine for r in rs}
    ids = sorted((tuple(map(int, x.split(":"))) for x in seen), key=lambda oc: oc[1])
    broadcasts = {
        o: [f"{o}:{c}" for o2, c in ids if o2 == o] for o in range(n) if o not in byzantine
    } | dict(broadcasts or {})
    run = RunInfo(
        n=n,
        f=(n - 1) // 3,
        complete=complete,
        members={m: MemberInfo(honest=m not in byzantine, crashed=m in crashed) for m in range(n)},
    )
    return LogDir(
        run=run,
        broadcasts={
            m: tuple(BroadcastRecord(x, digest_of(payload(x))) for x in broadcasts.get(m, ()))
            for m in range(n)
        },
        deliveries=records,
    )


ORDER = ["0:0", "1:0", "2:0", "3:0", "0:1", "1:1", "2:1", "3:1"]


def same_everywhere(seq: Sequence[Entry], n: int = 4) -> dict[int, Sequence[Entry]]:
    return dict.fromkeys(range(n), seq)


def summary(report: CheckReport) -> list[tuple[str, tuple[int, ...], int | None]]:
    return [(v.property, v.members, v.index) for v in report.violations]


def test_correct_run_passes(tmp_path: Path) -> None:
    log = make_log(same_everywhere(ORDER))
    report = check(log)
    assert report.ok and report.violations == () and report.violation_count == 0
    assert report.complete and report.liveness_judged
    assert report.members_checked == (0, 1, 2, 3)
    assert report.deliveries == dict.fromkeys(range(4), 8)
    text = format_report(report)
    assert text.splitlines()[-1] == "verdict: PASS"
    assert "0=8" in text
    # the same run, written and read back from a directory
    write_log_dir(tmp_path, log.run, log.broadcasts, log.deliveries)
    assert check(tmp_path) == report
    assert check(str(tmp_path)) == report


def test_swap_at_one_member_breaks_prefix_order() -> None:
    swapped = [*ORDER[:3], ORDER[4], ORDER[3], *ORDER[5:]]  # 3:0 and 0:1: no FIFO issue
    report = check(make_log({0: ORDER, 1: ORDER, 2: swapped, 3: ORDER}, complete=False))
    assert not report.ok
    assert summary(report) == [
        ("prefix-order", (0, 2), 3),
        ("prefix-order", (1, 2), 3),
        ("prefix-order", (2, 3), 3),
    ]
    assert str(report.violations[0]).startswith(
        "prefix-order: members 0 and 2 diverge at index 3: 3:0 ("
    )
    assert " vs 0:1 (" in str(report.violations[0])
    text = format_report(report)
    assert text.splitlines()[-1] == (
        "verdict: FAIL (3 violations) (run incomplete: agreement and validity not judged)"
    )
    # complete: the correct members also disagree
    complete = check(make_log({0: ORDER, 1: ORDER, 2: swapped, 3: ORDER}))
    assert ("agreement", (0, 2), 3) in summary(complete)


def test_duplicate_delivery() -> None:
    report = check(make_log({0: ORDER, 1: [*ORDER, "2:0"], 2: ORDER, 3: ORDER}, complete=False))
    assert summary(report) == [("integrity", (1,), 8)]
    assert "delivered 2:0 at index 2 and again at index 8" in str(report.violations[0])


def test_repeated_duplicates_are_reported_once() -> None:
    seq = [*ORDER, "2:0", "2:0", "2:1", "2:0"]
    report = check(make_log({0: seq, 1: ORDER}, complete=False))
    assert summary(report) == [("integrity", (0,), 8)]


def test_index_gap() -> None:
    gap = [rec(0, "0:0"), rec(1, "1:0"), rec(3, "2:0"), rec(4, "3:0")]
    report = check(make_log({0: ORDER, 1: ORDER, 2: ORDER, 3: gap}, complete=False))
    assert summary(report) == [("integrity", (3,), 2)]
    assert "numbered 3" in report.violations[0].detail


def settled_at(log: LogDir, member: int, start: int, end: int) -> LogDir:
    """``log`` with ``member``'s deliveries ``start..end-1`` replaced by one settled run."""
    kept = tuple(r for r in log.deliveries[member] if not start <= r.index < end)
    return attrs.evolve(log, deliveries={**log.deliveries, member: kept},
                        settled={member: (SettledRecord(start, end, "transfer"),)})


def test_a_settled_run_is_judged_as_what_the_others_delivered(tmp_path: Path) -> None:
    log = settled_at(make_log(same_everywhere(ORDER)), 2, 1, 6)
    report = check(log)
    assert report.ok, [str(v) for v in report.violations]
    assert report.deliveries == dict.fromkeys(range(4), 8)  # the settled run counts
    write_log_dir(tmp_path, log.run, log.broadcasts, log.deliveries, log.settled)
    assert read_log_dir(tmp_path) == log
    assert check(tmp_path) == report
    assert next_delivery_index(tmp_path, 2) == 8
    # what follows the run is still judged: a member that settled 1..5 and then delivers
    # something else at 6 than the others diverges
    wrong = [*ORDER[:6], ORDER[7], ORDER[6]]
    bad = settled_at(make_log({0: ORDER, 1: ORDER, 2: wrong, 3: ORDER}), 2, 1, 6)
    assert ("prefix-order", (0, 2), 6) in summary(check(bad))


def test_a_settled_run_that_does_not_meet_the_log_is_a_gap() -> None:
    log = make_log(same_everywhere(ORDER))
    short = settled_at(log, 2, 1, 6)
    short = attrs.evolve(short, settled={2: (SettledRecord(1, 4, "transfer"),)})
    assert ("integrity", (2,), 4) in summary(check(short))  # 4 and 5 are missing


def test_a_settled_run_nobody_else_delivered_is_a_violation() -> None:
    log = make_log({0: ORDER[:3], 1: ORDER[:3], 2: ORDER, 3: ORDER[:3]}, crashed=(0, 1, 3))
    report = check(settled_at(log, 2, 1, 6))
    assert ("integrity", (2,), 1) in summary(report)
    assert "no other honest member's log delivers them" in report.violations[0].detail


def test_created_message_from_honest_origin() -> None:
    seq = [*ORDER[:2], "1:7", *ORDER[2:]]
    log = make_log(same_everywhere(seq), broadcasts={o: [f"{o}:0", f"{o}:1"] for o in range(4)})
    report = check(log)
    assert summary(report) == [("integrity", (m,), 2) for m in range(4)]
    assert "which honest member 1 never broadcast" in str(report.violations[0])


ORDER3 = [x for x in ORDER if not x.startswith("3:")]  # for n=3


def test_altered_message_from_honest_origin() -> None:
    seq: list[Entry] = [*ORDER3]
    seq[2] = rec(2, "2:0", b"forged")
    report = check(make_log({0: seq, 1: seq, 2: seq}, n=3, complete=False))
    assert summary(report) == [("integrity", (m,), 2) for m in range(3)]
    assert "honest member 2 broadcast it as 2:0" in str(report.violations[0])


def test_different_digests_at_two_members() -> None:
    other: list[Entry] = [*ORDER]
    other[2] = rec(2, "2:0", b"something else")
    # origin 2 is Byzantine: no broadcast record to compare with, only the members' views
    log = make_log({0: ORDER, 1: ORDER, 3: other}, byzantine=[2], complete=False)
    report = check(log)
    assert summary(report) == [
        ("integrity", (0, 3), 2),
        ("prefix-order", (0, 3), 2),
        ("prefix-order", (1, 3), 2),
    ]
    assert "members 0 and 3 delivered 2:0 with different digests" in str(report.violations[0])


def test_crashed_member_with_a_prefix_passes() -> None:
    report = check(make_log({0: ORDER, 1: ORDER, 2: ORDER[:3], 3: ORDER}, crashed=[2]))
    assert report.ok, format_report(report)
    assert report.members_checked == (0, 1, 2, 3)


def test_crashed_member_that_skipped_a_message_fails() -> None:
    skipped = ORDER[:2] + ORDER[3:5]  # skipped 2:0, then crashed
    report = check(make_log({0: ORDER, 1: ORDER, 2: skipped, 3: ORDER}, crashed=[2]))
    assert summary(report) == [
        ("prefix-order", (0, 2), 2),
        ("prefix-order", (1, 2), 2),
        ("prefix-order", (2, 3), 2),
    ]


def test_member_off_the_common_sequence_is_judged_on_its_own() -> None:
    # member 3 crashed after skipping 1:0 and delivering 1:1: contamination and a FIFO gap
    report = check(make_log({0: ORDER, 1: ORDER, 2: ORDER, 3: ["0:0", "1:1"]}, crashed=[3]))
    assert summary(report) == [
        ("prefix-order", (0, 3), 1),
        ("prefix-order", (1, 3), 1),
        ("prefix-order", (2, 3), 1),
        ("fifo", (3,), 1),
    ]


def test_fifo_violation_consistently_ordered() -> None:
    seq = ["0:0", "1:1", "1:0", "2:0"]  # 1's second broadcast before its first, everywhere
    report = check(make_log(same_everywhere(seq)))
    assert summary(report) == [("fifo", (m,), 1) for m in range(4)]
    assert str(report.violations[0]) == (
        "fifo: member 0 delivered 1:1 (member 1's broadcast #1) at index 1 "
        "before 1:0 (broadcast #0)"
    )


def test_fifo_gap() -> None:
    seq = ["0:0", "1:1", "2:0"]  # 1:1 delivered, 1:0 never
    log = make_log(same_everywhere(seq), broadcasts={1: ["1:0", "1:1"]}, complete=False)
    assert summary(check(log)) == [("fifo", (m,), 1) for m in range(4)]
    complete = make_log(same_everywhere(seq), broadcasts={1: ["1:0", "1:1"]})
    assert summary(check(complete)) == [("fifo", (m,), 1) for m in range(4)] + [
        ("validity", (m,), None) for m in range(4)
    ]


def test_agreement_only_when_complete() -> None:
    deliveries = {0: ORDER, 1: ORDER, 2: ORDER[:5], 3: ORDER}
    report = check(make_log(deliveries))
    # member 2 also misses messages of correct origins 1, 2 and 3: validity
    assert summary(report) == [("agreement", (0, 2), 5)] + [("validity", (2,), None)] * 3
    assert "member 2 misses index 5 onwards, from 1:1" in str(report.violations[0])
    incomplete = check(make_log(deliveries, complete=False))
    assert incomplete.ok and not incomplete.liveness_judged
    assert "(run incomplete: agreement and validity not judged)" in format_report(incomplete)


def test_validity_only_when_complete() -> None:
    broadcasts = {o: [f"{o}:0", f"{o}:1"] for o in range(4)}
    broadcasts[3].append("3:2")  # never delivered by anyone
    report = check(make_log(same_everywhere(ORDER), broadcasts=broadcasts))
    assert summary(report) == [("validity", (m,), None) for m in range(4)]
    assert str(report.violations[0]) == (
        "validity: member 0 never delivered 1 message(s) broadcast by correct member 3: 3:2"
    )
    assert check(make_log(same_everywhere(ORDER), broadcasts=broadcasts, complete=False)).ok
    # a crashed origin is owed nothing, and a crashed member need not deliver
    assert check(make_log(same_everywhere(ORDER), broadcasts=broadcasts, crashed=[3])).ok


def test_validity_lists_a_few_missing_ids_with_the_count() -> None:
    broadcasts = {o: [f"{o}:0", f"{o}:1"] for o in range(4)}
    broadcasts[0] += [f"0:{c}" for c in range(2, 12)]
    report = check(make_log(same_everywhere(ORDER), broadcasts=broadcasts))
    assert report.violations[0].detail.endswith(
        "never delivered 10 message(s) broadcast by correct member 0: 0:2, 0:3, 0:4, 0:5, 0:6, ..."
    )


def test_byzantine_member_is_not_judged() -> None:
    garbage = [rec(5, "1:9"), rec(5, "1:9", b"x"), rec(0, "0:1"), rec(7, "0:0"), rec(1, "3:4")]
    # Byzantine member 3's messages are delivered without any broadcast record
    seq = ["0:0", "3:5", "1:0", "3:2", "2:0"]
    log = make_log({0: seq, 1: seq, 2: seq, 3: garbage}, byzantine=[3])
    report = check(log)
    assert report.ok, format_report(report)
    assert report.members_checked == (0, 1, 2)
    assert report.deliveries[3] == 5
    assert "not judged (Byzantine): 3" in format_report(report)


def test_non_member_origin() -> None:
    seq = [*ORDER3, "9:0"]
    report = check(make_log(same_everywhere(seq, n=3), n=3, complete=False))
    assert summary(report) == [("integrity", (m,), 6) for m in range(3)]
    assert "not a member (n=3)" in report.violations[0].detail


def test_inconsistent_broadcast_log_of_honest_member() -> None:
    log = make_log({0: ["0:0"]}, n=1, broadcasts={0: ["0:0", "0:0", "1:0"]})
    assert [v.property for v in check(log).violations] == ["integrity", "integrity"]


def test_truncation_at_max_violations() -> None:
    n = 16  # every member delivers only its own message: 120 diverging pairs
    report = check(make_log({m: [f"{m}:0"] for m in range(n)}, n=n, complete=False))
    assert report.violation_count == 120
    assert len(report.violations) == MAX_VIOLATIONS + 1
    assert all(v.property == "prefix-order" for v in report.violations[:-1])
    assert report.violations[-1] == Violation(
        "truncated", (), None, "20 more violations not listed (a report lists at most 100)"
    )
    assert "verdict: FAIL (120 violations)" in format_report(report)


@st.composite
def consistent_runs(draw: st.DrawFn) -> tuple[LogDir, list[str]]:
    """A run every property holds in, and its total order."""
    n = draw(st.integers(1, 5))
    byzantine = {n - 1} if n >= 4 and draw(st.booleans()) else set()
    counts = [draw(st.integers(0, 4)) for _ in range(n)]
    origins = draw(st.permutations([o for o in range(n) for _ in range(counts[o])]))
    next_counter = [0] * n
    order = []
    for origin in origins:  # FIFO-ordered: each origin's counters rise along the order
        order.append(f"{origin}:{next_counter[origin]}")
        next_counter[origin] += 1
    complete = draw(st.booleans())
    crashed = {m for m in range(1, n) if draw(st.booleans())}  # member 0 always correct
    deliveries: dict[int, Sequence[Entry]] = {}
    for m in range(n):
        if m in byzantine:
            deliveries[m] = [
                rec(draw(st.integers(0, 9)), f"{draw(st.integers(0, n))}:{draw(st.integers(0, 9))}")
                for _ in range(draw(st.integers(0, 6)))
            ]
        elif m == 0 or (complete and m not in crashed):
            deliveries[m] = order
        else:
            deliveries[m] = order[: draw(st.integers(0, len(order)))]
    log = make_log(
        deliveries,
        n=n,
        broadcasts={o: [x for x in order if x.startswith(f"{o}:")] for o in range(n)},
        byzantine=byzantine,
        crashed=crashed,
        complete=complete,
    )
    return log, order


@given(consistent_runs(), st.data())
def test_random_consistent_runs_pass_and_a_swap_fails(
    run: tuple[LogDir, list[str]], data: st.DataObject
) -> None:
    log, _order = run
    report = check(log)
    assert report.ok, format_report(report)

    honest = [m for m in report.members_checked if len(log.deliveries[m]) >= 2]
    assume(honest)
    member = data.draw(st.sampled_from(honest))
    seq = list(log.deliveries[member])
    i = data.draw(st.integers(0, len(seq) - 2))
    a, b = seq[i], seq[i + 1]
    # Not a crashed-prefix scenario: another honest member delivered index i, or the swap
    # reorders one honest origin's messages.
    others = [m for m in report.members_checked if m != member]
    assume(
        (a.origin == b.origin and a.origin in report.members_checked)
        or any(len(log.deliveries[m]) > i for m in others)
    )
    seq[i] = DeliveryRecord(index=i, msg_id=b.msg_id, origin=b.origin, digest=b.digest)
    seq[i + 1] = DeliveryRecord(index=i + 1, msg_id=a.msg_id, origin=a.origin, digest=a.digest)
    mutated = LogDir(
        run=log.run, broadcasts=log.broadcasts, deliveries={**log.deliveries, member: seq}
    )
    broken = check(mutated)
    assert not broken.ok
    assert {v.property for v in broken.violations} <= {"prefix-order", "fifo", "agreement"}


def test_report_pickles() -> None:
    report = check(make_log({0: ORDER, 1: ORDER[:3]}))
    assert not report.ok
    assert pickle.loads(pickle.dumps(report)) == report


@st.composite
def arbitrary_logs(draw: st.DrawFn) -> LogDir:
    """Well-formed but otherwise arbitrary logs: repeats, gaps, reorderings, forgeries."""
    n = draw(st.integers(1, 4))
    ids = st.builds(lambda o, c: f"{o}:{c}", st.integers(0, n), st.integers(0, 3))
    entries = st.one_of(ids, st.builds(lambda i, x: rec(i, x, b"forged"), st.integers(0, 9), ids))
    return make_log(
        {m: draw(st.lists(entries, max_size=8)) for m in range(n)},
        n=n,
        broadcasts={o: draw(st.lists(ids, max_size=4)) for o in range(n)},
        byzantine=draw(st.sets(st.integers(0, n - 1), max_size=1)),
        crashed=draw(st.sets(st.integers(0, n - 1))),
        complete=draw(st.booleans()),
    )


@given(arbitrary_logs())
def test_arbitrary_logs_are_judged_without_crashing(log: LogDir) -> None:
    report = check(log)
    assert report.ok == (report.violation_count == 0)
    assert all(str(v).count("\n") == 0 for v in report.violations)
    assert format_report(report).splitlines()[-1].startswith("verdict: ")


@given(arbitrary_logs(), st.data())
def test_scanning_a_prefix_finds_the_events_before_its_end(
    log: LogDir, data: st.DataObject
) -> None:
    # check() relies on this to judge members holding a prefix of the longest sequence
    # without scanning them again.
    honest = [m for m, info in log.run.members.items() if info.honest]
    scanner = _Scanner(log.run.n, _honest_broadcasts(log, honest, _Collector()))
    records = log.deliveries[data.draw(st.sampled_from(sorted(log.deliveries)))]
    size = data.draw(st.integers(0, len(records)))
    full = scanner.scan(records)
    assert scanner.scan(records[:size]) == [e for e in full if e.at < size]


# -- clients --------------------------------------------------------------------------------


HONEST_KEY, BYZANTINE_KEY = "a" * 64, "b" * 64


def cid(seq: int, key: str = HONEST_KEY, session: int = 1) -> str:
    return f"c{key}.{session}:{seq}"


def crec(index: int, msg_id: str, slot: int | None, data: bytes | None = None) -> DeliveryRecord:
    return DeliveryRecord(index, msg_id, -1, digest_of(msg_id.encode() if data is None else data),
                          slot=slot)


def client_log(deliveries: Sequence[DeliveryRecord], *, sent: Sequence[str] = (),
               receipts: Sequence[tuple[str, int]] = (), lagging: int | None = None,
               complete: bool = True) -> LogDir:
    """Four honest members that all delivered ``deliveries`` (member 3 only its first
    ``lagging`` ones, if given), client 0 honest having sent ``sent`` with the receipts
    ``receipts``, client 1 Byzantine."""
    n = 4
    logs = {m: tuple(deliveries) for m in range(n)}
    if lagging is not None:
        logs[3] = tuple(deliveries[:lagging])
    run = RunInfo(n=n, f=1, complete=complete,
                  members={m: MemberInfo(honest=True, crashed=False) for m in range(n)},
                  clients={0: ClientInfo(honest=True, key=HONEST_KEY),
                           1: ClientInfo(honest=False, key=BYZANTINE_KEY)})
    return LogDir(run=run, broadcasts={m: () for m in range(n)}, deliveries=logs,
                  client_broadcasts={0: tuple(BroadcastRecord(m, digest_of(m.encode()))
                                              for m in sent)},
                  receipts={0: tuple(ReceiptRecord(m, slot, 0, 0) for m, slot in receipts)})


def _kinds(report: CheckReport) -> list[str]:
    return sorted({v.property for v in report.violations})


def test_honest_client_requests_in_order_with_receipts_pass() -> None:
    sent = [cid(0), cid(1), cid(2)]
    records = [crec(0, cid(0), 0), crec(1, cid(0, BYZANTINE_KEY), 0), crec(2, cid(1), 1),
               crec(3, cid(2), 1), crec(4, cid(5, BYZANTINE_KEY), 2)]
    report = check(client_log(records, sent=sent, receipts=[(cid(0), 0), (cid(1), 1)]))
    assert report.ok, [str(v) for v in report.violations]
    assert report.liveness_judged


def test_a_client_request_delivered_twice_is_an_integrity_violation() -> None:
    for key in (HONEST_KEY, BYZANTINE_KEY):  # at most once, whoever the client is
        records = [crec(0, cid(0, key), 0), crec(1, cid(0, key), 1)]
        report = check(client_log(records, sent=[cid(0)]))
        assert _kinds(report) == ["integrity"]
        assert "again at index 1" in str(report.violations[0])


def test_an_honest_clients_request_made_up_or_altered_is_caught() -> None:
    made_up = check(client_log([crec(0, cid(0), 0), crec(1, cid(1), 0)], sent=[cid(0)]))
    assert _kinds(made_up) == ["integrity"] and "never sent" in str(made_up.violations[0])
    altered = check(client_log([crec(0, cid(0), 0, data=b"other")], sent=[cid(0)]))
    assert _kinds(altered) == ["integrity"] and "sent it as" in str(altered.violations[0])
    # A Byzantine client's requests have nothing to be compared with.
    assert check(client_log([crec(0, cid(7, BYZANTINE_KEY), 0, data=b"x")])).ok


def test_an_honest_clients_session_out_of_order_or_with_a_gap_breaks_fifo() -> None:
    sent = [cid(0), cid(1), cid(2)]
    swapped = check(client_log([crec(0, cid(1), 0), crec(1, cid(0), 0)], sent=sent))
    assert _kinds(swapped) == ["fifo"]
    assert "seq 0 of that client session was due" in str(swapped.violations[0])
    gap = check(client_log([crec(0, cid(0), 0), crec(1, cid(2), 0)], sent=sent))
    assert _kinds(gap) == ["fifo"]
    # A new session starts at 0 again; a Byzantine client's order is not judged.
    fresh = [cid(0), cid(0, session=2), cid(1, session=2)]
    assert check(client_log([crec(i, m, 0) for i, m in enumerate(fresh)], sent=fresh)).ok
    assert check(client_log([crec(0, cid(3, BYZANTINE_KEY), 0)])).ok


def test_a_receipt_may_name_a_slot_before_or_after_the_delivery() -> None:
    # after: a copy committed earlier was delivered; before: the request waited there for
    # an earlier request of its session
    records = [crec(0, cid(0), 4)]
    assert check(client_log(records, sent=[cid(0)], receipts=[(cid(0), 6)])).ok
    assert check(client_log(records, sent=[cid(0)], receipts=[(cid(0), 3)])).ok


def test_a_receipt_whose_request_a_member_never_delivered_is_caught() -> None:
    records = [crec(0, cid(0, BYZANTINE_KEY), 1), crec(1, cid(0), 2),
               crec(2, cid(1, BYZANTINE_KEY), 3)]
    without = records[:1] + records[2:]
    log = client_log(records, sent=[cid(0)], receipts=[(cid(0), 2)])
    skipped = attrs.evolve(log, deliveries={**log.deliveries, 3: tuple(
        attrs.evolve(r, index=i) for i, r in enumerate(without))})
    report = check(skipped)
    assert "receipt" in _kinds(report)
    assert any("member 3 never delivered" in str(v) for v in report.violations)
    # A member that is merely behind is judged only once the run is complete.
    assert check(client_log(records, sent=[cid(0)], receipts=[(cid(0), 2)], lagging=1,
                            complete=False)).ok
    behind = check(client_log(records, sent=[cid(0)], receipts=[(cid(0), 2)], lagging=1))
    assert "receipt" in _kinds(behind) and "agreement" in _kinds(behind)


def test_a_byzantine_clients_receipts_are_not_judged() -> None:
    log = client_log([crec(0, cid(0), 0)], sent=[cid(0)])
    log = attrs.evolve(log, receipts={1: (ReceiptRecord(cid(9, BYZANTINE_KEY), 0, 0, 0),)})
    assert check(log).ok


def test_client_deliveries_without_slots_are_judged_by_presence() -> None:
    log = client_log([crec(0, cid(0), None)], sent=[cid(0)], receipts=[(cid(0), 0)])
    assert check(log).ok
    missing = client_log([crec(0, cid(1, BYZANTINE_KEY), None)], sent=[cid(0)],
                         receipts=[(cid(0), 0)])
    assert _kinds(check(missing)) == ["receipt"]


def test_an_honest_client_log_naming_another_key_or_repeating_is_an_integrity_violation() -> None:
    wrong = client_log([], sent=[cid(0, BYZANTINE_KEY)])
    assert _kinds(check(wrong)) == ["integrity"]
    repeated = client_log([], sent=[cid(0), cid(0)])
    assert "sent" in str(check(repeated).violations[0])


def test_member_origin_checks_skip_client_deliveries() -> None:
    """Origin -1 is no member: neither a non-member origin nor a broken member FIFO."""
    records = [rec(0, "0:0"), crec(1, cid(0), 0), rec(2, "0:1")]
    log = client_log(records, sent=[cid(0)])
    log = attrs.evolve(log, broadcasts={**log.broadcasts, 0: (
        BroadcastRecord("0:0", digest_of(payload("0:0"))),
        BroadcastRecord("0:1", digest_of(payload("0:1"))))})
    assert check(log).ok
    # Two members' digests disagreeing on a client's request is an integrity violation.
    other = attrs.evolve(log, deliveries={**log.deliveries, 2: (
        records[0], crec(1, cid(0), 0, data=b"other"), records[2])})
    assert "different digests" in " ".join(str(v) for v in check(other).violations)
