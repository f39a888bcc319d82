"""``btob bench`` / ``python -m btob.bench``: run a benchmark matrix and write its results.

Each run of the matrix (:mod:`btob.bench.matrix`) is executed in its mode - ``tcp`` through
:func:`btob.bench.tcp_bench.run_cluster` (one OS process per member on loopback, real sockets and
signatures), ``sim`` through :func:`btob.simulate` (virtual time) - and turned into one row of
``OUT/results.json``. Every tcp run of btob is paired with the crash-only unsigned baseline
(:mod:`btob.bench.baseline`) under the same workload and batching, run in the same invocation, and
reports ``baseline_ratio`` against it. Then ``OUT/results.md`` and the PNG plots are written
(:mod:`btob.bench.report`).

Definitions of the metrics (per run):

* ``throughput_pps`` - payloads of correct origins delivered at every correct member per
  second (tcp: payloads / the slowest correct member's first-broadcast-to-last-delivery time;
  sim: payloads / virtual time to the last delivery).
* ``latency_ms`` - broadcast to local delivery of a member's own payloads, correct members,
  percentiles over all samples (sim: virtual time).
* ``*_per_payload`` - cluster-wide sums over correct members divided by the number of
  distinct payloads (so 0.2 verifications per payload at n=4 is 0.05 per member).
* ``recovery_s`` - tcp: first broadcast to the first delivery in the final view at the slowest
  correct member (the faults of the mixes act from the start); sim: the failed sequencer's
  failure to the first commit in the new view (``ViewChangeRecord.recovery_s``).
* ``throughput_after_recovery_pps`` - the lowest per-member delivery rate (payloads of any
  origin, as fault-free throughput counts every origin's) after the member installed the
  final view.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from btob import ConfigError, Quorums, Settings, SimConfig, simulate
from btob.bench import tcp_bench
from btob.bench.matrix import (
    DEFAULT_BATCH,
    LOW_LOAD_RATE,
    RunSpec,
    full_preset,
    load_matrix,
    quick_preset,
    resolve_mix,
)
from btob.faults import parse_fault, parse_net

__all__ = ["evaluate_targets", "main", "run_matrix", "run_sim", "run_tcp"]

_TCP_TIMEOUT_S = 600.0
_LINGER_S = 0.5


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _row(spec: RunSpec) -> dict[str, Any]:
    """The descriptive part of a results row."""
    n = spec.n
    f = Quorums.for_cluster(n).f
    return {
        "name": spec.label, "mode": spec.mode, "variant": spec.variant,
        "brb": None if spec.variant == "baseline" else spec.brb, "n": n, "f": f,
        "mix": spec.mix, "faults": list(spec.fault_specs()), "net": spec.network() or None,
        "payload_size": spec.payload_size, "batch_size": spec.batch_size,
        "batch_delay_ms": spec.batch_delay_ms, "payloads": spec.payloads, "rate": spec.rate,
    }


def run_tcp(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` as n processes on loopback and return its results row."""
    options = tcp_bench.WorkerOptions(
        core="baseline" if spec.variant == "baseline" else "btob",
        variant="bb" if spec.variant == "baseline" else spec.variant, brb=spec.brb,
        batch_size=spec.batch_size, batch_delay_s=spec.batch_delay_ms / 1000.0,
        view_change_timeout_s=spec.view_change_timeout_s, faults=spec.fault_specs(),
        net=spec.network())
    results = tcp_bench.run_cluster(spec.n, spec.payloads, spec.payload_size, spec.rate,
                                    linger_s=_LINGER_S, timeout_s=_TCP_TIMEOUT_S,
                                    options=options)
    s = tcp_bench.summarize(results)
    row = _row(spec)
    row.update({
        "payloads": s["payloads"],
        "throughput_pps": s["throughput_per_s"],
        "throughput_after_recovery_pps": s["throughput_after_recovery_per_s"],
        "latency_ms": {"p50": s["latency_p50_ms"], "p90": s["latency_p90_ms"],
                       "p99": s["latency_p99_ms"]},
        "latency_cdf": s["latency_cdf"],
        "sig_made_per_payload": s["signatures_made_per_payload"],
        "sig_verify_per_payload": s["signatures_verified_per_payload"],
        "msgs_per_payload": s["messages_per_payload"],
        "bytes_per_payload": s["bytes_per_payload"],
        "cpu_s_per_payload": s["cpu_s_per_payload"],
        "peak_rss_mib": max(s["max_rss_mib"]),
        "recovery_s": s["recovery_s"],
        "view_changes": s["final_view"],
        "evidence_against": s["evidence_against"],
        "fault_effects": s["fault_effects"],
        "net_effects": s["net_effects"],
        "ok": bool(s["all_delivered"] and s["same_order"]),
        "error": None if s["all_delivered"] and s["same_order"] else
        "not every correct member delivered the same sequence",
    })
    return _judge_effects(spec, row)


def _judge_effects(spec: RunSpec, row: dict[str, Any]) -> dict[str, Any]:
    """Fail a row whose faults did nothing: a row labelled with a fault must have measured
    that fault (a slow sequencer that was never slow measured a fault-free run)."""
    effects = row.get("fault_effects") or {}
    idle = []
    for text in spec.fault_specs():
        member = str(parse_fault(text, spec.n).member)
        if not (effects.get(member) or {}).get("took_effect"):
            idle.append(text)
    net = row.get("net_effects")
    if spec.network() and row.get("mode") == "tcp" and not (
            net and (net["lost"] or net["duplicated"] or net["delay_s"] > 0)):
        idle.append(f"--net {spec.network()}")
    if idle and row.get("ok"):
        row["ok"] = False
        row["error"] = f"no effect of {', '.join(idle)}"
    return row


def run_sim(spec: RunSpec) -> dict[str, Any]:
    """Simulate ``spec`` (virtual time) and return its results row, judged by the checker."""
    settings = Settings(batch_payloads_max=spec.batch_size,
                        batch_delay_s=spec.batch_delay_ms / 1000.0,
                        view_change_timeout_s=spec.view_change_timeout_s)
    net = spec.network()
    config = SimConfig(
        n=spec.n, seed=spec.seed, messages=spec.payloads, payload_size=spec.payload_size,
        rate=spec.rate if spec.rate > 0 else 20_000.0, variant=spec.variant, brb=spec.brb,
        faults=tuple(parse_fault(t, spec.n) for t in spec.fault_specs()),
        net=parse_net(net, spec.n) if net else SimConfig().net, settings=settings)
    started = time.process_time()
    result = simulate(config)
    cpu = time.process_time() - started
    faulty = {f.member for f in config.faults}
    correct = [s for s in result.statistics if s.member not in faulty]
    total = spec.payloads
    latencies = [x * 1000.0 for x in result.latencies]
    recoveries = [r.recovery_s for r in result.view_changes if r.recovery_s is not None]
    row = _row(spec)
    row.update({
        "throughput_pps": total / result.virtual_time if result.complete else None,
        "throughput_after_recovery_pps": None,
        "latency_ms": {"p50": tcp_bench.percentile(latencies, 0.5),
                       "p90": tcp_bench.percentile(latencies, 0.9),
                       "p99": tcp_bench.percentile(latencies, 0.99)},
        "latency_cdf": tcp_bench.latency_cdf(latencies),
        "sig_made_per_payload": sum(s.signatures_made for s in correct) / total,
        "sig_verify_per_payload": sum(s.signatures_verified for s in correct) / total,
        "msgs_per_payload": sum(s.messages_sent for s in correct) / total,
        "bytes_per_payload": sum(s.bytes_sent for s in correct) / total,
        "cpu_s_per_payload": cpu / total,  # the whole simulator's CPU (all members)
        "peak_rss_mib": None,
        "recovery_s": max(recoveries) if recoveries else None,
        "view_changes": len(result.view_changes),
        "evidence_against": sorted({m for s in correct for m in s.evidence}),
        "fault_effects": {str(m): {**attrs.asdict(e), "took_effect": e.took_effect}
                          for m, e in result.fault_effects.items()},
        "ok": bool(result.ok and result.complete),
        "error": None if result.ok and result.complete else
        ("checker violation" if not result.ok else "run did not complete"),
    })
    return _judge_effects(spec, row)


def _failed(spec: RunSpec, exc: Exception) -> dict[str, Any]:
    row = _row(spec)
    row.update({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return row


def _run_once(spec: RunSpec) -> dict[str, Any]:
    try:
        return run_tcp(spec) if spec.mode == "tcp" else run_sim(spec)
    except (RuntimeError, ConfigError, OSError, ValueError) as exc:
        return _failed(spec, exc)


def _run_repeated(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec.repeat`` times; the row of median throughput, with every throughput in
    ``repeats`` (a failure in any repetition is reported instead)."""
    rows = [_run_once(spec) for _ in range(spec.repeat)]
    failed = [row for row in rows if not row.get("ok")]
    if failed:
        return failed[0]
    ranked = sorted(rows, key=lambda row: row.get("throughput_pps") or 0.0)
    row = ranked[len(ranked) // 2]
    row["repeats"] = [r.get("throughput_pps") for r in rows]
    return row


def _baseline_key(spec: RunSpec) -> tuple[int, int, float]:
    return (spec.n, spec.payload_size, spec.rate)


def plan(runs: list[RunSpec]) -> list[RunSpec]:
    """``runs`` with a baseline added (right before its first user) for every tcp run of
    btob whose (n, payload size, rate) no baseline in the list measures."""
    have = {_baseline_key(r) for r in runs if r.variant == "baseline"}
    planned: list[RunSpec] = []
    for spec in runs:
        if spec.mode == "tcp" and spec.variant != "baseline" \
                and _baseline_key(spec) not in have:
            planned.append(spec.baseline())
            have.add(_baseline_key(spec))
        planned.append(spec)
    return planned


def _attach_ratios(rows: list[dict[str, Any]]) -> None:
    """Give every tcp row of btob the ratio to the baseline of its (n, size, rate)."""
    baselines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        if row["variant"] == "baseline" and row.get("ok") and row["batch_size"] == DEFAULT_BATCH:
            baselines.setdefault((row["n"], row["payload_size"], row["rate"]), row)
    for row in rows:  # a baseline with other batching only when there is no default one
        if row["variant"] == "baseline" and row.get("ok"):
            baselines.setdefault((row["n"], row["payload_size"], row["rate"]), row)
    for row in rows:
        base = baselines.get((row["n"], row["payload_size"], row["rate"]))
        if row["mode"] != "tcp" or row["variant"] == "baseline" or base is None \
                or not row.get("ok"):
            row["baseline_ratio"] = None
            continue
        row["baseline_ratio"] = {
            "throughput": _ratio(row["throughput_pps"], base["throughput_pps"]),
            "latency_p50": _ratio(row["latency_ms"]["p50"], base["latency_ms"]["p50"]),
            "baseline": base["name"],
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return None
    return a / b


def _find(rows: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    for row in rows:
        if row.get("ok") and all(row.get(k) == v for k, v in want.items()):
            return row
    return None


def _byzantine_sequencer(mix: str | None) -> bool:
    """True for a mix whose only fault is a Byzantine behaviour of member 0 (the sequencer
    of view 0); crash and slowness are not Byzantine."""
    if mix is None:
        return False
    faults = resolve_mix(mix).faults
    if len(faults) != 1 or not faults[0].startswith("0="):
        return False
    return bool(parse_fault(faults[0], 4).byzantine)


_DEFAULTS = {"mode": "tcp", "n": 4, "payload_size": 100, "batch_size": DEFAULT_BATCH,
             "batch_delay_ms": 0.0, "brb": "bracha", "variant": "bb"}


def _headline_baselines(rows: list[dict[str, Any]],
                        ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The baseline rows the targets compare with: n=4, default payload size and batching,
    flat out and at low load."""
    base = {**_DEFAULTS, "variant": "baseline", "brb": None}
    return _find(rows, rate=0.0, **base), _find(rows, rate=LOW_LOAD_RATE, **base)


def evaluate_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, judged on the rows that measure them (skipped when absent)."""
    targets: list[dict[str, Any]] = []

    def add(target: str, measured: float | None, required: str,
            met: Callable[[float], bool], fmt: str = ".2f") -> None:
        if measured is None or not math.isfinite(measured):
            return
        targets.append({"target": target, "measured": f"{measured:{fmt}}",
                        "required": required, "met": bool(met(measured))})

    flat = _find(rows, mix=None, rate=0.0, **_DEFAULTS)
    low = _find(rows, mix=None, rate=LOW_LOAD_RATE, **_DEFAULTS)
    base_flat, base_low = _headline_baselines(rows)
    if flat is not None and base_flat is not None:
        add("throughput / baseline (n=4, flat out)",
            _ratio(flat["throughput_pps"], base_flat["throughput_pps"]), ">= 0.5",
            lambda x: x >= 0.5)
    if flat is not None:
        add("signature verifications per payload, cluster-wide (n=4, flat out)",
            flat["sig_verify_per_payload"], "<= 0.2", lambda x: x <= 0.2, ".3f")
        add("throughput, payloads/s (n=4, flat out)", flat["throughput_pps"], ">= 3500",
            lambda x: x >= 3500, ",.0f")
        byzantine = [r for r in rows if r.get("ok") and r["mode"] == "tcp" and r["n"] == 4
                     and _byzantine_sequencer(r.get("mix"))
                     and r.get("throughput_after_recovery_pps") is not None]
        for row in byzantine:
            same = _find(rows, mix=None, rate=0.0, **{**_DEFAULTS, "variant": row["variant"],
                                                      "brb": row["brb"]})
            if same is None:
                continue
            add(f"throughput after replacing a Byzantine sequencer / fault-free "
                f"({row['mix']}, {row['variant']})",
                _ratio(row["throughput_after_recovery_pps"], same["throughput_pps"]),
                ">= 0.7", lambda x: x >= 0.7)
    if low is not None and base_low is not None:
        add(f"p50 latency / baseline at low load (n=4, {LOW_LOAD_RATE:g} payloads/s)",
            _ratio(low["latency_ms"]["p50"], base_low["latency_ms"]["p50"]), "<= 3",
            lambda x: x <= 3)
    return targets


def run_matrix(runs: list[RunSpec], *, progress: bool = True) -> tuple[list[dict[str, Any]],
                                                                       float]:
    """Execute ``runs`` (baselines added by :func:`plan`) in order; rows and wall seconds."""
    planned = plan(runs)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task("starting", total=len(planned))
        for spec in planned:
            bar.update(task, description=spec.label[:48])
            row = _run_repeated(spec)
            rows.append(row)
            bar.advance(task)
            status = "ok" if row.get("ok") else f"FAILED: {str(row.get('error'))[:200]}"
            thr = row.get("throughput_pps")
            bar.console.print(f"{spec.label:<48} "
                              + (f"{thr:>9,.0f} payloads/s  " if thr else "")
                              + status)
    _attach_ratios(rows)
    return rows, time.monotonic() - started


def _results(preset: str, rows: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    base, base_low = _headline_baselines(rows)
    results: dict[str, Any] = _finite({
        "preset": preset,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": wall,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "baseline": None if base is None else {
            "name": base["name"], "throughput_pps": base["throughput_pps"],
            "latency_ms": base["latency_ms"],
            "low_load_latency_ms": None if base_low is None else base_low["latency_ms"],
        },
        "targets": evaluate_targets(rows),
        "runs": rows,
    })
    return results


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``btob bench`` (a matrix; micro-benchmarks have their own)."""
    parser = argparse.ArgumentParser(
        prog="btob bench", description="Run a benchmark matrix: tcp (real processes on "
        "loopback) and sim (virtual time) runs, each tcp run beside the crash-only unsigned "
        "baseline. Writes OUT/results.json, OUT/results.md and PNG plots. "
        "`btob bench crypto|sim|variants|recovery|tcp|durability ...` runs one micro-benchmark "
        "instead.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="the quick preset (< 3 minutes)")
    which.add_argument("--full", action="store_true", help="the full preset (the default)")
    which.add_argument("--matrix", type=Path, metavar="FILE", help="a TOML matrix file")
    parser.add_argument("--mode", choices=("tcp", "sim"), default=None,
                        help="only the runs of this mode")
    parser.add_argument("--only", default=None, metavar="TEXT",
                        help="only runs whose name contains TEXT (baselines are added)")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), metavar="OUT",
                        help="output directory (default: bench-out)")
    parser.add_argument("--list", action="store_true", help="print the runs, run nothing")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a preset or matrix; exit status 0 if every run succeeded, 1 otherwise, 2 on
    a bad matrix or option."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from btob.bench import MICRO_BENCHES

    if argv and argv[0] in MICRO_BENCHES:
        module = importlib.import_module(f"btob.bench.{MICRO_BENCHES[argv[0]]}")
        status: int = module.main(argv[1:])
        return status
    args = build_parser().parse_args(argv)
    try:
        if args.matrix is not None:
            preset, runs = "custom", load_matrix(args.matrix)
        elif args.quick:
            preset, runs = "quick", quick_preset()
        else:
            preset, runs = "full", full_preset()
    except ConfigError as exc:
        print(f"btob bench: {exc}", file=sys.stderr)
        return 2
    if args.mode is not None:
        runs = [r for r in runs if r.mode == args.mode]
    if args.only is not None:
        runs = [r for r in runs if args.only in r.label]
    if not runs:
        print("btob bench: no run matches", file=sys.stderr)
        return 2
    if args.list:
        for spec in plan(runs):
            print(spec.label)
        return 0
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        # Found out before any run, not after an hour of them.
        print("btob bench: the plots need matplotlib (pip install 'btob[bench]'), or pass "
              "--no-plots", file=sys.stderr)
        return 2
    rows, wall = run_matrix(runs, progress=not args.quiet)
    results = _results(preset, rows, wall)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    from btob.bench import report

    written = [path]
    if args.no_plots:
        md = args.out / "results.md"
        md.write_text(report.markdown_table(results), encoding="utf-8")
        written.append(md)
    else:
        written += report.write_reports(results, args.out)
    for target in results["targets"]:
        print(f"target {'met ' if target['met'] else 'MISSED'}  {target['target']}: "
              f"{target['measured']} (required {target['required']})")
    failures = [r["name"] for r in rows if not r.get("ok")]
    print(f"{len(rows)} runs in {wall:.0f} s, {len(failures)} failed"
          + (f" ({', '.join(failures)})" if failures else "")
          + f"; wrote {', '.join(str(p) for p in written)}")
    return 1 if failures else 0
