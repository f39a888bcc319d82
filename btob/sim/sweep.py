"""Sweeps: many deterministic simulated runs over seeds, sizes, BRB kinds and fault mixes.

A sweep runs every case in order and judges each by the checker (and, if asked, by
completion). The first failure comes back with the ``btob sim`` command that replays it, and
optionally a shrunk configuration (fewer messages, faults, network features) that still fails
the same way.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from btob._errors import ConfigError
from btob.core.dissemination import BRB_KINDS
from btob.core.member import Member
from btob.core.settings import VOTE_MODES, Settings
from btob.core.variants import VARIANTS
from btob.faults._adversary import STRATEGIES
from btob.faults._mix import (
    ADVERSARY,
    CLIENTS,
    SWARM,
    Mix,
    adversary_mix,
    client_mix,
    load_mixes,
    swarm_mix,
)
from btob.faults._network import NetSpec
from btob.faults._spec import BEHAVIOURS, FaultSpec
from btob.sim.explore import EXPLORE, explore_mixes
from btob.sim.simulator import (
    PHASES,
    MemberFactory,
    Restart,
    SimConfig,
    SimResult,
    replay_command,
    simulate,
)

__all__ = [
    "SweepCase", "SweepOutcome", "SweepRow", "add_sweep_arguments", "format_sweep",
    "run_sweep_command", "shrink_case", "sweep",
]

VIOLATION, INCOMPLETE = "violation", "incomplete"
_DEFAULT_MAX_TIME = SimConfig().max_time


@attrs.frozen
class SweepCase:
    """One run of a sweep: its configuration and the label of the mix it came from.

    Swarm mixes are labelled ``"swarm"`` (not ``swarm-<seed>``) so their runs share a row.
    """

    config: SimConfig
    mix: str


@attrs.frozen
class SweepRow:
    """Totals over the runs of one (mix, n, brb, votes) group.

    ``evidence`` counts runs in which some honest member proved some member Byzantine;
    ``view_changes`` is the sum over runs; ``wall_s`` the real seconds spent simulating.
    """

    mix: str
    n: int
    brb: str
    runs: int
    violations: int
    incomplete: int
    view_changes: int
    evidence: int
    wall_s: float
    votes: str = "all"
    """The vote mode the group's members ran with (:attr:`Settings.votes`)."""


@attrs.frozen
class SweepOutcome:
    """What a sweep found: a row per group, and the first failure (if any) with its replay.

    ``failure`` is the first run with a checker violation, or failing that the first
    incomplete run (when completion was required); ``failure_kind`` is ``"violation"`` or
    ``"incomplete"``; ``replay`` the ``btob sim`` command that reruns it; ``shrunk`` a
    smaller configuration failing the same way (when shrinking was asked for).
    """

    rows: tuple[SweepRow, ...]
    failure: SimResult | None = None
    failure_kind: str | None = None
    replay: str | None = None
    shrunk: SimConfig | None = None

    @property
    def ok(self) -> bool:
        """True when no run failed."""
        return self.failure is None

    @property
    def runs(self) -> int:
        """Runs made in all."""
        return sum(row.runs for row in self.rows)


def _replay(config: SimConfig, kind: str | None = None) -> str:
    """The ``btob sim`` command for ``config``, with what the CLI helper may leave out."""

    command = replay_command(config)
    words = shlex.split(command)
    extra: list[str] = []
    if config.max_time != _DEFAULT_MAX_TIME and "--max-time" not in words:
        extra += ["--max-time", f"{config.max_time:g}"]
    if kind == INCOMPLETE and "--require-complete" not in words:
        extra.append("--require-complete")
    return command + (" " + shlex.join(extra) if extra else "")


def _kind(result: SimResult, require_complete: bool) -> str | None:
    if not result.ok:
        return VIOLATION
    if require_complete and not result.complete:
        return INCOMPLETE
    return None


def _proved_byzantine(result: SimResult) -> bool:
    members = result.logs.run.members
    return any(s.evidence and members[s.member].honest for s in result.statistics)


def _cases(
    seeds: Sequence[int], sizes: Sequence[int], brbs: Sequence[str],
    mixes: Sequence[str | Mix], *, messages: int, max_time: float, settings: Settings,
    variants: Sequence[str] = ("bb",), restarts: bool = False, explore_rounds: int = 2,
    clients: int = 0, votes: Sequence[str] | None = None,
) -> list[SweepCase]:
    """Every case in run order (mix, n, variant, vote mode, brb, seed); every mix is
    resolved before any run. ``votes`` None: each run takes its mix's settings' mode."""
    modes: Sequence[str | None] = [None] if votes is None else list(votes)
    cases: list[SweepCase] = []
    for source in mixes:
        for n in sizes:
            labelled: list[tuple[str, Mix | None]]  # None: a swarm mix drawn per seed
            if isinstance(source, Mix):
                labelled = [(source.name, source)]
            elif source in (SWARM, ADVERSARY, CLIENTS):
                labelled = [(source, None)]
            elif source == EXPLORE:
                labelled = [(mix.name, mix) for mix in explore_mixes(n, rounds=explore_rounds)]
            else:
                labelled = [(mix.name, mix) for mix in load_mixes(source, n)]
            for label, fixed in labelled:
                stride = max(seeds, default=-1) + 1
                grid = itertools.product(enumerate(variants), enumerate(modes), enumerate(brbs))
                for (v, variant), (m, mode), (b, brb) in grid:
                    shown = label if variant == "bb" else f"{label} [{variant}]"
                    # Each variant, vote mode and BRB kind draws its own stretch of attacks, so
                    # that a sweep tries as many attacks per size as it makes runs.
                    stagger = ((v * len(modes) + m) * len(brbs) + b) * stride
                    for seed in seeds:
                        mix = fixed if fixed is not None else (
                            swarm_mix(seed, n) if label == SWARM
                            else client_mix(seed + stagger, n, clients=clients or 4)
                            if label == CLIENTS
                            else adversary_mix(seed + stagger, n))
                        faults, net = mix.resolve(n)
                        adversary = mix.adversary_spec()
                        run_clients = mix.clients or clients
                        run_settings = mix.settings(settings)
                        if mode is not None:  # the sweep's mode wins over the mix's
                            run_settings = attrs.evolve(run_settings, votes=mode)
                        config = SimConfig(
                            n=n, seed=seed, messages=messages, brb=brb, faults=faults,
                            net=net, max_time=max_time, settings=run_settings,
                            variant=variant, adversary=adversary,
                            restarts=(_restart_for(seed, n, faults, messages)
                                      if restarts and adversary is None else ()),
                            clients=run_clients,
                            client_faults=mix.client_specs(run_clients),
                            client_in_flight=mix.client_in_flight,
                        )
                        cases.append(SweepCase(config, shown))
    return cases


def _restart_for(seed: int, n: int, faults: Sequence[FaultSpec],
                 messages: int) -> tuple[Restart, ...]:
    """One honest member crashed and restarted at a random step, drawn from the seed: from
    its disk, or - only when nothing else is faulty, since a member that forgot its votes
    is itself one of the f - from an empty one."""
    rng = random.Random(f"restart/{seed}/{n}")
    faulty = {spec.member for spec in faults}
    honest = [m for m in range(n) if m not in faulty]
    if not honest:
        return ()
    # A member takes some 4-6 inputs per payload of the run: stay inside the run.
    step = rng.randint(1, max(20, 3 * messages))
    member, down_s = rng.choice(honest), round(rng.uniform(0.1, 1.5), 2)
    committed = rng.random() < 0.5
    wiped = not faults and rng.random() < 0.3
    # Past the commit, it crashes before, amid or after sending the step's frames.
    phase = rng.choice(PHASES[1:]) if committed else PHASES[0]
    return (Restart(member, step, down_s, wiped=wiped, phase=phase),)


def sweep(
    *,
    seeds: Sequence[int],
    sizes: Sequence[int],
    brbs: Sequence[str],
    mixes: Sequence[str | Mix],
    messages: int,
    max_time: float = 60.0,
    require_complete: bool = True,
    stop_on_failure: bool = True,
    shrink: bool = False,
    progress: Callable[[int, int], None] | None = None,
    settings: Settings | None = None,
    variants: Sequence[str] = ("bb",),
    member_factory: MemberFactory = Member,
    restarts: bool = False,
    explore_rounds: int = 2,
    clients: int = 0,
    votes: Sequence[str] | None = None,
) -> SweepOutcome:
    """Simulate every (mix, n, variant, vote mode, brb, seed) case in that order, one after
    the other.

    A mix is a :class:`Mix`, ``"swarm"`` (a fresh :func:`swarm_mix` per seed and size),
    ``"adversary"`` (a fresh :func:`~btob.faults.adversary_mix`), ``"explore"`` (every
    scenario of :func:`~btob.sim.explore.explore_mixes` with ``explore_rounds`` rounds), or a
    preset name or TOML file for :func:`load_mixes`. A run fails on a checker violation, or
    when ``require_complete`` if it did not complete. With ``stop_on_failure`` the sweep ends
    at the first failure; otherwise it runs everything and reports the first violation, or
    failing that the first incomplete run. ``progress(done, total)`` is called after each
    run. With ``shrink``, the failure is shrunk by :func:`shrink_case`. ``member_factory``
    builds every member of every run (see :func:`btob.simulate`). With ``restarts`` every
    run also crashes one honest member at a random step and restarts it (see
    :class:`~btob.sim.simulator.Restart`); the run then also fails if the restarted member
    delivered anything differently the second time. With ``clients``, every run also has
    that many clients outside the cluster (a mix may set its own number); the mix
    ``"clients"`` draws an attack on clients per seed (:func:`~btob.faults.client_mix`, with
    ``clients`` clients, 4 by default). ``votes`` lists the vote modes
    (:attr:`Settings.votes`) every case runs in, each its own row; None runs each case in
    its mix's settings' mode (``all`` unless the mix sets one).

    Raises :class:`ConfigError` for a bad mix, size, BRB or vote mode before any run starts.
    """
    cases = _cases(seeds, sizes, brbs, mixes, messages=messages, max_time=max_time,
                   variants=variants, restarts=restarts, explore_rounds=explore_rounds,
                   clients=clients, votes=votes,
                   settings=settings if settings is not None else Settings())
    totals: dict[tuple[str, int, str, str], list[float]] = {}
    failure: SimResult | None = None
    failure_kind: str | None = None
    for done, case in enumerate(cases, start=1):
        config = case.config
        started = time.perf_counter()
        try:
            result = simulate(config, member_factory=member_factory)
        except AssertionError as exc:
            # A core's own invariant tripped (our bug, by design loud): name the replay.
            raise AssertionError(f"{exc}; replay: {_replay(config)}") from exc
        wall = time.perf_counter() - started
        kind = _kind(result, require_complete)
        row = totals.setdefault((case.mix, config.n, config.brb, config.votes),
                                [0, 0, 0, 0, 0, 0.0])
        row[0] += 1
        row[1] += not result.ok
        row[2] += not result.complete
        row[3] += len(result.view_changes)
        row[4] += _proved_byzantine(result)
        row[5] += wall
        if progress is not None:
            progress(done, len(cases))
        # the first failure, except that a later violation outranks an incomplete run
        if kind is not None and (failure is None or
                                 (failure_kind == INCOMPLETE and kind == VIOLATION)):
            failure, failure_kind = result, kind
        if failure is not None and stop_on_failure:
            break
    rows = tuple(
        SweepRow(mix=mix, n=n, brb=brb, runs=int(r[0]), violations=int(r[1]),
                 incomplete=int(r[2]), view_changes=int(r[3]), evidence=int(r[4]),
                 wall_s=r[5], votes=votes)
        for (mix, n, brb, votes), r in totals.items()
    )
    if failure is None:
        return SweepOutcome(rows)
    shrunk: SimConfig | None = None
    if shrink:
        if failure_kind == VIOLATION:
            def still_violates(c: SimConfig) -> bool:
                return not simulate(c, member_factory=member_factory).ok

            shrunk = shrink_case(failure.config, still_violates)
        else:
            def still_incomplete(c: SimConfig) -> bool:
                r = simulate(c, member_factory=member_factory)
                return r.ok and not r.complete

            # A shorter max_time would keep any run incomplete: keep the time limit.
            shrunk = shrink_case(failure.config, still_incomplete, shrink_time=False)
        if shrunk == failure.config:
            shrunk = None
    return SweepOutcome(rows, failure, failure_kind, _replay(failure.config, failure_kind),
                        shrunk)


def shrink_case(
    config: SimConfig,
    fails: Callable[[SimConfig], bool] | None = None,
    *,
    budget: int = 40,
    shrink_time: bool = True,
) -> SimConfig:
    """A smaller configuration that still fails, found greedily (delta debugging).

    ``config`` must fail; ``fails(c)`` says whether ``c`` still fails the same way (default:
    the checker finds a violation). Steps, repeated until none is accepted: halve the
    messages (down to 1), drop one fault at a time, make each fault parameter plainer (its
    default, then a probability of 1 or half the amount; the same for a coordinated
    strategy's parameters), drop network features (loss,
    duplication, pre-GST jitter, partitions, one-way cuts), and with ``shrink_time`` halve
    ``max_time`` (not below 1 s). A step is kept only if ``fails`` holds for it. At most
    ``budget`` calls of ``fails`` (simulations) are made; the smallest failing configuration
    found is returned.
    """
    still_fails = fails if fails is not None else _violates
    tries = 0

    def attempt(candidate: SimConfig) -> bool:
        nonlocal tries, config
        if tries >= budget or candidate == config:
            return False
        tries += 1
        if still_fails(candidate):
            config = candidate
            return True
        return False

    def candidates() -> list[Callable[[SimConfig], SimConfig | None]]:
        steps: list[Callable[[SimConfig], SimConfig | None]] = [_fewer_messages]
        steps += [_drop_fault(i) for i in range(len(config.faults) - 1, -1, -1)]
        steps += [_plainer_param(i, name) for i, spec in enumerate(config.faults)
                  for name in sorted(spec.params)]
        if config.adversary is not None:
            steps += [_plainer_adversary(name) for name in sorted(config.adversary.params)]
        steps += [_drop_net(field) for field in _NET_FEATURES
                  if field in attrs.fields_dict(NetSpec)]
        if shrink_time:
            steps.append(_shorter_time)
        return steps

    progressed = True
    while progressed and tries < budget:
        progressed = False
        for step in candidates():
            # repeat a step while it keeps being accepted (halving, dropping)
            while tries < budget:
                candidate = step(config)
                if candidate is None or not attempt(candidate):
                    break
                progressed = True
    return config


def _violates(config: SimConfig) -> bool:
    return not simulate(config).ok


def _fewer_messages(config: SimConfig) -> SimConfig | None:
    if config.messages <= 1:
        return None
    return attrs.evolve(config, messages=max(1, config.messages // 2))


def _shorter_time(config: SimConfig) -> SimConfig | None:
    if config.max_time <= 1.0:
        return None
    return attrs.evolve(config, max_time=max(1.0, config.max_time / 2))


def _drop_fault(index: int) -> Callable[[SimConfig], SimConfig | None]:
    def step(config: SimConfig) -> SimConfig | None:
        if index >= len(config.faults):
            return None
        return attrs.evolve(config, faults=config.faults[:index] + config.faults[index + 1:])

    return step


def _plainer(value: float | int | str, default: float | int | str | None,
             probability: bool) -> float | int | str | None:
    """The next plainer value of a fault parameter: its default, then (numbers) a certain
    probability or half the amount; None when there is none."""
    if isinstance(value, str):
        return default if default is not None and value != default else None
    if probability:
        return 1.0 if value != 1.0 else None
    if default is not None and value != default and not isinstance(default, str):
        return default
    if isinstance(value, int):
        return value // 2 if value > 1 else None
    return round(value / 2, 6) if value > 1e-3 else None


def _plainer_param(index: int, name: str) -> Callable[[SimConfig], SimConfig | None]:
    """Shrink step: fault ``index``'s parameter ``name`` one notch plainer (acting every
    time, from the start, fewer and smaller)."""
    def step(config: SimConfig) -> SimConfig | None:
        if index >= len(config.faults):
            return None
        spec = config.faults[index]
        behaviour = BEHAVIOURS.get(spec.behaviour)
        if behaviour is None or name not in spec.params:
            return None
        default = {p.name: p.default for p in behaviour.params}.get(name)
        plainer = _plainer(spec.params[name], default, name == "p" or name.endswith("_p"))
        if plainer is None or (name == "at" and spec.params[name] == 0):
            return None
        changed = attrs.evolve(spec, params={**spec.params, name: plainer})
        faults = list(config.faults)
        faults[index] = changed
        return attrs.evolve(config, faults=tuple(faults))

    return step


def _plainer_adversary(name: str) -> Callable[[SimConfig], SimConfig | None]:
    """Shrink step: the coordinated strategy's parameter ``name`` one notch plainer."""
    def step(config: SimConfig) -> SimConfig | None:
        spec = config.adversary
        if spec is None or name not in spec.params:
            return None
        default = {p.name: p.default for p in STRATEGIES[spec.strategy].params}.get(name)
        plainer = _plainer(spec.params[name], default, probability=False)
        if plainer is None:
            return None
        return attrs.evolve(config, adversary=attrs.evolve(
            spec, params={**spec.params, name: plainer}))

    return step


_NET_FEATURES = ("loss", "dup", "pre_gst_delay", "partitions", "cuts")
"""NetSpec fields a shrink step resets to their default (those NetSpec has)."""


def _drop_net(field: str) -> Callable[[SimConfig], SimConfig | None]:
    default = attrs.fields_dict(NetSpec)[field].default

    def step(config: SimConfig) -> SimConfig | None:
        if getattr(config.net, field) == default:
            return None
        changes: dict[str, Any] = {field: default}
        return attrs.evolve(config, net=attrs.evolve(config.net, **changes))

    return step


# ---------------------------------------------------------------------------------------------
# output and command line


def format_sweep(outcome: SweepOutcome) -> str:
    """The sweep's table, then ``sweep: PASS (R runs)`` or the failure and its replay."""
    header = (f"{'mix':<24} {'n':>3} {'brb':<8} {'votes':<6} {'runs':>5} {'violations':>10} "
              f"{'incomplete':>10} {'view changes':>12} {'evidence':>8} {'seconds':>8}")
    lines = [header, "-" * len(header)]
    for r in outcome.rows:
        lines.append(
            f"{r.mix:<24} {r.n:>3} {r.brb:<8} {r.votes:<6} {r.runs:>5} {r.violations:>10} "
            f"{r.incomplete:>10} {r.view_changes:>12} {r.evidence:>8} {r.wall_s:>8.2f}"
        )
    failure = outcome.failure
    if failure is None:
        lines.append(f"sweep: PASS ({outcome.runs} runs)")
        return "\n".join(lines)
    config = failure.config
    lines.append(
        f"sweep: FAIL ({outcome.failure_kind}) at n={config.n} brb={config.brb} "
        f"votes={config.votes} seed={config.seed} after {outcome.runs} runs"
    )
    if outcome.failure_kind == INCOMPLETE:
        lines.append(f"  the run did not complete within {config.max_time:g} virtual seconds "
                     f"(stopped at {failure.virtual_time:.3f} s)")
    violations = failure.report.violations
    for violation in violations[:5]:
        lines.append(f"  VIOLATION {violation}")
    if failure.report.violation_count > 5:
        lines.append(f"  ... {failure.report.violation_count - 5} more violations")
    lines.append(f"replay    {outcome.replay}")
    if outcome.shrunk is not None:
        lines.append(f"shrunk    {_replay(outcome.shrunk, outcome.failure_kind)}")
    return "\n".join(lines)


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``btob sweep`` options to ``parser`` (read back by :func:`run_sweep_command`)."""
    parser.add_argument("--seeds", type=int, default=100, metavar="N",
                        help="seeds per case (default 100)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="S",
                        help="first seed (default 0)")
    parser.add_argument("--n", default="4", metavar="4,7",
                        help="comma-separated cluster sizes (default 4)")
    parser.add_argument("--variant", default="bb", metavar=",".join(VARIANTS),
                        help="comma-separated sequencer variants (default bb)")
    parser.add_argument("--brb", default="bracha", metavar=",".join(BRB_KINDS),
                        help="comma-separated reliable-broadcast kinds (default bracha)")
    parser.add_argument("--votes", default=None, metavar=",".join(VOTE_MODES),
                        help="comma-separated vote modes, each run in every case: all (votes "
                             "to every member) or linear (votes to the slot's proposer, which "
                             "forwards certificates) (default all, or what a mix's settings "
                             "name)")
    parser.add_argument("--mix", action="append", default=None,
                        metavar="NAME|FILE|swarm|adversary|clients",
                        help="fault mix: a preset, a TOML file, swarm (random faults and "
                             "network per seed), adversary (a rule-targeted behaviour or a "
                             "coordinated strategy per seed; each variant and BRB kind takes "
                             "the next stretch of seeds' attacks) or clients (Byzantine "
                             "clients and a member failing clients, drawn per seed) "
                             "(repeatable; default none)")
    parser.add_argument("--messages", type=int, default=50, help="payloads per run (default 50)")
    parser.add_argument("--max-time", type=float, default=30.0,
                        help="virtual seconds per run (default 30)")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every case instead of stopping at the first failure")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="an incomplete run is not a failure (safety only)")
    parser.add_argument("--restarts", action="store_true",
                        help="in every run, crash one honest member at a random step and "
                             "restart it from its durable state (or, without faults, now and "
                             "then from an empty disk)")
    parser.add_argument("--explore", action="store_true",
                        help="also run every small scenario of the exploration family: each "
                             "member faulty in each of its behaviours, under each partition "
                             "per round (1,536 scenarios per seed at n=4 with 2 rounds)")
    parser.add_argument("--rounds", type=int, default=2, metavar="R",
                        help="rounds of the exploration's partitions (default 2)")
    parser.add_argument("--clients", type=int, default=0, metavar="K",
                        help="K clients outside the cluster in every run (the clients mix "
                             "draws 4 by default)")
    parser.add_argument("--shrink", action="store_true",
                        help="shrink the failing case to a smaller one that still fails")


def _int_list(option: str, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated integers") from None
    if not values:
        raise ConfigError(f"{option} {text!r}: expected at least one value")
    return values


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run ``btob sweep`` from parsed arguments: a progress bar, then the table and verdict.

    Returns 0 if every run passed, 1 on a failure. Raises :class:`ConfigError` on bad input.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: need at least one seed")
    if args.max_time <= 0:
        raise ConfigError(f"--max-time {args.max_time:g}: must be positive")
    sizes = _int_list("--n", args.n)
    brbs = [b.strip() for b in args.brb.split(",") if b.strip()]
    unknown = [b for b in brbs if b not in BRB_KINDS]
    if unknown or not brbs:
        raise ConfigError(f"--brb {args.brb!r}: choose from {', '.join(BRB_KINDS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.rounds < 1:
        raise ConfigError(f"--rounds {args.rounds}: need at least one round")
    if args.clients < 0:
        raise ConfigError(f"--clients {args.clients}: must be >= 0")
    mixes: list[str | Mix] = list(args.mix or ([] if args.explore else ["none"]))
    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        raise ConfigError(f"--variant {args.variant!r}: choose from {', '.join(VARIANTS)}")
    votes: list[str] | None = None
    if args.votes is not None:
        votes = [m.strip() for m in args.votes.split(",") if m.strip()]
        if not votes or any(m not in VOTE_MODES for m in votes) or len(set(votes)) < len(votes):
            raise ConfigError(f"--votes {args.votes!r}: choose from {', '.join(VOTE_MODES)}, "
                              f"each once")
    if args.explore:
        mixes.append(EXPLORE)
        count = sum(len(explore_mixes(n, rounds=args.rounds)) for n in sizes)
        print(f"explore: {count} scenarios x {len(seeds)} seed(s) x {len(variants)} "
              f"variant(s) x {len(votes or [None])} vote mode(s) x {len(brbs)} BRB(s)",
              file=sys.stderr)
    with Progress("sweep", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("sweep", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        outcome = sweep(
            seeds=seeds, sizes=sizes, brbs=brbs, mixes=mixes, messages=args.messages,
            max_time=args.max_time, require_complete=not args.allow_incomplete,
            stop_on_failure=not args.keep_going, shrink=args.shrink, progress=progress,
            variants=variants, restarts=args.restarts, explore_rounds=args.rounds,
            clients=args.clients, votes=votes,
        )
    print(format_sweep(outcome))
    sys.stdout.flush()
    return 0 if outcome.ok else 1
