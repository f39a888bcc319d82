"""Deliberate protocol breaks the harness must catch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from btob import ConfigError, Member
from btob.core.wire import OrderEcho, OrderReady
from btob.faults import Mix
from btob.sim.sweep import sweep
from btob.testing.breaks import BREAKS, CLIENT_BREAKS, broken

from ..helpers import Keys, Router


def _finds_a_failure(member_factory: Callable[..., Member], spec: str, seeds: int = 40) -> bool:
    """True if the sweep, over ``seeds`` seeds, finds a property violation or trips one of
    the cores' own invariants (which crash loudly by design, naming the replay)."""
    mix = Mix("break", (spec,))
    try:
        outcome = sweep(seeds=range(seeds), sizes=[4], brbs=["bracha"], mixes=[mix],
                        messages=60, max_time=20, member_factory=member_factory)
    except AssertionError as exc:
        assert "replay: btob sim" in str(exc)
        return True
    if outcome.ok:
        return False
    assert outcome.failure_kind == "violation" and outcome.replay is not None
    return True


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("quorum-one-short", "0=equivocate"),
        ("deliver-before-commit", "0=equivocate"),
        ("skip-signature-checks", "2=forge"),
    ],
)
def test_deliberate_breaks_are_caught(name: str, spec: str) -> None:
    assert _finds_a_failure(broken(name), spec)
    assert not _finds_a_failure(Member, spec, seeds=10)  # the real protocol holds


def test_ready_amplification_is_caught_by_the_prepared_before_ready_invariant() -> None:
    """Amplified READYs only endanger the view change, which a random sweep rarely lines up;
    the invariant it breaks - a READY only with a prepared certificate - is checked here."""

    def readies_without_prepare(member_factory: Callable[..., Member]) -> int:
        keys = Keys(4)
        router = Router(keys, member_factory=member_factory)
        router.allow = lambda src, dst, msg: not (isinstance(msg, OrderEcho)
                                                  and not isinstance(msg, OrderReady)
                                                  and dst == 3)
        sent: list[int] = []
        original = router.allow

        def watch(src: int, dst: int, msg: object) -> bool:
            if src == 3 and isinstance(msg, OrderReady):
                sent.append(dst)
            return original(src, dst, msg)  # type: ignore[arg-type]

        router.allow = watch  # type: ignore[assignment]
        router.members[1].submit(b"x", 0.0)
        router.pump()
        return len(sent)  # member 3 never saw an ordering ECHO, so it holds no certificate

    assert readies_without_prepare(Member) == 0
    assert readies_without_prepare(broken("ready-amplification")) > 0


def test_unknown_break_is_refused() -> None:
    from btob import ConfigError

    with pytest.raises(ConfigError, match="make-it-fast"):
        broken("make-it-fast")


def test_client_breaks_are_named_and_break_only_the_client_rules() -> None:
    assert set(CLIENT_BREAKS) == {"client-duplicates", "client-unordered"}
    assert not set(CLIENT_BREAKS) & set(BREAKS)  # the adversary mix, without clients, skips them
    keys = Keys(4)
    member = broken("client-duplicates")(member=0, registry=keys.registry,
                                         signing_key=keys.keys[0], cluster_id=keys.cluster_id)
    assert type(member._log.clients).__name__ == "DuplicateClientLog"
    with pytest.raises(ConfigError, match="client-unordered"):
        broken("no-such-break")
