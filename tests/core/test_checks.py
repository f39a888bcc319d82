"""The table of checks names exactly the reasons the cores count a dropped input under."""

from __future__ import annotations

import ast
from pathlib import Path

import btob.core
from btob.core.checks import CHECKS

CORE = Path(btob.core.__file__).parent


def _counted_reasons() -> set[str]:
    """String literals the cores count a drop under: ``.drop("r")``, ``._refuse(x, "r", ...)``
    and ``_gate_dropped["r"]``."""
    reasons: set[str] = set()
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("drop", "_refuse"):
                reasons |= {a.value for a in node.args
                            if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and \
                    node.value.attr == "_gate_dropped" and isinstance(node.slice, ast.Constant):
                reasons.add(node.slice.value)
    return reasons


def test_every_counted_reason_is_a_named_check_and_every_check_is_counted() -> None:
    counted = _counted_reasons()
    assert len(counted) > 40  # the scan finds them
    assert counted == set(CHECKS), (counted - set(CHECKS), set(CHECKS) - counted)
    assert all(text and text[0].islower() for text in CHECKS.values())
