"""Planted bugs: does the adversary sweep (and do the tests) catch single-rule bugs?

Issue 13 asks that on planted single-rule bugs the sweep alone, within 200 runs per bug,
catches at least 90%, and sweep plus tests catch all. Each bug is a small patch under
``bench/planted/NN-name.patch`` that breaks one safety or liveness rule; its first lines say
which (``Planted bug: ...`` and ``Rule broken: ...``, text that ``git apply`` skips).

Slow (up to a few minutes per bug), so it is no part of CI; run it by hand, in a work tree
without uncommitted changes to ``btob/``, ``crypto/`` or ``faults/``::

    python -m btob.bench.planted                   # every patch: smoke run and sweep
    python -m btob.bench.planted --tests           # ... and the fast unit-test selection
    python -m btob.bench.planted --only 04,07 --tests --no-sweep   # tests for two bugs only
    python -m btob.bench.planted --list            # the patches and the rules they break

For each selected patch the script ``git apply``-s it, runs a fault-free smoke simulation
(``btob sim --n 4 --seed 1``: a bug should not break every run), then the sweep
(:data:`SWEEP_ARGS`, 192 runs, stopping at the first failure) and, with ``--tests``,
:data:`TESTS_ARGS`, each in a subprocess with a timeout, and always ``git apply -R``-s the
patch afterwards. A sweep that ends in a traceback (an assertion in the core) counts as
caught, as a crash. The verdicts are kept in ``bench/results/adversary/planted.json`` (a run
of a few bugs updates theirs) and rendered to ``bench/results/adversary/planted.md``, whose
``## Judgements`` section (written by hand: which attack would catch a missed bug) is kept
when the report is rewritten.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "SWEEP_ARGS",
    "TESTS_ARGS",
    "Bug",
    "Outcome",
    "list_patches",
    "main",
    "parse_sweep",
    "parse_tests",
    "read_bug",
    "render_report",
]

ROOT = Path(__file__).resolve().parent.parent
PLANTED = ROOT / "bench" / "planted"
RESULTS = ROOT / "bench" / "results" / "adversary"
REPORT = RESULTS / "planted.md"
STATE = RESULTS / "planted.json"
JUDGEMENTS = "## Judgements"
GUARDED = ("btob", "crypto", "faults")
"""Directories whose uncommitted changes make the script refuse to run."""

SWEEP_ARGS = ("sweep", "--seeds", "12", "--n", "4,7", "--mix", "adversary",
              "--variant", "bb,ub,uub,moving", "--brb", "bracha,echo", "--messages", "50",
              "--max-time", "30")
"""The sweep per bug: 12 seeds x 2 sizes x 4 variants x 2 BRB kinds = 192 runs, stopping at a
failure; each variant and BRB kind draws its own stretch of attacks (96 per size, every
attack of the catalogue at least twice)."""
SMOKE_ARGS = ("sim", "--n", "4", "--seed", "1")
TESTS_ARGS = ("-x", "-q", "tests/core", "tests/faults", "-p", "no:cacheprovider")
"""The fast unit-test selection run with ``--tests`` (pytest, stops at the first failure)."""

_PASS = re.compile(r"^sweep: PASS \((\d+) runs\)", re.MULTILINE)
_FAIL = re.compile(r"^sweep: FAIL \((\w+)\) at (.*?) after (\d+) runs", re.MULTILINE)
_ERROR_LINE = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Diverged)\b.*)$", re.MULTILINE)


@attrs.frozen
class Bug:
    """One planted bug: its patch and the rule it breaks."""

    name: str
    path: Path
    summary: str
    rule: str


@attrs.frozen
class Outcome:
    """What one check (the sweep, the tests, the smoke run) made of one bug.

    ``kind``: for the sweep ``violation``, ``incomplete`` or ``crash`` when caught, ``pass``
    when not; for the tests ``failed`` or ``pass``; ``timeout`` or ``error`` when the check
    itself gave no verdict (then ``caught`` is False).
    """

    caught: bool
    kind: str
    runs: int | None = None
    detail: str = ""
    seconds: float = 0.0


def read_bug(path: Path) -> Bug:
    """The bug of patch ``path``, from its ``Planted bug:`` and ``Rule broken:`` lines."""
    summary = rule = ""
    for line in path.read_text().splitlines():
        if line.startswith("diff --git"):
            break
        if line.startswith("Planted bug:"):
            summary = line.removeprefix("Planted bug:").strip()
        elif line.startswith("Rule broken:"):
            rule = line.removeprefix("Rule broken:").strip()
    return Bug(path.stem, path, summary, rule)


def list_patches(directory: Path = PLANTED, only: Iterable[str] = ()) -> list[Bug]:
    """The planted bugs in ``directory`` in name order; with ``only``, those whose name
    starts with one of its entries (``"04"`` or ``"04-order-from-anyone"``)."""
    wanted = tuple(only)
    bugs = [read_bug(p) for p in sorted(directory.glob("*.patch"))]
    if wanted:
        bugs = [b for b in bugs if b.name.startswith(wanted)]
    return bugs


def _last_error(text: str) -> str:
    errors = _ERROR_LINE.findall(text)
    return errors[-1].strip()[:200] if errors else ""


def parse_sweep(stdout: str, stderr: str, returncode: int) -> Outcome:
    """The sweep's verdict from its output: ``sweep: FAIL (kind) ... after N runs`` is
    caught after N runs, ``sweep: PASS (N runs)`` is not, and a traceback (or an exit code
    other than 0 and 1 without a verdict line) is caught as a crash."""
    failed = _FAIL.search(stdout)
    if failed is not None:
        kind, where, runs = failed.group(1), failed.group(2), int(failed.group(3))
        return Outcome(True, kind, runs, where)
    passed = _PASS.search(stdout)
    if passed is not None and returncode == 0:
        return Outcome(False, "pass", int(passed.group(1)))
    if "Traceback" in stderr or "Traceback" in stdout or returncode not in (0, 1):
        detail = _last_error(stderr) or _last_error(stdout) or f"exit code {returncode}"
        return Outcome(True, "crash", None, detail)
    return Outcome(False, "error", None, f"no verdict (exit code {returncode})")


def parse_tests(stdout: str, returncode: int) -> Outcome:
    """pytest's verdict: exit code 1 with a ``FAILED`` (or ``ERROR``) line is caught, 0 is
    not; anything else (no tests, an internal error) gives no verdict."""
    if returncode == 0:
        return Outcome(False, "pass")
    first = next((line for line in stdout.splitlines()
                  if line.startswith(("FAILED ", "ERROR "))), "")
    if returncode == 1 or first:
        return Outcome(True, "failed", None, first[:200])
    return Outcome(False, "error", None, f"pytest exit code {returncode}")


def parse_smoke(stdout: str, returncode: int) -> Outcome:
    """The fault-free smoke run: ``caught`` means the bug already breaks it."""
    if returncode == 0 and re.search(r"^verdict\s+PASS", stdout, re.MULTILINE):
        return Outcome(False, "pass")
    return Outcome(True, "fail", None, _last_error(stdout) or f"exit code {returncode}")


# ---------------------------------------------------------------------------------------------
# running


def _git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=check)


def dirty(paths: Sequence[str] = GUARDED) -> list[str]:
    """Uncommitted changes (tracked or not) under ``paths``, as ``git status`` lines."""
    return _git("status", "--porcelain", "--", *paths).stdout.splitlines()


def _run(command: Sequence[str], timeout: float) -> tuple[str, str, int | None, float]:
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout if isinstance(expired.stdout, str) else ""
        return out, "", None, time.monotonic() - start
    return done.stdout, done.stderr, done.returncode, time.monotonic() - start


def run_bug(bug: Bug, *, sweep: bool, tests: bool, sweep_timeout: float,
            tests_timeout: float) -> dict[str, Any]:
    """Apply ``bug``, run the checks asked for, revert it (always); the record to keep."""
    _git("apply", str(bug.path))
    record: dict[str, Any] = {}
    try:
        out, err, code, seconds = _run([sys.executable, "-m", "btob", *SMOKE_ARGS], 120)
        record["smoke"] = attrs.asdict(attrs.evolve(
            parse_smoke(out, -1 if code is None else code), seconds=round(seconds, 1)))
        if sweep:
            out, err, code, seconds = _run([sys.executable, "-m", "btob", *SWEEP_ARGS],
                                           sweep_timeout)
            verdict = (Outcome(False, "timeout", None, f"after {sweep_timeout:g} s")
                       if code is None else parse_sweep(out, err, code))
            record["sweep"] = attrs.asdict(attrs.evolve(verdict, seconds=round(seconds, 1)))
        if tests:
            out, err, code, seconds = _run([sys.executable, "-m", "pytest", *TESTS_ARGS],
                                           tests_timeout)
            verdict = (Outcome(False, "timeout", None, f"after {tests_timeout:g} s")
                       if code is None else parse_tests(out, code))
            record["tests"] = attrs.asdict(attrs.evolve(verdict, seconds=round(seconds, 1)))
    finally:
        _git("apply", "-R", str(bug.path))
    return record


# ---------------------------------------------------------------------------------------------
# the report


def _cell(outcome: Mapping[str, Any] | None, *, sweep: bool) -> str:
    if outcome is None:
        return "not run"
    if not outcome["caught"]:
        if outcome["kind"] == "pass":
            runs = outcome.get("runs")
            return f"**no** ({runs} runs pass)" if sweep and runs else "**no**"
        return f"no verdict ({outcome['kind']}: {outcome['detail']})"
    if sweep:
        runs = outcome.get("runs")
        at = f" after {runs} runs" if runs is not None else ""
        detail = f": `{outcome['detail']}`" if outcome["kind"] == "crash" else ""
        return f"yes, {outcome['kind']}{at}{detail}"
    return f"yes: `{outcome['detail']}`" if outcome["detail"] else "yes"


def render_report(bugs: Sequence[Bug], records: Mapping[str, Mapping[str, Any]], *,
                  header: Mapping[str, str], judgements: str = "") -> str:
    """The Markdown report: how it was run, a row per bug, the totals, the judgements."""
    lines = [
        "# Planted single-rule bugs: what the adversary sweep and the tests catch (issue 13)",
        "",
        f"Last run {header['date']} at commit {header['commit']}, load average "
        f"{header['load']} (2-core machine); that run ({header.get('ran', 'all bugs')}) took "
        f"{header['minutes']} min; earlier verdicts of the other bugs are kept. "
        "Re-run with `python -m btob.bench.planted [--tests]` (see its docstring).",
        "",
        "Sweep per bug (192 runs, stops at the first failure):",
        "",
        "```",
        "btob " + " ".join(SWEEP_ARGS),
        "```",
        "",
        "Tests per bug (`--tests`): `pytest " + " ".join(TESTS_ARGS) + "`. Smoke: "
        "`btob " + " ".join(SMOKE_ARGS) + "` (fault-free; a bug should not break it).",
        "",
        "| bug | rule it breaks | smoke | caught by the sweep | caught by the tests |",
        "|---|---|---|---|---|",
    ]
    swept = sweep_caught = any_caught = tested = 0
    for bug in bugs:
        record = records.get(bug.name, {})
        smoke = record.get("smoke")
        smoke_cell = "not run" if smoke is None else ("breaks" if smoke["caught"] else "passes")
        sweep, tests = record.get("sweep"), record.get("tests")
        lines.append(f"| `{bug.name}`: {bug.summary} | {bug.rule} | {smoke_cell} "
                     f"| {_cell(sweep, sweep=True)} | {_cell(tests, sweep=False)} |")
        if sweep is not None:
            swept += 1
            sweep_caught += bool(sweep["caught"])
        tested += tests is not None
        any_caught += bool((sweep or {}).get("caught") or (tests or {}).get("caught"))
    total = len(bugs)
    lines += [
        "",
        "## Totals",
        "",
        f"- sweep alone: {sweep_caught} of {swept} swept ({total} bugs)",
        f"- sweep + tests: {any_caught} of {total} (tests run for {tested})",
        "",
    ]
    text = "\n".join(lines)
    if judgements:
        text += "\n" + judgements.rstrip() + "\n"
    return text


def _judgements(path: Path) -> str:
    if not path.exists():
        return ""
    text = path.read_text()
    at = text.find(JUDGEMENTS)
    return "" if at < 0 else text[at:]


def _header(minutes: float, ran: str) -> dict[str, str]:
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD").stdout.strip(),
        "load": " ".join(f"{x:.2f}" for x in load),
        "minutes": f"{minutes:.1f}",
        "ran": ran,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the planted bugs (see the module docstring); 0 unless the tree was dirty."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.planted",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="", metavar="NN,...",
                        help="comma-separated patch names or number prefixes (default all)")
    parser.add_argument("--tests", action="store_true", help="also run the unit-test selection")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep (keep its "
                        "earlier verdict)")
    parser.add_argument("--sweep-timeout", type=float, default=1200.0, metavar="S")
    parser.add_argument("--tests-timeout", type=float, default=900.0, metavar="S")
    parser.add_argument("--list", action="store_true", help="list the patches and exit")
    args = parser.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    bugs = list_patches(PLANTED, only)
    if args.list:
        for bug in bugs:
            print(f"{bug.name}: {bug.summary}\n    rule: {bug.rule}")
        return 0
    changes = dirty()
    if changes:
        print("refusing to run: uncommitted changes under btob/, crypto/ or faults/:",
              *changes, sep="\n  ", file=sys.stderr)
        return 2
    records: dict[str, dict[str, Any]] = (json.loads(STATE.read_text())
                                          if STATE.exists() else {})
    start = time.monotonic()
    for bug in bugs:
        print(f"{bug.name} ...", end=" ", flush=True)
        record = run_bug(bug, sweep=not args.no_sweep, tests=args.tests,
                         sweep_timeout=args.sweep_timeout, tests_timeout=args.tests_timeout)
        records[bug.name] = {**records.get(bug.name, {}), **record}
        RESULTS.mkdir(parents=True, exist_ok=True)
        STATE.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
        print(", ".join(f"{k}: {'caught' if v['caught'] else 'missed'} ({v['kind']}"
                        f"{'' if v.get('runs') is None else ', ' + str(v['runs']) + ' runs'}, "
                        f"{v['seconds']} s)" for k, v in record.items()), flush=True)
    all_bugs = list_patches(PLANTED)
    what = "sweep" if args.no_sweep is False else ""
    what += (" and tests" if what else "tests") if args.tests else ""
    ran = f"{what or 'smoke'} of " + (", ".join(b.name[:2] for b in bugs) if only else "all bugs")
    header = _header((time.monotonic() - start) / 60, ran)
    REPORT.write_text(render_report(all_bugs, records, header=header,
                                    judgements=_judgements(REPORT)))
    print(f"report: {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
