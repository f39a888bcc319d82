"""Fault specifications: ``ID=BEHAVIOUR[:key=value,...]`` parsed and checked; every mistake
is a ConfigError naming the text."""

from __future__ import annotations

import pytest

from btob import ConfigError
from btob.faults import BEHAVIOURS, FaultSpec, parse_fault


def test_a_spec_names_the_member_the_behaviour_and_its_parameters() -> None:
    spec = parse_fault("2=crash:at=0.5,after=7", 4)
    assert spec == FaultSpec(2, "crash", {"at": 0.5, "after": 7, "step": ""})
    assert type(spec.params["after"]) is int and type(spec.params["at"]) is float
    assert not spec.byzantine


def test_parameters_left_out_take_the_behaviours_defaults() -> None:
    for name, behaviour in BEHAVIOURS.items():
        spec = parse_fault(f"1={name}", 4)
        assert spec.behaviour == name
        assert dict(spec.params) == {p.name: p.default for p in behaviour.params}
        assert spec.byzantine == behaviour.byzantine


def test_byzantine_behaviours_are_the_protocol_breaking_ones() -> None:
    assert {n for n, b in BEHAVIOURS.items() if not b.byzantine} == {"crash", "pause", "slow"}
    assert not BEHAVIOURS["twins"].swarm  # needs its role: the swarm does not draw it


def test_whitespace_around_the_parts_is_tolerated() -> None:
    assert parse_fault(" 3 = silent ", 4) == FaultSpec(3, "silent", {})
    assert parse_fault("0=pause: at=1 , for=2", 4).params == {"at": 1.0, "for": 2.0}


def test_a_spec_prints_as_the_text_that_parses_back_to_it() -> None:
    for text in ("2=crash:at=0.5", "1=omission:dir=send,kinds=ord,p=0.5", "0=silent",
                 "3=censor:origin=2"):
        spec = parse_fault(text, 4)
        assert str(spec) == text
        assert parse_fault(str(spec), 4) == spec
    assert str(parse_fault("1=crash:at=0", 4)) == "1=crash"  # defaults are left out


@pytest.mark.parametrize(("text", "reason"), [
    ("crash", "expected ID=BEHAVIOUR"),
    ("x=crash", "expected ID=BEHAVIOUR"),
    ("-1=crash", "expected ID=BEHAVIOUR"),
    ("4=crash", "member 4 is outside 0..3"),
    ("1=teleport", "unknown behaviour 'teleport'; known: bad-catchup, bad-certs, "
                    "bad-checkpoint, bad-chunks, bad-transfer, bad-viewchange, censor, crash, "),
    ("1=crash:when=3", "bad parameter 'when=3'; crash takes at, after, step"),
    ("1=crash:at", "bad parameter 'at'"),
    ("1=silent:p=1", "silent takes none"),
    ("1=crash:at=soon", "at must be a float"),
    ("1=forge:k=2.5", "k must be a int"),
    ("1=crash:at=-1", "at must be >= 0"),
    ("1=crash:at=nan", "at must be >= 0"),
    ("1=forge:k=-3", "k must be >= 0"),
])
def test_every_mistake_is_a_config_error_naming_the_text(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_fault(text, 4)
    assert f"fault {text!r}:" in str(exc.value)
    assert reason in str(exc.value)
