"""btob's errors: one root, a subclass per party at fault, each raised where it says."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

import btob
from btob import (
    BtobError,
    ConfigError,
    DeliveryNotRetained,
    LogFormatError,
    MemberCrashed,
    WireError,
)


def test_every_error_is_a_btob_error_and_an_exception() -> None:
    assert issubclass(BtobError, Exception)
    for error in (ConfigError, WireError, LogFormatError, DeliveryNotRetained, MemberCrashed,
                  btob.PayloadTooLarge, btob.BacklogFull):
        assert issubclass(error, BtobError), error
    assert not issubclass(WireError, ConfigError) and not issubclass(ConfigError, WireError)


def test_delivery_not_retained_names_the_index_and_the_oldest_kept() -> None:
    error = DeliveryNotRetained(3, 10)
    assert (error.index, error.oldest) == (3, 10)
    assert str(error) == ("delivery 3 is no longer retained (the oldest kept is 10; what lies "
                          "below it is in the snapshot, which restores an app)")


def test_each_party_at_fault_gets_its_own_error(tmp_path: Path) -> None:
    from btob.core.wire import decode_frame
    from btob.sim.logs import read_log_dir

    with pytest.raises(WireError):
        decode_frame(b"\x00 not a frame")  # a peer's fault
    with pytest.raises(ConfigError):
        btob.Quorums.for_cluster(3, 1)  # the user's
    with pytest.raises(LogFormatError, match="nowhere"):
        read_log_dir(tmp_path / "nowhere")  # a log directory's


def test_errors_pickle_across_processes_and_copy() -> None:
    for error in (ConfigError("bad"), WireError("short"), MemberCrashed("down"),
                  DeliveryNotRetained(3, 10)):
        for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
            assert type(again) is type(error) and str(again) == str(error)
    error = DeliveryNotRetained(3, 10)
    error.add_note("while reading deliveries")
    again = pickle.loads(pickle.dumps(error))
    assert (again.index, again.oldest) == (3, 10)
    assert again.__notes__ == ["while reading deliveries"]
