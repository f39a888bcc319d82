"""fixup_module_metadata: exported names say they live in their public package."""

from __future__ import annotations

from typing import Any

import btob
from btob._util import PUBLIC_PACKAGES, fixup_module_metadata


def _defined_in(module: str) -> dict[str, Any]:
    """A namespace as a public package sees it: a class and a function of ``module``."""

    def helper() -> int:
        return 1

    class Thing:
        LIMIT = 3

        def method(self) -> int:
            return 2

        @classmethod
        def make(cls) -> Thing:
            return cls()

        @staticmethod
        def static() -> int:
            return 4

        @property
        def value(self) -> int:
            return 5

        class Inner:
            pass

    for obj in (helper, Thing, Thing.method, Thing.__dict__["make"].__func__,
                Thing.__dict__["static"].__func__, Thing.__dict__["value"].fget, Thing.Inner):
        obj.__module__ = module
    return {"helper": helper, "Thing": Thing, "CONSTANT": 7, "__all__": ["helper", "Thing",
                                                                         "CONSTANT"]}


def test_names_of_a_private_module_move_to_the_package_with_their_qualnames() -> None:
    namespace = _defined_in("btob._private")
    fixup_module_metadata("btob.faults", namespace)
    thing = namespace["Thing"]
    assert (thing.__module__, thing.__qualname__) == ("btob.faults", "Thing")
    assert (namespace["helper"].__module__, namespace["helper"].__qualname__) == (
        "btob.faults", "helper")
    members = {
        "method": thing.method,
        "make": thing.__dict__["make"].__func__,
        "static": thing.__dict__["static"].__func__,
        "value": thing.__dict__["value"].fget,
        "Inner": thing.Inner,
    }
    for name, obj in members.items():
        assert (obj.__module__, obj.__qualname__) == ("btob.faults", f"Thing.{name}"), name
    assert thing().method() == 2 and thing.make().value == 5  # still works
    assert namespace["CONSTANT"] == 7


def test_names_of_foreign_modules_keep_their_metadata() -> None:
    namespace = _defined_in("collections")
    fixup_module_metadata("btob", namespace)
    assert namespace["Thing"].__module__ == "collections"
    assert namespace["helper"].__module__ == "collections"


def test_only_the_root_package_takes_names_another_public_package_claimed() -> None:
    claimed = _defined_in("btob.crypto")
    fixup_module_metadata("btob.faults", claimed)
    assert claimed["Thing"].__module__ == "btob.crypto"  # a sibling does not take it over
    fixup_module_metadata("btob", claimed)
    assert claimed["Thing"].__module__ == "btob"  # the root does
    assert claimed["Thing"].method.__module__ == "btob"


def test_a_name_already_in_its_package_is_left_alone() -> None:
    namespace = _defined_in("btob.faults")
    thing = namespace["Thing"]
    qualname = thing.__qualname__
    fixup_module_metadata("btob.faults", namespace)
    assert thing.__qualname__ == qualname  # not rewritten


def test_only_the_names_asked_for_are_fixed() -> None:
    namespace = _defined_in("btob._private")
    fixup_module_metadata("btob", namespace, names=["helper"])
    assert namespace["helper"].__module__ == "btob"
    assert namespace["Thing"].__module__ == "btob._private"


def test_an_export_under_another_name_keeps_its_own_name() -> None:
    namespace = _defined_in("btob._private")
    namespace["Alias"] = namespace.pop("Thing")
    namespace["__all__"] = ["Alias"]
    fixup_module_metadata("btob", namespace)
    assert namespace["Alias"].__module__ == "btob"
    assert namespace["Alias"].__qualname__.endswith("Thing")  # an alias is not renamed


def test_a_class_reachable_from_itself_is_fixed_once() -> None:
    namespace = _defined_in("btob._private")
    namespace["Thing"].Self = namespace["Thing"]
    fixup_module_metadata("btob", namespace)  # terminates
    assert namespace["Thing"].__qualname__ == "Thing"


def test_the_public_packages_are_what_users_import_from() -> None:
    assert {"btob", "btob.crypto", "btob.faults", "btob.testing"} == PUBLIC_PACKAGES
    assert btob.ConfigError.__module__ == "btob"
    assert btob.crypto.Signer.__module__ == "btob.crypto"
