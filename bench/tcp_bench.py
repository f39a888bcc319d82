"""Throughput and latency of btob over real TCP on loopback, one OS process per member.

Run with ``python -m btob.bench.tcp_bench [--n 4] [--payloads 3000] [--payload-size 100]
[--rate 0] [--low-load-payloads 200] [--low-load-rate 50] [--json OUT]`` plus, for one
configuration, ``--core btob|baseline --variant V --brb B --votes all|linear --batch-size N
--batch-delay S --view-change-timeout S --fault ID=BEHAVIOUR[:k=v] ... --net key=value,...
--setting NAME=VALUE ... --data``. ``btob bench`` (:mod:`btob.bench.harness`) drives the same
workers through :func:`run_cluster` for every tcp run of a matrix.

The parent process picks free loopback ports, derives deterministic keys, writes
``cluster.toml`` and the key files into a temporary directory and starts ``n`` worker
processes (``--worker I``), each running one member with ``open_node`` (or, with ``--core
baseline``, the crash-only unsigned baseline of :mod:`btob.bench.baseline` on the same driver
via ``open_core_node``) and the default TCP transport, wrapped in its faults if it has any.
Workers meet at a barrier (every member sees an authenticated connection to every peer, then
every member has touched ``ready-I``), then each broadcasts ``payloads // n`` payloads - flat
out when ``--rate`` is 0 (handed to ``Node.broadcast_many`` 64 at a time, as fast as it
returns, by ``--callers`` concurrent callers, 1 by default), else one ``Node.broadcast`` per
payload paced at ``rate / n`` per second. A correct
member (one without an injected fault) consumes its deliveries until it has delivered every
payload of every correct origin; a faulty one serves until all correct members are done.
Correct members linger a little so slower peers can finish, then write ``result-I.json``.
With ``--data`` each member keeps its durable state in ``DIR/data-I`` (on the file system of
the run's directory, see :func:`run_cluster`), so a payload is acknowledged, and a frame sent,
only once what it changed is committed there; the result then says how many commits were made
and how large the store grew.

Definitions (all printed numbers follow them):

* latency - for a correct member's *own* payloads only: from the call of ``broadcast`` to
  the local delivery of that payload, both read from ``time.perf_counter`` in the same
  process, so no clock synchronisation is involved. Percentiles are over the union of all
  correct members' samples. Flat out every payload is submitted at once, so latency there is
  mostly queueing; the low-load phase shows the protocol's latency.
* elapsed - per correct member, from its first ``broadcast`` call to its last delivery.
* throughput - payloads of correct origins delivered at *every* correct member per second:
  their number divided by the largest elapsed (per-member throughput: over own elapsed).
* per-payload costs - sums over the correct members divided by the number of distinct
  payloads: signatures made and verified (``MemberStatistics``; TCP handshakes excluded),
  protocol messages and bytes sent (``MemberStatistics.messages_sent/bytes_sent``, frames the
  member produced, before the transport's length prefixes), and CPU seconds (user + system,
  ``getrusage``) spent between the member's first broadcast and its last delivery.
* peak RSS - ``ru_maxrss`` of each worker process at exit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from btob import (
    BRB_KINDS,
    ClusterConfig,
    ConfigError,
    MemberAddress,
    MemberCrashed,
    Node,
    Settings,
    TcpTransport,
    Transport,
    load_cluster_config,
    open_core_node,
    open_node,
    write_cluster_config,
)
from btob.bench.baseline import CrashOnlySequencer
from btob.cli.node import with_vote_mode
from btob.core.settings import VOTE_MODES, settings_with
from btob.core.variants import VARIANTS
from btob.crypto import KeyRegistry, SigningKey, load_signing_key, save_signing_key
from btob.faults import parse_fault, parse_net
from btob.runtime.netfaults import NetFaultTransport
from btob.testing.ports import free_ports

__all__ = [
    "HEADER",
    "WorkerOptions",
    "bench_payload",
    "free_ports",
    "latency_cdf",
    "main",
    "member_key",
    "percentile",
    "run_cluster",
    "run_worker",
    "summarize",
    "write_cluster",
]

HEADER = struct.Struct(">II")
"""Every payload starts with (member, counter), big-endian; the rest is zero padding."""

_CLUSTER_ID = b"tcp-bench"
_CONNECT_TIMEOUT_S = 60.0
_BARRIER_SETTLE_S = 0.3


# -- shared helpers ---------------------------------------------------------------------------


def member_key(member: int) -> SigningKey:
    """The deterministic signing key of ``member`` (benchmarks only: the seed is public)."""
    return SigningKey.from_seed(hashlib.sha256(b"btob-tcp-bench-key-%d" % member).digest())


def bench_payload(member: int, counter: int, size: int) -> bytes:
    """Payload ``counter`` of ``member``: the 8-byte header zero-padded to ``size`` bytes."""
    return HEADER.pack(member, counter).ljust(size, b"\0")


def write_cluster(directory: Path, n: int, host: str = "127.0.0.1", *, brb: str = "bracha",
                  variant: str = "bb", settings: Settings | None = None) -> ClusterConfig:
    """Write ``cluster.toml`` (with the protocol every member runs) and ``node-<i>.key`` for
    ``n`` members on free ports."""
    keys = [member_key(i) for i in range(n)]
    config = ClusterConfig(
        _CLUSTER_ID,
        KeyRegistry(tuple(k.public_key() for k in keys)),
        tuple(MemberAddress(host, port) for port in free_ports(n, host)),
        brb=brb, variant=variant, settings=settings or Settings(),
    )
    for i, key in enumerate(keys):
        save_signing_key(key, directory / f"node-{i}.key", overwrite=True)
    write_cluster_config(directory / "cluster.toml", config)
    return config


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``values`` with linear interpolation; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- worker -----------------------------------------------------------------------------------


class _Capture:
    """A ``transport_wrapper`` that returns the transport unchanged and remembers it."""

    def __init__(self) -> None:
        self.transport: Transport | None = None
        self.net: NetFaultTransport | None = None
        """The network-fault wrapper, when there is one (its counters prove it acted)."""

    def __call__(self, transport: Transport) -> Transport:
        self.transport = transport
        return transport


async def _barrier(directory: Path, member: int, n: int, capture: _Capture) -> float:
    """Wait for every peer connection, then for every member's ready file; seconds waited."""
    start = time.perf_counter()
    tcp = capture.transport
    peers = frozenset(range(n)) - {member}
    with trio.fail_after(_CONNECT_TIMEOUT_S):
        if isinstance(tcp, TcpTransport):
            while tcp.connected() != peers:
                await trio.sleep(0.02)
        (directory / f"ready-{member}").touch()
        while not all((directory / f"ready-{i}").exists() for i in range(n)):
            await trio.sleep(0.02)
    await trio.sleep(_BARRIER_SETTLE_S)
    return time.perf_counter() - start


_COUNTERS = ("messages_sent", "bytes_sent", "signatures_made", "signatures_verified",
             "verify_cache_hits", "frames_received")


def _counters(node: Node) -> dict[str, float]:
    """The member's cumulative cost counters and the process CPU seconds, right now."""
    member = node.statistics().member
    snapshot: dict[str, float] = {name: getattr(member, name) for name in _COUNTERS}
    snapshot["cpu_s"] = _cpu_seconds()
    return snapshot


def _minus(later: dict[str, float], earlier: dict[str, float]) -> dict[str, float]:
    return {name: later[name] - earlier[name] for name in later}


class _Marks:
    """Times and counter snapshots of one worker's run (perf_counter clock)."""

    def __init__(self) -> None:
        self.first_broadcast = math.nan
        self.last_delivery = math.nan
        self.at_first_broadcast: dict[str, float] | None = None
        self.at_last_delivery: dict[str, float] | None = None
        self.calls_outstanding = 0
        self.calls_outstanding_max = 0
        """Most broadcast calls under way at once: proof that concurrent callers were."""


CHUNK = 64
"""Flat out, a worker hands payloads to ``Node.broadcast_many`` this many at a time (a client
with work queued up); paced, it calls ``Node.broadcast`` once per payload."""


async def _broadcaster(node: Node, share: int, size: int, rate: float,
                       sent_at: dict[int, float], marks: _Marks, callers: int = 1) -> None:
    """Broadcast this member's share, recording each call time before it is made: paced, one
    call per payload; flat out, ``callers`` concurrent callers, each handing the next
    ``CHUNK`` payloads to ``broadcast_many`` as soon as its previous call returned."""
    if rate > 0:
        interval, start = 1.0 / rate, trio.current_time()
        for counter in range(share):
            await trio.sleep_until(start + counter * interval)
            if not await _hand_over(node, range(counter, counter + 1), size, sent_at, marks):
                return
        return
    taken = 0

    async def caller() -> None:
        nonlocal taken
        while taken < share:
            counters = range(taken, min(taken + CHUNK, share))
            taken = counters.stop
            if not await _hand_over(node, counters, size, sent_at, marks):
                return

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(caller)


async def _hand_over(node: Node, counters: range, size: int, sent_at: dict[int, float],
                     marks: _Marks) -> bool:
    """One ``broadcast_many`` call with the payloads of ``counters``; False once this member
    crashed (an injected crash: it broadcasts no more)."""
    payloads = [bench_payload(node.id, c, size) for c in counters]
    now = time.perf_counter()
    if marks.at_first_broadcast is None:
        marks.at_first_broadcast = _counters(node)
        marks.first_broadcast = now
    for c in counters:
        sent_at[c] = now
    marks.calls_outstanding += 1
    marks.calls_outstanding_max = max(marks.calls_outstanding_max, marks.calls_outstanding)
    try:
        await node.broadcast_many(payloads)
    except MemberCrashed:
        return False
    finally:
        marks.calls_outstanding -= 1
    return True


async def _watch_views(node: Node, views: list[tuple[float, int]]) -> None:
    """Record (perf_counter time, view) whenever the member's view changes (20 ms polling)."""
    last = node.view
    while True:
        await trio.sleep(0.02)  # coarse: a recovery takes a view-change timeout (~1 s)
        if node.view != last:
            last = node.view
            views.append((time.perf_counter(), last))


def _settings(args: argparse.Namespace) -> Settings:
    """The member settings of these options; ConfigError naming a bad ``--setting``."""
    base = Settings(batch_payloads_max=args.batch_size, batch_delay_s=args.batch_delay,
                    view_change_timeout_s=args.view_change_timeout)
    return with_vote_mode(settings_with(base, args.setting), args.votes, args.setting)


def _wrapper(args: argparse.Namespace, config: ClusterConfig,
             capture: _Capture) -> Callable[[Transport], Transport]:
    """Capture the TCP transport, then wrap it in this member's network faults (its process
    fault wraps the member's core instead, as in the simulator)."""
    net = parse_net(args.net, config.n) if args.net else None

    def wrap(inner: Transport) -> Transport:
        inner = capture(inner)
        if net is None:
            return inner
        capture.net = NetFaultTransport(inner, net, member=args.worker)
        return capture.net
    return wrap


@asynccontextmanager
async def _open(args: argparse.Namespace, config: ClusterConfig, key: SigningKey,
                capture: _Capture) -> AsyncIterator[Node]:
    wrapper = _wrapper(args, config, capture)
    if len(args.fault) > 1:
        raise ConfigError(f"member {args.worker}: one --fault per member, got {args.fault}")
    if args.core == "baseline":
        if args.fault:
            raise ConfigError("the crash-only baseline is measured fault-free only")
        core = CrashOnlySequencer(member=args.worker, n=config.n, settings=_settings(args))
        if args.data:
            raise ConfigError("the crash-only baseline keeps no durable state: no --data")
        async with open_core_node(core, config, key, transport_wrapper=wrapper) as node:
            yield node
    else:
        async with open_node(config, args.worker, key, settings=_settings(args),
                             fault=args.fault[0] if args.fault else None,
                             data_dir=args.dir / f"data-{args.worker}" if args.data else None,
                             transport_wrapper=wrapper) as node:
            yield node


async def _until_peers_done(directory: Path, correct: frozenset[int]) -> None:
    """A faulty member serves until every correct member has written its result."""
    while not all((directory / f"result-{i}.json").exists() for i in correct):
        await trio.sleep(0.05)


async def _run_worker(args: argparse.Namespace) -> dict[str, Any]:
    directory: Path = args.dir
    member: int = args.worker
    config = load_cluster_config(directory / "cluster.toml")
    key = load_signing_key(directory / f"node-{member}.key")
    n = config.n
    correct = frozenset(range(n)) - frozenset(args.faulty)
    share = args.payloads // n
    total = len(correct) * share  # payloads of correct origins: what every correct member needs
    rate_each = args.rate / n if args.rate > 0 else 0.0
    capture = _Capture()
    sent_at: dict[int, float] = {}
    latencies_ms: list[float] = []
    delivered_at: list[float] = []
    any_delivered_at: list[float] = []  # faulty origins' payloads too: throughput after a VC
    views: list[tuple[float, int]] = []
    marks = _Marks()
    order = hashlib.sha256()
    delivered = 0
    async with _open(args, config, key, capture) as node:
        barrier_s = await _barrier(directory, member, n, capture)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_broadcaster, node, share, args.payload_size, rate_each,
                               sent_at, marks, args.callers)
            nursery.start_soon(_watch_views, node, views)
            if member not in correct:
                await _until_peers_done(directory, correct)
            elif total:
                async for delivery in node.deliveries():
                    now = time.perf_counter()
                    origin, counter = HEADER.unpack_from(delivery.payload)
                    any_delivered_at.append(now)
                    if origin not in correct:
                        continue  # a faulty origin's payloads may or may not be ordered
                    order.update(HEADER.pack(origin, counter))
                    delivered_at.append(now)
                    if origin == member:
                        latencies_ms.append((now - sent_at[counter]) * 1000.0)
                    delivered += 1
                    if delivered >= total:
                        marks.last_delivery = now
                        marks.at_last_delivery = _counters(node)
                        break
            if member in correct:
                await trio.sleep(args.linger)  # keep serving slower peers
            nursery.cancel_scope.cancel()
        at_end = _counters(node)
        stats = node.statistics()
        transport = capture.transport
        tcp_stats = transport.statistics() if isinstance(transport, TcpTransport) else None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    m = stats.member
    base = marks.at_first_broadcast
    window = end = None
    if base is not None:
        end = _minus(at_end, base)
        if marks.at_last_delivery is not None:
            window = _minus(marks.at_last_delivery, base)
    return {
        "member": member,
        "n": n,
        "votes": config.settings.votes,  # the cluster's, which the member's must equal
        "correct": member in correct,
        "payloads": total,
        "delivered": delivered,
        "elapsed_s": marks.last_delivery - marks.first_broadcast,
        "barrier_s": barrier_s,
        "latencies_ms": latencies_ms,
        "delivered_at_s": [t - marks.first_broadcast for t in delivered_at],
        "any_delivered_at_s": [t - marks.first_broadcast for t in any_delivered_at],
        "views": [(t - marks.first_broadcast, v) for t, v in views],
        "order_digest": order.hexdigest(),
        "calls_outstanding_max": marks.calls_outstanding_max,
        "window": window,
        "through_linger": end,
        "cpu_total_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "member_statistics": {
            "payloads_submitted": m.payloads_submitted,
            "deliveries": m.deliveries,
            "slots_delivered": m.slots_delivered,
            "messages_sent": m.messages_sent,
            "bytes_sent": m.bytes_sent,
            "frames_received": m.frames_received,
            "signatures_made": m.signatures_made,
            "signatures_verified": m.signatures_verified,
            "verify_cache_hits": m.verify_cache_hits,
            "dropped": dict(m.dropped),
            "evidence": list(m.evidence),
            "view": m.view,
            "view_changes_started": m.view_changes_started,
        },
        "frames_dropped_by_transport": stats.frames_dropped_by_transport,
        "durable": None if not args.data else {
            "commits": stats.commits, "steps_committed": stats.steps_committed,
            "changes_committed": stats.changes_committed,
            "commit_seconds": stats.commit_seconds, "store_bytes": stats.store_bytes,
            "slots_restored": stats.slots_restored},
        "fault": None if stats.fault is None else {
            **attrs.asdict(stats.fault), "took_effect": stats.fault.took_effect},
        "net": None if capture.net is None else {
            "lost": capture.net.dropped, "delivered": capture.net.delivered,
            "duplicated": capture.net.duplicated, "delay_s": capture.net.delay_s},
        "transport_statistics": None if tcp_stats is None else {
            "frames_sent": tcp_stats.frames_sent,
            "bytes_sent": tcp_stats.bytes_sent,
            "frames_received": tcp_stats.frames_received,
            "frames_dropped_queue_full": tcp_stats.frames_dropped_queue_full,
            "reconnects": tcp_stats.reconnects,
            "idle_timeouts": tcp_stats.idle_timeouts,
        },
    }


def run_worker(args: argparse.Namespace) -> int:
    """Worker mode: run member ``args.worker`` and write ``DIR/result-I.json``."""
    result = trio.run(_run_worker, args)
    path: Path = args.dir / f"result-{args.worker}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result), encoding="utf-8")
    temporary.replace(path)
    return 0


# -- parent -----------------------------------------------------------------------------------


@attrs.frozen
class WorkerOptions:
    """How every worker of one phase runs: the core, its settings and the faults injected.

    ``faults`` are ``--fault`` strings (``ID=BEHAVIOUR[:k=v,...]``); each goes to the member
    it names, and that member counts as faulty: the others neither wait for its payloads nor
    count its latency, and it serves until they are done. ``net`` (a ``--net`` string) applies
    to what every member sends.
    """

    core: str = "btob"
    variant: str = "bb"
    brb: str = "bracha"
    votes: str | None = None
    """The cluster's vote mode (:attr:`btob.Settings.votes`), written to its cluster.toml;
    None: what ``settings`` say (``all`` unless one of them names another)."""
    batch_size: int = Settings().batch_payloads_max
    batch_delay_s: float = 0.0
    view_change_timeout_s: float = Settings().view_change_timeout_s
    faults: tuple[str, ...] = ()
    net: str = ""
    settings: tuple[str, ...] = ()
    """Other :class:`btob.Settings` fields as ``NAME=VALUE`` strings."""
    data: bool = False
    """Each member keeps its durable state in ``DIR/data-I`` (btob core only)."""
    callers: int = 1
    """Flat out, concurrent callers of ``broadcast_many`` per member (a client with several
    requests outstanding: with a data directory each call returns only once its payloads are
    committed, so a lone caller waits a commit between calls)."""

    def member_settings(self) -> Settings:
        """The settings every worker runs with (their cluster-wide part is cluster.toml's)."""
        base = Settings(batch_payloads_max=self.batch_size, batch_delay_s=self.batch_delay_s,
                        view_change_timeout_s=self.view_change_timeout_s)
        return with_vote_mode(settings_with(base, self.settings), self.votes, self.settings)

    def faulty(self, n: int) -> list[int]:
        """Members with a process fault (parsed for ``n`` members; ConfigError if bad)."""
        return sorted({parse_fault(text, n).member for text in self.faults})

    def worker_args(self, member: int, n: int) -> list[str]:
        """The worker command-line options that carry these options to ``member``."""
        args = ["--core", self.core, "--variant", self.variant, "--brb", self.brb,
                "--batch-size", str(self.batch_size), "--batch-delay", repr(self.batch_delay_s),
                "--view-change-timeout", repr(self.view_change_timeout_s)]
        for text in self.faults:
            if parse_fault(text, n).member == member:
                args += ["--fault", text]
        for faulty in self.faulty(n):
            args += ["--faulty", str(faulty)]
        if self.net:
            args += ["--net", self.net]
        for text in self.settings:
            args += ["--setting", text]
        if self.votes is not None:
            args += ["--votes", self.votes]
        if self.data:
            args.append("--data")
        if self.callers != 1:
            args += ["--callers", str(self.callers)]
        return args


def run_cluster(n: int, payloads: int, payload_size: int, rate: float, *, linger_s: float,
                timeout_s: float, keep_dir: bool = False,
                options: WorkerOptions | None = None,
                parent: Path | None = None) -> list[dict[str, Any]]:
    """Start ``n`` worker processes for one phase and return their result dicts (by member).

    The phase runs in a new temporary directory under ``parent`` (default: the system's
    temporary directory), which also holds the members' data directories with
    ``options.data``. Raises ``RuntimeError`` with the workers' log tails if one fails or the
    phase times out (every worker is killed then).
    """
    options = options if options is not None else WorkerOptions()
    directory = Path(tempfile.mkdtemp(prefix="btob-tcp-bench-", dir=parent))
    write_cluster(directory, n, brb=options.brb, variant=options.variant,
                  settings=options.member_settings())
    root = Path(__file__).resolve().parent.parent
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for i in range(n):
            log = (directory / f"worker-{i}.log").open("wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "btob.bench.tcp_bench", "--worker", str(i),
                 "--dir", str(directory), "--payloads", str(payloads),
                 "--payload-size", str(payload_size), "--rate", repr(rate),
                 "--linger", repr(linger_s), *options.worker_args(i, n)],
                cwd=root, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout_s
        failure = None
        for i, proc in enumerate(procs):
            try:
                code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                failure = f"timed out after {timeout_s:g} s"
                break
            if code != 0:
                failure = f"worker {i} exited with status {code}"
                break
        if failure is not None:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait()
            tails = []
            for i in range(n):
                text = (directory / f"worker-{i}.log").read_text(errors="replace")
                tails.append(f"--- worker {i} (exit {procs[i].returncode}) ---\n"
                             f"{text[-4000:]}")
            raise RuntimeError(f"{failure}; logs in {directory}\n" + "\n".join(tails))
        results = [json.loads((directory / f"result-{i}.json").read_text(encoding="utf-8"))
                   for i in range(n)]
    finally:
        for log in logs:
            log.close()
    if not keep_dir:
        shutil.rmtree(directory, ignore_errors=True)
    return results


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The phase's headline numbers from the workers' results (see the module docstring).

    Only correct members (no injected fault) count: throughput and latency are theirs, and
    per-payload costs are sums over each correct member's window (its first broadcast to its
    last delivery) divided by the payload count; the ``*_incl_linger`` variants run each
    window on to the member's exit, so they add idle traffic (status messages, checkpoints)
    of the linger period. After a view change, ``recovery_s`` is the time from the first
    broadcast to the first delivery in the final view at the slowest correct member, and
    ``throughput_after_recovery_per_s`` the lowest per-member delivery rate (payloads of
    every origin) from the moment the member installed the final view to its last delivery
    of a correct origin's payload.
    """
    all_results = results
    results = [r for r in results if r.get("correct", True)]
    total = int(results[0]["payloads"])
    elapsed = [float(r["elapsed_s"]) for r in results]
    latencies = [x for r in results for x in r["latencies_ms"]]
    stats = [r["member_statistics"] for r in results]

    def per_payload(part: str, name: str) -> float:
        if not total or any(r[part] is None for r in results):
            return math.nan
        return sum(float(r[part][name]) for r in results) / total

    summary: dict[str, Any] = {
        "n": len(all_results),
        "correct_members": [int(r["member"]) for r in results],
        "payloads": total,
        "all_delivered": all(r["delivered"] == total for r in results),
        "same_order": len({r["order_digest"] for r in results}) == 1,
        "throughput_per_s": total / max(elapsed) if total else math.nan,
        "throughput_per_member_per_s": [total / e if e > 0 else math.nan for e in elapsed],
        "elapsed_s": elapsed,
        "latency_samples": len(latencies),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p90_ms": percentile(latencies, 0.90),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_max_ms": max(latencies) if latencies else math.nan,
        "latency_cdf": latency_cdf(latencies),
        "final_view": max((int(r["member_statistics"]["view"]) for r in results), default=0),
        "calls_outstanding_max": [r.get("calls_outstanding_max", 0) for r in results],
        "evidence_against": sorted({m for r in results
                                    for m in r["member_statistics"].get("evidence", [])}),
    }
    summary.update(_recovery(results, summary["final_view"]))
    summary["fault_effects"] = {str(r["member"]): r["fault"] for r in all_results
                                if r.get("fault") is not None}
    nets = [r["net"] for r in all_results if r.get("net") is not None]
    summary["net_effects"] = None if not nets else {
        key: sum(net[key] for net in nets) for key in ("lost", "delivered", "duplicated",
                                                       "delay_s")}
    for key, name in (("signatures_made", "signatures_made"),
                      ("signatures_verified", "signatures_verified"),
                      ("messages", "messages_sent"), ("bytes", "bytes_sent"),
                      ("cpu_s", "cpu_s")):
        summary[f"{key}_per_payload"] = per_payload("window", name)
        summary[f"{key}_per_payload_incl_linger"] = per_payload("through_linger", name)
    summary.update({
        "cpu_window_s": [float(r["window"]["cpu_s"]) if r["window"] else math.nan
                         for r in results],
        "cpu_total_s": [float(r["cpu_total_s"]) for r in results],
        "max_rss_mib": [int(r["max_rss_kib"]) / 1024 for r in results],
        "view_changes_started": sum(s["view_changes_started"] for s in stats),
        "frames_dropped_by_transport": sum(int(r["frames_dropped_by_transport"])
                                           for r in results),
        "durable": None if any(r.get("durable") is None for r in results) else {
            key: [r["durable"][key] for r in results]
            for key in ("commits", "commit_seconds", "store_bytes")},
        "dropped": {k: sum(s["dropped"].get(k, 0) for s in stats)
                    for k in sorted({k for s in stats for k in s["dropped"]})},
    })
    return summary


def latency_cdf(latencies_ms: list[float], points: int = 60) -> list[list[float]]:
    """``[latency_ms, fraction]`` pairs tracing the empirical CDF at ``points`` quantiles."""
    if not latencies_ms:
        return []
    ordered = sorted(latencies_ms)
    last = len(ordered) - 1
    fractions = [i / (points - 1) for i in range(points)]
    return [[ordered[round(f * last)], f] for f in fractions]


def _recovery(results: list[dict[str, Any]], final_view: int) -> dict[str, float]:
    """Recovery time and post-recovery throughput after view changes (nan without any)."""
    if final_view == 0:
        return {"recovery_s": math.nan, "throughput_after_recovery_per_s": math.nan}
    firsts: list[float] = []
    rates: list[float] = []
    for r in results:
        installed = next((t for t, v in r["views"] if v == final_view), None)
        times = r["delivered_at_s"]
        if installed is None or not times:
            continue
        after = [t for t in times if t > installed]
        if after:
            firsts.append(after[0])
            # Every payload delivered counts, a faulty origin's too: it is work the cluster
            # did (the fault-free rate it is compared with counts every origin's).
            every = [t for t in r.get("any_delivered_at_s", times) if installed < t <= times[-1]]
            span = times[-1] - installed
            rates.append(len(every) / span if span > 0 else math.nan)
    return {"recovery_s": max(firsts) if firsts else math.nan,
            "throughput_after_recovery_per_s": min(rates) if rates else math.nan}


def _print_summary(title: str, s: dict[str, Any], wall_s: float) -> None:
    def row(label: str, value: str) -> None:
        print(f"  {label:<40} {value}")

    def pair(key: str, fmt: str) -> str:
        return f"{s[key]:{fmt}} ({s[key + '_incl_linger']:{fmt}} incl. linger)"

    print(title)
    row("payloads (delivered at each member)", f"{s['payloads']}  all delivered: "
        f"{'yes' if s['all_delivered'] else 'NO'}, same order: "
        f"{'yes' if s['same_order'] else 'NO'}")
    row("throughput (payloads/s at every member)", f"{s['throughput_per_s']:,.0f}")
    row("  per member", " ".join(f"{t:,.0f}" for t in s["throughput_per_member_per_s"]))
    row("latency p50 / p90 / p99 / max (ms)",
        f"{s['latency_p50_ms']:.1f} / {s['latency_p90_ms']:.1f} / "
        f"{s['latency_p99_ms']:.1f} / {s['latency_max_ms']:.1f}  "
        f"({s['latency_samples']} samples)")
    row("signatures made per payload", pair("signatures_made_per_payload", ".2f"))
    row("signatures verified per payload", pair("signatures_verified_per_payload", ".2f"))
    row("messages sent per payload", pair("messages_per_payload", ".2f"))
    row("bytes sent per payload", pair("bytes_per_payload", ",.0f"))
    row("CPU ms per payload (cluster)",
        f"{s['cpu_s_per_payload'] * 1000:.3f} "
        f"({s['cpu_s_per_payload_incl_linger'] * 1000:.3f} incl. linger)")
    row("CPU s per member: window / process", " ".join(
        f"{w:.2f}/{t:.2f}" for w, t in zip(s["cpu_window_s"], s["cpu_total_s"], strict=True)))
    row("peak RSS per member (MiB)", " ".join(f"{r:.1f}" for r in s["max_rss_mib"]))
    extras = f"view changes {s['view_changes_started']}, transport drops " \
             f"{s['frames_dropped_by_transport']}"
    if s["dropped"]:
        extras += f", member drop counters {s['dropped']}"
    row("anomalies", extras)
    if s.get("durable") is not None:
        d = s["durable"]
        row("durable: commits / commit s / store MiB", " ".join(
            f"{c}/{t:.1f}/{b / 2**20:.1f}" for c, t, b in
            zip(d["commits"], d["commit_seconds"], d["store_bytes"], strict=True)))
    row("phase wall time", f"{wall_s:.1f} s")


def _finite(value: Any) -> Any:
    """``value`` with every nan or infinity replaced by None (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m btob.bench.tcp_bench`` (``btob bench tcp``)."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.tcp_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4,
                        help="members, one process each (default %(default)s)")
    parser.add_argument("--payloads", type=int, default=3000,
                        help="payloads in all (each member broadcasts payloads // n)")
    parser.add_argument("--payload-size", type=int, default=100,
                        help="bytes per payload, at least 8 (default %(default)s)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="cluster-wide payloads/s (0: flat out)")
    parser.add_argument("--low-load-payloads", type=int, default=200,
                        help="payloads of the low-load latency phase (0: skip it)")
    parser.add_argument("--low-load-rate", type=float, default=50.0,
                        help="cluster-wide payloads/s of the low-load phase")
    parser.add_argument("--linger", type=float, default=2.0,
                        help="seconds a worker keeps serving peers after its last delivery")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a phase may take before it counts as failed "
                             "(default %(default)s)")
    parser.add_argument("--keep-dir", action="store_true", help="keep the temp directories")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="also write the numbers to OUT")
    parser.add_argument("--core", choices=("btob", "baseline"), default="btob",
                        help="btob, or the crash-only unsigned baseline (bench/baseline.py)")
    parser.add_argument("--variant", choices=VARIANTS, default="bb",
                        help="sequencer variant of the btob core (default %(default)s)")
    parser.add_argument("--brb", choices=BRB_KINDS, default="bracha",
                        help="reliable broadcast of batches (default %(default)s)")
    parser.add_argument("--votes", choices=VOTE_MODES, default=None,
                        help="how ordering votes travel, in cluster.toml and every member: all "
                             "(to every member) or linear (to the slot's proposer, which "
                             "forwards certificates); default all")
    parser.add_argument("--batch-size", type=int, default=Settings().batch_payloads_max,
                        help="most payloads per batch (default %(default)s)")
    parser.add_argument("--batch-delay", type=float, default=0.0,
                        help="seconds a payload may wait for its batch to fill (default 0: "
                             "batches form under load only)")
    parser.add_argument("--view-change-timeout", type=float,
                        default=Settings().view_change_timeout_s, metavar="SECONDS",
                        help="base seconds known work may wait before the sequencer is "
                             "suspected (default %(default)s)")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="a process fault ID=BEHAVIOUR[:k=v,...] (repeatable)")
    parser.add_argument("--net", default="", metavar="key=value,...",
                        help="network faults on what every member sends")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="any other btob.Settings field, e.g. slots_in_flight_max=2")
    parser.add_argument("--data", action="store_true",
                        help="each member keeps its durable state in a data directory under "
                             "the run's temporary directory (btob core only)")
    parser.add_argument("--callers", type=int, default=1, metavar="K",
                        help="flat out, K concurrent broadcast_many callers per member "
                             "(default 1)")
    # The benchmark starts one worker process per member with these three.
    parser.add_argument("--faulty", type=int, action="append", default=[], metavar="ID",
                        help="internal, worker mode: a faulty member, whose payloads the "
                             "worker does not wait for (repeatable; derived from --fault)")
    parser.add_argument("--worker", type=int, default=None, metavar="ID",
                        help="internal: run only member ID as a worker process of a running "
                             "benchmark (needs --dir)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="internal, worker mode: the benchmark's directory holding "
                             "cluster.toml and keys; the worker writes result-ID.json there")
    return parser


def _options(args: argparse.Namespace) -> WorkerOptions:
    return WorkerOptions(core=args.core, variant=args.variant, brb=args.brb, votes=args.votes,
                         batch_size=args.batch_size, batch_delay_s=args.batch_delay,
                         view_change_timeout_s=args.view_change_timeout,
                         faults=tuple(args.fault), net=args.net, settings=tuple(args.setting),
                         data=args.data, callers=args.callers)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one member); returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        if args.dir is None:
            raise SystemExit("--worker needs --dir")
        return run_worker(args)
    if args.n < 1 or args.payload_size < HEADER.size or args.payloads < args.n \
            or args.callers < 1:
        raise SystemExit(f"need --n >= 1, --payloads >= n, --payload-size >= {HEADER.size} "
                         f"and --callers >= 1")
    if args.data and args.core == "baseline":
        raise SystemExit("python -m btob.bench.tcp_bench: the crash-only baseline keeps no "
                         "durable state: --data needs --core btob")
    try:
        votes = _settings(args).votes  # refuse bad settings here, not in n worker tracebacks
    except ConfigError as exc:
        raise SystemExit(f"python -m btob.bench.tcp_bench: {exc}") from None
    phases = [("throughput", args.payloads, args.rate)]
    if args.low_load_payloads > 0:
        phases.append(("low-load", args.low_load_payloads, args.low_load_rate))
    report: dict[str, Any] = {"n": args.n, "payload_size": args.payload_size,
                              "core": args.core, "variant": args.variant, "brb": args.brb,
                              "votes": votes, "phases": {}}
    started = time.monotonic()
    status = 0
    for name, payloads, rate in phases:
        phase_start = time.monotonic()
        try:
            results = run_cluster(args.n, payloads, args.payload_size, rate,
                                  linger_s=args.linger, timeout_s=args.timeout,
                                  keep_dir=args.keep_dir, options=_options(args))
        except RuntimeError as exc:
            print(f"{name} phase FAILED: {exc}", file=sys.stderr)
            report["phases"][name] = {"failed": str(exc)}
            status = 1
            continue
        wall = time.monotonic() - phase_start
        summary = summarize(results)
        summary.update(rate=rate, wall_s=wall)
        report["phases"][name] = summary
        load = "flat out" if rate <= 0 else f"{rate:g} payloads/s"
        _print_summary(f"{name}: n={args.n}, {summary['payloads']} payloads of "
                       f"{args.payload_size} B, {load}, votes {votes}, TCP loopback, one "
                       f"process per member",
                       summary, wall)
        if not (summary["all_delivered"] and summary["same_order"]):
            status = 1
    report["wall_s"] = time.monotonic() - started
    print(f"total wall time {report['wall_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(_finite(report), indent=2) + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
