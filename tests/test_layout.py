"""The layers can be seen and are kept: who may import whom, a sans-IO core, one installed
top-level name."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Repository folders and the installed package each becomes.
FOLDERS = {"btob": "btob", "crypto": "btob.crypto", "faults": "btob.faults",
           "bench": "btob.bench"}
# The layers, bottom up, and what each may import of btob.
LAYERS: dict[str, set[str]] = {
    "btob._errors": set(),
    "btob._util": set(),
    "btob.crypto": {"btob._errors", "btob._util", "btob.crypto"},
    "btob.core": {"btob._errors", "btob.crypto", "btob.core"},
    "btob.faults": {"btob._errors", "btob._util", "btob.crypto", "btob.core", "btob.faults"},
    "btob.sim": {"btob._errors", "btob.crypto", "btob.core", "btob.faults", "btob.sim"},
    "btob.runtime": {"btob._errors", "btob.crypto", "btob.core", "btob.faults",
                     "btob.runtime"},
    "btob.apps": {"btob._errors", "btob.core", "btob.apps"},
    "btob.client": {"btob._errors", "btob.crypto", "btob.core", "btob.runtime", "btob.client"},
    "btob.testing": {"btob._errors", "btob._util", "btob.crypto", "btob.core", "btob.faults",
                     "btob.runtime", "btob.sim", "btob.testing"},
}
SANS_IO_FORBIDDEN = {"trio", "socket", "time", "random", "sqlite3", "threading", "asyncio",
                     "os", "select", "subprocess"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found.append((name.removesuffix(".__init__"), path))
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions included), absolute."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: a relative import (btob imports absolutely)"
            if node.module is not None:
                names.add(node.module)
    return names


def _layer(module: str) -> str | None:
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def test_the_top_level_folders_import_each_other_only_by_their_installed_names() -> None:
    wrong = [(name, imported) for name, path in _modules() for imported in _imports(path, name)
             if imported.split(".")[0] in {"crypto", "faults", "bench"}]
    assert wrong == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    violations = []
    for name, path in _modules():
        layer = _layer(name)
        if layer is None:
            continue  # cli, bench and the package root may use everything
        for imported in _imports(path, name):
            if imported.split(".")[0] != "btob":
                continue
            target = _layer(imported)
            allowed = LAYERS[layer]
            if imported == "btob" or (target is not None and target not in allowed) or (
                    target is None and imported != "btob"):
                violations.append(f"{name} imports {imported}")
    assert violations == []


def test_nothing_in_the_sans_io_core_does_io_reads_clocks_or_draws_random_numbers() -> None:
    offending = []
    for name, path in _modules():
        if _layer(name) != "btob.core":
            continue
        for imported in _imports(path, name):
            if imported.split(".")[0] in SANS_IO_FORBIDDEN:
                offending.append(f"{name} imports {imported}")
    assert offending == []


def test_the_checker_of_layers_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nfrom btob.runtime.node import Node\n")
    assert {"trio", "btob.runtime.node"} <= _imports(bad, "btob.core.bad")
    assert _layer("btob.runtime.node") not in LAYERS["btob.core"]


def test_a_wheel_installs_exactly_one_top_level_package(tmp_path: Path) -> None:
    """``pip install .`` must put only ``btob`` into site-packages (``crypto`` and ``bench``
    are other projects' names on PyPI)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("btob-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = archive.read(record).decode().splitlines()
        top_level = archive.read(record.replace("RECORD", "top_level.txt")).decode().split() \
            if record.replace("RECORD", "top_level.txt") in names else []
    roots = {row.split(",", 1)[0].split("/", 1)[0] for row in rows}
    assert {r for r in roots if not r.endswith(".dist-info")} == {"btob"}
    assert top_level in ([], ["btob"])
    for package in ("btob/crypto/_signer.py", "btob/faults/_driver.py", "btob/bench/harness.py",
                    "btob/core/member.py", "btob/py.typed"):
        assert any(row.startswith(package + ",") for row in rows), package
    # every module of the source tree is in the wheel (a package missing from pyproject's
    # list would install without it)
    shipped = {row.split(",", 1)[0] for row in rows}
    missing = [name for name, path in _modules()
               if (path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT / "btob")
                   else None) is not None and path.relative_to(ROOT).as_posix() not in shipped]
    assert missing == []


def test_the_demo_and_the_library_need_no_matplotlib() -> None:
    """matplotlib is the bench extra's: nothing ``btob demo`` or the library imports may
    pull it in (a fresh ``pip install btob`` has none)."""
    probe = ("import sys, btob, btob.testing, btob.cli.main, btob.cli.demo, btob.cli.node; "
             "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)


def test_the_command_line_works_outside_the_repository(tmp_path: Path) -> None:
    """Run from elsewhere, nothing may rely on the repository's top-level folders being
    importable as packages of their own (``bench.x`` instead of ``btob.bench.x``)."""
    for args in (["sim", "--messages", "20", "--quiet"],
                 ["bench", "sim", "--messages", "20", "--repeat", "1"]):
        subprocess.run([sys.executable, "-m", "btob", *args], cwd=tmp_path, check=True,
                       capture_output=True, timeout=300)
