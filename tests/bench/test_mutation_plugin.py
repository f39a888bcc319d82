"""The pytest plugin of mutation testing: it gives the tool's mutated copies of an exported
class's methods their defining module back, and leaves what the tests see alone."""

from __future__ import annotations

from btob.bench import mutation_plugin


def _exported() -> type:
    """A class such as btob re-homes, with the copies the tool adds to a mutated class (their
    names hold a non-ASCII separator, hence built here rather than written out)."""
    sep = "\u01c1"

    def copy(self: object) -> int:
        return 1

    def build(cls: type) -> int:
        return 2

    def method(self: object) -> int:
        return 3

    return type("Exported", (), {f"x{sep}Exported{sep}method__mutmut_orig": copy,
                                 f"x{sep}Exported{sep}build__mutmut_1": classmethod(build),
                                 "method": method})


Exported = _exported()


def test_the_plugin_gives_mutated_copies_their_module_back() -> None:
    here = __name__
    copies = [getattr(v, "__func__", v) for k, v in vars(Exported).items()
              if k.startswith(mutation_plugin.MUTATED_PREFIX)]
    assert len(copies) == 2
    for function in [*copies, Exported.method]:
        function.__module__ = "btob"  # as btob._util.fixup_module_metadata does
    assert mutation_plugin.restore_defining_modules(package=here) == 2
    assert all(function.__module__ == here for function in copies)
    assert Exported.method.__module__ == "btob"  # what the tests see stays as it was
    assert mutation_plugin.restore_defining_modules(package=here) == 0
