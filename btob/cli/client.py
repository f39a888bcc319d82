"""``btob client``: order payloads through a running cluster from outside it, use its
key-value store, and time it."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import trio

from btob._errors import ConfigError
from btob.apps.kv import command, decode_result
from btob.client.client import Client, ClientSettings, open_client
from btob.core.clientwire import Receipt, decode_request
from btob.crypto import SigningKey, load_signing_key
from btob.runtime.config import ClusterConfig, load_cluster_config

__all__ = ["add_client_arguments", "run_client"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``btob client`` options and its ``submit`` and ``bench`` sub-commands."""
    parser.add_argument("--config", type=Path, required=True, help="the cluster's cluster.toml")
    parser.add_argument("--key", type=Path, required=True,
                        help="the client's private key file (mode 0600)")
    parser.add_argument("--retry-after", type=_positive_float, default=1.0, metavar="S",
                        help="seconds without a receipt before one more member is tried")
    parser.add_argument("--give-up-after", type=_positive_float, default=30.0, metavar="S",
                        help="seconds a request is tried in all")
    sub = parser.add_subparsers(dest="client_command", required=True,
                                help="what to do (each has its own --help)")
    submit = sub.add_parser("submit", help="order payloads; one JSON line per receipt")
    submit.add_argument("--count", type=_positive_int, default=1,
                        help="payloads to order, one after the other (default %(default)s)")
    submit.add_argument("--payload-size", type=_positive_int, default=100, metavar="B",
                        help="bytes per payload (default %(default)s)")
    submit.add_argument("--receipts", type=Path, metavar="DIR",
                        help="also write each receipt to DIR/<session>-<seq>.receipt")
    kv = sub.add_parser("kv", help="the replicated key-value store (members run --app kv)")
    ops = kv.add_subparsers(dest="kv_command", required=True,
                            help="the operation on the store: set, get or del")
    kv_set = ops.add_parser("set", help="store VALUE under KEY")
    kv_set.add_argument("kv_key", metavar="KEY", help="the key to store the value under")
    kv_set.add_argument("value", help="the value to store (text)")
    kv_set.add_argument("--ttl", type=_positive_float, metavar="S",
                        help="the entry expires S seconds after it is set")
    ops.add_parser("get", help="the value under KEY (exit 1 if there is none)").add_argument(
        "kv_key", metavar="KEY", help="the key whose value to read")
    ops.add_parser("del", help="delete KEY (exit 1 if there was none)").add_argument(
        "kv_key", metavar="KEY", help="the key to delete with its value")
    bench = sub.add_parser("bench", help="closed-loop clients: ops/s and latency, JSON last")
    bench.add_argument("--clients", type=_positive_int, default=1, metavar="K",
                       help="closed-loop clients, each with its own key (default %(default)s)")
    bench.add_argument("--duration", type=_positive_float, default=5.0, metavar="S",
                       help="seconds to run after a warm-up request each (default "
                            "%(default)s)")
    bench.add_argument("--payload-size", type=_positive_int, default=100, metavar="B",
                       help="bytes per payload (default %(default)s)")


def _payload(size: int, session: int, number: int) -> bytes:
    head = f"{session}.{number}:".encode()
    return (head + b"x" * size)[:size] if size >= len(head) else head[:size]


def receipt_line(receipt: Receipt) -> dict[str, object]:
    """What ``submit`` prints for one receipt."""
    request = decode_request(receipt.request, frame_bytes_max=len(receipt.request))[0]
    return {"msg_id": f"c{request.client.hex()}.{request.session}:{request.seq}",
            "index": receipt.index, "slot": receipt.slot}


async def _kv(config: ClusterConfig, key: SigningKey, settings: ClientSettings,
              args: argparse.Namespace) -> int:
    now_ms = time.time_ns() // 1_000_000
    name = args.kv_key.encode()
    if args.kv_command == "set":
        ttl_ms = 0 if args.ttl is None else max(1, round(args.ttl * 1000))
        cmd = command("set", name, args.value.encode(), ttl_ms=ttl_ms, now_ms=now_ms)
    else:
        cmd = command(args.kv_command, name, now_ms=now_ms)
    async with open_client(config, key, settings) as client:
        status, value = decode_result(await client.request(cmd))
    line: dict[str, object] = {"status": status}
    if args.kv_command == "get" and status == "ok":
        line["value"] = value.decode(errors="replace")
    print(json.dumps(line), flush=True)
    return 0 if status == "ok" else 1


async def _submit(config: ClusterConfig, key: SigningKey, settings: ClientSettings,
                  args: argparse.Namespace) -> None:
    if args.receipts is not None:
        args.receipts.mkdir(parents=True, exist_ok=True)
    async with open_client(config, key, settings) as client:
        for number in range(args.count):
            receipt = await client.broadcast(_payload(args.payload_size, client.session,
                                                      number))
            line = receipt_line(receipt)
            if args.receipts is not None:
                (args.receipts / f"{client.session}-{number}.receipt").write_bytes(
                    receipt.to_frame())
            print(json.dumps(line), flush=True)


def _bench_keys(config: ClusterConfig, key: SigningKey, key_path: Path,
                count: int) -> list[SigningKey]:
    """One key per closed-loop client: fresh ones if the cluster admits any key, else
    ``client-<j>.key`` beside ``key_path``."""
    if config.clients_open:
        return [key] + [SigningKey.generate() for _ in range(count - 1)]
    keys = []
    for j in range(count):
        path = key_path.parent / f"client-{j}.key"
        if not path.exists():
            raise ConfigError(f"bench with {count} clients needs {path} (the cluster admits "
                              f"only the keys it lists; make them with btob keygen --clients)")
        keys.append(load_signing_key(path))
    return keys


async def _bench(config: ClusterConfig, keys: list[SigningKey], settings: ClientSettings,
                 args: argparse.Namespace) -> dict[str, object]:
    latencies: list[float] = []
    deadline = 0.0

    async def loop(client: Client) -> None:
        number = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            await client.broadcast(_payload(args.payload_size, client.session, number))
            latencies.append(time.monotonic() - started)
            number += 1

    cpu0 = time.process_time()
    async with trio.open_nursery() as nursery:
        clients: list[Client] = []
        for key in keys:
            clients.append(await nursery.start(_hold_client, config, key, settings))
        for client in clients:  # connect before the clock starts
            await client.broadcast(b"warm-up")
        started = time.monotonic()
        deadline = started + args.duration
        async with trio.open_nursery() as loops:
            for client in clients:
                loops.start_soon(loop, client)
        elapsed = time.monotonic() - started
        nursery.cancel_scope.cancel()
    ordered = sorted(latencies)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def quantile(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) \
            if ordered else 0.0

    return {"clients": len(keys), "ops": len(latencies),
            "ops_per_s": round(len(latencies) / elapsed, 1), "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99),
            "mean_ms": round(1000 * statistics.fmean(ordered), 2) if ordered else 0.0,
            "client_cpu_s": round(time.process_time() - cpu0, 2), "load1": load1,
            "duration_s": round(elapsed, 2)}


async def _hold_client(config: ClusterConfig, key: SigningKey, settings: ClientSettings,
                       task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED) -> None:
    async with open_client(config, key, settings) as client:
        task_status.started(client)
        await trio.sleep_forever()


def run_client(args: argparse.Namespace) -> int:
    """Run ``btob client``; returns the exit status."""
    config = load_cluster_config(args.config)
    key = load_signing_key(args.key)
    settings = ClientSettings(retry_after_s=args.retry_after,
                              give_up_after_s=args.give_up_after)
    if args.client_command == "submit":
        trio.run(_submit, config, key, settings, args)
        return 0
    if args.client_command == "kv":
        return trio.run(_kv, config, key, settings, args)
    keys = _bench_keys(config, key, args.key, args.clients)
    result = trio.run(_bench, config, keys, settings, args)
    print(json.dumps(result), flush=True)
    return 0
