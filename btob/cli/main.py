"""The ``btob`` command line: demo, sim, check and faults."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from btob._errors import BtobError, ConfigError
from btob.cli.client import add_client_arguments, run_client
from btob.cli.node import (
    add_keygen_arguments,
    add_node_arguments,
    run_keygen,
    run_node,
    with_vote_mode,
)
from btob.cli.receipt import add_receipt_arguments, run_receipt
from btob.core.dissemination import BRB_KINDS
from btob.core.proposers import view_leader
from btob.core.settings import VOTE_MODES, Settings, settings_with
from btob.core.variants import VARIANTS
from btob.faults import (
    BEHAVIOURS,
    STRATEGIES,
    NetSpec,
    load_mixes,
    parse_adversary,
    parse_fault,
    parse_net,
)
from btob.faults._clients import CLIENT_BEHAVIOURS, parse_client_fault
from btob.sim.checker import check, format_report
from btob.sim.simulator import Restart, SimConfig, SimResult, replay_command, simulate
from btob.sim.sweep import add_sweep_arguments, run_sweep_command

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"btob: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# Shared wording of the options several subcommands have.
_VARIANT_HELP = ("sequencer variant: bb (batches by reliable broadcast, the sequencer orders "
                 "references), ub (batches through the sequencer), uub (signed slot grants) "
                 "or moving (the proposer rotates); default %(default)s")
_BRB_HELP = ("reliable broadcast of batches: bracha (double echo) or echo (Reiter's signed "
             "echo); default %(default)s")
_VOTES_HELP = ("how ordering votes travel: all (every ECHO and READY to every member) or "
               "linear (to the slot's proposer, which forwards the certificates it gathers); "
               "default all")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``btob`` command and all its subcommands (``btob bench`` hands its
    arguments to the benchmark harness, which has its own parser)."""
    parser = _Parser(prog="btob", description="Byzantine-tolerant total-order broadcast.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                title="commands", metavar="COMMAND",
                                help="what to run; `btob COMMAND --help` lists its options")

    demo = sub.add_parser(
        "demo", help="4 members over TCP on loopback, member 0 an equivocating sequencer")
    demo.add_argument("--seed", type=int, default=7,
                      help="seed of the keys and of the faulty sequencer's choices "
                           "(default %(default)s)")
    demo.add_argument("--messages", type=int, default=2000,
                      help="payloads of 100 B in all, split among the three correct members "
                           "(default %(default)s)")
    demo.add_argument("--log-dir", type=Path, metavar="DIR",
                      help="write the run's logs here for `btob check` (default: a new "
                           "temporary directory)")
    demo.add_argument("--variant", choices=VARIANTS, default="bb", help=_VARIANT_HELP)

    sim = sub.add_parser("sim", help="one deterministic simulated run, judged by the checker")
    sim.add_argument("--n", type=int, default=4, help="members (default 4)")
    sim.add_argument("--f", type=int, default=None,
                     help="Byzantine members tolerated (default (n-1)//3)")
    sim.add_argument("--seed", type=int, default=1,
                     help="seed of the run: keys, workload, network and faults; the same seed "
                          "replays the same run (default %(default)s)")
    sim.add_argument("--messages", type=int, default=100, help="payloads in all (default 100)")
    sim.add_argument("--payload-size", type=int, default=100,
                     help="bytes per payload (default 100)")
    sim.add_argument("--rate", type=float, default=2000.0,
                     help="payloads per virtual second, cluster-wide (default 2000)")
    sim.add_argument("--variant", choices=VARIANTS, default="bb", help=_VARIANT_HELP)
    sim.add_argument("--brb", choices=BRB_KINDS, default="bracha", help=_BRB_HELP)
    sim.add_argument("--votes", choices=VOTE_MODES, default=None,
                     help=_VOTES_HELP + " (or what --setting votes=... or --mix sets)")
    sim.add_argument("--fault", action="append", default=[], metavar="ID=BEHAVIOUR[:k=v,...]",
                     help="make member ID faulty, e.g. 0=crash:at=0.3 (repeatable; "
                          "`btob faults` lists the behaviours)")
    sim.add_argument("--net", default="", metavar="key=value,...",
                     help="network faults, e.g. loss=0.05,dup=0.02,delay=0.001-0.05,gst=2 "
                          "(`btob faults` lists the keys; default: 1-5 ms, no loss)")
    sim.add_argument("--mix", metavar="NAME|FILE",
                     help="a preset fault mix or a TOML file of one (its faults and network are "
                          "added to --fault and --net)")
    sim.add_argument("--restart", action="append", default=[],
                     metavar="ID@STEP[/PHASE][/DOWNs][/wiped]",
                     help="an honest member that crashes while taking its STEP-th input, at "
                          "PHASE: before-commit (default; the step is lost), after-commit (no "
                          "frame left), mid-send (half its frames left) or after-send (all "
                          "left, its deliveries did not reach the application); it restarts "
                          "from its durable state DOWN seconds later (default 0.2), or from "
                          "an empty one with /wiped (repeatable)")
    sim.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                     help="a Settings field for every member, e.g. checkpoint_interval=4 "
                          "(repeatable)")
    sim.add_argument("--adversary", metavar="STRATEGY[:k=v,...]",
                     help="a coordinated adversary: f members act as one under STRATEGY, "
                          "with the network on their side until its `until` (`btob faults` "
                          "lists the strategies); it picks the faulty members itself")
    sim.add_argument("--clients", type=int, default=0, metavar="K",
                     help="K clients outside the cluster, each with a key derived from the "
                          "seed, ordering requests through the members (default 0)")
    sim.add_argument("--client-requests", type=int, default=20, metavar="R",
                     help="requests each honest client makes (default 20)")
    sim.add_argument("--client-in-flight", type=int, default=1, metavar="W",
                     help="requests an honest client keeps waiting at a time (default 1: "
                          "closed loop)")
    sim.add_argument("--client-fault", action="append", default=[],
                     metavar="J=BEHAVIOUR[:k=v,...]",
                     help="make client J Byzantine: equivocate, replay, flood or garbage "
                          "(repeatable; see docs/faults.md)")
    sim.add_argument("--open-clients", action="store_true",
                     help="the cluster admits any client key (default: it lists the clients')")
    sim.add_argument("--client-retry", type=float, default=0.3, metavar="S",
                     help="virtual seconds a client waits before trying one more member "
                          "(default 0.3)")
    sim.add_argument("--client-give-up", type=float, default=5.0, metavar="S",
                     help="virtual seconds after which a client gives a request up "
                          "(default 5)")
    sim.add_argument("--max-time", type=float, default=60.0,
                     help="virtual seconds before the run stops, complete or not (default 60)")
    sim.add_argument("--crypto", choices=("nacl", "cryptography"), default="nacl",
                     help="Ed25519 backend: nacl (libsodium) or cryptography (OpenSSL); both "
                          "sign identically (default %(default)s)")
    sim.add_argument("--log-dir", type=Path, metavar="DIR",
                     help="also write the run's logs here, for `btob check` (default: none)")
    sim.add_argument("--require-complete", action="store_true",
                     help="exit 1 if the run did not complete (liveness)")
    sim.add_argument("--quiet", action="store_true", help="print the verdict line only")

    chk = sub.add_parser("check", help="judge a log directory")
    chk.add_argument("log_dir", type=Path, metavar="LOG_DIR",
                     help="a log directory written by btob sim, demo or node (run.json and "
                          "node-<i>.*.jsonl)")

    faults = sub.add_parser("faults", help="list fault behaviours and network keys")
    faults.add_argument("--coverage", action="store_true",
                        help="instead, run every behaviour in the simulator (every variant "
                             "and reliable broadcast, about a minute) and list each check an "
                             "honest member makes with the behaviours that exercised it")

    keygen = sub.add_parser("keygen", help="keys and cluster.toml for a real cluster")
    add_keygen_arguments(keygen)
    node = sub.add_parser("node", help="run one member over TCP")
    add_node_arguments(node)
    client = sub.add_parser("client", help="order payloads from outside the cluster, use its "
                                           "key-value store, or time closed-loop clients")
    add_client_arguments(client)
    receipt = sub.add_parser("receipt", help="verify a client's receipt offline")
    add_receipt_arguments(receipt)

    bench = sub.add_parser(
        "bench", add_help=False,
        help="benchmark matrix (--quick, --full, --matrix FILE; see `btob bench --help`), "
             "or one micro-benchmark: crypto, sim, variants, recovery, tcp, durability")
    # Never parsed here: main() hands everything after "bench" to the harness's own parser.
    bench.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    sweep = sub.add_parser("sweep", help="many seeded runs across fault mixes, sizes and BRBs")
    add_sweep_arguments(sweep)
    return parser


def _sim_config(args: argparse.Namespace) -> SimConfig:
    settings = settings_with(Settings(), args.setting)
    fault_texts = list(args.fault)
    net_text = args.net
    adversary_text: str = args.adversary or ""
    if args.mix:
        mixes = load_mixes(args.mix, args.n)
        if len(mixes) != 1:
            raise ConfigError(f"--mix {args.mix} holds {len(mixes)} mixes; sim runs one")
        fault_texts += list(mixes[0].faults)
        net_text = ",".join(t for t in (mixes[0].net, net_text) if t)
        adversary_text = adversary_text or mixes[0].adversary
        settings = mixes[0].settings(settings)
    net = parse_net(net_text, args.n) if net_text else NetSpec()
    faults = tuple(parse_fault(text, args.n) for text in fault_texts)
    # The flag wins over a mix's mode; without it, the settings' mode is the run's.
    settings = with_vote_mode(settings, args.votes, args.setting)
    return SimConfig(
        n=args.n, f=args.f, seed=args.seed, messages=args.messages,
        payload_size=args.payload_size, rate=args.rate, variant=args.variant, brb=args.brb,
        faults=faults, net=net, max_time=args.max_time, crypto_backend=args.crypto,
        restarts=tuple(Restart.parse(text) for text in args.restart),
        adversary=parse_adversary(adversary_text) if adversary_text else None,
        settings=settings, clients=args.clients, client_requests=args.client_requests,
        client_in_flight=args.client_in_flight, open_clients=args.open_clients,
        client_faults=tuple(parse_client_fault(text, args.clients)
                            for text in args.client_fault),
        client_retry_s=args.client_retry, client_give_up_s=args.client_give_up,
    )


def format_summary(result: SimResult) -> str:
    """The one-screen summary of a simulated run."""
    config = result.config
    q = config.quorums
    faults = ", ".join(str(s) for s in config.faults) or "none"
    lines = [
        f"btob sim  n={config.n} f={q.f} q={q.quorum}  seed={config.seed}  "
        f"variant={config.variant}  brb={config.brb}  votes={config.votes}  "
        f"messages={config.messages} "
        f"x {config.payload_size} B",
        f"network   {config.net.describe()}",
        f"faults    {faults}",
        *([] if not result.adversary else [f"adversary {_describe_adversary(result)}"]),
        f"virtual time {result.virtual_time:.3f} s, {result.events} events, "
        + ("complete" if result.complete else "INCOMPLETE (liveness not judged)"),
        "",
        f"{'member':>6} {'role':<10} {'state':<9} {'delivered':>9} {'msgs sent':>10} "
        f"{'bytes sent':>11} {'signed':>7} {'verified':>9} {'cache hits':>10}",
    ]
    for s in result.statistics:
        info = result.logs.run.members[s.member]
        state = "byzantine" if not info.honest else ("crashed" if info.crashed else "correct")
        role = "sequencer" if s.member == view_leader(s.view, config.n) else "member"
        lines.append(
            f"{s.member:>6} {role:<10} {state:<9} {s.deliveries:>9} {s.messages_sent:>10} "
            f"{s.bytes_sent:>11} {s.signatures_made:>7} {s.signatures_verified:>9} "
            f"{s.verify_cache_hits:>10}"
        )
    delivered = max((s.deliveries for s in result.statistics), default=0)
    per = max(delivered, 1)
    lines += [
        "",
        f"totals    {result.messages_sent} messages "
        f"({result.messages_sent / per:.1f} per payload), "
        f"{result.bytes_sent:,} bytes, {result.signatures_made} signatures made, "
        f"{result.signatures_verified} verified "
        f"({result.signatures_verified / per:.2f} per payload per cluster)",
    ]
    for record in result.view_changes:
        recovery = record.recovery_s
        failed = "failure time unknown" if record.failed_at is None else (
            f"sequencer {view_leader(record.view - 1, config.n)} failed at "
            f"{record.failed_at:.3f} s")
        committed = "no commit since" if record.first_commit_at is None else (
            f"next commit at {record.first_commit_at:.3f} s")
        lines.append(
            f"view      {record.view} (sequencer {record.sequencer}) installed at "
            f"{record.installed_at:.3f} s; {failed}; {committed}"
            + ("" if recovery is None else f"; recovery {recovery:.3f} s")
        )
    if not result.view_changes:
        lines.append("view      0 throughout (no view change)")
    honest = result.logs.run.members
    proven = sorted({m for s in result.statistics if honest[s.member].honest for m in s.evidence})
    convicted = f"members {proven} proven Byzantine" if proven else "none"
    lines.append(f"evidence  {convicted}")
    if result.client_statistics or result.client_faults:
        stats = list(result.client_statistics.values())
        total = {name: sum(getattr(x, name) for x in stats)
                 for name in ("requests", "receipts_valid", "receipts_invalid", "failovers",
                              "notices", "gave_up")}
        byzantine = ", ".join(str(fault.spec) if hasattr(fault, "spec") else str(j)
                              for j, fault in sorted(result.client_faults.items()))
        drops: dict[str, int] = {}
        for member_drops in result.client_drops.values():
            for reason, count in member_drops.items():
                drops[reason] = drops.get(reason, 0) + count
        lines.append(
            f"clients   {len(stats)} honest: {total['requests']} requests, "
            f"{total['receipts_valid']} receipts verified, {total['receipts_invalid']} refused, "
            f"{total['failovers']} fail-overs, {total['notices']} notices, "
            f"{total['gave_up']} given up"
            + (f"; Byzantine {byzantine}" if byzantine else "")
            + (f"; members dropped {dict(sorted(drops.items()))}" if drops else ""))
    for restart in config.restarts:
        back = result.restarted.get(restart.member)
        if back is None:
            lines.append(f"restart   {restart}: never happened (the run ended first)")
        else:
            transfers = result.transfers.get(restart.member, 0)
            lines.append(f"restart   {restart}: back at {back:.3f}s, "
                         f"{transfers} state transfer(s), "
                         f"{result.lost_with_disk.get(restart.member, 0)} payload(s) lost "
                         f"with the disk")
    for mismatch in (*result.redelivery_mismatches[:3], *result.vote_violations[:3]):
        lines.append(f"VIOLATION {mismatch}")
    for violation in result.report.violations:
        lines.append(f"VIOLATION {violation}")
    if result.ok:
        verdict = "verdict   PASS"
        if not result.complete:
            verdict += " (safety only: the run did not complete)"
    else:
        count = (result.report.violation_count + len(result.redelivery_mismatches)
                 + len(result.vote_violations))
        verdict = f"verdict   FAIL ({count} violations)"
    lines.append(verdict)
    if not result.ok:
        lines.append(f"replay    {replay_command(config)}")
    return "\n".join(lines)


def _describe_adversary(result: SimResult) -> str:
    roles = "; ".join(f"{k} {v}" for k, v in result.adversary.items()
                      if k not in ("strategy", "holds", "rewrites"))
    return (f"{result.adversary['strategy']}: {roles}; held back "
            f"{result.adversary['holds']} honest frame(s), changed or kept "
            f"{result.adversary['rewrites']} of its own")


def _writable_log_dir(path: Path | None) -> None:
    """Create ``--log-dir`` up front, so a bad one is refused before a whole run, not after."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--log-dir {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--log-dir {path} cannot be created: {exc.strerror or exc}") from None


def _cmd_sim(args: argparse.Namespace) -> int:
    config = _sim_config(args)
    _writable_log_dir(args.log_dir)
    try:
        result = simulate(config, log_dir=args.log_dir)
    except OSError as exc:  # only the logs touch the file system
        raise ConfigError(f"--log-dir {args.log_dir} cannot be written: "
                          f"{exc.strerror or exc}") from None
    if args.quiet:
        print(format_summary(result).splitlines()[-1 if result.ok else -2])
    else:
        print(format_summary(result))
    if not result.ok:
        return EXIT_VIOLATION
    if args.require_complete and not result.complete:
        return EXIT_VIOLATION
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    report = check(args.log_dir)
    print(format_report(report))
    return EXIT_OK if report.ok else EXIT_VIOLATION


def _cmd_faults() -> int:
    print("process behaviours (--fault ID=BEHAVIOUR[:key=value,...]):")
    for behaviour in BEHAVIOURS.values():
        tag = "byzantine" if behaviour.byzantine else "benign"
        print(f"  {behaviour.name:<12} [{tag}] {behaviour.summary}")
        for p in behaviour.params:
            default = "required" if p.default is None else f"default {p.default!r}"
            print(f"      {p.name}={p.kind.__name__} ({default}): {p.help}")
    print("client behaviours (btob sim --client-fault J=BEHAVIOUR[:key=value,...], client J):")
    for behaviour in CLIENT_BEHAVIOURS.values():
        print(f"  {behaviour.name:<12} [byzantine] {behaviour.summary}")
        for p in behaviour.params:
            default = "required" if p.default is None else f"default {p.default!r}"
            print(f"      {p.name}={p.kind.__name__} ({default}): {p.help}")
    print("coordinated strategies (--adversary STRATEGY[:key=value,...]; the f faulty "
          "members act as one):")
    for strategy in STRATEGIES.values():
        print(f"  {strategy.name:<12} {strategy.summary}")
        for p in strategy.params:
            print(f"      {p.name}={p.kind.__name__} (default {p.default!r}): {p.help}")
    print("network (--net key=value,...):")
    for key, text in (
        ("loss=P", "probability a message is lost before GST (needs gst)"),
        ("dup=P", "probability a message is delivered twice"),
        ("delay=A-B", "latency range in seconds (default 0.001-0.005)"),
        ("dist=uniform|exp", "latency distribution within the range"),
        ("gst=T", "global stabilisation time: no loss or extra jitter after it"),
        ("jitter=S", "extra random delay up to S seconds before GST (reordering)"),
        ("partition=S-E:A+B|C+D", "only members of one group talk between S and E"),
        ("isolate=S-E:M", "member M talks to nobody between S and E"),
        ("cut=S-E:A+B>C", "messages from A and B to C are lost between S and E (one way)"),
        ("clog=S-E:A>B+C:D", "messages from A to B and C wait D seconds more"),
    ):
        print(f"  {key:<24} {text}")
    return EXIT_OK


def _cmd_coverage() -> int:
    from btob.sim.coverage import measure_coverage

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            print(f"  {done}/{total} runs", file=sys.stderr, flush=True)

    coverage = measure_coverage(progress=progress)
    width = max(len(c.check) for c in coverage)
    for c in coverage:
        exercised = ", ".join(c.behaviours) or "-"
        also = " (also without faults)" if c.without_faults else ""
        print(f"{c.check:<{width}}  {exercised}{also}\n{'':<{width}}  refuses {c.refuses}")
    by = sum(bool(c.behaviours) for c in coverage)
    clean = sum(c.without_faults and not c.behaviours for c in coverage)
    none = len(coverage) - by - clean
    print(f"{by} of {len(coverage)} checks exercised by a behaviour, {clean} only by fault-free "
          f"runs, {none} by nothing")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``btob`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # the harness owns its whole command line
        from btob.bench.harness import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sim":
            return _cmd_sim(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "faults":
            return _cmd_coverage() if args.coverage else _cmd_faults()
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command == "keygen":
            return run_keygen(args)
        if args.command == "node":
            return run_node(args)
        if args.command == "receipt":
            return run_receipt(args)
        if args.command == "client":
            return run_client(args)
        from btob.cli.demo import run_demo

        _writable_log_dir(args.log_dir)
        return run_demo(seed=args.seed, messages=args.messages, log_dir=args.log_dir,
                        variant=args.variant)
    except BtobError as exc:
        return _report(exc)
    except BaseExceptionGroup as group:
        # trio wraps what fails inside a nursery in groups; one BtobError alone is still the
        # operator's mistake and gets its one line. Anything else is a bug: a traceback.
        error = _single_btob_error(group)
        if error is None:
            raise
        return _report(error)


def _single_btob_error(group: BaseExceptionGroup[BaseException]) -> BtobError | None:
    """The one :class:`BtobError` ``group`` holds (through nested groups), if it holds no
    other exception."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) == 1 and isinstance(leaves[0], BtobError):
        return leaves[0]
    return None


def _report(error: BtobError) -> int:
    """Print ``error`` as the one line an operator sees; the usage exit status."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    print(f"btob: error: {text}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
