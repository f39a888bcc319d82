"""Helpers for btob's public packages. This module imports nothing of btob, so every layer
(``btob.crypto`` included) can use it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PUBLIC_PACKAGES", "fixup_module_metadata"]

PUBLIC_PACKAGES = frozenset({"btob", "btob.crypto", "btob.faults", "btob.testing"})
"""The modules users import names from; every other module of btob is private."""

_ROOT = "btob"


def _claims(package: str, module: object) -> bool:
    """Whether ``package`` should become the home of an object defined in ``module``.

    Anything from a private module goes to the first public package that exports it; the root
    package ``btob`` also takes over names a sub-package claimed first (``btob.crypto`` is
    imported while ``btob`` is, so it exports ``BtobError`` before ``btob`` does).
    """
    if not isinstance(module, str) or module in (_ROOT, package):
        return False
    if module.startswith(_ROOT + ".") and module not in PUBLIC_PACKAGES:
        return True
    return package == _ROOT and module in PUBLIC_PACKAGES


def fixup_module_metadata(package: str, namespace: Mapping[str, Any],
                          names: Iterable[str] | None = None) -> None:
    """Make the classes and functions ``package`` exports say they live in ``package``.

    Sets ``__module__`` (and ``__name__``/``__qualname__``, recursing into class attributes)
    of every class and function in ``names`` (default: ``namespace["__all__"]``) that was
    defined in a private module, as trio does, so reprs and tracebacks show
    ``btob.ConfigError`` instead of ``btob._errors.ConfigError``. Pickling keeps working
    because the public package holds every such name.
    """
    seen: set[int] = set()

    def fix(qualname: str, name: str, obj: Any) -> None:
        if isinstance(obj, (classmethod, staticmethod)):
            fix(qualname, name, obj.__func__)
            return
        if isinstance(obj, property):
            for accessor in (obj.fget, obj.fset, obj.fdel):
                if accessor is not None:
                    fix(qualname, name, accessor)
            return
        if not (isinstance(obj, type) or (callable(obj) and hasattr(obj, "__code__"))):
            return  # constants, descriptors and foreign objects keep their metadata
        if id(obj) in seen:  # a class reachable from itself (generics, aliases)
            return
        seen.add(id(obj))
        if not _claims(package, getattr(obj, "__module__", None)):
            return
        obj.__module__ = package
        # A nested helper (e.g. one attrs generates inside a function) keeps its own name.
        if getattr(obj, "__name__", None) == name:
            obj.__qualname__ = qualname
        if isinstance(obj, type):
            for attribute, value in list(vars(obj).items()):
                fix(f"{qualname}.{attribute}", attribute, value)

    for name in namespace["__all__"] if names is None else names:
        fix(name, name, namespace[name])
