"""The durable input log: group commits, replay in order, and the identity of a data
directory - a directory reopened under another configuration is refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from btob import ClusterConfig, ConfigError, MemberAddress, Settings, open_node
from btob.runtime.memory import MemoryNetwork
from btob.runtime.node import member_identity
from btob.runtime.store import INPUT_RECEIVE, INPUT_SUBMIT, INPUT_TICK, InputLog, identity_of

from ..helpers import Keys

KEYS = Keys(4)


def _config(**kwargs: object) -> ClusterConfig:
    return ClusterConfig(b"store", KEYS.registry,
                         tuple(MemberAddress("memory", 1) for _ in range(4)),
                         **kwargs)  # type: ignore[arg-type]


def _identity(**changes: object) -> dict[str, object]:
    base: dict[str, object] = dict(cluster_id=b"store", member=0, public_key=b"k", n=4, f=1,
                                   brb="bracha", variant="bb", settings=Settings())
    base.update(changes)
    return identity_of(**base)  # type: ignore[arg-type]


def test_inputs_replay_in_the_order_they_were_committed(tmp_path: Path) -> None:
    log = InputLog(tmp_path, identity=_identity())
    log.append([(INPUT_SUBMIT, 0.5, b"p"), (INPUT_RECEIVE, 0.6, b"frame")])
    log.append([])
    log.append([(INPUT_TICK, 0.7, b"")])
    log.close()
    again = InputLog(tmp_path, identity=_identity())
    assert list(again.replay()) == [(INPUT_SUBMIT, 0.5, b"p"), (INPUT_RECEIVE, 0.6, b"frame"),
                                    (INPUT_TICK, 0.7, b"")]
    assert again.count(INPUT_SUBMIT) == 1 and again.last_time() == 0.7
    again.close()


@pytest.mark.parametrize(("change", "named"), [
    ({"brb": "echo"}, "brb='bracha', and this node runs brb='echo'"),
    ({"variant": "ub"}, "variant='bb', and this node runs variant='ub'"),
    ({"settings": Settings(checkpoint_interval=8)}, "settings.checkpoint_interval=16"),
    ({"settings": Settings(view_change_timeout_s=0.5)}, "settings.view_change_timeout_s"),
    ({"f": 0}, "f=1"),
    ({"member": 1}, "another member or cluster (member differs)"),
    ({"cluster_id": b"other"}, "another member or cluster (cluster_id differs)"),
])
def test_another_configuration_is_refused_naming_the_field(
        tmp_path: Path, change: dict[str, object], named: str) -> None:
    InputLog(tmp_path, identity=_identity()).close()
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        InputLog(tmp_path, identity=_identity(**change))


def test_settings_that_cannot_change_a_replay_may_change(tmp_path: Path) -> None:
    InputLog(tmp_path, identity=_identity()).close()
    relaxed = Settings(deliveries_retained_max=300_000, verify_cache_entries_max=10)
    InputLog(tmp_path, identity=_identity(settings=relaxed)).close()


def test_a_directory_of_an_older_btob_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "inputs.sqlite")
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);")
    db.execute("INSERT INTO meta VALUES ('identity', ?)", (bytes(32),))
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="older btob"):
        InputLog(tmp_path, identity=_identity())


async def test_a_node_reopened_with_another_variant_is_refused(tmp_path: Path) -> None:
    """Regression: replaying a member under another configuration rebuilt a different member
    (30 deliveries came back as 1, 2 or 8) - it must be refused before anything runs."""
    network = MemoryNetwork(4)
    config = _config()
    async with open_node(config, 3, KEYS.keys[3], transport=network.endpoints[3],
                         data_dir=tmp_path) as node:
        await node.broadcast(b"x")
    for other, named in ((_config(variant="ub"), "variant"),
                         (_config(brb="echo"), "brb"),
                         (_config(settings=Settings(checkpoint_interval=32)),
                          "settings.checkpoint_interval")):
        with pytest.raises(ConfigError, match=f"was created with {named}="):
            async with open_node(other, 3, KEYS.keys[3], transport=network.endpoints[3],
                                 data_dir=tmp_path):
                pass
    # and the same configuration still opens it
    async with open_node(config, 3, KEYS.keys[3], transport=MemoryNetwork(4).endpoints[3],
                         data_dir=tmp_path) as node:
        assert node.submitted_before_start == 1
    assert member_identity(config, 3)["variant"] == "bb"
    await trio.lowlevel.checkpoint()
