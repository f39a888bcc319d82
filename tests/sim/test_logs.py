"""The log directory format: round trips, deterministic bytes, strict and precise errors."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import attrs
import pytest

import btob.sim.logs
from btob._errors import LogFormatError
from btob.sim.logs import (
    MAX_LINE_BYTES,
    BroadcastRecord,
    ClientInfo,
    DeliveryRecord,
    LogAppender,
    LogDir,
    MemberInfo,
    ReceiptRecord,
    RunInfo,
    SettledRecord,
    client_parts,
    next_delivery_index,
    read_log_dir,
    write_log_dir,
    write_run_info,
)


def digest(msg_id: str) -> str:
    origin, counter = msg_id.split(":")
    return hashlib.sha256(f"p-{origin}-{counter}".encode()).hexdigest()


def bcast(msg_id: str) -> BroadcastRecord:
    return BroadcastRecord(msg_id=msg_id, digest=digest(msg_id))


def dlv(index: int, msg_id: str) -> DeliveryRecord:
    return DeliveryRecord(
        index=index, msg_id=msg_id, origin=int(msg_id.split(":")[0]), digest=digest(msg_id)
    )


def sample_run(n: int = 3, *, complete: bool = True) -> RunInfo:
    members = {m: MemberInfo(honest=m != 2, crashed=m == 1) for m in range(n)}
    return RunInfo(
        n=n, f=1, complete=complete, members=members, extra={"seed": 7, "net": {"loss": 0.05}}
    )


def write_sample(path: Path) -> LogDir:
    order = ["0:0", "1:0", "0:1"]
    broadcasts = {0: [bcast("0:0"), bcast("0:1")], 1: [bcast("1:0")]}
    deliveries = {0: [dlv(i, m) for i, m in enumerate(order)], 1: [dlv(0, "0:0")]}
    write_log_dir(path, sample_run(), broadcasts, deliveries)
    return LogDir(
        run=sample_run(),
        broadcasts={0: broadcasts[0], 1: broadcasts[1], 2: ()},
        deliveries={0: deliveries[0], 1: deliveries[1], 2: ()},
    )


def line(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def test_round_trip(tmp_path: Path) -> None:
    expected = write_sample(tmp_path / "a" / "b")
    got = read_log_dir(tmp_path / "a" / "b")
    assert got == expected
    assert got.run.extra == {"seed": 7, "net": {"loss": 0.05}}
    assert got.run.members[1] == MemberInfo(honest=True, crashed=True)
    assert not got.run.members[1].correct and got.run.members[0].correct
    assert got.deliveries[2] == ()


def test_write_is_deterministic(tmp_path: Path) -> None:
    write_sample(tmp_path / "one")
    write_sample(tmp_path / "two")
    write_sample(tmp_path / "two")  # overwriting gives the same bytes again
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "node-2.deliver.jsonl" in names  # written even when empty
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "one" / "node-2.deliver.jsonl").read_bytes() == b""
    first = (tmp_path / "one" / "node-0.deliver.jsonl").read_text().splitlines(keepends=True)[0]
    assert first == line({"index": 0, "msg_id": "0:0", "origin": 0, "digest": digest("0:0")})
    run_text = (tmp_path / "one" / "run.json").read_text()
    assert run_text == json.dumps(sample_run().to_json(), sort_keys=True, indent=2) + "\n"


def test_missing_node_files_read_as_empty(tmp_path: Path) -> None:
    write_run_info(tmp_path, sample_run())
    log = read_log_dir(tmp_path)
    assert all(log.broadcasts[m] == () and log.deliveries[m] == () for m in range(3))


def test_members_writing_run_json_at_once_do_not_trip_each_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The members of one run create ``run.json`` together: another writer may run between
    one writer's write and its rename. Neither fails, the first creator wins, and no
    temporary file stays behind."""
    real_replace, real_link = os.replace, os.link
    first, second = sample_run(), sample_run(complete=False)

    def replace_after_another(src: str, dst: str) -> None:
        monkeypatch.setattr(btob.sim.logs.os, "replace", real_replace)
        write_run_info(tmp_path, second)  # the other writer, between write and rename
        real_replace(src, dst)

    monkeypatch.setattr(btob.sim.logs.os, "replace", replace_after_another)
    assert write_run_info(tmp_path, first)
    assert read_log_dir(tmp_path).run == first  # the later rename wins

    def link_after_another(src: str, dst: str) -> None:
        monkeypatch.setattr(btob.sim.logs.os, "link", real_link)
        assert write_run_info(tmp_path / "new", second, replace=False)
        real_link(src, dst)

    monkeypatch.setattr(btob.sim.logs.os, "link", link_after_another)
    assert not write_run_info(tmp_path / "new", first, replace=False)
    assert read_log_dir(tmp_path / "new").run == second  # created once, by the first
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["run.json"] * 2
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o644


def test_missing_directory_and_run_json(tmp_path: Path) -> None:
    with pytest.raises(LogFormatError, match="no such log directory"):
        read_log_dir(tmp_path / "nope")
    with pytest.raises(LogFormatError, match=r"run\.json: missing"):
        read_log_dir(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"n": 3,\n "f": 1,,}', r"run\.json:2: malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"n": "3", "f": 1, "complete": true, "members": {}}', "key 'n' must be"),
        ('{"n": 1, "f": 1.5, "complete": true, "members": {}}', "key 'f' must be"),
        ('{"n": 1, "f": 0, "complete": 1, "members": {"0": {}}}', "key 'members.0' must be"),
        (
            '{"n": 1, "f": 0, "complete": 1, "members": {"0": {"honest": true, "crashed": false}}}',
            "key 'complete' must be",
        ),
        (
            '{"n": 1, "f": 0, "complete": true, "members": {"0": {"honest": 1, "crashed": false}}}',
            "key 'members.0': key 'honest' must be",
        ),
        ('{"f": 0, "complete": true, "members": {}}', "missing key 'n'"),
        ('{"n": 1, "n": 1}', "duplicate key 'n'"),
    ],
)
def test_run_json_errors_name_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(LogFormatError, match=match) as info:
        read_log_dir(tmp_path)
    assert str(tmp_path / "run.json") in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (["0", "1", "3"], "member id 3 is outside 0..2"),
        (["0", "1"], r"lacks member ids \[2\]"),
        (["0", "1", "x"], "member id 'x' is not an integer"),
        (["0", "1", "02"], "member id '02' is not an integer"),
    ],
)
def test_member_ids_must_be_exactly_0_to_n_minus_1(
    tmp_path: Path, ids: list[str], match: str
) -> None:
    members = {i: {"honest": True, "crashed": False} for i in ids}
    (tmp_path / "run.json").write_text(
        json.dumps({"n": 3, "f": 0, "complete": True, "members": members})
    )
    with pytest.raises(LogFormatError, match=match) as info:
        read_log_dir(tmp_path)
    assert "run.json" in str(info.value)


def test_extra_node_file_is_refused(tmp_path: Path) -> None:
    write_sample(tmp_path)
    (tmp_path / "node-3.deliver.jsonl").write_text("")
    with pytest.raises(
        LogFormatError,
        match=r"node-3\.deliver\.jsonl: names member 3, but run\.json has members 0\.\.2",
    ):
        read_log_dir(tmp_path)


GOOD_DELIVERY = {"index": 0, "msg_id": "1:4", "origin": 1, "digest": digest("1:4")}


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("{not json\n", "malformed JSON"),
        ("[]\n", "expected a JSON object"),
        ("\n", "malformed JSON"),
        (line({**GOOD_DELIVERY, "index": "0"}), "key 'index' must be"),
        (line({**GOOD_DELIVERY, "index": True}), "key 'index' must be"),
        (line({**GOOD_DELIVERY, "index": -1}), "key 'index' must be"),
        (line({**GOOD_DELIVERY, "msg_id": "1-4"}), "key 'msg_id' must be"),
        (line({**GOOD_DELIVERY, "msg_id": "1:04", "origin": 1}), "key 'msg_id' must be"),
        (line({**GOOD_DELIVERY, "msg_id": 14}), "key 'msg_id' must be"),
        (line({**GOOD_DELIVERY, "digest": digest("1:4").upper()}), "key 'digest' must be"),
        (line({**GOOD_DELIVERY, "digest": "ab" * 31}), "key 'digest' must be"),
        (line({**GOOD_DELIVERY, "origin": 2}), "key 'origin' .* does not match msg_id '1:4'"),
        (line({**GOOD_DELIVERY, "origin": "1"}), "key 'origin' .* does not match"),
        (line({k: v for k, v in GOOD_DELIVERY.items() if k != "digest"}), "missing key 'digest'"),
    ],
)
def test_bad_delivery_line_names_file_and_line(tmp_path: Path, bad_line: str, match: str) -> None:
    write_sample(tmp_path)
    path = tmp_path / "node-1.deliver.jsonl"
    with path.open("a") as handle:
        handle.write(line({**GOOD_DELIVERY, "index": 1}))  # line 2 is fine
        handle.write(bad_line)  # line 3 is not
    with pytest.raises(LogFormatError, match=match) as info:
        read_log_dir(tmp_path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert "\n" not in str(info.value)


def test_bad_broadcast_line(tmp_path: Path) -> None:
    write_sample(tmp_path)
    path = tmp_path / "node-0.broadcast.jsonl"
    path.write_text(line({"msg_id": "0:0", "digest": "xyz"}))
    with pytest.raises(LogFormatError, match=rf"^{re.escape(str(path))}:1: key 'digest' must be"):
        read_log_dir(tmp_path)


def test_unknown_keys_in_lines_are_ignored(tmp_path: Path) -> None:
    write_sample(tmp_path)
    (tmp_path / "node-2.deliver.jsonl").write_text(line({**GOOD_DELIVERY, "view": 3}))
    assert read_log_dir(tmp_path).deliveries[2] == (dlv(0, "1:4"),)


@pytest.mark.parametrize("chunk_bytes", [1 << 22, 1 << 16])
def test_line_length_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(btob.sim.logs, "_CHUNK_BYTES", chunk_bytes)
    write_sample(tmp_path)
    path = tmp_path / "node-2.broadcast.jsonl"
    first, second = line(bcast("2:0").to_json()), line(bcast("2:1").to_json())
    padding = " " * (MAX_LINE_BYTES - len(first) + 1)  # pads a line to MAX_LINE_BYTES exactly
    path.write_text(first[:-1] + padding + "\n")
    assert read_log_dir(tmp_path).broadcasts[2] == (bcast("2:0"),)
    path.write_text(first + second[:-1] + padding + " \n")  # one byte too long
    with pytest.raises(LogFormatError, match=rf"^{re.escape(str(path))}:2: line longer than"):
        read_log_dir(tmp_path)


def test_records_validate_on_construction() -> None:
    with pytest.raises(ValueError, match="msg_id"):
        BroadcastRecord(msg_id="a:b", digest=digest("0:0"))
    with pytest.raises(ValueError, match="origin"):
        DeliveryRecord(index=0, msg_id="0:0", origin=1, digest=digest("0:0"))
    with pytest.raises(ValueError, match="members"):
        RunInfo(n=2, f=0, complete=True, members={0: MemberInfo(honest=True, crashed=False)})
    with pytest.raises(ValueError, match="extra keys"):
        RunInfo(n=1, f=0, complete=True, members={0: MemberInfo(True, False)}, extra={"n": 1})
    with pytest.raises(ValueError, match="deliveries"):
        LogDir(run=sample_run(), broadcasts={0: (), 1: (), 2: ()}, deliveries={0: ()})
    with pytest.raises(ValueError, match="outside"):
        write_log_dir("/nonexistent-never-created", sample_run(), {5: []}, {})


def test_run_info_json_round_trip_keeps_extra_keys() -> None:
    obj = {
        "n": 1,
        "f": 0,
        "complete": False,
        "members": {"0": {"honest": True, "crashed": False}},
        "variant": "bb",
        "faults": ["0=crash:at=1.5"],
    }
    run = RunInfo.from_json(obj, source="x")
    assert run.extra == {"variant": "bb", "faults": ["0=crash:at=1.5"]}
    assert run.to_json() == obj


def test_appender_appends_across_instances(tmp_path: Path) -> None:
    write_run_info(tmp_path, sample_run())
    with LogAppender(tmp_path, 0) as appender:
        appender.append_broadcast(bcast("0:0"))
        appender.append_delivery(dlv(0, "0:0"))
        appender.flush()
        # line-buffered: visible to a reader before close
        assert read_log_dir(tmp_path).deliveries[0] == (dlv(0, "0:0"),)
    appender.close()  # closing twice is harmless
    appender = LogAppender(tmp_path, 0)
    appender.append_broadcast(bcast("0:1"))
    appender.append_delivery(dlv(1, "0:1"))
    appender.close()
    log = read_log_dir(tmp_path)
    assert log.broadcasts[0] == (bcast("0:0"), bcast("0:1"))
    assert log.deliveries[0] == (dlv(0, "0:0"), dlv(1, "0:1"))
    assert (tmp_path / "node-0.deliver.jsonl").read_bytes().count(b"\n") == 2


def test_appender_drops_a_partial_last_line(tmp_path: Path) -> None:
    write_run_info(tmp_path, sample_run())
    path = tmp_path / "node-1.deliver.jsonl"
    # killed in the middle of writing its second line
    path.write_text(line(dlv(0, "0:0").to_json()) + line(dlv(1, "0:1").to_json())[:20])
    with LogAppender(tmp_path, 1) as appender:
        appender.append_delivery(dlv(1, "0:1"))
    assert read_log_dir(tmp_path).deliveries[1] == (dlv(0, "0:0"), dlv(1, "0:1"))
    path.write_text('{"index":')  # only a partial line
    with LogAppender(tmp_path, 1) as appender:
        appender.append_delivery(dlv(0, "0:0"))
    assert read_log_dir(tmp_path).deliveries[1] == (dlv(0, "0:0"),)


def test_reading_in_small_chunks_gives_the_same_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = write_sample(tmp_path)
    for chunk_bytes in (1, 7, 100, 4096):
        monkeypatch.setattr(btob.sim.logs, "_CHUNK_BYTES", chunk_bytes)
        assert read_log_dir(tmp_path) == expected


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    write_sample(tmp_path)
    (tmp_path / "node-2.deliver.jsonl").write_text(line(GOOD_DELIVERY).rstrip("\n"))
    assert read_log_dir(tmp_path).deliveries[2] == (dlv(0, "1:4"),)


def test_invalid_utf8_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sample(tmp_path)
    path = tmp_path / "node-0.deliver.jsonl"
    path.write_bytes(path.read_bytes() + b'{"msg_id": "\xff"}\n')
    for chunk_bytes in (1 << 22, 5):
        monkeypatch.setattr(btob.sim.logs, "_CHUNK_BYTES", chunk_bytes)
        with pytest.raises(LogFormatError, match=rf"^{re.escape(str(path))}:4: not valid UTF-8"):
            read_log_dir(tmp_path)


def test_values_pickle(tmp_path: Path) -> None:
    log = write_sample(tmp_path)
    assert pickle.loads(pickle.dumps(log)) == log


def test_the_log_continues_after_its_last_line(tmp_path: Path) -> None:
    assert next_delivery_index(tmp_path, 0) == 0
    with LogAppender(tmp_path, 0) as appender:
        appender.append_delivery(DeliveryRecord(0, "0:0", 0, digest("0:0")))
        appender.append_delivery(SettledRecord(1, 40, "transfer"))
        appender.flush()
        assert next_delivery_index(tmp_path, 0) == 40
        appender.append_delivery(DeliveryRecord(40, "1:0", 1, digest("1:0")))
    with (tmp_path / "node-0.deliver.jsonl").open("a") as handle:
        handle.write('{"index": 41')  # a killed writer's partial line
    assert next_delivery_index(tmp_path, 0) == 41
    with (tmp_path / "node-0.deliver.jsonl").open("a") as handle:
        handle.write('\n{"settled": [41], "by": "transfer"}\n')
    with pytest.raises(LogFormatError, match="settled"):
        next_delivery_index(tmp_path, 0)


@pytest.mark.parametrize("line", ['{"settled": [3, 3], "by": "transfer"}',
                                  '{"settled": [-1, 3], "by": "transfer"}',
                                  '{"settled": [1, 3]}', '{"settled": 3, "by": "x"}',
                                  '{"settled": [1, 3], "by": ""}'])
def test_a_bad_settled_line_is_refused_naming_its_line(tmp_path: Path, line: str) -> None:
    write_sample(tmp_path)
    with (tmp_path / "node-1.deliver.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(LogFormatError, match=r"node-1\.deliver\.jsonl:\d+: .*key"):
        read_log_dir(tmp_path)


# -- clients --------------------------------------------------------------------------------


KEY = "ab" * 32
CLIENT_ID = f"c{KEY}.7:3"


def _client_dir() -> LogDir:
    run = RunInfo(n=1, f=0, complete=True, members={0: MemberInfo(honest=True, crashed=False)},
                  clients={0: ClientInfo(honest=True, key=KEY),
                           1: ClientInfo(honest=False, key="cd" * 32)})
    delivered = DeliveryRecord(0, CLIENT_ID, -1, "0" * 64, slot=4)
    return LogDir(run=run, broadcasts={0: ()}, deliveries={0: (delivered,)},
                  client_broadcasts={0: (BroadcastRecord(CLIENT_ID, "0" * 64),)},
                  receipts={0: (ReceiptRecord(CLIENT_ID, slot=4, index=0, member=0),)})


def test_client_message_ids_slots_and_receipts_round_trip(tmp_path: Path) -> None:
    logs = _client_dir()
    write_log_dir(tmp_path, logs.run, logs.broadcasts, logs.deliveries,
                  client_broadcasts=logs.client_broadcasts, receipts=logs.receipts)
    assert read_log_dir(tmp_path) == attrs_evolve_clients(logs)
    line = (tmp_path / "node-0.deliver.jsonl").read_text()
    assert line == (f'{{"digest":"{"0" * 64}","index":0,"msg_id":"{CLIENT_ID}",'
                    f'"origin":-1,"slot":4}}\n')
    assert sorted(os.listdir(tmp_path / "clients")) == [
        "client-0.broadcast.jsonl", "client-0.receipts.jsonl",
        "client-1.broadcast.jsonl", "client-1.receipts.jsonl"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["clients"]["1"] == {"honest": False, "key": "cd" * 32}
    assert client_parts(CLIENT_ID) == (KEY, 7, 3) and client_parts("2:3") is None
    assert BroadcastRecord(CLIENT_ID, "0" * 64).origin == -1


def attrs_evolve_clients(logs: LogDir) -> LogDir:
    """``logs`` as read back: every client listed in run.json has (maybe empty) logs."""
    return attrs.evolve(logs, client_broadcasts={**{1: ()}, **logs.client_broadcasts},
                        receipts={**{1: ()}, **logs.receipts})


def test_a_log_without_clients_writes_no_clients_folder_and_no_slot(tmp_path: Path) -> None:
    run = RunInfo(n=1, f=0, complete=True, members={0: MemberInfo(honest=True, crashed=False)})
    write_log_dir(tmp_path, run, {0: ()}, {0: (DeliveryRecord(0, "0:0", 0, "0" * 64),)})
    assert not (tmp_path / "clients").exists()
    assert "slot" not in (tmp_path / "node-0.deliver.jsonl").read_text()
    assert "clients" not in json.loads((tmp_path / "run.json").read_text())
    assert read_log_dir(tmp_path).run.clients == {}


@pytest.mark.parametrize(("line", "message"), [
    ({"digest": "0" * 64, "index": 0, "msg_id": f"c{KEY}.1:0", "origin": 0}, "does not match"),
    ({"digest": "0" * 64, "index": 0, "msg_id": "-1:0", "origin": -1}, "msg_id"),
    ({"digest": "0" * 64, "index": 0, "msg_id": f"c{KEY[:-1]}.1:0", "origin": -1}, "msg_id"),
    ({"digest": "0" * 64, "index": 0, "msg_id": f"c{KEY}.01:0", "origin": -1}, "msg_id"),
    ({"digest": "0" * 64, "index": 0, "msg_id": "0:0", "origin": 0, "slot": -2}, "slot"),
    ({"digest": "0" * 64, "index": 0, "msg_id": "0:0", "origin": 0, "slot": True}, "slot"),
])
def test_bad_client_ids_and_slots_are_refused(tmp_path: Path, line: object,
                                              message: str) -> None:
    run = RunInfo(n=1, f=0, complete=True, members={0: MemberInfo(honest=True, crashed=False)})
    write_log_dir(tmp_path, run, {0: ()}, {0: ()})
    (tmp_path / "node-0.deliver.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(LogFormatError, match=message):
        read_log_dir(tmp_path)


def test_bad_client_records_and_files_are_refused(tmp_path: Path) -> None:
    logs = _client_dir()
    write_log_dir(tmp_path, logs.run, logs.broadcasts, logs.deliveries,
                  client_broadcasts=logs.client_broadcasts, receipts=logs.receipts)
    receipts = tmp_path / "clients" / "client-0.receipts.jsonl"
    receipts.write_text(json.dumps({"msg_id": "0:1", "slot": 0, "index": 0, "member": 0}) + "\n")
    with pytest.raises(LogFormatError, match="client's message id"):
        read_log_dir(tmp_path)
    receipts.write_text(json.dumps({"msg_id": CLIENT_ID, "slot": -1, "index": 0,
                                    "member": 0}) + "\n")
    with pytest.raises(LogFormatError, match="'slot'"):
        read_log_dir(tmp_path)
    receipts.write_text("")
    (tmp_path / "clients" / "client-2.receipts.jsonl").write_text("")
    with pytest.raises(LogFormatError, match="names client 2"):
        read_log_dir(tmp_path)
    (tmp_path / "clients" / "client-2.receipts.jsonl").unlink()
    run = json.loads((tmp_path / "run.json").read_text())
    run["clients"]["0"]["key"] = "AB" * 32
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(LogFormatError, match=r"clients\.0"):
        read_log_dir(tmp_path)
    run["clients"] = {"0": {"honest": True}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(LogFormatError, match="exactly the keys"):
        read_log_dir(tmp_path)


def test_client_mappings_must_match_the_run() -> None:
    logs = _client_dir()
    with pytest.raises(ValueError, match="share a key"):
        RunInfo(n=1, f=0, complete=True, members=logs.run.members,
                clients={0: ClientInfo(True, KEY), 1: ClientInfo(False, KEY)})
    with pytest.raises(ValueError, match="client ids 0"):
        RunInfo(n=1, f=0, complete=True, members=logs.run.members,
                clients={1: ClientInfo(True, KEY)})
    with pytest.raises(ValueError, match=r"client ids of run\.clients"):
        LogDir(run=logs.run, broadcasts=logs.broadcasts, deliveries=logs.deliveries,
               receipts={5: ()})
    with pytest.raises(ValueError, match=r"not in run\.clients"):
        write_log_dir("unused", logs.run, logs.broadcasts, logs.deliveries, receipts={5: ()})
