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


def test_a_fractional_count_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(_toml("", "checkpoint_interval = 1.5"))
    with pytest.raises(ConfigError, match="checkpoint_interval must be a positive integer"):
        load_cluster_config(tmp_path / "cluster.toml")
