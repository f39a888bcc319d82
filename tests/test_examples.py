"""The session store as a real service: web clones as separate processes share sessions
through the cluster, while one member is Byzantine."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import trio

from btob import Delivery, KVStore
from btob.crypto import SigningKey, save_signing_key
from btob.runtime.config import write_cluster_config
from btob.testing import open_local_cluster
from btob.testing.ports import free_ports

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "session_web.py"


class LyingStore(KVStore):
    """A Byzantine member's application: every answer it signs names another user."""

    lies = 0

    def apply(self, delivery: Delivery) -> bytes | None:
        result = super().apply(delivery)
        if result is None:
            return None
        LyingStore.lies += 1
        return b"\x92\xc4\x02ok\xc4\x07mallory"


async def _http(port: int, request: str) -> tuple[int, dict[str, str], dict[str, object]]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request.encode())
        data = b""
        while chunk := await stream.receive_some(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


async def _until_serving(port: int, proc: subprocess.Popen[bytes]) -> None:
    while True:
        assert proc.poll() is None, "the clone exited"
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.05)
            continue
        await stream.aclose()
        return


async def test_a_login_through_one_clone_is_known_to_another_despite_a_byzantine_member(
        tmp_path: Path) -> None:
    stores = [KVStore(), KVStore(), KVStore(), LyingStore()]
    clones: list[subprocess.Popen[bytes]] = []
    with trio.fail_after(90):
        async with open_local_cluster(4, clients=True, apps=stores.__getitem__) as cluster:
            write_cluster_config(tmp_path / "cluster.toml", cluster.client_config)
            ports = free_ports(2)
            try:
                for j, port in enumerate(ports):
                    key = tmp_path / f"client-{j}.key"
                    save_signing_key(SigningKey.from_seed(
                        hashlib.sha256(b"clone %d" % j).digest()), key)
                    clones.append(subprocess.Popen(
                        [sys.executable, str(EXAMPLE), "--config", str(tmp_path / "cluster.toml"),
                         "--key", str(key), "--port", str(port), "--name", f"clone-{j}"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                for port, proc in zip(ports, clones, strict=True):
                    await _until_serving(port, proc)
                status, headers, body = await _http(
                    ports[0], "POST /login HTTP/1.1\r\nContent-Length: 10\r\n\r\nuser=alice")
                assert status == 200 and body == {"user": "alice", "clone": "clone-0"}
                cookie = headers["Set-Cookie"].split(";")[0]
                status, _, body = await _http(
                    ports[1], f"GET /whoami HTTP/1.1\r\nCookie: {cookie}\r\n\r\n")
                assert status == 200 and body == {"user": "alice", "clone": "clone-1"}
                status, _, body = await _http(ports[1], "GET /whoami HTTP/1.1\r\n\r\n")
                assert status == 401
                status, _, _ = await _http(
                    ports[1], f"POST /logout HTTP/1.1\r\nCookie: {cookie}\r\n\r\n")
                assert status == 200
                status, _, body = await _http(
                    ports[0], f"GET /whoami HTTP/1.1\r\nCookie: {cookie}\r\n\r\n")
                assert status == 401 and body["error"] == "unknown session"
            finally:
                for proc in clones:
                    proc.terminate()
                    proc.wait(timeout=10)
    assert LyingStore.lies >= 4  # the Byzantine member answered, and was outvoted
    # no shared memory: the honest replicas hold the session state, the clones nothing
    assert all(store.entries == stores[0].entries for store in stores[:3])
