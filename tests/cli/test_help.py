"""Every flag of every command line of the project says what it is in ``--help``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator

import pytest

from btob.bench import MICRO_BENCHES

# The one action allowed to hide: ``btob bench`` passes everything after it to the harness.
HIDDEN = [("btob bench", "args")]


def _builders() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from btob.bench.harness import build_parser as harness_parser
    from btob.cli.main import build_parser as btob_parser

    builders = {"btob": btob_parser, "btob bench": harness_parser}
    for name, module in MICRO_BENCHES.items():  # a new micro-benchmark is covered too
        builders[f"btob bench {name}"] = importlib.import_module(
            f"btob.bench.{module}").build_parser
    return builders


BUILDERS = _builders()


def _walk(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser,
                                                             argparse.Action]]:
    """Every action of ``parser`` and of its subcommands, and each subcommand's own line."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield parser, action
        if isinstance(action, argparse._SubParsersAction):
            for line in action._choices_actions:  # the subcommand's line in `btob --help`
                yield parser, line
            for sub in action.choices.values():
                yield from _walk(sub)


def _name(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.dest


@pytest.mark.parametrize("command", BUILDERS)
def test_every_action_has_help(command: str) -> None:
    parser = BUILDERS[command]()
    missing = []
    for owner, action in _walk(parser):
        text = action.help
        if not text or not text.strip() or text == argparse.SUPPRESS:
            missing.append((owner.prog, _name(action)))
    assert missing == (HIDDEN if command == "btob" else [])


@pytest.mark.parametrize("command", BUILDERS)
def test_help_is_specific_and_renders(command: str) -> None:
    parser = BUILDERS[command]()
    for owner, action in _walk(parser):
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help is not None
        # More than a restatement of the flag's name.
        words = action.help.replace("-", " ").replace("_", " ").split()
        flag = _name(action).lstrip("-").replace("-", " ").replace("_", " ").split()
        assert len(words) > len(flag) and len(action.help) >= 10, (owner.prog, _name(action))
    # Every %(default)s expands (a stray "%" would break --help), in every subcommand too.
    parsers = {id(owner): owner for owner, _ in _walk(parser)}
    for each in parsers.values():
        assert "%(" not in each.format_help()


def test_the_bench_passthrough_is_the_only_hidden_action() -> None:
    from btob.cli.main import build_parser

    hidden = [(owner.prog, _name(action)) for owner, action in _walk(build_parser())
              if action.help == argparse.SUPPRESS]
    assert hidden == HIDDEN
    bench = next(owner for owner, action in _walk(build_parser())
                 if owner.prog == "btob bench")
    (passthrough,) = [a for a in bench._actions if a.dest == "args"]
    assert passthrough.nargs == argparse.REMAINDER
