"""``btob keygen`` and ``btob node``: a real cluster of processes over TCP."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import trio

from btob._errors import ConfigError, DeliveryNotRetained
from btob.apps.kv import KVStore
from btob.core.application import StateMachine
from btob.core.dissemination import BRB_KINDS
from btob.core.settings import (
    CLUSTER_SETTINGS,
    LINEAR_VOTES_FROM_N,
    VOTE_MODES,
    Settings,
    default_vote_mode,
    settings_with,
)
from btob.core.variants import VARIANTS
from btob.crypto import KeyRegistry, SigningKey, load_signing_key, save_signing_key
from btob.faults import FaultSpec, NetSpec, parse_fault, parse_net
from btob.runtime.config import (
    ClusterConfig,
    MemberAddress,
    load_cluster_config,
    write_cluster_config,
)
from btob.runtime.node import Node, Transport, open_node
from btob.runtime.nursery import open_background_nursery
from btob.sim.logs import (
    BroadcastRecord,
    DeliveryRecord,
    LogAppender,
    MemberInfo,
    RunInfo,
    SettledRecord,
    next_delivery_index,
    write_run_info,
)

__all__ = ["APPS", "add_keygen_arguments", "add_node_arguments", "run_keygen", "run_node",
           "with_vote_mode", "workload_payload"]


APPS: dict[str, Callable[[], StateMachine]] = {"kv": KVStore}
"""The applications ``btob node --app`` can run, by name."""


def with_vote_mode(settings: Settings, votes: str | None, texts: Sequence[str]) -> Settings:
    """``settings`` in the vote mode ``--votes`` names (None: as they are).

    ``texts`` are the command's ``--setting`` texts: one naming another mode than ``votes``
    is a ConfigError (one line), since a command line gives the mode once.
    """
    if votes is None:
        return settings
    named = [t for t in texts if t.partition("=")[0].strip() == "votes"]
    given = settings_with(Settings(), named).votes
    if named and given != votes:
        raise ConfigError(f"--votes {votes} disagrees with --setting votes={given}: give the "
                          f"vote mode once")
    return attrs.evolve(settings, votes=votes)


_VOTES_HELP = ("all (each ordering vote to every member) or linear (each to the slot's "
               "proposer, which forwards the certificates it gathers)")


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``btob keygen``."""
    parser.add_argument("--n", type=int, required=True, help="members of the cluster (>= 1)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory to write cluster.toml, node-<i>.key and client-<j>.key "
                             "into (created if missing; existing files are never overwritten)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="host every member listens on, written to cluster.toml "
                             "(default %(default)s; edit the file for one host per member)")
    parser.add_argument("--base-port", type=int, default=7400, metavar="PORT",
                        help="TCP port of member 0; member i listens on PORT+i "
                             "(default %(default)s)")
    parser.add_argument("--cluster-id", default=None,
                        help="cluster id that every signature covers, up to 64 bytes "
                             "(default: 16 random hex characters)")
    parser.add_argument("--f", type=int, default=None,
                        help="Byzantine members tolerated (default (n-1)//3)")
    parser.add_argument("--brb", choices=BRB_KINDS, default="bracha",
                        help="reliable broadcast of batches, written to cluster.toml: bracha "
                             "(double echo) or echo (signed echo) (default %(default)s)")
    parser.add_argument("--variant", choices=VARIANTS, default="bb",
                        help="sequencer variant, written to cluster.toml (default "
                             "%(default)s; see btob sim --help)")
    parser.add_argument("--votes", choices=VOTE_MODES, default=None,
                        help="how ordering votes travel, written to cluster.toml's [settings]: "
                             + _VOTES_HELP + f" (default: linear from n={LINEAR_VOTES_FROM_N}, "
                             "all below)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a cluster-wide Settings field for cluster.toml, e.g. "
                             "checkpoint_interval=32 (repeatable; every member then uses it)")
    clients = parser.add_mutually_exclusive_group()
    clients.add_argument("--clients", type=int, default=0, metavar="K",
                         help="also write K client keys, client-<j>.key (mode 0600), and "
                              "admit exactly them in cluster.toml (default 0)")
    clients.add_argument("--open-clients", action="store_true",
                         help='admit any client key (clients = "open" in cluster.toml)')
    parser.add_argument("--client-base-port", type=int, default=None, metavar="PORT",
                        help="with --clients or --open-clients: member i serves clients on "
                             "PORT+i (default: right after the members' ports, "
                             "--base-port + n); without either, no member serves clients")


def run_keygen(args: argparse.Namespace) -> int:
    """Write ``OUT/cluster.toml``, ``OUT/node-<i>.key`` and ``OUT/client-<j>.key`` (mode
    0600)."""
    if args.n < 1 or not 0 < args.base_port < 65536 - args.n:
        raise ConfigError("--n must be >= 1 and the ports must fit below 65536")
    if args.clients < 0:
        raise ConfigError(f"--clients {args.clients}: must be 0 or more")
    serving = args.clients > 0 or args.open_clients
    if args.client_base_port is not None and not serving:
        raise ConfigError("--client-base-port needs --clients or --open-clients")
    client_base = args.base_port + args.n if args.client_base_port is None \
        else args.client_base_port
    if serving and not 0 < client_base < 65536 - args.n:
        raise ConfigError(f"--client-base-port {client_base}: the client ports must fit "
                          f"below 65536")
    if serving and client_base < args.base_port + args.n and \
            args.base_port < client_base + args.n:
        raise ConfigError(f"--client-base-port {client_base}: the client ports overlap the "
                          f"members' ports {args.base_port}..{args.base_port + args.n - 1}")
    out: Path = args.out
    targets = [out / f"node-{i}.key" for i in range(args.n)] + [out / "cluster.toml"]
    targets += [out / f"client-{j}.key" for j in range(args.clients)]
    # Checked before writing anything, so a refused run leaves no half-made cluster behind.
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    for target in targets:
        if target.exists() or target.is_symlink():
            raise ConfigError(f"--out {out}: {target} already exists; refusing to overwrite "
                              "it (choose a new directory)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the directory: "
                          f"{exc.strerror or exc}") from None
    named = any(t.partition("=")[0].strip() == "votes" for t in args.setting)
    votes = args.votes if args.votes is not None or named else default_vote_mode(args.n)
    settings = with_vote_mode(settings_with(Settings(), args.setting), votes, args.setting)
    local = [name for name in _changed(settings) if name not in CLUSTER_SETTINGS]
    if local:
        raise ConfigError(f"--setting {local[0]}: a member's own setting, not the cluster's; "
                          f"give it to btob node --setting")
    keys = [SigningKey.generate() for _ in range(args.n)]
    client_keys = [SigningKey.generate() for _ in range(args.clients)]
    cluster_id = (args.cluster_id or os.urandom(8).hex()).encode()
    config = ClusterConfig(
        cluster_id, KeyRegistry(tuple(k.public_key() for k in keys)),
        tuple(MemberAddress(args.host, args.base_port + i) for i in range(args.n)), args.f,
        brb=args.brb, variant=args.variant, settings=settings,
        client_keys=tuple(k.public_key() for k in client_keys),
        clients_open=args.open_clients,
        client_addresses=tuple(MemberAddress(args.host, client_base + i)
                               for i in range(args.n)) if serving else (),
    )
    for i, key in enumerate(keys):
        save_signing_key(key, out / f"node-{i}.key")  # KeyFileError naming the file
    for j, key in enumerate(client_keys):
        save_signing_key(key, out / f"client-{j}.key")
    try:
        write_cluster_config(out / "cluster.toml", config)
    except OSError as exc:
        raise ConfigError(f"cannot write {out / 'cluster.toml'}: {exc.strerror or exc}") from None
    clients = f" and {args.clients} client key files" if args.clients else ""
    print(f"wrote {out / 'cluster.toml'}, {args.n} member key files{clients} (mode 0600) "
          f"in {out}")
    return 0


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``btob node``."""
    parser.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="the cluster.toml all members share (written by btob keygen)")
    parser.add_argument("--id", type=int, required=True,
                        help="this member's id in the cluster (0..n-1)")
    parser.add_argument("--key", type=Path, required=True, metavar="FILE",
                        help="this member's private key file (mode 0600, e.g. node-<id>.key)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="data directory (durable state); a restarted member resumes "
                             "from it (default: none, nothing survives the process)")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="append delivery logs here, for btob check (default: none)")
    parser.add_argument("--workload", type=int, default=0,
                        help="payloads this member broadcasts in all, across restarts "
                             "(default 0)")
    parser.add_argument("--payload-size", type=int, default=100,
                        help="bytes per workload payload (default %(default)s)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="workload payloads/s of this member (default 0: flat out)")
    parser.add_argument("--exit-after", type=int, default=0,
                        help="exit 0 once this many payloads were delivered (default 0: "
                             "run until interrupted)")
    parser.add_argument("--linger", type=float, default=2.0,
                        help="seconds to keep serving peers after --exit-after is reached "
                             "(default %(default)s)")
    parser.add_argument("--fault", metavar="SPEC",
                        help="make this member faulty: ID=BEHAVIOUR[:k=v,...] with ID its own "
                             "id, times in seconds since the node started (`btob faults` "
                             "lists the behaviours)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="this member's own tuning, a Settings field, e.g. "
                             "retransmit_interval_s=0.1 (repeatable); a cluster-wide field "
                             "must agree with cluster.toml")
    parser.add_argument("--votes", choices=VOTE_MODES, default=None,
                        help="how ordering votes travel, cluster-wide: " + _VOTES_HELP
                             + "; must agree with cluster.toml, whose mode is used without it")
    parser.add_argument("--net", default="", metavar="key=value,...",
                        help="network faults on what this member sends (as in btob sim)")
    parser.add_argument("--app", choices=sorted(APPS), default=None,
                        help="the replicated application every member runs: kv, the "
                             "key-value session store that btob client kv uses (all members "
                             "must run the same one)")
    parser.add_argument("--view-change-timeout", type=float, default=1.0, metavar="SECONDS",
                        help="base seconds known work may wait before the sequencer is "
                             "suspected; doubles on consecutive view changes (default "
                             "%(default)s)")


def workload_payload(member: int, counter: int, size: int) -> bytes:
    """The deterministic payload ``counter`` of ``member`` (the same after a restart)."""
    head = struct.pack(">II", member, counter)
    body = b""
    block = 0
    while len(head) + len(body) < size:
        body += hashlib.sha256(head + block.to_bytes(4, "big")).digest()
        block += 1
    return (head + body)[: max(size, len(head))]


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as stream:
        return sum(1 for line in stream if line.endswith(b"\n"))


def run_node(args: argparse.Namespace) -> int:
    """Run one member until ``--exit-after`` deliveries (then linger), or forever."""
    config = load_cluster_config(args.config)
    if not 0 <= args.id < config.n:
        raise ConfigError(f"--id {args.id} is not a member of {args.config} (0..{config.n - 1})")
    config.agreed("votes", args.votes)  # cluster-wide: the file's mode, or the same one
    key = load_signing_key(args.key)
    if key.public_key() != config.registry.public_key(args.id):
        raise ConfigError(f"key file {args.key} does not hold member {args.id}'s key")
    fault = parse_fault(args.fault, config.n) if args.fault else None
    if fault is not None and fault.member != args.id:
        raise ConfigError(f"--fault {args.fault}: it must name this member's id ({args.id})")
    base = attrs.evolve(config.settings, view_change_timeout_s=args.view_change_timeout)
    settings = config.member_settings(settings_with(base, args.setting))
    net = parse_net(args.net, config.n) if args.net else None
    return trio.run(_run_node, args, config, key, fault, settings, net)


def _changed(settings: Settings) -> list[str]:
    default = Settings()
    return [a.name for a in attrs.fields(Settings)
            if getattr(settings, a.name) != getattr(default, a.name)]


EXIT_SIGNALLED = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}
"""Exit status after a clean stop on SIGTERM (143) or SIGINT (130), as a shell reports a
process the signal ended."""


async def _run_node(args: argparse.Namespace, config: ClusterConfig, key: SigningKey,
                    fault: FaultSpec | None, settings: Settings, net: NetSpec | None) -> int:
    """Run the node until ``--exit-after`` (then linger) or SIGTERM/SIGINT, which stop it
    cleanly - a commit under way finishes, the logs are closed - and exit 143/130."""
    def wrapper(inner: Transport) -> Transport:
        from btob.runtime.netfaults import NetFaultTransport

        return inner if net is None else NetFaultTransport(inner, net, member=args.id)

    appender = None
    if args.log_dir is not None:
        try:
            _ensure_run_info(args.log_dir, config, args.id,
                             byzantine=fault is not None and fault.byzantine)
            appender = LogAppender(args.log_dir, args.id)
        except OSError as exc:
            raise ConfigError(f"--log-dir {args.log_dir} cannot be written: "
                              f"{exc.strerror or exc}") from None
    stopped_by: list[signal.Signals] = []
    summary = ""
    with trio.open_signal_receiver(*EXIT_SIGNALLED) as signals:
        async with open_background_nursery() as outer:
            async def stop_on_signal() -> None:
                async for signum in signals:
                    stopped_by.append(signal.Signals(signum))
                    outer.cancel_scope.cancel()
                    return

            outer.start_soon(stop_on_signal)
            app = None if args.app is None else APPS[args.app]()
            async with open_node(config, args.id, key, data_dir=args.data, settings=settings,
                                 fault=fault, transport_wrapper=wrapper, app=app) as node:
                try:
                    await _serve(node, args, appender)
                finally:
                    summary = _summary(node)
            outer.cancel_scope.cancel()
    if appender is not None:
        appender.close()
    if stopped_by:
        print(f"node {args.id}: stopped by {stopped_by[0].name}; {summary or 'summary: none'}",
              flush=True)
        return EXIT_SIGNALLED[stopped_by[0]]
    print(f"node {args.id}: {summary}", flush=True)
    return 0


def _summary(node: Node) -> str:
    """What a node says of itself when it exits (see docs/operations.md)."""
    statistics = node.statistics()
    transfer = statistics.member.transfer
    skipped = sum(s.end - s.start for s in node.skipped if s.by == "transfer")
    return (f"summary: delivered={node.delivered} view={node.view} "
            f"slots_restored={statistics.slots_restored} "
            f"transfers_completed={transfer.completed} transfer_chunks={transfer.chunks_received} "
            f"deliveries_transferred={skipped}")


async def _serve(node: Node, args: argparse.Namespace, appender: LogAppender | None) -> None:
    """The workload and the delivery log, until ``--exit-after`` (and the linger) or for
    ever."""
    member = node.id
    # The restored member counts the payloads it accepted before a crash (they are part
    # of its committed state); only those broadcasts returned, so the workload goes on
    # from there, and one accepted but never committed is broadcast again with its id. A
    # member back with an empty data directory first learns from its peers where its
    # counters stand: what it had accepted that no peer had seen is lost with the disk,
    # and the workload broadcasts those payloads again, under their ids.
    learning = not node.statistics().member.counters_known
    already = await node.next_payload_counter()
    logged = 0
    if appender is not None:
        logged = _count_lines(args.log_dir / f"node-{member}.broadcast.jsonl")
        for counter in range(logged, already):  # durable, but killed before logged
            payload = workload_payload(member, counter, args.payload_size)
            appender.append_broadcast(BroadcastRecord(
                f"{member}:{counter}", hashlib.sha256(payload).hexdigest()))
    if learning:
        lost = "" if already >= logged else (
            f"; payloads {already}..{logged - 1}, accepted before but seen by no peer, "
            f"were lost with the data directory and are broadcast again")
        print(f"node {member}: empty data directory: counters learnt from the peers, its "
              f"payloads continue at {already}{lost}", flush=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_workload, node, args, already, logged, appender)
        index = next_delivery_index(args.log_dir, member) if args.log_dir is not None else 0
        while not args.exit_after or index < args.exit_after:
            try:
                async for delivery in node.deliveries(index):
                    if appender is not None:
                        appender.append_delivery(DeliveryRecord(
                            delivery.index, str(delivery.msg_id), delivery.origin,
                            hashlib.sha256(delivery.payload).hexdigest()))
                        appender.flush()
                    index = delivery.index + 1
                    if args.exit_after and index >= args.exit_after:
                        break
            except DeliveryNotRetained as exc:
                index = _skip(node, index, exc, appender)
        print(f"node {member}: {index} payloads delivered; lingering {args.linger:g} s",
              flush=True)
        await trio.sleep(args.linger)
        nursery.cancel_scope.cancel()


def _skip(node: Node, index: int, exc: DeliveryNotRetained,
          appender: LogAppender | None) -> int:
    """Go on past deliveries this member never made - it took the state at a stable
    checkpoint instead (restored, or by state transfer) - saying so, in its delivery log too
    (the checker judges the run as what the others delivered there); anything else that left
    the log behind is an error."""
    runs = [s for s in node.skipped if s.start <= index < s.end == exc.oldest]
    if not runs:
        raise exc
    if appender is not None:
        appender.append_delivery(SettledRecord(index, exc.oldest, runs[-1].by))
        appender.flush()
    print(f"node {node.id}: deliveries {index}..{exc.oldest - 1} are not in its log: its "
          f"member took the state at a stable checkpoint ({runs[-1].by}) where they are "
          f"settled", flush=True)
    return exc.oldest


async def _workload(node: Node, args: argparse.Namespace, already: int, logged: int,
                    appender: LogAppender | None) -> None:
    for counter in range(already, args.workload):
        payload = workload_payload(node.id, counter, args.payload_size)
        msg_id = await node.broadcast(payload)
        if msg_id.counter != counter:
            raise AssertionError(f"workload payload {counter} was accepted as {msg_id}")
        if appender is not None and counter >= logged:  # a lost one is logged already
            appender.append_broadcast(BroadcastRecord(str(msg_id),
                                                      hashlib.sha256(payload).hexdigest()))
            appender.flush()
        if args.rate > 0:
            await trio.sleep(1.0 / args.rate)


def _ensure_run_info(log_dir: Path, config: ClusterConfig, member: int, *,
                     byzantine: bool) -> None:
    """Create ``run.json`` if no member did yet (the harness marks it complete at the end)."""
    members = {i: MemberInfo(honest=not (byzantine and i == member), crashed=False)
               for i in range(config.n)}
    write_run_info(log_dir, RunInfo(n=config.n, f=config.quorums.f, complete=False,
                                    members=members), replace=False)
