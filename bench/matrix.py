"""What a benchmark run is, the built-in presets, and matrix files for custom runs.

A :class:`RunSpec` names one measurement: a mode (``tcp``: one OS process per member on
loopback; ``sim``: the deterministic simulator), the protocol (variant and BRB, or the
crash-only ``baseline``), the cluster size, the workload (payload size, count, offered rate;
rate 0 is flat out) and batching, and a fault mix (a preset of :data:`faults.PRESETS` or of
:data:`BENCH_MIXES`, or faults and a network spec given inline).

Matrix file (TOML). ``[defaults]`` sets any field for every run; each ``[[run]]`` table sets
fields for one group, and a field given as a list expands the group into the cartesian
product of its values::

    [defaults]
    mode = "tcp"
    payloads = 6000

    [[run]]
    n = [4, 7]
    variant = ["bb", "ub"]
    mix = ["none", "crash-sequencer"]

    [[run]]
    name = "big-payloads"
    payload_size = 4096
    faults = ["2=omission:p=0.2"]
    net = "delay=0.0005-0.002"

Unknown fields, wrong types and impossible combinations raise :class:`ConfigError` naming
the file and the run.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from btob import BRB_KINDS, ConfigError, Settings
from btob.core.variants import VARIANTS
from btob.faults import PRESETS, Mix

__all__ = ["BENCH_MIXES", "FIELDS", "MODES", "SEQUENCER_BEHAVIOURS", "RunSpec", "full_preset",
           "load_matrix", "quick_preset", "resolve_mix"]

DEFAULT_BATCH = Settings().batch_payloads_max
"""btob's default batch size, which runs use unless they say otherwise."""

MODES = ("tcp", "sim")
"""Where a run executes."""

PROTOCOLS = (*VARIANTS, "baseline")

SEQUENCER_BEHAVIOURS = ("vote-equivocate", "forge", "replay", "garbage", "flood")
"""Byzantine behaviours the faults presets do not already put on the sequencer (member 0);
each becomes a bench mix ``sequencer-<behaviour>``. Lying in view changes is not among them:
a sequencer that is never replaced has nothing to lie about (such a row measured a fault-free
run); the ``lying-view-change-mid-run`` mix crashes the sequencer during the run so that the
next one lies."""

BENCH_MIXES: Mapping[str, Mix] = {
    mix.name: mix
    for mix in (
        # Network faults for the whole run (the faults presets heal at GST 1.5 s, which on
        # real processes falls inside the start-up barrier).
        Mix("lossy-jittery", (), "loss=0.01,dup=0.01,delay=0.0005-0.003,jitter=0.002,gst=600"),
        Mix("omission-member", ("2=omission:p=0.3",)),
        Mix("f-faulty", ("0=equivocate", "3=flood")),  # needs f >= 2: n >= 7
        # The sequencer crashes during the run (after its first 500 frames, not at a time:
        # on real processes 0.01 s after the start falls inside the start-up barrier, when
        # nothing is prepared yet), so the next one has prepared slots to lie about.
        Mix("lying-view-change-mid-run", ("1=lie-viewchange", "0=crash:after=500")),  # n >= 7
        *(Mix(f"sequencer-{b}", (f"0={b}",)) for b in SEQUENCER_BEHAVIOURS),
        # Variant-specific misbehaviour (run under the variant it attacks).
        Mix("sequencer-drop-forwards", ("0=drop-forwards",)),  # ub
        Mix("sequencer-double-grant", ("0=double-grant",)),  # uub
        Mix("member-hoard-grants", ("1=hoard-grants",)),  # uub
        Mix("member-skip-turn", ("1=skip-turn",)),  # moving
    )
}
"""Mixes the benchmark adds to :data:`faults.PRESETS`."""


def resolve_mix(name: str) -> Mix:
    """The mix called ``name`` (bench mixes first, then the faults presets)."""
    mix = BENCH_MIXES.get(name) or PRESETS.get(name)
    if mix is None:
        known = ", ".join([*BENCH_MIXES, *PRESETS])
        raise ConfigError(f"unknown fault mix {name!r}; known: {known}")
    return mix


def _choice(options: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in options:
            raise ConfigError(f"{attribute.name} {value!r}: choose one of {', '.join(options)}")
    return check


def _at_least(low: float, *, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    what = "an integer" if integer else "a number"

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        # ``not value >= low`` refuses NaN too (TOML spells it nan).
        if isinstance(value, bool) or not isinstance(value, kinds) or not value >= low:
            raise ConfigError(f"{attribute.name} must be {what} >= {low:g}, got {value!r}")
    return check


def _string(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{attribute.name} must be a string, got {value!r}")


def _integer(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{attribute.name} must be an integer, got {value!r}")


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"faults must be a list of strings, got {value!r}")
    return tuple(value)


@attrs.frozen(kw_only=True)
class RunSpec:
    """One benchmark run (see the module docstring for the fields' meaning)."""

    name: str = attrs.field(default="", validator=_string)
    mode: str = attrs.field(default="tcp", validator=_choice(MODES))
    variant: str = attrs.field(default="bb", validator=_choice(PROTOCOLS))
    brb: str = attrs.field(default="bracha", validator=_choice(BRB_KINDS))
    n: int = attrs.field(default=4, validator=_at_least(1, integer=True))
    payload_size: int = attrs.field(default=100, validator=_at_least(8, integer=True))
    payloads: int = attrs.field(default=6000, validator=_at_least(1, integer=True))
    rate: float = attrs.field(default=0.0, validator=_at_least(0))
    """Payloads per second offered by the whole cluster; 0 is flat out."""
    batch_size: int = attrs.field(default=DEFAULT_BATCH, validator=_at_least(1, integer=True))
    batch_delay_ms: float = attrs.field(default=0.0, validator=_at_least(0))
    mix: str | None = None
    """A named fault mix, or None (with ``faults``/``net`` inline, or fault-free)."""
    faults: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    net: str = attrs.field(default="", validator=_string)
    view_change_timeout_s: float = attrs.field(default=1.0, validator=_at_least(0.01))
    seed: int = attrs.field(default=1, validator=_integer)
    """Simulator seed (sim mode)."""
    repeat: int = attrs.field(default=1, validator=_at_least(1, integer=True))
    """Times to run it; the run with the median throughput is reported (tcp runs vary by
    10-25% on a busy 2-core machine, so headline comparisons use 3)."""

    def __attrs_post_init__(self) -> None:
        if self.mix is not None and (self.faults or self.net):
            raise ConfigError("give either mix or faults/net, not both")
        if self.variant == "baseline" and (self.fault_specs() or self.network()):
            raise ConfigError("the crash-only baseline is measured fault-free only")
        if self.variant == "baseline" and self.mode != "tcp":
            raise ConfigError("the baseline runs in tcp mode only")
        if self.payloads < self.n:
            raise ConfigError(f"payloads ({self.payloads}) must be at least n ({self.n})")
        Mix(self.label, self.fault_specs(), self.network()).resolve(self.n)  # validates

    def fault_specs(self) -> tuple[str, ...]:
        """The ``--fault`` strings of this run (from the mix or inline)."""
        return resolve_mix(self.mix).faults if self.mix is not None else self.faults

    def network(self) -> str:
        """The ``--net`` string of this run (from the mix or inline)."""
        return resolve_mix(self.mix).net if self.mix is not None else self.net

    @property
    def fault_free(self) -> bool:
        """True if nothing is injected."""
        return not self.fault_specs() and not self.network()

    @property
    def label(self) -> str:
        """The run's name, or one derived from its fields."""
        if self.name:
            return self.name
        protocol = "baseline" if self.variant == "baseline" else f"{self.variant}-{self.brb}"
        parts = [self.mode, protocol, f"n{self.n}"]
        if self.payload_size != 100:
            parts.append(f"{self.payload_size}B")
        if self.batch_size != DEFAULT_BATCH:
            parts.append(f"batch{self.batch_size}")
        if self.batch_delay_ms:
            parts.append(f"delay{self.batch_delay_ms:g}ms")
        if self.rate:
            parts.append(f"{self.rate:g}pps")
        if self.mix is not None:
            parts.append(self.mix)
        elif not self.fault_free:
            parts.append("faults")
        return "-".join(parts)

    def baseline(self) -> RunSpec:
        """The crash-only baseline under this run's workload and batching."""
        return RunSpec(mode="tcp", variant="baseline", n=self.n,
                       payload_size=self.payload_size, payloads=self.payloads, rate=self.rate,
                       batch_size=self.batch_size, batch_delay_ms=self.batch_delay_ms)


FIELDS = tuple(a.name for a in attrs.fields(RunSpec))
"""Field names a matrix file may set."""

LOW_LOAD_RATE = 100.0
"""Offered load (payloads/s, whole cluster) of the latency runs: every payload travels alone."""


def quick_preset() -> list[RunSpec]:
    """Under three minutes on two cores: the headline comparisons at n=4 plus a sim sweep."""
    runs = [
        RunSpec(variant="baseline", payloads=30000, repeat=3),
        RunSpec(payloads=30000, repeat=3),
        RunSpec(variant="baseline", payloads=200, rate=LOW_LOAD_RATE),
        RunSpec(payloads=200, rate=LOW_LOAD_RATE),
        RunSpec(payloads=30000, mix="equivocating-sequencer", repeat=3),
        RunSpec(payloads=30000, mix="crash-sequencer"),
        RunSpec(variant="baseline", n=7, payloads=10000),
        RunSpec(n=7, payloads=10000),
    ]
    runs += [RunSpec(mode="sim", n=n, payloads=600, rate=600.0) for n in (4, 7, 10, 16)]
    runs += [RunSpec(mode="sim", n=n, payloads=300, rate=100.0, mix="crash-sequencer")
             for n in (4, 7)]
    return runs


def full_preset() -> list[RunSpec]:
    """Every dimension of the issue: sizes, variants, BRBs, payloads, batching, fault mixes."""
    runs: list[RunSpec] = []
    for n in (4, 7, 10, 16):  # throughput vs n, each beside its own baseline
        payloads = {4: 40000, 7: 12000, 10: 6000, 16: 3200}[n]
        repeat = 3 if n == 4 else 1  # the headline pair: report medians
        runs += [RunSpec(variant="baseline", n=n, payloads=payloads, repeat=repeat),
                 RunSpec(n=n, payloads=payloads, repeat=repeat)]
    runs += [RunSpec(variant=v, payloads=40000) for v in ("ub", "uub", "moving")]
    runs += [RunSpec(brb="echo", payloads=40000)]
    runs += [RunSpec(variant="baseline", payload_size=1000, payloads=20000),
             RunSpec(payload_size=1000, payloads=20000)]
    runs += [RunSpec(batch_size=b, payloads=20000) for b in (16, 64, 256, 4096)]
    runs += [RunSpec(variant="baseline", payloads=300, rate=LOW_LOAD_RATE),
             RunSpec(payloads=300, rate=LOW_LOAD_RATE),
             RunSpec(brb="echo", payloads=300, rate=LOW_LOAD_RATE),
             RunSpec(variant="ub", payloads=300, rate=LOW_LOAD_RATE),
             RunSpec(payloads=2000, rate=1000.0, batch_delay_ms=2.0),
             RunSpec(payloads=2000, rate=1000.0)]
    for mix in ("crash-sequencer", "slow-sequencer", "silent-sequencer",
                "equivocating-sequencer", "censoring-sequencer", "stalling-sequencer",
                "mutating-sequencer", "twins-sequencer",
                *(f"sequencer-{b}" for b in SEQUENCER_BEHAVIOURS),
                "omission-member", "lossy-jittery", "twins", "vote-equivocator", "forger",
                "flooder"):
        # A Byzantine sequencer's runs are judged against a target: median of three.
        runs.append(RunSpec(payloads=40000, mix=mix, repeat=3 if "sequencer" in mix else 1))
    runs += [RunSpec(variant="ub", payloads=40000, mix="sequencer-drop-forwards", repeat=3),
             RunSpec(variant="uub", payloads=40000, mix="sequencer-double-grant", repeat=3),
             RunSpec(variant="uub", payloads=40000, mix="member-hoard-grants"),
             RunSpec(variant="moving", payloads=40000, mix="member-skip-turn")]
    runs.append(RunSpec(n=7, payloads=12000, mix="f-faulty"))
    runs.append(RunSpec(n=7, payloads=12000, mix="lying-view-change-mid-run"))
    for n in (4, 7, 10, 16):
        runs.append(RunSpec(mode="sim", n=n, payloads=1000, rate=1000.0))
        for mix in ("crash-sequencer", "equivocating-sequencer", "stalling-sequencer",
                    "twins-sequencer", "lossy"):
            runs.append(RunSpec(mode="sim", n=n, payloads=500, rate=200.0, mix=mix))
    for variant in ("ub", "uub", "moving"):
        runs.append(RunSpec(mode="sim", variant=variant, n=4, payloads=1000, rate=1000.0))
    return runs


def _expand(table: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(FIELDS)}")
    axes = []
    for key, value in table.items():
        if key == "faults" and isinstance(value, list) and all(isinstance(v, str)
                                                                for v in value):
            axes.append([(key, value)])  # a list of strings is one value of faults
        elif isinstance(value, list):
            if not value:
                raise ConfigError(f"{where}: {key} is an empty list")
            axes.append([(key, v) for v in value])
        else:
            axes.append([(key, value)])
    return [dict(combo) for combo in itertools.product(*axes)]


def load_matrix(path: Path) -> list[RunSpec]:
    """The runs a matrix file describes (see the module docstring); ConfigError if bad."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"matrix file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"matrix file {path}: {exc}") from None
    extra = sorted(set(data) - {"defaults", "run"})
    if extra:
        raise ConfigError(f"matrix file {path}: unknown table(s) {', '.join(extra)}; "
                          "expected [defaults] and [[run]]")
    defaults = data.get("defaults", {})
    tables = data.get("run", [])
    if not isinstance(defaults, dict) or not isinstance(tables, list) or not tables:
        raise ConfigError(f"matrix file {path}: needs at least one [[run]] table")
    runs: list[RunSpec] = []
    for number, table in enumerate(tables, 1):
        where = f"matrix file {path}, run {number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: not a table")
        for fields in _expand({**defaults, **table}, where):
            if fields.get("mix") == "none":
                fields["mix"] = None
            try:
                runs.append(RunSpec(**fields))
            except (TypeError, ValueError, ConfigError) as exc:
                raise ConfigError(f"{where} ({_describe(fields)}): {exc}") from None
    names = [r.label for r in runs]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        raise ConfigError(f"matrix file {path}: runs named twice: {', '.join(duplicates)} "
                          "(give them distinct names)")
    return runs


def _describe(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in fields.items())
