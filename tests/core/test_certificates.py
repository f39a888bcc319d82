"""valid_votes: a certificate is q valid signatures on one body by distinct members."""

from __future__ import annotations

from btob.core.certificates import valid_votes
from btob.core.quorum import Quorums
from btob.core.wire import Checkpoint, OrderReady, Vote

from ..helpers import Keys

N = 4
QUORUMS = Quorums.for_cluster(N)  # q = 3
KEYS = Keys(N)
MESSAGE = OrderReady(0, 5, bytes(range(32)))
BODY = MESSAGE.to_body()


def _vote(member: int, message: OrderReady = MESSAGE) -> Vote:
    return Vote(member, KEYS.sign(member, message).signature)


def _valid(votes: list[Vote], body: bytes = BODY, kind: str = OrderReady.KIND) -> bool:
    return valid_votes(votes, body, kind, QUORUMS, KEYS.verifier().verify)


def test_q_valid_votes_by_distinct_members_make_a_certificate() -> None:
    assert QUORUMS.quorum == 3
    assert _valid([_vote(0), _vote(2), _vote(3)])
    assert _valid([_vote(m) for m in range(N)])  # more than q is fine too


def test_too_few_votes_are_no_certificate() -> None:
    assert not _valid([])
    assert not _valid([_vote(0), _vote(1)])


def test_a_repeated_signer_spoils_the_certificate() -> None:
    assert not _valid([_vote(0), _vote(0), _vote(1)])  # only two distinct members
    assert not _valid([_vote(0), _vote(1), _vote(2), _vote(1)])  # q distinct, one repeated


def test_a_signer_outside_the_cluster_spoils_the_certificate() -> None:
    outsider = Keys(N + 1)  # member 4 holds a real key, but of another registry
    foreign = Vote(N, outsider.sign(N, MESSAGE).signature)
    assert not _valid([_vote(0), _vote(1), _vote(2), foreign])
    assert not _valid([_vote(0), _vote(1), _vote(2), Vote(-1, bytes(64))])


def test_an_invalid_signature_spoils_the_certificate() -> None:
    votes = [_vote(0), _vote(1), _vote(2)]
    assert not _valid([*votes[:2], Vote(2, bytes(64))])
    assert not _valid([*votes[:2], Vote(3, votes[2].signature)])  # member 2's, claimed by 3
    other = OrderReady(0, 6, bytes(range(32)))
    assert not _valid([*votes[:2], _vote(2, other)])  # a signature on another body


def test_signatures_count_only_for_the_body_and_kind_they_were_made_for() -> None:
    votes = [_vote(0), _vote(1), _vote(2)]
    assert not _valid(votes, body=OrderReady(0, 5, bytes(32)).to_body())
    # The same body under another kind: the domain tag differs, so the signatures do not hold.
    assert not _valid(votes, kind="ord.echo")  # a READY certificate is no ECHO certificate
    assert not _valid(votes, kind=Checkpoint.KIND)


def test_the_range_of_signers_is_checked_before_and_besides_their_signatures() -> None:
    checked: list[int] = []

    def lenient(member: int, kind: str, body: bytes, signature: bytes) -> bool:
        checked.append(member)
        return True  # a verifier that would take anything

    blank = bytes(64)
    votes = [Vote(0, blank), Vote(1, blank), Vote(N, blank)]
    assert not valid_votes(votes, BODY, OrderReady.KIND, QUORUMS, lenient)
    assert N not in checked  # the outsider's signature is never even looked at
    assert valid_votes([*votes[:2], Vote(2, blank)], BODY, OrderReady.KIND, QUORUMS, lenient)

