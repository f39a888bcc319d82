"""The public surface: every exported name exists and carries a docstring."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize("package", ["btob", "btob.crypto", "btob.faults"])
def test_every_public_name_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not inspect.getdoc(obj):
                undocumented.append(name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not callable(member):
                        continue
                    if not inspect.getdoc(member):
                        undocumented.append(f"{name}.{attr}")
    assert undocumented == []


@pytest.mark.parametrize("package", ["btob", "btob.crypto", "btob.faults"])
def test_all_is_complete_and_sorted_out(package: str) -> None:
    module = importlib.import_module(package)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name


def test_ci_runs_the_readme_test_command() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:3]]
    assert "btob demo" in blocks[0]
    assert "pytest" in blocks[1]
    assert blocks[1] in (root / ".ci" / "run").read_text()
