"""Output stage of the benchmark harness: a markdown report and PNG plots.

The input is the results dict the harness writes to ``OUT/results.json``; nothing here runs
a benchmark. :func:`write_reports` writes all of the following into one directory:

* ``results.md`` (:func:`markdown_table`) - one row per run, in run order: its configuration
  (mode, variant, BRB, n, f, fault mix, payload and batch size) and its measurements:
  throughput (payloads delivered at every member per second), throughput as a multiple of the
  crash-only unsigned baseline, latency percentiles, per-payload costs (signature
  verifications, protocol messages and bytes, CPU time), peak RSS, time to recover from a
  view change, and whether the run's checks passed. A failed run shows its error instead of
  measurements. Below the table come the baseline's own throughput and latency and a table
  of the targets: the measured and required value of each and whether it was met.
* ``throughput_vs_n.png`` - scaling: fault-free, flat-out throughput against the number of
  members, one line per (variant, BRB) pair and the baseline dashed. Drawn from the TCP runs,
  or from the simulated runs when no TCP run qualifies.
* ``latency_cdf.png`` - the distribution of latency from broadcast to delivery for up to
  12 runs (paced runs first), on a log axis so both the low-load body and the queueing tail
  are readable.
* ``throughput_by_faults.png`` - the cost of faults: throughput of the n = 4 runs of the
  default protocol flat out (fault-free and each fault mix), beside it the throughput after
  the view change where the run measured one, and a dashed line at fault-free ``bb``
  throughput for reference. Simulated runs stand in when
  there are no TCP runs.

``None``, missing keys and non-finite floats (a NaN stands for a failed measurement) all
render as ``-`` and are left out of the plots.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["markdown_table", "write_plots", "write_reports"]

Run = dict[str, Any]
DEFAULT_BATCH = 1024
"""btob's default batch size (``Settings().batch_payloads_max``): the fault plot compares runs
that use it."""
_T = TypeVar("_T")
Column = tuple[str, bool, Callable[[Run], str]]

MISSING = "-"
ERROR_WIDTH = 80
MAX_CDF_CURVES = 12
FAULT_PLOT_N = 4
BASELINE_VARIANT = "baseline"
BASELINE_LABEL = "baseline (crash-only, unsigned)"
Y_THROUGHPUT = "payloads/s delivered at every member"
DPI = 110


# --- value helpers -------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything that is not a usable measurement."""
    # bool is an int subclass, but a flag is never a measurement
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _get(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None as soon as a level is missing or not a dict."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _escape(text: str) -> str:
    # a bare pipe or newline would split or end the markdown table row
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return _escape(str(value)) or MISSING


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    number = _num(value)
    return MISSING if number is None else format(number * scale, spec)


def _count(value: Any) -> str:
    number = _num(value)
    if number is None:
        return MISSING
    return str(int(number)) if number.is_integer() else format(number, "g")


def _yes_no(value: Any) -> str:
    if value is None:
        return MISSING
    return "yes" if value else "NO"


def _fault_free(run: Run) -> bool:
    # a custom run can inject faults without naming a mix; that is not fault-free either
    return run.get("mix") is None and not run.get("faults")


def _faults_label(run: Run) -> str:
    mix = run.get("mix")
    if mix is not None:
        return str(mix)
    faults = run.get("faults")
    if isinstance(faults, list | tuple) and faults:
        return ", ".join(str(fault) for fault in faults)
    return "none"


def _failed(run: Run) -> bool:
    return run.get("error") is not None


def _error_text(error: Any) -> str:
    lines = str(error).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        return "error"
    if len(first) > ERROR_WIDTH:
        first = first[: ERROR_WIDTH - 1] + "…"
    return _escape(first)


def _runs(results: dict[str, Any]) -> list[Run]:
    runs = results.get("runs")
    if not isinstance(runs, list):
        return []
    return [run for run in runs if isinstance(run, dict)]


# --- markdown --------------------------------------------------------------------------------


def _table(columns: list[tuple[str, bool]], rows: list[list[str]]) -> list[str]:
    """Markdown table lines; numeric (right-aligned) columns get a ``---:`` separator."""
    header = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "|".join("---:" if right else "---" for _, right in columns) + "|"
    return [header, rule, *("| " + " | ".join(row) + " |" for row in rows)]


_CONFIG_COLUMNS: list[Column] = [
    ("name", False, lambda run: _text(run.get("name"))),
    ("mode", False, lambda run: _text(run.get("mode"))),
    ("variant", False, lambda run: _text(run.get("variant"))),
    ("brb", False, lambda run: _text(run.get("brb"))),
    ("n", True, lambda run: _count(run.get("n"))),
    ("f", True, lambda run: _count(run.get("f"))),
    ("faults", False, lambda run: _escape(_faults_label(run))),
    ("payload B", True, lambda run: _count(run.get("payload_size"))),
    ("batch", True, lambda run: _count(run.get("batch_size"))),
]

_METRIC_COLUMNS: list[Column] = [
    ("throughput (payloads/s)", True, lambda run: _fmt(run.get("throughput_pps"), ",.0f")),
    ("x baseline", True, lambda run: _fmt(_get(run, "baseline_ratio", "throughput"), ".2f")),
    ("p50 ms", True, lambda run: _fmt(_get(run, "latency_ms", "p50"), ".1f")),
    ("p90 ms", True, lambda run: _fmt(_get(run, "latency_ms", "p90"), ".1f")),
    ("p99 ms", True, lambda run: _fmt(_get(run, "latency_ms", "p99"), ".1f")),
    ("verif/payload", True, lambda run: _fmt(run.get("sig_verify_per_payload"), ".2f")),
    ("msgs/payload", True, lambda run: _fmt(run.get("msgs_per_payload"), ".2f")),
    ("bytes/payload", True, lambda run: _fmt(run.get("bytes_per_payload"), ",.0f")),
    ("CPU ms/payload", True, lambda run: _fmt(run.get("cpu_s_per_payload"), ".3f", 1000.0)),
    ("peak RSS MiB", True, lambda run: _fmt(run.get("peak_rss_mib"), ".1f")),
    ("recovery s", True, lambda run: _fmt(run.get("recovery_s"), ".2f")),
    ("views", True, lambda run: _count(run.get("view_changes"))),
    ("fault effect", False, lambda run: _escape(_effects_label(run))),
]


def _effects_label(run: Run) -> str:
    """What the run's faults measurably did (crash time, time held or busy, frames
    rewritten, dropped, delayed or injected); empty for a fault-free run."""
    parts = []
    for member, effects in sorted((run.get("fault_effects") or {}).items()):
        if not isinstance(effects, dict):
            continue
        done = []
        if effects.get("crashed_at") is not None:
            done.append(f"crashed at {effects['crashed_at']:.2f} s")
        for key, word in (("held_s", "held"), ("busy_s", "busy")):
            if effects.get(key):
                done.append(f"{word} {effects[key]:.2f} s")
        for key, word in (("frames_changed", "changed"), ("frames_dropped", "dropped"),
                          ("frames_delayed", "delayed"), ("frames_injected", "injected"),
                          ("twin_frames", "by the twin"), ("inputs_dropped", "refused")):
            if effects.get(key):
                done.append(f"{effects[key]:,} {word}")
        parts.append(f"{member}: {', '.join(done) or 'none'}")
    net = run.get("net_effects")
    if isinstance(net, dict):
        parts.append(f"net: {net.get('lost', 0):,} lost, {net.get('duplicated', 0):,} dup")
    return "; ".join(parts)


def _run_row(run: Run) -> list[str]:
    config = [cell(run) for _, _, cell in _CONFIG_COLUMNS]
    if _failed(run):
        # a failed run's partial numbers would be read as real measurements
        return [*config, *(MISSING for _ in _METRIC_COLUMNS), _error_text(run.get("error"))]
    metrics = [cell(run) for _, _, cell in _METRIC_COLUMNS]
    return [*config, *metrics, _yes_no(run.get("ok"))]


def _context_line(results: dict[str, Any]) -> str:
    parts: list[str] = []
    if results.get("preset") is not None:
        parts.append(f"preset {_text(results['preset'])}")
    if results.get("started") is not None:
        parts.append(f"started {_text(results['started'])}")
    wall = _num(results.get("wall_s"))
    if wall is not None:
        parts.append(f"wall time {wall:.1f} s")
    machine = results.get("machine")
    if isinstance(machine, dict):
        if _num(machine.get("cpus")) is not None:
            parts.append(f"{_count(machine['cpus'])} CPUs")
        if machine.get("python") is not None:
            parts.append(f"Python {_text(machine['python'])}")
        if machine.get("platform") is not None:
            parts.append(_text(machine["platform"]))
    return "; ".join(parts)


def _percentiles(latency: Any) -> str:
    cells = (_fmt(_get(latency, key), ".1f") for key in ("p50", "p90", "p99"))
    return " / ".join(cells) + " ms"


def _baseline_section(baseline: Any) -> list[str]:
    if not isinstance(baseline, dict):
        return []
    text = (
        f"Crash-only, unsigned baseline: {_fmt(baseline.get('throughput_pps'), ',.0f')} "
        f"payloads/s; latency p50 / p90 / p99 {_percentiles(baseline.get('latency_ms'))}"
    )
    if isinstance(baseline.get("low_load_latency_ms"), dict):
        text += f" flat out, {_percentiles(baseline['low_load_latency_ms'])} at low load"
    return ["## Baseline", "", text + "."]


def _targets_section(targets: Any) -> list[str]:
    if not isinstance(targets, list) or not targets:
        return []
    rows = [
        [
            _text(target.get("target")),
            _text(target.get("measured")),
            _text(target.get("required")),
            _yes_no(target.get("met")),
        ]
        for target in targets
        if isinstance(target, dict)
    ]
    columns = [("target", False), ("measured", True), ("required", True), ("met", False)]
    return ["## Targets", "", *_table(columns, rows)]


def markdown_table(results: dict[str, Any]) -> str:
    """The results as a markdown document: runs table, baseline summary and targets table."""
    lines = ["# btob benchmark results", ""]
    context = _context_line(results)
    if context:
        lines += [context, ""]
    runs = _runs(results)
    if runs:
        columns = [(name, right) for name, right, _ in (*_CONFIG_COLUMNS, *_METRIC_COLUMNS)]
        columns.append(("ok", False))
        lines += _table(columns, [_run_row(run) for run in runs])
    else:
        lines.append("No runs.")
    for section in (
        _baseline_section(results.get("baseline")),
        _targets_section(results.get("targets", [])),
    ):
        if section:
            lines += ["", *section]
    return "\n".join(lines) + "\n"


# --- plots -----------------------------------------------------------------------------------


@contextmanager
def _figure(path: Path, width: float, height: float) -> Iterator[Axes]:
    """Axes on a fresh figure that is saved to ``path`` on success and closed either way."""
    import matplotlib

    # the harness runs headless; select Agg before pyplot can pick an interactive backend
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    try:
        yield ax
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)


def _line_label(run: Run) -> str:
    variant = run.get("variant")
    if variant == BASELINE_VARIANT:
        return BASELINE_LABEL
    brb = run.get("brb")
    return f"{variant} / {brb}" if brb is not None else str(variant)


def _scaling_lines(runs: list[Run], mode: str) -> dict[str, dict[float, float]]:
    """Fault-free flat-out throughput by n, per (variant, brb) line label, in run order."""
    lines: dict[str, dict[float, float]] = {}
    for run in runs:
        if run.get("mode") != mode or _failed(run) or not _fault_free(run):
            continue
        # a missing rate means the harness default, which is flat out
        if (_num(run.get("rate")) or 0.0) != 0.0:
            continue
        n = _num(run.get("n"))
        throughput = _num(run.get("throughput_pps"))
        if n is None or throughput is None:
            continue
        # the first run per n wins: runs sweeping another parameter (payload size, batch)
        # at the same n would otherwise make the line zig-zag
        lines.setdefault(_line_label(run), {}).setdefault(n, throughput)
    return lines


def _tcp_or_sim(select: Callable[[list[Run], str], _T], runs: list[Run]) -> tuple[_T, bool]:
    """What ``select`` picks from the TCP runs, else from the simulated ones (then True)."""
    picked = select(runs, "tcp")
    if picked:
        return picked, False
    return select(runs, "sim"), True


def _plot_throughput_vs_n(runs: list[Run], path: Path) -> bool:
    lines, simulated = _tcp_or_sim(_scaling_lines, runs)
    if not lines:
        return False
    with _figure(path, 7.0, 4.5) as ax:
        all_n: set[float] = set()
        for label, points in lines.items():
            ns = sorted(points)
            all_n.update(ns)
            style: dict[str, Any] = {"marker": "o", "label": label}
            if label == BASELINE_LABEL:
                style.update(linestyle="--", color="0.35")
            ax.plot(ns, [points[n] for n in ns], **style)
        ax.set_xticks(sorted(all_n))
        ax.set_xlabel("members (n)")
        ax.set_ylabel(Y_THROUGHPUT)
        ax.set_ylim(bottom=0)
        title = "Fault-free throughput vs cluster size"
        ax.set_title(title + (" (simulated)" if simulated else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return True


def _cdf_points(raw: Any) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    if not isinstance(raw, list | tuple):
        return xs, ys
    for pair in raw:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        latency, fraction = _num(pair[0]), _num(pair[1])
        # a log axis cannot place a zero latency
        if latency is None or fraction is None or latency <= 0:
            continue
        xs.append(latency)
        ys.append(fraction)
    return xs, ys


def _cdf_curves(runs: list[Run]) -> list[tuple[str, list[float], list[float]]]:
    """(label, latencies, fractions) of the first runs with plottable CDF points: paced runs
    first (their latency is the protocol's; flat out it is mostly queueing), then the rest."""
    curves: list[tuple[str, list[float], list[float]]] = []
    paced = [run for run in runs if (_num(run.get("rate")) or 0.0) > 0]
    for run in paced + [run for run in runs if run not in paced]:
        if len(curves) == MAX_CDF_CURVES:
            break
        xs, ys = _cdf_points(run.get("latency_cdf"))
        if xs:
            # a failed run may still carry partial samples; say so rather than hide them
            label = str(run.get("name")) + (" (failed)" if _failed(run) else "")
            curves.append((label, xs, ys))
    return curves


def _plot_latency_cdf(runs: list[Run], path: Path) -> bool:
    curves = _cdf_curves(runs)
    if not curves:
        return False
    import matplotlib
    from matplotlib.ticker import StrMethodFormatter

    # tab20's dark shades first, then the light ones: 12 curves stay distinguishable,
    # which the default 10-colour cycle cannot do
    palette = matplotlib.colormaps["tab20"]
    colours = [palette(i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    with _figure(path, 9.5, 4.8) as ax:
        for index, (label, xs, ys) in enumerate(curves):
            ax.plot(xs, ys, label=label, color=colours[index % len(colours)], linewidth=1.4)
        ax.set_xscale("log")
        # plain milliseconds read faster than powers of ten
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.set_xlabel("latency ms, broadcast to delivery")
        ax.set_ylabel("fraction of payloads")
        ax.set_ylim(0.0, 1.02)
        ax.set_title("Latency distribution")
        ax.grid(True, which="both", alpha=0.3)
        # outside the axes: with a dozen curves no corner inside stays clear
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return True


def _fault_runs(runs: list[Run], mode: str) -> list[Run]:
    """The runs of one fault comparison: n = 4 under the default protocol, flat out (the
    fault-free one and every mix), so only the faults differ between bars."""
    candidates = [
        run
        for run in runs
        if run.get("mode") == mode
        and _num(run.get("n")) == FAULT_PLOT_N
        and not _failed(run)
        and _num(run.get("throughput_pps")) is not None
    ]
    same = [run for run in candidates
            if run.get("variant") == "bb" and run.get("brb") in ("bracha", None)
            and (_num(run.get("rate")) or 0.0) == 0.0
            and _num(run.get("payload_size")) in (100, None)
            and _num(run.get("batch_size")) in (DEFAULT_BATCH, None)]
    return same or candidates


def _fault_labels(runs: list[Run]) -> list[str]:
    """Fault mix per run, or the run's name where the mix alone would be ambiguous."""
    labels = [_faults_label(run) for run in runs]
    uses = Counter(labels)
    return [
        str(run.get("name")) if uses[label] > 1 else label
        for run, label in zip(runs, labels, strict=True)
    ]


def _plot_throughput_by_faults(runs: list[Run], path: Path) -> bool:
    bars, simulated = _tcp_or_sim(_fault_runs, runs)
    if not bars:
        return False
    labels = _fault_labels(bars)
    throughput = [_num(run.get("throughput_pps")) or 0.0 for run in bars]
    after = [_num(run.get("throughput_after_recovery_pps")) for run in bars]
    paired = any(value is not None for value in after)
    height = 0.38 if paired else 0.7
    offset = height / 2 if paired else 0.0
    reference = next(
        (run for run in bars if run.get("variant") == "bb" and _fault_free(run)), None
    )
    rows = range(len(bars))
    with _figure(path, 8.0, max(2.8, 0.55 * len(bars) + 1.6)) as ax:
        main = ax.barh(
            [row - offset for row in rows], throughput, height=height, color="C0",
            label="throughput",
        )
        ax.bar_label(main, fmt="{:,.0f}", padding=3, fontsize="x-small")
        if paired:
            recovered = [(row, value) for row, value in zip(rows, after, strict=True)
                         if value is not None]
            second = ax.barh(
                [row + offset for row, _ in recovered], [value for _, value in recovered],
                height=height, color="C0", alpha=0.4, label="after view change",
            )
            ax.bar_label(second, fmt="{:,.0f}", padding=3, fontsize="x-small")
        if reference is not None:
            ax.axvline(
                _num(reference.get("throughput_pps")) or 0.0, color="0.3", linestyle="--",
                linewidth=1, label="fault-free bb",
            )
        ax.set_yticks(list(rows), labels)
        # first run at the top, as in the markdown table
        ax.invert_yaxis()
        # room for the value labels right of the longest bar
        ax.margins(x=0.15)
        ax.set_xlabel(Y_THROUGHPUT)
        title = f"Throughput by fault mix, n = {FAULT_PLOT_N}"
        ax.set_title(title + (" (simulated)" if simulated else ""))
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    return True


_PLOTS: list[tuple[str, Callable[[list[Run], Path], bool]]] = [
    ("throughput_vs_n.png", _plot_throughput_vs_n),
    ("latency_cdf.png", _plot_latency_cdf),
    ("throughput_by_faults.png", _plot_throughput_by_faults),
]


def write_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the PNG plots that have data into ``out_dir``; return the paths written."""
    runs = _runs(results)
    written: list[Path] = []
    if not runs:
        return written
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, plot in _PLOTS:
        path = out_dir / filename
        if plot(runs, path):
            written.append(path)
    return written


def write_reports(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``results.md`` and the plots into ``out_dir``; return every path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "results.md"
    markdown.write_text(markdown_table(results), encoding="utf-8")
    return [markdown, *write_plots(results, out_dir)]
