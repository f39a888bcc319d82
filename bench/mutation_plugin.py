"""A pytest plugin that ``bench/mutation.py`` loads into the mutation-testing runs (never in CI).

btob re-homes the classes it exports (``btob._util.fixup_module_metadata`` sets their and
their methods' ``__module__`` to ``"btob"``), and that includes the copies of each method that
the mutation tool adds to a mutated class. The tool names the function a test reached after
that ``__module__``, so it would file the tests of ``Quorums.for_cluster`` under
``btob.Quorums...`` and then run no test at all against that method's mutants. Once the test
modules are collected (and so every module under test imported), this plugin gives those
copies back the name of the module their code is in; what the tests themselves see of btob's
public names is unchanged.
"""

from __future__ import annotations

import sys
from types import FunctionType, ModuleType

import pytest

__all__ = ["MUTATED_PREFIX", "restore_defining_modules"]

MUTATED_PREFIX = "x\u01c1"
"""How the mutation tool's name for a method's copies starts ("x", then its class separator)."""


def _module_by_file() -> dict[str, str]:
    files: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(module, ModuleType) and isinstance(path, str):
            files[path] = name
    return files


def restore_defining_modules(package: str = "btob") -> int:
    """Set ``__module__`` of every mutated method copy in ``package``'s loaded modules back to
    the module whose file holds its code; returns how many were changed."""
    files = _module_by_file()
    changed = 0
    for name, module in list(sys.modules.items()):
        if not (name == package or name.startswith(package + ".")) or module is None:
            continue
        for value in list(vars(module).values()):
            if not isinstance(value, type):
                continue
            for attribute, member in list(vars(value).items()):
                if not attribute.startswith(MUTATED_PREFIX):
                    continue
                function = member.__func__ if isinstance(member, classmethod | staticmethod) \
                    else member
                if not isinstance(function, FunctionType):
                    continue
                home = files.get(function.__code__.co_filename)
                if home is not None and function.__module__ != home:
                    function.__module__ = home
                    changed += 1
    return changed


def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection every module under test is imported: undo the re-homing there."""
    restore_defining_modules()
