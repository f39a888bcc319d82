"""Fault mixes: named sets of process faults plus a network spec, and random "swarm" mixes.

A :class:`Mix` keeps its faults and network as the same strings ``--fault`` and ``--net``
accept, so a mix reads like the command line that replays it; :meth:`Mix.resolve` parses them
for a cluster of a given size. Mixes come from the built-in :data:`PRESETS`, from TOML files
(:func:`load_mixes`) or are drawn at random from a seed (:func:`swarm_mix`).
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import attrs

from btob._errors import ConfigError
from btob.core.settings import Settings, settings_with
from btob.faults import _spec
from btob.faults._adversary import SIGS, STRATEGIES, WHEN, AdversarySpec, parse_adversary
from btob.faults._clients import CLIENT_BEHAVIOURS, ClientFaultSpec, parse_client_fault
from btob.faults._network import NetSpec, parse_net
from btob.faults._spec import Behaviour, FaultSpec, Param, parse_fault

__all__ = ["ADVERSARY", "CLIENTS", "PRESETS", "SWARM", "Mix", "adversary_mix", "client_mix",
           "load_mixes", "swarm_mix"]

SWARM = "swarm"
"""The mix source that stands for one random mix per (seed, n); see :func:`swarm_mix`."""


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Mix:
    """A named fault mix: ``--fault`` strings for some members and a ``--net`` string.

    ``faults`` holds specs such as ``"0=crash:at=0.3"`` or ``"2=silent"``; ``net`` holds
    ``key=value,...`` as ``--net`` takes it, or ``""`` for the default network.
    """

    name: str
    faults: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    net: str = ""
    adversary: str = ""
    """A coordinated strategy as ``--adversary`` takes it, or ``""`` for none."""
    setting: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    """``NAME=VALUE`` Settings overrides for every member, as ``btob sim --setting`` takes
    them (an attack on checkpoints wants short checkpoint intervals, say)."""
    clients: int = 0
    """Clients outside the cluster in each run (0: as the sweep says)."""
    client_faults: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    """``--client-fault`` strings: Byzantine clients among them."""
    client_in_flight: int = 1
    """Requests each honest client keeps waiting at a time."""

    def client_specs(self, clients: int) -> tuple[ClientFaultSpec, ...]:
        """The Byzantine clients, parsed for a run of ``clients`` clients; a
        :class:`ConfigError` naming the mix if one does not parse."""
        try:
            specs = tuple(parse_client_fault(text, clients) for text in self.client_faults)
        except ConfigError as exc:
            raise ConfigError(f"mix {self.name!r}: {exc}") from None
        if len({s.client for s in specs}) != len(specs):
            raise ConfigError(f"mix {self.name!r}: at most one client fault per client")
        return specs

    def settings(self, base: Settings) -> Settings:
        """``base`` with this mix's overrides; :class:`ConfigError`, naming the mix, if one
        is not a Settings field or value."""
        try:
            return settings_with(base, self.setting)
        except ConfigError as exc:
            raise ConfigError(f"mix {self.name!r}: {exc}") from None

    def resolve(self, n: int) -> tuple[tuple[FaultSpec, ...], NetSpec]:
        """The parsed faults and network for a cluster of ``n`` members.

        Raises :class:`ConfigError`, naming the mix, if a spec does not parse for ``n``
        members (an id ``>= n``, an unknown behaviour or key, a bad value), if two faults
        target one member, or if more members are Byzantine than ``n`` tolerates.
        """
        try:
            if n < 1:
                raise ConfigError(f"a cluster needs at least 1 member, got n={n}")
            specs = tuple(parse_fault(text, n) for text in self.faults)
            net = parse_net(self.net, n) if self.net.strip() else NetSpec()
            members = [spec.member for spec in specs]
            if len(set(members)) != len(members):
                raise ConfigError("at most one fault per member")
            byzantine = sum(1 for spec in specs if spec.byzantine)
            if byzantine > (n - 1) // 3:
                raise ConfigError(
                    f"{byzantine} Byzantine members exceed f={(n - 1) // 3} for n={n}"
                )
            settings_with(Settings(), self.setting)
            if self.adversary:
                parse_adversary(self.adversary)
                if specs:
                    raise ConfigError("an adversary picks its faulty members itself: no "
                                      "faults beside it")
                if n < 4:
                    raise ConfigError(f"an adversary needs a faulty member: n={n} < 4")
        except ConfigError as exc:
            raise ConfigError(f"mix {self.name!r}: {exc}") from None
        return specs, net

    def describe(self) -> str:
        """One line: the name, the faults and the network, in command-line syntax."""
        faults = " ".join(self.faults) or "no faults"
        if self.adversary:
            faults = f"adversary {self.adversary}"
        net = self.net or "default network"
        settings = "".join(f"; {text}" for text in self.setting)
        clients = ""
        if self.clients:
            clients = f"; {self.clients} clients" + "".join(
                f" {text}" for text in self.client_faults)
        return f"{self.name}: {faults}; {net}{settings}{clients}"

    def adversary_spec(self) -> AdversarySpec | None:
        """The coordinated strategy, parsed; None if the mix has none."""
        return parse_adversary(self.adversary) if self.adversary else None


_LOSSY = "loss=0.05,dup=0.02,delay=0.001-0.03,gst=1.5,jitter=0.02"

PRESETS: Mapping[str, Mix] = MappingProxyType({
    mix.name: mix
    for mix in (
        # one line per preset: Mix(name, faults, net)
        Mix("none"),
        Mix("crash-sequencer", ("0=crash:at=0.01",)),
        Mix("crash-member", ("2=crash:at=0.01",)),
        Mix("silent-sequencer", ("0=silent",)),
        Mix("lossy", (), _LOSSY),
        Mix("partition", (), "partition=0.005-1.5:0|1+2+3"),  # needs n >= 4
        Mix("lossy-crash-sequencer", ("0=crash:at=0.01",), _LOSSY),
        Mix("equivocating-sequencer", ("0=equivocate",)),
        Mix("vote-equivocator", ("2=vote-equivocate",)),
        Mix("censoring-sequencer", ("0=censor:origin=1",)),
        Mix("stalling-sequencer", ("0=stall",)),
        Mix("mutating-sequencer", ("0=mutate",)),
        Mix("lying-view-change", ("1=lie-viewchange", "0=crash:at=0.01")),  # needs f >= 2
        Mix("flooder", ("3=flood",)),
        Mix("forger", ("2=forge",)),
        Mix("replayer", ("2=replay",)),
        Mix("garbage", ("2=garbage",)),
        Mix("omission", ("1=omission:p=0.3",), _LOSSY),
        Mix("twins", ("2=twins",)),
        Mix("twins-sequencer", ("0=twins",)),
        Mix("slow-sequencer", ("0=slow:delay=0.005",)),
        Mix("pause-member", ("1=pause:at=0.01,for=1",)),
    )
})
"""The built-in mixes by name; ``--mix NAME`` picks one. Each uses member ids below 4."""


# ---------------------------------------------------------------------------------------------
# TOML files

_KEYS = ("name", "faults", "net", "adversary", "settings", "clients", "client_faults")


def _mix_from_table(table: object, path: Path, label: str) -> Mix:
    """One mix from a TOML table; ``label`` says where it is (for messages)."""
    if not isinstance(table, dict):
        raise ConfigError(f"mix file {path}: {label} is not a table")
    name = table.get("name")
    if name is None:
        raise ConfigError(f"mix file {path}: {label} has no name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"mix file {path}: {label}: name must be a non-empty string")
    where = f"mix file {path}: mix {name!r}"
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}"
        )
    faults = table.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(x, str) for x in faults):
        raise ConfigError(f"{where}: faults must be a list of strings like \"0=crash:at=0.3\"")
    net = table.get("net", "")
    if not isinstance(net, str):
        raise ConfigError(f"{where}: net must be a string like \"loss=0.05,gst=1\"")
    adversary = table.get("adversary", "")
    if not isinstance(adversary, str):
        raise ConfigError(f"{where}: adversary must be a string like \"split:until=1\"")
    setting = table.get("settings", [])
    if not isinstance(setting, list) or not all(isinstance(x, str) for x in setting):
        raise ConfigError(f"{where}: settings must be a list of strings like "
                          f"\"checkpoint_interval=4\"")
    clients = table.get("clients", 0)
    if not isinstance(clients, int) or isinstance(clients, bool) or clients < 0:
        raise ConfigError(f"{where}: clients must be a non-negative integer")
    client_faults = table.get("client_faults", [])
    if not isinstance(client_faults, list) or not all(isinstance(x, str)
                                                      for x in client_faults):
        raise ConfigError(f"{where}: client_faults must be a list of strings like "
                          f"\"0=flood\"")
    mix = Mix(name, tuple(faults), net, adversary, tuple(setting), clients=clients,
              client_faults=tuple(client_faults))
    mix.client_specs(clients)
    return mix


def _load_file(path: Path, n: int) -> list[Mix]:
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"mix file {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mix file {path}: not valid TOML: {exc}") from None
    if "mix" in data:
        extra = sorted(set(data) - {"mix"})
        if extra:
            raise ConfigError(
                f"mix file {path}: top-level key(s) {', '.join(extra)} beside [[mix]] tables"
            )
        tables = data["mix"]
        if not isinstance(tables, list) or not tables:
            raise ConfigError(f"mix file {path}: 'mix' must be a non-empty array of tables")
        mixes = [_mix_from_table(t, path, f"mix #{i + 1}") for i, t in enumerate(tables)]
    elif data:
        mixes = [_mix_from_table(data, path, "the mix")]
    else:
        raise ConfigError(f"mix file {path}: no mix (expected name, faults, net or [[mix]])")
    seen: set[str] = set()
    for mix in mixes:
        if mix.name in seen:
            raise ConfigError(f"mix file {path}: mix {mix.name!r} is defined twice")
        seen.add(mix.name)
        try:
            mix.resolve(n)
        except ConfigError as exc:
            raise ConfigError(f"mix file {path}: {exc}") from None
    return mixes


def load_mixes(source: str, n: int) -> list[Mix]:
    """The mixes ``source`` names, each checked against a cluster of ``n`` members.

    ``source`` is a preset name (presets win over a file of the same name) or the path of a
    TOML file holding either one mix as top-level ``name``, ``faults`` (a list of
    ``--fault`` strings), ``net`` (a ``--net`` string), ``adversary`` (an ``--adversary``
    string) and ``settings`` (a list of ``NAME=VALUE`` Settings overrides) keys, or several
    as ``[[mix]]`` tables with those keys. Only ``name`` is required.

    Raises :class:`ConfigError` for ``"swarm"`` (a swarm mix needs a seed: use
    :func:`swarm_mix`), for an unknown preset that is not a file, and for a file that is
    missing, unreadable, not TOML, or holds a bad mix; the message names the file and mix.
    """
    if source == SWARM:
        raise ConfigError("mix 'swarm' is drawn per seed: use swarm_mix(seed, n)")
    if source == ADVERSARY:
        raise ConfigError("mix 'adversary' is drawn per seed: use adversary_mix(seed, n)")
    if source == CLIENTS:
        raise ConfigError("mix 'clients' is drawn per seed: use client_mix(seed, n)")
    preset = PRESETS.get(source)
    if preset is not None:
        preset.resolve(n)
        return [preset]
    path = Path(source)
    if not path.exists() and path.suffix != ".toml" and len(path.parts) == 1:
        raise ConfigError(
            f"mix {source!r} is neither a preset ({', '.join(PRESETS)}, {SWARM}, {ADVERSARY}) "
            f"nor a file"
        )
    return _load_file(path, n)


# ---------------------------------------------------------------------------------------------
# swarm mixes


def _is_probability(name: str) -> bool:
    return name == "p" or name.endswith("_p")


def _drawable(param: Param) -> bool:
    kind: type[object] = param.kind
    if kind is float and (param.name == "at" or _is_probability(param.name)):
        return True
    return param.default is not None


def _draw(param: Param, rng: random.Random) -> str:
    """One value for ``param`` in ``--fault`` syntax."""
    kind: type[object] = param.kind
    if kind is float and param.name == "at":
        return f"{round(rng.uniform(0.0, 1.0), 3):g}"
    if kind is float and _is_probability(param.name):
        return f"{round(rng.uniform(0.05, 0.5), 3):g}"
    default: object = param.default
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _drawn_fault(member: int, behaviour: Behaviour, rng: random.Random) -> str:
    """``member=behaviour:...`` with every parameter drawn (an empty text left out)."""
    drawn = ((p.name, _draw(p, rng)) for p in behaviour.params)
    args = ",".join(f"{name}={value}" for name, value in drawn if value != "")
    return f"{member}={behaviour.name}" + (f":{args}" if args else "")


def _swarmable(behaviour: Behaviour) -> bool:
    return bool(getattr(behaviour, "swarm", True)) and all(
        _drawable(p) for p in behaviour.params
    )


def swarm_mix(seed: int, n: int, *, behaviours: Mapping[str, Behaviour] | None = None) -> Mix:
    """A random mix, the same for the same ``(seed, n)``, named ``swarm-<seed>``.

    Draws from ``random.Random(f"swarm/{seed}/{n}")``: between 0 and f = (n-1)//3 faulty
    members with distinct ids (member 0, the first sequencer, among them about one time in
    three), each with a behaviour from ``behaviours`` (default: the live
    :data:`faults.BEHAVIOURS`, read at call time). Behaviours with ``swarm = False``, or with
    a required parameter that cannot be drawn, are skipped. Parameters: a float ``at`` is a
    time in [0, 1], a float ``p`` or ``*_p`` a probability in [0.05, 0.5], anything else its
    default (an empty string is left out). The network has loss (0.02, 0.05 or 0.1, before a
    GST of 1 or 2 s) half the time, duplication 0 or 0.02, a latency bound of 5, 20 or 50 ms,
    and one time in four a partition isolating one member for a while before GST.
    """
    registry = _spec.BEHAVIOURS if behaviours is None else behaviours
    rng = random.Random(f"swarm/{seed}/{n}")
    names = sorted(name for name, b in registry.items() if _swarmable(b))
    f = max(n - 1, 0) // 3
    k = rng.randint(0, f) if names else 0
    if k and rng.random() < 1 / 3:
        members = [0, *rng.sample(range(1, n), k - 1)]
    else:
        members = rng.sample(range(1, n), k)
    faults = []
    for member in sorted(members):
        behaviour = registry[rng.choice(names)]
        faults.append(_drawn_fault(member, behaviour, rng))

    net: list[str] = []
    gst: float | None = None
    if rng.random() < 1 / 2:
        gst = rng.choice([1.0, 2.0])
        net += [f"loss={rng.choice([0.02, 0.05, 0.1]):g}", f"gst={gst:g}"]
    dup = rng.choice([0.0, 0.02])
    if dup:
        net.append(f"dup={dup:g}")
    net.append(f"delay=0.001-{rng.choice([0.005, 0.02, 0.05]):g}")
    if n >= 2 and rng.random() < 1 / 4:
        if gst is None:
            gst = rng.choice([1.0, 2.0])
            net.append(f"gst={gst:g}")
        start = round(rng.uniform(0.0, gst / 2), 2)
        end = round(rng.uniform(start + 0.1, gst), 2)
        net.append(f"partition={start:g}-{end:g}:{rng.randrange(n)}")
    return Mix(f"swarm-{seed}", tuple(faults), ",".join(net))


# ---------------------------------------------------------------------------------------------
# adversary mixes

ADVERSARY = "adversary"
"""The mix source that stands for one random adversary per (seed, n); see
:func:`adversary_mix`."""


CHECKPOINT_ATTACKS = frozenset({"bad-checkpoint", "bad-catchup", "bad-transfer", "bad-chunks",
                                "stale-snapshot", "silent-transfer"})
"""The behaviours that attack checkpoints, log segments and state transfer: an adversary mix
gives them a checkpoint interval of 4 or 8 slots, so that even a short run passes several
boundaries for them to lie about."""


def adversary_mix(seed: int, n: int, *,
                  behaviours: Mapping[str, Behaviour] | None = None) -> Mix:
    """A random adversary, the same for the same ``(seed, n)``, named ``adversary-<seed>``.

    The attacks are the coordinated strategies of :data:`~btob.faults.STRATEGIES` and the
    Byzantine behaviours of ``behaviours`` (default: the live catalogue) that a swarm may
    draw. Consecutive seeds go through all of them in a shuffled order (a new order for each
    round), so every attack comes up once in each stretch of that many seeds; what varies at
    random is its parameters and where it strikes. A strategy draws its own: ``split`` holds
    the halves apart for 0.3-2.5 s, with the first sequencer faulty or not, from the start
    or (three times in four) for 0.3-2 s from a protocol step; ``edge`` aims at
    one of the first 8 slots and holds frames for 1.5-4 s, past the first view change;
    ``forged-split`` splits every 1st to 4th slot, its forged votes signed with its own key
    or with real signatures reused from earlier votes, one time in two each; ``isolate``
    loses every frame to its victim for 0.8-2.5 s; ``relabel`` has no parameter;
    ``short-newview`` and ``stale-votes`` aim at one of the first 8 slots and hold frames
    for 3-5 s; ``prepared-twice`` too, for 5.5-8 s (two view changes). A
    behaviour goes to f members, the first sequencer among them one time in two, each drawn
    as :func:`swarm_mix` draws them, on a network with 1-5 ms of latency; one of
    :data:`CHECKPOINT_ATTACKS` also gets a checkpoint interval of 4 or 8 slots. Clusters of
    fewer than 4 members have no faulty member to draw: their mix is fault-free.
    """
    registry = _spec.BEHAVIOURS if behaviours is None else behaviours
    f = max(n - 1, 0) // 3
    name = f"adversary-{seed}"
    if f < 1:
        return Mix(name)
    attacks = sorted(STRATEGIES) + sorted(
        b.name for b in registry.values() if b.byzantine and _swarmable(b))
    rounds, turn = divmod(seed, len(attacks))
    random.Random(f"adversary-round/{rounds}/{n}").shuffle(attacks)
    attack = attacks[turn]
    rng = random.Random(f"adversary/{seed}/{n}")
    if attack == "split":
        text = f"split:until={round(rng.uniform(0.3, 2.5), 2):g},sequencer={rng.randint(0, 1)}"
        when = rng.choice(WHEN)
        if when != "start":  # timed to a protocol step instead
            text += f",when={when},for={round(rng.uniform(0.3, 2.0), 2):g}"
        return Mix(name, adversary=text)
    if attack == "forged-split":
        every = rng.randint(1, 4)
        return Mix(name, adversary=f"forged-split:every={every},sig={rng.choice(SIGS)}")
    if attack == "relabel":  # nothing to draw: its roles come from the run's seed
        return Mix(name, adversary="relabel")
    if attack in ("short-newview", "stale-votes"):
        return Mix(name, adversary=f"{attack}:until={round(rng.uniform(3.0, 5.0), 2):g},"
                                   f"slot={rng.randint(0, 7)}")
    if attack == "prepared-twice":
        return Mix(name, adversary=f"{attack}:until={round(rng.uniform(5.5, 8.0), 2):g},"
                                   f"slot={rng.randint(0, 7)}")
    if attack == "edge":
        return Mix(name, adversary=f"edge:until={round(rng.uniform(1.5, 4.0), 2):g},"
                                   f"slot={rng.randint(0, 7)}")
    if attack == "isolate":
        return Mix(name, adversary=f"isolate:until={round(rng.uniform(0.8, 2.5), 2):g}")
    members = [0, *rng.sample(range(1, n), f - 1)] if rng.random() < 1 / 2 \
        else rng.sample(range(1, n), f)
    behaviour = registry[attack]
    faults = []
    for member in sorted(members):  # the f members act alike: one attack per seed
        faults.append(_drawn_fault(member, behaviour, rng))
    setting: tuple[str, ...] = ()
    if attack in CHECKPOINT_ATTACKS:
        interval = random.Random(f"adversary-checkpoints/{seed}/{n}").choice((4, 8))
        setting = (f"checkpoint_interval={interval}",)
    return Mix(name, tuple(faults), setting=setting)


# ---------------------------------------------------------------------------------------------
# client mixes

CLIENTS = "clients"
"""The mix source that stands for one random client attack per (seed, n); see
:func:`client_mix`."""

CLIENT_MEMBER_BEHAVIOURS = ("drop-requests", "forge-receipts", "withhold-receipts")
"""The member behaviours that act toward clients (a client mix draws them)."""


def client_mix(seed: int, n: int, *, clients: int = 4) -> Mix:
    """A random attack on clients, the same for the same ``(seed, n, clients)``, named
    ``clients-<seed>``: ``clients`` clients (each keeping 1, 2 or 4 requests in flight),
    up to half of them Byzantine with a behaviour of the client catalogue each (none one
    time in three), and - one time in two, when ``n`` tolerates a faulty member - one member
    with a behaviour toward clients, the first sequencer one time in three. The network is
    the default one."""
    rng = random.Random(f"clients/{seed}/{n}/{clients}")
    names = sorted(CLIENT_BEHAVIOURS)
    byzantine = 0 if rng.random() < 1 / 3 else rng.randint(1, max(clients // 2, 1))
    byzantine = min(byzantine, clients)
    client_faults = tuple(f"{j}={rng.choice(names)}"
                          for j in sorted(rng.sample(range(clients), byzantine)))
    faults: tuple[str, ...] = ()
    if (n - 1) // 3 >= 1 and rng.random() < 1 / 2:
        member = 0 if rng.random() < 1 / 3 else rng.randrange(1, n)
        faults = (f"{member}={rng.choice(CLIENT_MEMBER_BEHAVIOURS)}",)
    return Mix(f"clients-{seed}", faults, clients=clients, client_faults=client_faults,
               client_in_flight=rng.choice((1, 2, 4)))
