"""The public surface: every exported name exists and carries a docstring."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

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


PUBLIC_PACKAGES = ["btob", "btob.crypto", "btob.faults", "btob.testing"]


def _exported_classes_and_functions(package: str) -> list[tuple[str, Any]]:
    module = importlib.import_module(package)
    return [(name, getattr(module, name)) for name in module.__all__
            if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))]


def test_repr_names_the_public_package() -> None:
    import btob
    import btob.crypto

    assert repr(btob.ConfigError) == "<class 'btob.ConfigError'>"
    assert repr(btob.Member) == "<class 'btob.Member'>"
    assert repr(btob.crypto.KeyFileError) == "<class 'btob.crypto.KeyFileError'>"
    assert btob.check.__module__ == "btob"
    assert btob.Member.submit.__module__ == "btob"
    assert btob.Member.submit.__qualname__ == "Member.submit"


def test_a_traceback_names_the_public_package() -> None:
    import subprocess
    import sys
    import traceback

    import btob

    try:
        raise btob.ConfigError("no such setting")
    except btob.ConfigError as exc:
        text = "".join(traceback.format_exception(exc))
    assert text.splitlines()[-1] == "btob.ConfigError: no such setting"
    proc = subprocess.run([sys.executable, "-c", "import btob; raise btob.ConfigError('x')"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stderr.splitlines()[-1] == "btob.ConfigError: x"
    assert "_errors" not in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_export_reports_a_public_module(package: str) -> None:
    import sys

    private = []
    for name, obj in _exported_classes_and_functions(package):
        home = obj.__module__
        if home not in PUBLIC_PACKAGES:
            private.append(f"{name}: {home}")
            continue
        # What pickling and inspect rely on: the reported place really holds the object.
        assert getattr(sys.modules[home], obj.__qualname__) is obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and member.__module__.startswith("btob."):
                    assert member.__module__ in PUBLIC_PACKAGES, f"{name}.{attr}"
    assert private == []


def test_a_name_exported_twice_keeps_btob_as_its_module() -> None:
    import btob
    import btob.crypto

    assert btob.crypto.BtobError is btob.BtobError
    assert btob.BtobError.__module__ == "btob"
    assert btob.crypto.CryptoError.__module__ == "btob.crypto"
    assert issubclass(btob.crypto.KeyFileError, btob.BtobError)


def test_renamed_classes_still_pickle_and_work_as_attrs_classes() -> None:
    import pickle

    import attrs

    import btob

    address = btob.MemberAddress("127.0.0.1", 7000)
    assert pickle.loads(pickle.dumps(address)) == address
    assert repr(address) == "MemberAddress(host='127.0.0.1', port=7000)"
    assert attrs.evolve(address, port=7001).port == 7001
    assert [f.name for f in attrs.fields(btob.MemberAddress)] == ["host", "port"]
    error = pickle.loads(pickle.dumps(btob.ConfigError("bad port")))
    assert type(error) is btob.ConfigError and str(error) == "bad port"
    assert pickle.loads(pickle.dumps(btob.check)) is btob.check
