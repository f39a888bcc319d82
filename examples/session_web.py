"""A web application run as several identical clones that share sessions through btob.

Each clone is a separate process with its own client key and no memory shared with the
others. A login writes the session into the cluster's replicated key-value store (members run
``btob node --app kv``) and the session cookie names it, so any clone can read it: a user who
logs in through one clone is known to every other one, even while a member of the cluster is
Byzantine (a result counts once f+1 members sent it, signed).

    python examples/session_web.py --config cluster.toml --key client-0.key --port 8080

Routes: ``POST /login`` with body ``user=NAME`` (sets the ``session`` cookie), ``GET /whoami``
(``200 {"user": NAME}`` or ``401``), ``POST /logout``. The HTTP here is the least that serves
these routes (one request per connection, bodies up to 4 KiB); a real deployment would put a
proper server in front.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import trio

from btob.apps.kv import command, decode_result
from btob.client.client import Client, open_client
from btob.crypto import load_signing_key
from btob.runtime.config import load_cluster_config

SESSION_TTL_MS = 30 * 60 * 1000
_HEAD_BYTES_MAX = 8192
_BODY_BYTES_MAX = 4096


def _response(status: str, body: dict[str, object], cookie: str | None = None) -> bytes:
    data = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json",
            f"Content-Length: {len(data)}", "Connection: close"]
    if cookie is not None:
        head.append(f"Set-Cookie: session={cookie}; HttpOnly; Path=/")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def _read_request(stream: trio.SocketStream) -> tuple[str, str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk or len(data) > _HEAD_BYTES_MAX:
            raise ValueError("incomplete request head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > _BODY_BYTES_MAX:
        raise ValueError("body too large")
    while len(body) < length:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise ValueError("incomplete body")
        body += chunk
    return method, path, headers, body[:length]


def _session_of(headers: dict[str, str]) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session" and value:
            return value
    return None


async def handle(client: Client, clone: str, stream: trio.SocketStream) -> None:
    """Serve one HTTP request on ``stream``."""
    async with stream:
        try:
            method, path, headers, body = await _read_request(stream)
        except (ValueError, trio.BrokenResourceError):
            return
        now_ms = time.time_ns() // 1_000_000
        session = _session_of(headers)
        if method == "POST" and path == "/login":
            user = parse_qs(body.decode(errors="replace")).get("user", [""])[0]
            if not user:
                await stream.send_all(_response("400 Bad Request", {"error": "user missing"}))
                return
            session = secrets.token_hex(16)
            status, _ = decode_result(await client.request(command(
                "set", f"session:{session}".encode(), user.encode(),
                ttl_ms=SESSION_TTL_MS, now_ms=now_ms)))
            reply = _response("200 OK", {"user": user, "clone": clone}, cookie=session) \
                if status == "ok" else _response("503 Service Unavailable", {"error": status})
        elif method == "GET" and path == "/whoami":
            if session is None:
                reply = _response("401 Unauthorized", {"error": "no session", "clone": clone})
            else:
                status, value = decode_result(await client.request(command(
                    "get", f"session:{session}".encode(), now_ms=now_ms)))
                reply = _response("200 OK", {"user": value.decode(), "clone": clone}) \
                    if status == "ok" else \
                    _response("401 Unauthorized", {"error": "unknown session", "clone": clone})
        elif method == "POST" and path == "/logout" and session is not None:
            await client.request(command("del", f"session:{session}".encode(), now_ms=now_ms))
            reply = _response("200 OK", {"clone": clone})
        else:
            reply = _response("404 Not Found", {"error": f"no route {method} {path}"})
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(reply)


async def serve(config_path: Path, key_path: Path, port: int, clone: str) -> None:
    """Run one clone on ``port`` until cancelled."""
    config = load_cluster_config(config_path)
    key = load_signing_key(key_path)
    async with open_client(config, key) as client:
        await client.connect_all()

        async def one(stream: trio.SocketStream) -> None:
            await handle(client, clone, stream)

        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        print(f"clone {clone} serving on 127.0.0.1:{port}", flush=True)
        await trio.serve_listeners(one, listeners)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default=None, help="the clone's name in responses")
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.config, args.key, args.port, args.name or str(args.port))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
