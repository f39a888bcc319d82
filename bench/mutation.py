"""Mutation testing of the sans-IO core: which deliberate bugs in a module do its tests miss?

Slow (seconds per mutant), so it is no part of CI; run it by hand after changing a safety rule
or its tests::

    pip install -e '.[test,mutation]'
    python -m btob.bench.mutation quorum certificates     # modules from MODULES, in order
    python -m btob.bench.mutation --list                  # the modules and their tests

For each module the tool (mutmut) makes small changes ("mutants") to one module of
``btob/core`` and runs, against each, those tests of the module's selection (``MODULES``) that
reach the changed function, in ONE worker process, so the machine stays usable for others. A
mutant is *killed* when a test fails, *survives* when all pass. The report goes to
``bench/results/mutation/<module>.md``: the counts, the score (detected / all), the date, the
machine's load, the tool's version, a history of earlier runs and every survivor as a diff.
The report's ``## Judgements`` section is written by hand (why each survivor is harmless, or
which test now kills it) and is kept when the report is rewritten.

The tool works in a copy: ``bench-out/mutation/<module>/`` gets ``btob/``, ``tests/`` and a
``pyproject.toml`` with a ``[tool.mutmut]`` section for that module, and the tool puts its
mutated tree into ``mutants/`` under it. The work tree itself is never changed. Imports of
``btob.crypto``, ``btob.faults`` and ``btob.bench`` resolve through the editable install
(package-dir mapping) to the work tree, which is right: only ``btob/core`` is mutated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

import attrs

__all__ = [
    "DETECTED",
    "MODULES",
    "Target",
    "Tally",
    "main",
    "mutmut_section",
    "parse_results",
    "render_report",
    "tally",
]

ROOT = Path(__file__).resolve().parent.parent
TOOL = "mutmut"
RESULTS = ROOT / "bench" / "results" / "mutation"
WORK = ROOT / "bench-out" / "mutation"
JUDGEMENTS = "## Judgements"
HISTORY = "## History"
HISTORY_HEADER = ("| date | tool | killed | survived | timeout | no tests | total | score "
                  "| tests | minutes | load (1 min) |")


@attrs.frozen
class Target:
    """One module to mutate and the tests that exercise it (a few seconds a mutant)."""

    path: str
    tests: tuple[str, ...]


# Smallest and most important first. Each selection holds the module's own tests plus the
# ones that drive it through its callers; the tool runs, per mutant, only those of them that
# reach the mutated function. Ordering hands commits, views and exclusions to its proposer
# policy, which only the moving and granting variants act on: their tests are in its
# selection. tests/core/test_viewchange.py is left out of the selections: it takes most of a
# minute, which per mutant would be too slow.
MODULES: dict[str, Target] = {
    "quorum": Target("btob/core/quorum.py",
                     ("tests/core/test_quorum.py", "tests/core/test_certificates.py")),
    "certificates": Target("btob/core/certificates.py",
                           ("tests/core/test_certificates.py", "tests/core/test_checkpoint.py")),
    "checkpoint": Target("btob/core/checkpoint.py",
                         ("tests/core/test_checkpoint.py", "tests/core/test_catchup.py")),
    "ordering": Target("btob/core/ordering.py",
                       ("tests/core/test_ordering.py", "tests/core/test_scripts.py",
                        "tests/core/test_catchup.py", "tests/core/test_recovery.py",
                        "tests/core/test_proposers.py")),
    "viewchange": Target("btob/core/viewchange.py",
                         ("tests/core/test_viewchange.py", "tests/core/test_scripts.py",
                          "tests/core/test_bounds.py")),
    "clients": Target("btob/core/clients.py",
                      ("tests/core/test_clients.py", "tests/core/test_clientwire.py")),
    "clientwire": Target("btob/core/clientwire.py",
                         ("tests/core/test_clientwire.py", "tests/core/test_clients.py")),
}

# Statuses the tool reports; a mutant counts as detected when its tests failed, ran out of
# time (an endless loop is a bug found) or crashed the interpreter.
DETECTED = frozenset({"killed", "timeout", "segfault", "caught by type check"})
_RESULT_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>[a-z][a-z ]*)$")


@attrs.frozen
class Tally:
    """How many mutants ended in each status."""

    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        """Every mutant the tool made of the module."""
        return sum(self.counts.values())

    @property
    def detected(self) -> int:
        """Mutants that some test noticed (see ``DETECTED``)."""
        return sum(n for status, n in self.counts.items() if status in DETECTED)

    @property
    def score(self) -> float:
        """Detected / all, in percent (100 for a module without mutants)."""
        return 100.0 * self.detected / self.total if self.total else 100.0

    def __getitem__(self, status: str) -> int:
        return self.counts.get(status, 0)


def parse_results(text: str) -> dict[str, str]:
    """``{mutant: status}`` from the output of ``mutmut results --all true``."""
    statuses: dict[str, str] = {}
    for line in text.splitlines():
        match = _RESULT_LINE.match(line)
        if match:
            statuses[match["name"]] = match["status"]
    return statuses


def tally(statuses: Mapping[str, str]) -> Tally:
    """Count the mutants per status."""
    return Tally(dict(Counter(statuses.values())))


def undetected(statuses: Mapping[str, str]) -> list[str]:
    """The mutants no test noticed (survived, no tests, suspicious ...), in the tool's order
    of functions and then by number."""
    def key(name: str) -> tuple[str, int]:
        stem, _, number = name.rpartition("_")
        return (stem, int(number) if number.isdigit() else 0)
    return sorted((m for m, s in statuses.items() if s not in DETECTED), key=key)


def mutmut_section(target: Target) -> str:
    """The ``[tool.mutmut]`` table that makes the tool mutate only ``target``'s module."""
    # The whole package is copied (tests import all of it) but only one module is mutated.
    # The plugin gives mutated methods of re-exported classes their real module back (see
    # bench/mutation_plugin.py); without it those mutants would run no test.
    # In the copy btob is found on sys.path, not through the editable install's finder, so
    # pytest rewrites its asserts as it does the tests' (the btob distribution registers a
    # pytest plugin): an assert's message there gains pytest's explanation after its own.
    # JSON strings and lists of them are valid TOML.
    settings: dict[str, object] = {
        "source_paths": ["btob"],
        "only_mutate": [target.path],
        "pytest_add_cli_args_test_selection": list(target.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", "btob.bench.mutation_plugin"],
        # The copy lies inside the git work tree: asking git what changed would be wrong.
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def prepare(root: Path, work: Path, target: Target) -> None:
    """Lay out a fresh copy of the package and the tests in ``work`` for ``target``."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("btob", "tests"):
        shutil.copytree(root / folder, work / folder, ignore=ignore)
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    if "[tool.mutmut]" in pyproject:
        raise SystemExit("pyproject.toml has a [tool.mutmut] table: this script writes its own")
    (work / "pyproject.toml").write_text(pyproject + mutmut_section(target), encoding="utf-8")


def _tool(work: Path, *args: str, log: Path | None = None) -> str:
    command = [sys.executable, "-m", TOOL, *args]
    if log is None:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        output = done.stdout
    else:
        with log.open("w", encoding="utf-8") as out:
            done = subprocess.run(command, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                  text=True, check=False)
        output = ""
    if done.returncode != 0:
        where = log if log is not None else done.stderr
        raise SystemExit(f"{TOOL} {args[0]} failed with exit code {done.returncode}: {where}")
    return output


def _history(previous: str) -> list[str]:
    rows: list[str] = []
    heading = re.search(f"^{re.escape(HISTORY)}$", previous, flags=re.MULTILINE)
    if heading is None:
        return rows
    for line in previous[heading.end():].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith(("| date", "| ---")):
            rows.append(line)
    return rows


def _judgements(previous: str) -> str:
    # The heading, not a mention of it in the text above: a line of its own.
    heading = re.search(f"^{re.escape(JUDGEMENTS)}$", previous, flags=re.MULTILINE)
    if heading:
        return previous[heading.start():].rstrip("\n") + "\n"
    return (JUDGEMENTS + "\n\nNone yet: for each survivor, add the test that kills it or say "
            "why it is equivalent.\n")


def render_report(*, target: Target, statuses: Mapping[str, str], diffs: Mapping[str, str],
                  version: str, date: str, minutes: float,
                  load: tuple[float, float, float], previous: str = "") -> str:
    """The Markdown report of one run; ``previous`` is the report it replaces, whose history
    rows and hand-written judgements are carried over."""
    counts = tally(statuses)
    score = f"{counts.score:.1f} % ({counts.detected}/{counts.total})"
    tests = " ".join(target.tests)
    others = {s: n for s, n in counts.counts.items()
              if s not in ("killed", "survived", "timeout", "no tests")}
    lines = [
        f"# Mutation testing of `{target.path}`",
        "",
        f"Written by `python -m btob.bench.mutation` ({TOOL} {version}); everything above "
        f"`{JUDGEMENTS}` is rewritten by each run.",
        "",
        "| | |",
        "| --- | --- |",
        f"| date | {date} |",
        f"| killed | {counts['killed']} |",
        f"| survived | {counts['survived']} |",
        f"| timeout | {counts['timeout']} |",
        f"| no tests | {counts['no tests']} |",
        *(f"| {status} | {n} |" for status, n in sorted(others.items())),
        f"| total | {counts.total} |",
        f"| score (detected / total) | {score} |",
        f"| tests | {tests} |",
        f"| wall time | {minutes:.1f} min, one worker process |",
        "| load average at the start (1, 5, 15 min) | "
        + ", ".join(f"{x:.2f}" for x in load) + f" on {os.cpu_count()} cores |",
        f"| machine | {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()} |",
        "",
        HISTORY,
        "",
        HISTORY_HEADER,
        "|" + " --- |" * (HISTORY_HEADER.count("|") - 1),
        *_history(previous),
        f"| {date} | {TOOL} {version} | {counts['killed']} | {counts['survived']} "
        f"| {counts['timeout']} | {counts['no tests']} | {counts.total} | {score} | {tests} "
        f"| {minutes:.1f} | {load[0]:.2f} |",
        "",
        "## Survivors",
        "",
    ]
    missed = undetected(statuses)
    if not missed:
        lines += ["None: every mutant was detected.", ""]
    for name in missed:
        lines += [f"### `{name}` ({statuses[name]})", "", "```diff",
                  diffs.get(name, "(no diff)").strip("\n"), "```", ""]
    return "\n".join(lines) + "\n" + _judgements(previous)


def run_module(name: str, target: Target, *, root: Path = ROOT, work_root: Path = WORK,
               results: Path = RESULTS) -> Tally:
    """Mutate one module, run its tests against each mutant, write its report."""
    version = metadata.version(TOOL)
    work = work_root / name
    load = os.getloadavg()
    date = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    started = time.monotonic()
    prepare(root, work, target)
    _tool(work, "run", "--max-children", "1", log=work / "run.log")
    statuses = parse_results(_tool(work, "results", "--all", "true"))
    if not statuses:
        raise SystemExit(f"{TOOL} reported no mutants of {target.path}: see {work / 'run.log'}")
    if "not checked" in statuses.values():
        raise SystemExit(f"{TOOL} left mutants of {target.path} unchecked: see {work}/run.log")
    diffs = {m: _tool(work, "show", m).split("\n", 1)[-1] for m in undetected(statuses)}
    minutes = (time.monotonic() - started) / 60
    report = results / f"{name}.md"
    previous = report.read_text(encoding="utf-8") if report.exists() else ""
    results.mkdir(parents=True, exist_ok=True)
    report.write_text(render_report(target=target, statuses=statuses, diffs=diffs,
                                    version=version, date=date, minutes=minutes, load=load,
                                    previous=previous), encoding="utf-8")
    return tally(statuses)


def _describe(modules: Iterable[str]) -> str:
    return "\n".join(f"{name}: {MODULES[name].path} <- {' '.join(MODULES[name].tests)}"
                     for name in modules)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: mutate the named modules one after the other."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.mutation",
                                     description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate, of: {', '.join(MODULES)}")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    args = parser.parse_args(argv)
    unknown = [name for name in args.modules if name not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose of {', '.join(MODULES)}")
    if args.list or not args.modules:
        print(_describe(MODULES))
        return 0
    try:
        metadata.version(TOOL)
    except metadata.PackageNotFoundError:
        print(f"{TOOL} is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    if not (ROOT / "tests").is_dir():
        print(f"no tests/ beside {ROOT / 'bench'}: run from an editable install of the "
              "repository", file=sys.stderr)
        return 2
    for name in args.modules:
        counts = run_module(name, MODULES[name])
        print(f"{MODULES[name].path}: {counts.detected}/{counts.total} detected "
              f"({counts.score:.1f} %), report in {RESULTS / (name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
