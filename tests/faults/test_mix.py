"""Fault mixes: presets, TOML files and their errors, and deterministic swarm mixes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from btob import ConfigError
from btob.core.settings import Settings
from btob.faults import BEHAVIOURS, Behaviour, NetSpec, Param, parse_net
from btob.faults._mix import (
    CHECKPOINT_ATTACKS,
    CLIENTS,
    PRESETS,
    Mix,
    adversary_mix,
    client_mix,
    load_mixes,
    swarm_mix,
)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_resolve(name: str, n: int) -> None:
    [mix] = load_mixes(name, n)
    assert mix is PRESETS[name]
    assert mix.name == name
    faults, net = mix.resolve(n)
    assert len(faults) == len(mix.faults)
    assert isinstance(net, NetSpec)
    assert name in mix.describe()


def test_preset_contents() -> None:
    assert PRESETS["none"].resolve(4) == ((), NetSpec())
    [crash], _ = PRESETS["crash-sequencer"].resolve(4)
    assert (crash.member, crash.behaviour, crash.params["at"]) == (0, "crash", 0.01)
    _, lossy = PRESETS["lossy"].resolve(4)
    assert (lossy.loss, lossy.dup, lossy.gst, lossy.delay_max) == (0.05, 0.02, 1.5, 0.03)
    _, part = PRESETS["partition"].resolve(4)
    assert [sorted(map(sorted, p.groups)) for p in part.partitions] == [[[0], [1, 2, 3]]]
    faults, net = PRESETS["lossy-crash-sequencer"].resolve(7)
    assert [f.member for f in faults] == [0] and net.loss == 0.05


def test_resolve_errors_name_the_mix() -> None:
    with pytest.raises(ConfigError, match=r"'partition'.*0..2"):
        load_mixes("partition", 3)  # member 3 does not exist in a 3-member cluster
    with pytest.raises(ConfigError, match=r"'m'.*outside"):
        Mix("m", ("4=crash",)).resolve(4)
    with pytest.raises(ConfigError, match=r"'m'.*one fault per member"):
        Mix("m", ("1=crash", "1=silent")).resolve(4)
    with pytest.raises(ConfigError, match=r"'m'.*Byzantine"):
        Mix("m", ("1=silent", "2=silent")).resolve(4)
    with pytest.raises(ConfigError, match=r"'m'.*--net"):
        Mix("m", (), "loss=0.1").resolve(4)  # loss needs a gst


def test_swarm_and_unknown_sources() -> None:
    with pytest.raises(ConfigError, match="swarm_mix"):
        load_mixes("swarm", 4)
    with pytest.raises(ConfigError, match=r"'no-such-mix'.*preset"):
        load_mixes("no-such-mix", 4)


def test_toml_single_mix(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text('name = "two-crashes"\nfaults = ["1=crash:at=0.1", "2=crash"]\n'
                    'net = "dup=0.1"\n')
    [mix] = load_mixes(str(path), 7)
    assert mix == Mix("two-crashes", ("1=crash:at=0.1", "2=crash"), "dup=0.1")
    faults, net = mix.resolve(7)
    assert [f.member for f in faults] == [1, 2] and net.dup == 0.1


def test_a_mix_may_set_settings_for_every_member(tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text('name = "short"\nsettings = ["checkpoint_interval=4", "slot_window=32"]\n')
    [mix] = load_mixes(str(path), 4)
    assert mix.setting == ("checkpoint_interval=4", "slot_window=32")
    settings = mix.settings(Settings())
    assert (settings.checkpoint_interval, settings.slot_window) == (4, 32)
    assert mix.describe().endswith("; checkpoint_interval=4; slot_window=32")
    assert Mix("plain").settings(Settings()) == Settings()


def test_the_adversary_gives_attacks_on_checkpoints_short_intervals() -> None:
    intervals: dict[str, set[int]] = {}
    for seed in range(3 * 40):
        mix = adversary_mix(seed, 4)
        attack = (mix.adversary or mix.faults[0].split("=", 1)[1]).split(":")[0]
        intervals.setdefault(attack, set()).add(mix.settings(Settings()).checkpoint_interval)
    assert set(intervals) >= CHECKPOINT_ATTACKS
    for attack, seen in intervals.items():
        assert seen <= ({4, 8} if attack in CHECKPOINT_ATTACKS else {16}), attack


def test_toml_array_of_mixes(tmp_path: Path) -> None:
    path = tmp_path / "many.toml"
    path.write_text(
        '[[mix]]\nname = "quiet"\n\n'
        '[[mix]]\nname = "slow-net"\nnet = "delay=0.01-0.05"\n\n'
        '[[mix]]\nname = "silent-1"\nfaults = ["1=silent"]\n'
    )
    mixes = load_mixes(str(path), 4)
    assert [m.name for m in mixes] == ["quiet", "slow-net", "silent-1"]
    assert mixes[0] == Mix("quiet")
    assert mixes[1].resolve(4)[1].delay_max == 0.05
    assert mixes[2].faults == ("1=silent",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nfaults = [', "not valid TOML"),
        ('name = "x"\ncolour = "red"\n', "mix 'x': unknown key.*colour"),
        ('name = "x"\nfaults = ["1=explode"]\n', "mix 'x'.*unknown behaviour"),
        ('name = "x"\nfaults = ["9=crash"]\n', "mix 'x'.*outside"),
        ('name = "x"\nfaults = "1=crash"\n', "mix 'x': faults must be a list"),
        ('name = "x"\nfaults = [1]\n', "mix 'x': faults must be a list"),
        ('name = "x"\nnet = 5\n', "mix 'x': net must be a string"),
        ('name = "x"\nnet = "speed=9"\n', "mix 'x'.*unknown key 'speed'"),
        ('faults = ["1=crash"]\n', "has no name"),
        ('name = 3\n', "name must be"),
        ("", "no mix"),
        ('[[mix]]\nname = "a"\n[[mix]]\nfaults = []\n', "mix #2 has no name"),
        ('[[mix]]\nname = "a"\n[[mix]]\nname = "a"\n', "'a' is defined twice"),
        ('name = "top"\n[[mix]]\nname = "a"\n', "beside"),
        ('mix = "a"\n', "array of tables"),
        ('name = "x"\nsettings = "checkpoint_interval=4"\n', "mix 'x': settings must be a list"),
        ('name = "x"\nsettings = ["colour=4"]\n', "mix 'x'.*Settings has no field 'colour'"),
        ('name = "x"\nsettings = ["checkpoint_interval=0"]\n', "mix 'x'.*checkpoint_interval"),
    ],
)
def test_bad_toml_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad-mix.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_mixes(str(path), 4)
    assert str(path) in str(info.value)


def test_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_mixes(str(missing), 4)
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_mixes(str(tmp_path), 4)  # a directory
    assert str(tmp_path) in str(info.value)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_mixes(str(binary), 4)
    assert str(binary) in str(info.value)


# ---------------------------------------------------------------------------------------------
# swarm


def _has_swarm_flag() -> bool:
    return "swarm" in attrs.fields_dict(Behaviour)


def _fake_registry() -> dict[str, Behaviour]:
    fake = Behaviour("fake", byzantine=True, summary="x", params=(
        Param("p", float, 0.1, "a probability"),
        Param("to", str, "all", "peers"),
        Param("k", int, 3, "count"),
        Param("width", float, 2.5, "anything else"),
        Param("kinds", str, "", "empty: left out"),
    ))
    timed = Behaviour("fake-crash", byzantine=False, summary="x", params=(
        Param("at", float, 0.0, "a time"),
        Param("drop_p", float, 0.0, "a probability too"),
    ))
    needy = Behaviour("needy", byzantine=True, summary="x", params=(
        Param("level", int, None, "required and not drawable"),
    ))
    registry = {b.name: b for b in (fake, timed, needy)}
    if _has_swarm_flag():
        registry["role-bound"] = attrs.evolve(fake, name="role-bound", swarm=False)
    return registry


def test_swarm_is_deterministic_per_seed_and_varies() -> None:
    for n in (4, 7):
        assert [swarm_mix(s, n) for s in range(20)] == [swarm_mix(s, n) for s in range(20)]
        mixes = {(m.faults, m.net) for m in (swarm_mix(s, n) for s in range(20))}
        assert len(mixes) >= 10
    assert swarm_mix(3, 7).name == "swarm-3"
    assert swarm_mix(3, 4) != swarm_mix(3, 7)


@pytest.mark.parametrize("n", [1, 3, 4, 7, 10])
def test_swarm_respects_f_and_resolves_with_the_live_registry(n: int) -> None:
    f = (n - 1) // 3
    sizes: Counter[int] = Counter()
    for seed in range(60):
        mix = swarm_mix(seed, n)
        faults, net = mix.resolve(n)  # known behaviours, valid params, ids < n
        assert len(faults) <= f
        sizes[len(faults)] += 1
        for spec in faults:
            assert spec.behaviour in BEHAVIOURS
            assert getattr(BEHAVIOURS[spec.behaviour], "swarm", True)
        for p in net.partitions:
            assert p.end <= net.gst
            assert sorted(len(g) for g in p.groups) == [1, n - 1]
    assert set(sizes) == set(range(f + 1))  # every count 0..f occurs


def test_swarm_draws_parameters_by_kind() -> None:
    registry = _fake_registry()
    seen: Counter[str] = Counter()
    zero = faulty = 0
    for seed in range(300):
        mix = swarm_mix(seed, 7, behaviours=registry)
        assert len(mix.faults) <= 2
        members = [int(text.partition("=")[0]) for text in mix.faults]
        assert len(set(members)) == len(members) and all(0 <= m < 7 for m in members)
        faulty += bool(members)
        zero += 0 in members
        for text in mix.faults:
            name = text.partition("=")[2].partition(":")[0]
            seen[name] += 1
            if name == "fake":
                match = re.fullmatch(r"\d=fake:p=([0-9.]+),to=all,k=3,width=2.5", text)
                assert match, text
                assert 0.05 <= float(match[1]) <= 0.5
            else:
                match = re.fullmatch(r"\d=fake-crash:at=([0-9.]+),drop_p=([0-9.]+)", text)
                assert match, text
                assert 0.0 <= float(match[1]) <= 1.0
                assert 0.05 <= float(match[2]) <= 0.5
        parse_net(mix.net, 7)
    assert set(seen) == {"fake", "fake-crash"}  # never "needy", never "role-bound"
    assert 0.2 < zero / faulty < 0.47  # the first sequencer about one time in three


def test_swarm_networks() -> None:
    nets = [parse_net(swarm_mix(seed, 4).net, 4) for seed in range(200)]
    lossy = [net for net in nets if net.loss]
    assert 60 < len(lossy) < 140
    assert {net.loss for net in lossy} == {0.02, 0.05, 0.1}
    assert {net.gst for net in lossy} == {1.0, 2.0}
    assert {net.dup for net in nets} == {0.0, 0.02}
    assert {net.delay_max for net in nets} == {0.005, 0.02, 0.05}
    partitioned = [net for net in nets if net.partitions]
    assert 25 < len(partitioned) < 80
    assert all(p.start < p.end <= net.gst for net in partitioned for p in net.partitions)


def test_swarm_with_no_usable_behaviour_has_no_faults() -> None:
    registry: Mapping[str, Behaviour] = {"needy": _fake_registry()["needy"]}
    assert all(swarm_mix(s, 7, behaviours=registry).faults == () for s in range(20))


def test_client_mixes_are_drawn_per_seed_and_resolve(tmp_path: Path) -> None:
    mixes = [client_mix(seed, 4) for seed in range(30)]
    assert mixes == [client_mix(seed, 4) for seed in range(30)]
    assert len({(m.faults, m.client_faults, m.client_in_flight) for m in mixes}) > 10
    for mix in mixes:
        faults, _ = mix.resolve(4)
        assert len(faults) <= 1 and mix.clients == 4
        assert len(mix.client_specs(4)) <= 2
    assert client_mix(1, 3).faults == ()  # n=3 tolerates no faulty member
    with pytest.raises(ConfigError, match="drawn per seed"):
        load_mixes(CLIENTS, 4)
    path = tmp_path / "clients.toml"
    path.write_text('name = "c"\nclients = 3\nclient_faults = ["1=flood:k=2"]\n')
    (mix,) = load_mixes(str(path), 4)
    assert (mix.clients, mix.client_faults) == (3, ("1=flood:k=2",))
    assert mix.describe().endswith("; 3 clients 1=flood:k=2")
    path.write_text('name = "c"\nclients = 1\nclient_faults = ["1=flood"]\n')
    with pytest.raises(ConfigError, match=r"outside 0\.\.0"):
        load_mixes(str(path), 4)
    path.write_text('name = "c"\nclients = -1\n')
    with pytest.raises(ConfigError, match="non-negative"):
        load_mixes(str(path), 4)
    with pytest.raises(ConfigError, match="one client fault per client"):
        Mix("twice", client_faults=("0=flood", "0=garbage")).client_specs(2)
