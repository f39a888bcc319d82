"""Settings: every bound validated, the rules between them, the cluster-wide fields, and
``--setting NAME=VALUE`` overrides."""

from __future__ import annotations

import attrs
import pytest

from btob import ConfigError, Settings
from btob.core.settings import CLUSTER_SETTINGS, VOTE_MODES, settings_with

FIELDS = {a.name: a for a in attrs.fields(Settings)}
NON_NEGATIVE = {"batch_delay_s"}
MODES = {"votes"}  # a choice among names, not a bound
POSITIVE = sorted(set(FIELDS) - NON_NEGATIVE - MODES)


def test_the_defaults_are_valid_and_positive() -> None:
    settings = Settings()
    assert all(getattr(settings, name) > 0 for name in POSITIVE)
    assert settings.batch_delay_s == 0


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("value", [0, -1, True, "1", None, float("nan")])
def test_every_positive_bound_refuses_what_is_not_a_positive_number(name: str,
                                                                    value: object) -> None:
    with pytest.raises(ConfigError, match=f"setting {name} must be a positive number"):
        Settings(**{name: value})  # type: ignore[arg-type]


def test_the_batch_delay_may_be_zero_but_not_negative() -> None:
    assert Settings(batch_delay_s=0.0).batch_delay_s == 0.0
    assert Settings(batch_delay_s=0.5).batch_delay_s == 0.5
    for bad in (-0.001, True, "0", float("nan")):
        with pytest.raises(ConfigError, match="batch_delay_s must be zero or positive"):
            Settings(batch_delay_s=bad)  # type: ignore[arg-type]


def test_the_vote_mode_is_one_of_the_modes_and_cluster_wide() -> None:
    assert Settings().votes == "all" and VOTE_MODES == ("all", "linear")
    assert Settings(votes="linear").votes == "linear"
    assert "votes" in CLUSTER_SETTINGS
    for bad in ("Linear", "", 5, None, True):
        with pytest.raises(ConfigError) as exc:
            Settings(votes=bad)  # type: ignore[arg-type]
        assert str(exc.value) == f"setting votes must be one of all, linear, got {bad!r}"
    assert Settings().disagreement(Settings(votes="linear")) == "votes='all' vs votes='linear'"


def test_an_override_sets_the_vote_mode_as_text() -> None:
    assert settings_with(Settings(), ["votes=linear"]).votes == "linear"
    assert settings_with(Settings(), [" votes = linear "]).votes == "linear"
    with pytest.raises(ConfigError) as exc:
        settings_with(Settings(), ["votes=some"])
    assert str(exc.value) == "--setting: setting votes must be one of all, linear, got 'some'"


@pytest.mark.parametrize(("fields", "rule"), [
    ({"payload_bytes_max": 2000, "batch_bytes_max": 1000}, "payload_bytes_max must not exceed"),
    ({"frame_bytes_max": 2 * 512 * 1024 - 1}, "frame_bytes_max must be at least 2"),
    ({"log_retention_slots": 31, "checkpoint_interval": 16}, "log_retention_slots must be"),
    ({"slot_window": 15, "checkpoint_interval": 16}, "slot_window must be at least"),
    ({"deliveries_retained_max": 64 * 1024 - 1}, "deliveries_retained_max must be at least"),
    ({"deliveries_retained_bytes_max": 64 * 512 * 1024 - 1},
     "deliveries_retained_bytes_max must be at least"),
])
def test_the_rules_between_bounds_are_enforced(fields: dict[str, int], rule: str) -> None:
    with pytest.raises(ConfigError, match=rule):
        Settings(**fields)  # type: ignore[arg-type]


def test_the_rules_between_bounds_hold_at_their_edges() -> None:
    Settings(payload_bytes_max=1000, batch_bytes_max=1000, frame_bytes_max=2000,
             deliveries_retained_bytes_max=64 * 1000)
    Settings(log_retention_slots=32, checkpoint_interval=16, slot_window=16)
    Settings(deliveries_retained_max=64 * 1024)


def test_cluster_wide_fields_are_those_members_judge_each_other_by() -> None:
    assert set(CLUSTER_SETTINGS) == {n for n, a in FIELDS.items()
                                     if a.metadata.get("scope") == "cluster"}
    for name in ("payload_bytes_max", "batch_bytes_max", "checkpoint_interval",
                 "frame_bytes_max", "slot_window", "brb_window"):
        assert name in CLUSTER_SETTINGS
    for name in ("view_change_timeout_s", "batch_delay_s", "retransmit_interval_s",
                 "deliveries_retained_max"):
        assert name not in CLUSTER_SETTINGS  # a member's own tuning
    settings = Settings(checkpoint_interval=32, log_retention_slots=2048)
    assert settings.cluster_wide() == {n: getattr(settings, n) for n in CLUSTER_SETTINGS}


def test_disagreement_names_the_first_cluster_wide_field_that_differs() -> None:
    mine = Settings()
    assert mine.disagreement(Settings()) is None
    assert mine.disagreement(Settings(view_change_timeout_s=9.0, batch_delay_s=1.0)) is None
    theirs = Settings(checkpoint_interval=32, brb_window=10)
    first = next(n for n in CLUSTER_SETTINGS if n in ("checkpoint_interval", "brb_window"))
    assert mine.disagreement(theirs) == (
        f"{first}={getattr(mine, first)!r} vs {first}={getattr(theirs, first)!r}")


def test_overrides_set_int_and_float_fields() -> None:
    base = Settings()
    changed = settings_with(base, ["checkpoint_interval=32", "view_change_timeout_s=0.25",
                                   " batch_delay_s =0.001"])
    assert changed.checkpoint_interval == 32 and type(changed.checkpoint_interval) is int
    assert changed.view_change_timeout_s == 0.25
    assert changed.batch_delay_s == 0.001
    assert settings_with(base, []) == base


@pytest.mark.parametrize(("text", "message"), [
    ("speed=3", "--setting 'speed=3': Settings has no field 'speed'"),
    ("checkpoint_interval", "--setting 'checkpoint_interval': Settings has no field"),
    ("checkpoint_interval=fast",
     "--setting 'checkpoint_interval=fast': 'fast' is not a whole number"),
    ("checkpoint_interval=1.5", "'1.5' is not a whole number"),  # an int field takes integers
    ("checkpoint_interval=0", "--setting: setting checkpoint_interval must be a positive"),
    ("view_change_timeout_s=nan", "--setting: setting view_change_timeout_s must be a positive"),
    ("slot_window=2", "--setting: slot_window must be at least checkpoint_interval"),
])
def test_a_bad_override_is_one_line_naming_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_with(Settings(), [text])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_overrides_error_names_where_they_came_from() -> None:
    with pytest.raises(ConfigError, match=r"^cluster\.toml 'x=1'"):
        settings_with(Settings(), ["x=1"], what="cluster.toml")


@pytest.mark.parametrize("name", [a.name for a in attrs.fields(Settings)
                                  if a.type in (int, "int")])
def test_a_count_must_be_a_whole_number(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be a positive integer"):
        Settings(**{name: getattr(Settings(), name) + 0.5})


def test_a_whole_number_setting_given_as_text_must_be_one() -> None:
    with pytest.raises(ConfigError, match="is not a whole number"):
        settings_with(Settings(), ["checkpoint_interval=1.5"])
    assert settings_with(Settings(), ["view_change_timeout_s=2"]).view_change_timeout_s == 2.0


def test_snapshot_chunks_are_cluster_wide_and_fit_a_frame() -> None:
    # The chunk size changes every state root, the bound what a member fetches or serves:
    # both must be everybody's. How many chunks one member asks for at once is its own.
    assert {"snapshot_chunk_bytes", "snapshot_bytes_max"} <= set(CLUSTER_SETTINGS)
    assert "transfer_chunks_in_flight" not in CLUSTER_SETTINGS
    defaults = Settings()
    assert (defaults.snapshot_chunk_bytes, defaults.snapshot_bytes_max,
            defaults.transfer_chunks_in_flight) == (64 * 1024, 256 * 1024 * 1024, 4)
    assert defaults.chunk_bytes == 64 * 1024
    small_frames = Settings(frame_bytes_max=1024 * 1024, batch_bytes_max=256 * 1024,
                            payload_bytes_max=1024, snapshot_chunk_bytes=512 * 1024,
                            deliveries_retained_bytes_max=64 * 256 * 1024)
    assert small_frames.chunk_bytes == 256 * 1024  # a chunk and its proof fit a frame


def test_own_batches_in_flight_must_fit_half_the_instance_window() -> None:
    """Regression: own_batches_in_flight_max=65 with brb_window=64 tripped the core's own
    assertion (an own instance outside its window); the setting is refused instead."""
    Settings(own_batches_in_flight_max=32, brb_window=64)
    with pytest.raises(ConfigError, match="own_batches_in_flight_max must be at most"):
        Settings(own_batches_in_flight_max=33, brb_window=64)
