"""cluster.toml: what members must agree on - keys and addresses, f, the reliable broadcast,
the variant and the cluster-wide settings - and how a member's own settings meet it."""

from __future__ import annotations

from pathlib import Path

import pytest

from btob import (
    ClusterConfig,
    ConfigError,
    MemberAddress,
    Settings,
    load_cluster_config,
    write_cluster_config,
)
from btob.core.settings import CLUSTER_SETTINGS

from ..helpers import Keys

KEYS = Keys(4)
ADDRESSES = tuple(MemberAddress("127.0.0.1", 7000 + i) for i in range(4))


def _config(**kwargs: object) -> ClusterConfig:
    return ClusterConfig(b"cfg", KEYS.registry, ADDRESSES, **kwargs)  # type: ignore[arg-type]


def test_the_protocol_round_trips_through_the_file(tmp_path: Path) -> None:
    config = _config(f=1, brb="echo", variant="uub",
                     settings=Settings(checkpoint_interval=8, slot_window=64))
    write_cluster_config(tmp_path / "cluster.toml", config)
    text = (tmp_path / "cluster.toml").read_text()
    assert 'brb = "echo"' in text and 'variant = "uub"' in text
    for name in CLUSTER_SETTINGS:  # every cluster-wide field spelled out
        assert f"\n{name} = " in text
    assert load_cluster_config(tmp_path / "cluster.toml") == config


def test_a_file_of_before_reads_with_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(_toml())
    config = load_cluster_config(tmp_path / "cluster.toml")
    assert (config.brb, config.variant, config.settings) == ("bracha", "bb", Settings())


def _toml(top: str = "", settings: str = "") -> str:
    lines = ['cluster_id = "t"', top]
    if settings:
        lines += ["[settings]", settings]
    for i, key in enumerate(KEYS.registry.public_keys):
        lines += ["[[member]]", f"id = {i}", f'public_key = "{key.hex()}"',
                  'host = "127.0.0.1"', f"port = {7000 + i}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("top", "settings", "named"), [
    ('brb = "gossip"', "", "gossip"),
    ('variant = "token"', "", "token"),
    ("brb = 3", "", "brb must be a string"),
    ("", "view_change_timeout_s = 0.5", "settings.view_change_timeout_s is a member's"),
    ("", "warp_factor = 9", "settings.warp_factor is not a setting"),
    ("", 'checkpoint_interval = "16"', "settings.checkpoint_interval must be a number"),
    ("", "checkpoint_interval = 0", "checkpoint_interval must be a positive number"),
])
def test_bad_protocol_entries_name_the_field(tmp_path: Path, top: str, settings: str,
                                             named: str) -> None:
    (tmp_path / "cluster.toml").write_text(_toml(top, settings))
    with pytest.raises(ConfigError, match=named):
        load_cluster_config(tmp_path / "cluster.toml")


@pytest.mark.parametrize("name", ["payload_bytes_max", "frame_bytes_max", "brb_window"])
def test_a_bound_that_is_not_a_number_is_refused(tmp_path: Path, name: str) -> None:
    # TOML spells NaN "nan"; every comparison with it is false, so it would disable the bound.
    (tmp_path / "cluster.toml").write_text(_toml(settings=f"{name} = nan"))
    with pytest.raises(ConfigError, match=f"{name} must be a positive number, got nan"):
        load_cluster_config(tmp_path / "cluster.toml")


def test_a_members_own_settings_must_agree_on_every_cluster_wide_field() -> None:
    config = _config(settings=Settings(checkpoint_interval=8))
    assert config.member_settings(None) == config.settings
    own = Settings(checkpoint_interval=8, view_change_timeout_s=0.3)  # local tuning: fine
    assert config.member_settings(own) is own
    with pytest.raises(ConfigError, match="checkpoint_interval is cluster-wide"):
        config.member_settings(Settings(view_change_timeout_s=0.3))  # interval 16 != 8
    with pytest.raises(ConfigError, match="variant 'ub' disagrees"):
        config.agreed("variant", "ub")
    assert config.agreed("brb", None) == "bracha"


def test_the_vote_mode_round_trips_through_the_file(tmp_path: Path) -> None:
    config = _config(settings=Settings(votes="linear", checkpoint_interval=8))
    write_cluster_config(tmp_path / "cluster.toml", config)
    assert '\nvotes = "linear"\n' in (tmp_path / "cluster.toml").read_text()
    loaded = load_cluster_config(tmp_path / "cluster.toml")
    assert loaded == config and loaded.settings.votes == "linear"
    (tmp_path / "cluster.toml").write_text(_toml(settings='votes = "linear"'))
    assert load_cluster_config(tmp_path / "cluster.toml").settings == Settings(votes="linear")
    assert loaded.agreed("votes", None) == loaded.agreed("votes", "linear") == "linear"
    with pytest.raises(ConfigError) as exc:
        loaded.agreed("votes", "all")
    assert str(exc.value) == ("votes 'all' disagrees with the cluster's votes 'linear' (set it "
                              "in cluster.toml's [settings])")


@pytest.mark.parametrize(("value", "message"), [
    ("5", "settings.votes must be a string"),
    ("true", "settings.votes must be a string"),
    ('"quadratic"', "settings: setting votes must be one of all, linear, got 'quadratic'"),
])
def test_a_vote_mode_that_is_not_one_is_refused_in_one_line(tmp_path: Path, value: str,
                                                             message: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(_toml(settings=f"votes = {value}"))
    with pytest.raises(ConfigError) as exc:
        load_cluster_config(path)
    assert str(exc.value) == f"cluster config {path} is malformed: {message}"


def test_a_fractional_count_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(_toml("", "checkpoint_interval = 1.5"))
    with pytest.raises(ConfigError, match="checkpoint_interval must be a positive integer"):
        load_cluster_config(tmp_path / "cluster.toml")


# -- clients ----------------------------------------------------------------------------------

CLIENT_KEYS = tuple(Keys(7).registry.public_keys[4:])  # three keys that are not members'


def _client_toml(top: str = "", clients: str = "", member_extra: str = "") -> str:
    lines = ['cluster_id = "t"', top]
    for i, key in enumerate(KEYS.registry.public_keys):
        lines += ["[[member]]", f"id = {i}", f'public_key = "{key.hex()}"',
                  'host = "127.0.0.1"', f"port = {7000 + i}",
                  member_extra.replace("{i}", str(i))]
    lines.append(clients)
    return "\n".join(lines) + "\n"


def _clients_table(keys: tuple[bytes, ...] = CLIENT_KEYS, ids: tuple[int, ...] = ()) -> str:
    ids = ids or tuple(range(len(keys)))
    return "\n".join(f'[[client]]\nid = {j}\npublic_key = "{k.hex()}"'
                     for j, k in zip(ids, keys, strict=True))


def test_clients_and_client_ports_round_trip_through_the_file(tmp_path: Path) -> None:
    listed = _config(client_keys=CLIENT_KEYS, client_addresses=tuple(
        MemberAddress("127.0.0.1", 8000 + i) for i in range(4)))
    opened = _config(clients_open=True, client_addresses=(
        None, MemberAddress("127.0.0.1", 8001), None, None))
    for config in (listed, opened):
        write_cluster_config(tmp_path / "cluster.toml", config)
        assert load_cluster_config(tmp_path / "cluster.toml") == config
    text = (tmp_path / "cluster.toml").read_text()
    assert 'clients = "open"' in text and text.count("client_port") == 1
    assert listed.client_admission().admits(CLIENT_KEYS[2])
    assert not listed.client_admission().admits(KEYS.registry.public_keys[0])
    assert opened.client_admission().admits(b"\x07" * 32)
    assert listed.client_address(3) == MemberAddress("127.0.0.1", 8003)
    assert opened.client_address(0) is None


def test_a_file_without_clients_admits_none_and_serves_none(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(_toml())
    config = load_cluster_config(tmp_path / "cluster.toml")
    assert (config.client_keys, config.clients_open, config.client_addresses) == ((), False, ())
    assert [config.client_address(i) for i in range(4)] == [None] * 4
    assert not config.client_admission().admits(CLIENT_KEYS[0])
    # no client ports at all reads the same as a config made without them
    assert config == ClusterConfig(b"t", KEYS.registry, ADDRESSES,
                                   client_addresses=(None,) * 4)


def test_clients_in_the_file_are_ordered_by_id(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(_client_toml(clients=_clients_table(
        CLIENT_KEYS, (2, 0, 1))))
    config = load_cluster_config(tmp_path / "cluster.toml")
    assert config.client_keys == (CLIENT_KEYS[1], CLIENT_KEYS[2], CLIENT_KEYS[0])


@pytest.mark.parametrize(("top", "clients", "member_extra", "named"), [
    ('clients = "closed"', "", "", 'clients must be "open"'),
    ("clients = true", "", "", 'clients must be "open"'),
    ('clients = "open"', _clients_table(), "", "exclude each other"),
    ("client = 3", "", "", "client must be an array of tables"),
    ("", "[[client]]\nid = 0", "", r"client 0: public_key is missing"),
    ("", f'[[client]]\nid = 0\npublic_key = "{CLIENT_KEYS[0].hex()}"\nname = "x"', "",
     "client 0: unknown key name"),
    ("", f'[[client]]\nid = "a"\npublic_key = "{CLIENT_KEYS[0].hex()}"', "",
     "client entry 0: id must be an integer"),
    ("", '[[client]]\nid = 0\npublic_key = "abc"', "",
     "client 0: public_key must be 64 hex characters"),
    ("", _clients_table(ids=(0, 2, 3)), "", "client ids must be 0..K-1"),
    ("", _clients_table((CLIENT_KEYS[0], CLIENT_KEYS[0])), "", "listed twice"),
    ("", "", 'client_port = "8000"', "member 0: client_port must be an integer"),
    ("", "", "client_port = 70000", "member 0: client_port 70000 is out of range"),
    ("", "", "client_port = 0", "member 0: client_port 0 is out of range"),
    ("", "", "client_port = 700{i}", "member 0: client_port 7000 is also member 0's port"),
    ("", "", "client_port = 8000", "member 1: client_port 8000 is also member 0's "
                                   "client_port"),
    ("", "", "client_host = 1", "member 0: unknown key client_host"),
])
def test_bad_client_entries_name_the_field(tmp_path: Path, top: str, clients: str,
                                           member_extra: str, named: str) -> None:
    (tmp_path / "cluster.toml").write_text(_client_toml(top, clients, member_extra))
    with pytest.raises(ConfigError, match=named) as caught:
        load_cluster_config(tmp_path / "cluster.toml")
    assert "\n" not in str(caught.value)


def test_a_config_made_in_code_is_checked_for_clients_too() -> None:
    with pytest.raises(ConfigError, match="open or listed"):
        _config(clients_open=True, client_keys=CLIENT_KEYS)
    with pytest.raises(ConfigError, match="32 bytes"):
        _config(client_keys=(b"short",))
    with pytest.raises(ConfigError, match="listed twice"):
        _config(client_keys=(CLIENT_KEYS[0], CLIENT_KEYS[0]))
    with pytest.raises(ConfigError, match="every member or none"):
        _config(client_addresses=(MemberAddress("127.0.0.1", 8000),))


def test_client_ports_on_another_host_cannot_be_written(tmp_path: Path) -> None:
    config = _config(client_addresses=(MemberAddress("10.0.0.1", 8000), None, None, None))
    with pytest.raises(ConfigError, match=r"host 10\.0\.0\.1"):
        write_cluster_config(tmp_path / "cluster.toml", config)
    assert not (tmp_path / "cluster.toml").exists()
