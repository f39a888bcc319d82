"""Every module has a test file at the mirrored path, and every test file mirrors a module or
tests a behaviour that crosses modules (a short, explicit list).

``btob/core/ordering.py`` is tested in ``tests/core/test_ordering.py``; a private module drops
its underscore (``crypto/_signer.py``: ``tests/crypto/test_signer.py``); ``btob/_errors.py``
is tested in ``tests/test_errors.py``. ``__init__.py`` and ``__main__.py`` need no file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# Repository folders and the folder under tests/ that mirrors each.
FOLDERS = {"btob": "", "crypto": "crypto", "faults": "faults", "bench": "bench"}
EXEMPT = {"__init__.py", "__main__.py"}
CROSS_CUTTING = {
    "test_layout.py",
    "test_examples.py",  # the examples/ programs, run as a user runs them
    "test_mirror.py",
    "test_public_api.py",
    "cli/test_help.py",
    "cli/test_operator_errors.py",
    "cli/test_processes.py",
    "core/test_bounds.py",
    "core/test_scripts.py",
    "runtime/test_group_commit.py",
    "runtime/test_compaction.py",
    "runtime/test_node_faults.py",
    "runtime/test_restore.py",
    "runtime/test_retention.py",
}
"""Test files of behaviours that cross modules, relative to tests/."""


def mirrored(module: Path) -> str:
    """The test file (relative to tests/) of ``module`` (relative to the repository)."""
    folder, *inner, name = module.parts
    return "/".join(p for p in (FOLDERS[folder], *inner, "test_" + name.lstrip("_")) if p)


def modules(root: Path = ROOT) -> list[Path]:
    """Every module file of the four packages, relative to ``root``, but the exempt ones."""
    return sorted(path.relative_to(root) for folder in FOLDERS
                  for path in (root / folder).rglob("*.py") if path.name not in EXEMPT)


def defined_tests(path: Path) -> list[str]:
    """Names of the test functions defined at the top of ``path`` or in its Test classes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.stmt] = list(tree.body)
    nodes += [item for node in tree.body if isinstance(node, ast.ClassDef)
              and node.name.startswith("Test") for item in node.body]
    return [node.name for node in nodes
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test")]


def untested(module_files: Iterable[Path], tests: Path = TESTS) -> list[str]:
    """Modules whose mirrored test file is missing or holds no test function."""
    missing = []
    for module in module_files:
        target = tests / mirrored(module)
        if not target.is_file() or not defined_tests(target):
            missing.append(f"{module}: no tests in tests/{mirrored(module)}")
    return missing


def strays(module_files: Iterable[Path], tests: Path = TESTS) -> list[str]:
    """Test files that mirror no module and are not on the cross-cutting list."""
    expected = {mirrored(m) for m in module_files} | CROSS_CUTTING
    found = {p.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")}
    return sorted(found - expected)


def test_every_module_has_its_mirrored_test_file_with_tests() -> None:
    assert untested(modules()) == []


def test_every_test_file_mirrors_a_module_or_is_listed_as_cross_cutting() -> None:
    assert strays(modules()) == []


def test_the_cross_cutting_list_names_only_files_that_exist() -> None:
    assert sorted(f for f in CROSS_CUTTING if not (TESTS / f).is_file()) == []


def test_every_test_directory_is_a_package() -> None:
    directories = {p.parent for p in TESTS.rglob("test_*.py")}
    assert sorted(str(d.relative_to(ROOT)) for d in directories
                  if not (d / "__init__.py").is_file()) == []


def test_the_mirror_maps_each_kind_of_module() -> None:
    cases = {
        "btob/core/ordering.py": "core/test_ordering.py",
        "btob/runtime/node.py": "runtime/test_node.py",
        "btob/cli/main.py": "cli/test_main.py",
        "btob/_errors.py": "test_errors.py",
        "btob/_util.py": "test_util.py",
        "crypto/_signer.py": "crypto/test_signer.py",
        "faults/_driver.py": "faults/test_driver.py",
        "bench/harness.py": "bench/test_harness.py",
    }
    assert {module: mirrored(Path(module)) for module in cases} == cases


def test_a_module_added_without_tests_is_caught(tmp_path: Path) -> None:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "btob" / "__init__.py").write_text("")
    (tmp_path / "btob" / "core").mkdir()
    (tmp_path / "btob" / "core" / "fresh.py").write_text("X = 1\n")
    (tmp_path / "crypto" / "_hidden.py").write_text("Y = 2\n")
    tests = tmp_path / "tests"
    (tests / "core").mkdir(parents=True)
    found = modules(tmp_path)
    assert found == [Path("btob/core/fresh.py"), Path("crypto/_hidden.py")]
    assert len(untested(found, tests)) == 2  # no test files at all
    (tests / "core" / "test_fresh.py").write_text("def helper() -> None:\n    pass\n")
    assert untested(found, tests) == [
        "btob/core/fresh.py: no tests in tests/core/test_fresh.py",
        "crypto/_hidden.py: no tests in tests/crypto/test_hidden.py",
    ]  # a file without a test function does not count
    (tests / "core" / "test_fresh.py").write_text("def test_it() -> None:\n    assert True\n")
    assert untested(found, tests) == ["crypto/_hidden.py: no tests in tests/crypto/test_hidden.py"]
    (tests / "core" / "test_stale.py").write_text("def test_it() -> None:\n    assert True\n")
    assert strays(found, tests) == ["core/test_stale.py"]
