"""Closed-loop clients against 4 member processes on loopback: ops/s and latency per client
count, with how busy the machine's cores were.

Run with ``python -m btob.bench.client_bench [--clients 1,4,16,64] [--duration 5]
[--repeats 2] [--payload-size 100] [--votes all|linear] [--out bench/results/clients]`` (or
``btob bench clients ...``). It writes ``cluster.toml`` for an open cluster (any client key, in
the vote mode asked for) with ``btob keygen``,
starts ``n`` ``btob node`` processes and, for each client count K, runs ``btob client bench
--clients K`` in a process of its own: K clients, each signing every request with its own key
and waiting for the request's verified receipt before sending the next. Each figure is the
median of the repeats. *busy cores* is the machine's non-idle CPU time over the wall time of
the run (from ``/proc/stat``; 2.0 means both cores of a 2-core machine were busy all along),
so it counts the members, the clients and whatever else ran. *load before* is the 1-minute
load average just before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from btob.runtime.config import MemberAddress

__all__ = ["build_parser", "main", "render", "run"]

_BTOB = [sys.executable, "-m", "btob"]


def _busy_jiffies() -> tuple[int, int] | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _free_port_range(count: int) -> int:
    from btob.testing.ports import free_port_range

    return free_port_range(count)


def _client_addresses(config: Path) -> list[MemberAddress]:
    from btob.runtime.config import load_cluster_config

    loaded = load_cluster_config(config)
    return [a for a in (loaded.client_address(i) for i in range(loaded.n)) if a is not None]


def _wait_listening(members: list[subprocess.Popen[bytes]], addresses: list[tuple[str, int]],
                    timeout_s: float = 60.0) -> None:
    """Return once every member's client port takes connections, so that no run's time
    includes the members' start; raise if a member exits or the ports stay shut."""
    deadline = time.monotonic() + timeout_s
    waiting = list(addresses)
    while waiting:
        for member in members:
            if member.poll() is not None:
                err = (member.stderr.read() if member.stderr else b"").decode()[-500:]
                raise RuntimeError(f"a member exited with {member.returncode}: {err}")
        try:
            socket.create_connection(waiting[0], timeout=1.0).close()
            waiting.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no member listens on {waiting[0]}") from None
            time.sleep(0.05)


def run(clients: list[int], *, duration: float, repeats: int, payload_size: int,
        n: int = 4, settings: tuple[str, ...] = (), votes: str = "all") -> dict[str, object]:
    """Start the cluster, time each client count ``repeats`` times, stop the cluster.
    ``settings`` are ``NAME=VALUE`` member settings passed to every ``btob node``; ``votes``
    is the cluster's vote mode (``btob keygen --votes``, and every ``btob node --votes``)."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="btob-client-bench-") as tmp:
        out = Path(tmp)
        base = _free_port_range(2 * n)
        subprocess.run([*_BTOB, "keygen", "--n", str(n), "--out", str(out / "c"),
                        "--base-port", str(base), "--open-clients",
                        "--client-base-port", str(base + n), "--votes", votes], check=True,
                       capture_output=True)
        config = out / "c" / "cluster.toml"
        key = out / "c" / "client.key"
        from btob.crypto import SigningKey, save_signing_key

        save_signing_key(SigningKey.generate(), key)
        members = [subprocess.Popen([*_BTOB, "node", "--config", str(config), "--id", str(i),
                                     "--key", str(out / "c" / f"node-{i}.key"),
                                     "--votes", votes,
                                     *[a for kv in settings for a in ("--setting", kv)]],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                   for i in range(n)]
        try:
            _wait_listening(members, [(a.host, a.port) for a in _client_addresses(config)])
            for count in clients:
                samples = []
                for _ in range(repeats):
                    load = os.getloadavg()[0]
                    before, started = _busy_jiffies(), time.monotonic()
                    done = subprocess.run(
                        [*_BTOB, "client", "--config", str(config), "--key", str(key), "bench",
                         "--clients", str(count), "--duration", str(duration),
                         "--payload-size", str(payload_size)],
                        capture_output=True, text=True, timeout=duration + 120, check=False)
                    after, wall = _busy_jiffies(), time.monotonic() - started
                    if done.returncode != 0:
                        raise RuntimeError(f"btob client bench failed: {done.stderr[-2000:]}")
                    result = json.loads(done.stdout.splitlines()[-1])
                    if before is not None and after is not None:
                        busy = (after[0] - before[0]) / max(1, after[1] - before[1])
                        result["busy_cores"] = round(busy * (os.cpu_count() or 1), 2)
                    result["load_before"] = round(load, 2)
                    result["wall_s"] = round(wall, 2)
                    samples.append(result)
                rows.append(_median_row(count, samples))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            for member in members:
                member.terminate()
            for member in members:
                member.wait(timeout=20)
            if any(p.returncode not in (0, 143, -15) for p in members):  # 143: SIGTERM
                raise RuntimeError("a member process failed: " + "; ".join(
                    (p.stderr.read() if p.stderr else b"").decode()[-500:] for p in members))
    return {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "n": n, "duration_s": duration, "repeats": repeats,
            "payload_size": payload_size, "votes": votes, "settings": list(settings),
            "rows": rows}


def _median_row(count: int, samples: list[dict[str, object]]) -> dict[str, object]:
    def med(name: str) -> float:
        values = [float(s[name]) for s in samples if s.get(name) is not None]  # type: ignore[arg-type]
        return round(statistics.median(values), 2) if values else float("nan")

    return {"clients": count, "ops_per_s": med("ops_per_s"), "p50_ms": med("p50_ms"),
            "p99_ms": med("p99_ms"), "busy_cores": med("busy_cores"),
            "load_before": med("load_before"), "repeats": len(samples)}


def render(result: dict[str, object]) -> str:
    """The Markdown table of a run."""
    lines = [f"# Closed-loop clients, {result['n']} member processes on loopback",
             "",
             f"{result['date']}, {result['machine']}, {result['cpus']} CPUs; "
             f"{result['payload_size']}-byte payloads, every request signed by its client; "
             f"{result['duration_s']} s per run, medians of {result['repeats']} runs; "
             f"votes {result.get('votes', 'all')}.",
             "",
             "| clients | ops/s | p50 ms | p99 ms | busy cores | load before |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:  # type: ignore[attr-defined]
        lines.append(f"| {row['clients']} | {row['ops_per_s']} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['busy_cores']} | {row['load_before']} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The options of ``btob bench clients``."""
    from btob.core.settings import VOTE_MODES

    parser = argparse.ArgumentParser(
        prog="btob bench clients",
        description="closed-loop clients against 4 member processes on loopback")
    parser.add_argument("--clients", default="1,4,16,64",
                        help="client counts to run, comma-separated (default %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds each run lasts (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per client count; the median is reported (default "
                             "%(default)s)")
    parser.add_argument("--payload-size", type=int, default=100,
                        help="bytes per payload (default %(default)s)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a member setting passed to every btob node (repeatable)")
    parser.add_argument("--votes", choices=VOTE_MODES, default="all",
                        help="how ordering votes travel in the cluster: all (to every member) "
                             "or linear (to the slot's proposer, which forwards certificates); "
                             "default %(default)s")
    parser.add_argument("--out", type=Path, default=None,
                        help="write OUT.json and OUT.md (default: print only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``OUT.json`` and ``OUT.md``."""
    args = build_parser().parse_args(argv)
    counts = [int(x) for x in args.clients.split(",") if x]
    result = run(counts, duration=args.duration, repeats=args.repeats,
                 payload_size=args.payload_size, settings=tuple(args.setting), votes=args.votes)
    text = render(result)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
