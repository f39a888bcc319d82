"""``btob client submit|kv|bench`` and ``btob receipt verify`` on what submit wrote, against an
in-process cluster (the command runs in a worker thread with its own Trio loop)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import trio

from btob import KVStore
from btob.cli.main import main
from btob.crypto import SigningKey, save_signing_key
from btob.runtime.config import write_cluster_config
from btob.testing import LocalCluster, open_local_cluster


def _files(cluster: LocalCluster, tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "cluster.toml"
    write_cluster_config(config, cluster.client_config)
    key = tmp_path / "client-0.key"
    save_signing_key(SigningKey.from_seed(hashlib.sha256(b"cli client").digest()), key)
    return config, key


async def _btob(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


async def test_submit_prints_a_line_per_receipt_and_the_receipts_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(60):
        async with open_local_cluster(4, clients=True) as cluster:
            config, key = _files(cluster, tmp_path)
            receipts = tmp_path / "receipts"
            assert await _btob("client", "--config", str(config), "--key", str(key), "submit",
                               "--count", "3", "--payload-size", "50",
                               "--receipts", str(receipts)) == 0
            lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [line["index"] for line in lines] == [0, 1, 2]
            assert all(line["msg_id"].startswith("c") for line in lines)
            files = sorted(receipts.iterdir())
            assert len(files) == 3
            for path in files:
                assert await _btob("receipt", "verify", "--config", str(config),
                                   str(path)) == 0
            tampered = tmp_path / "tampered.receipt"
            data = bytearray(files[0].read_bytes())
            data[len(data) // 2] ^= 1
            tampered.write_bytes(bytes(data))
            assert await _btob("receipt", "verify", "--config", str(config),
                               str(tampered)) == 1
            async for delivery in cluster.nodes[2].deliveries():
                assert len(delivery.payload) == 50 and delivery.client
                break


async def test_kv_set_get_del_through_the_members_application(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(60):
        async with open_local_cluster(4, clients=True, apps=lambda i: KVStore()) as cluster:
            config, key = _files(cluster, tmp_path)
            base = ("client", "--config", str(config), "--key", str(key), "kv")
            assert await _btob(*base, "set", "session:1", "alice", "--ttl", "60") == 0
            assert await _btob(*base, "get", "session:1") == 0
            assert await _btob(*base, "del", "session:1") == 0
            assert await _btob(*base, "get", "session:1") == 1
            out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert out == [{"status": "ok"}, {"status": "ok", "value": "alice"},
                           {"status": "ok"}, {"status": "missing"}]


async def test_bench_runs_closed_loop_clients_and_prints_json_last(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(60):
        async with open_local_cluster(4, clients=True) as cluster:
            config, key = _files(cluster, tmp_path)
            assert await _btob("client", "--config", str(config), "--key", str(key), "bench",
                               "--clients", "3", "--duration", "1",
                               "--payload-size", "100") == 0
            result = json.loads(capsys.readouterr().out.splitlines()[-1])
            assert result["clients"] == 3 and result["ops"] > 0
            assert result["ops_per_s"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
            delivered = cluster.nodes[0].statistics().member.deliveries
            assert delivered >= result["ops"]  # every op timed was delivered (+ warm-ups)


async def test_bench_with_listed_clients_needs_their_key_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SigningKey.from_seed(hashlib.sha256(b"cli client").digest())
    async with open_local_cluster(1, clients=[key.public_key()]) as cluster:
        config, key_path = _files(cluster, tmp_path)
        assert await _btob("client", "--config", str(config), "--key", str(key_path), "bench",
                           "--clients", "2", "--duration", "1") == 2
        assert "client-1.key" in capsys.readouterr().err
