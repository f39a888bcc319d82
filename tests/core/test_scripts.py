"""Golden transcripts of the member state machine: each ``testdata/*.txt`` is one test.

A script lists commands with the output each must print (the format and the commands are
described at the top of ``scripts.py``). They pin what members observably do - which frames
each one sends to whom, what is delivered where, views, evidence, drop reasons - so a
refactoring of ``btob/core`` must leave every transcript unchanged.

To accept an intended change of behaviour, regenerate the expected outputs with

    BTOB_REWRITE_TESTDATA=1 pytest tests/core

then read the diff of ``testdata/`` as carefully as code: the transcripts are the spec.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .scripts import Interpreter, ScriptError, ScriptMismatch, parse_script, run_script

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))
REWRITE = os.environ.get("BTOB_REWRITE_TESTDATA", "") not in ("", "0")


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(path: Path) -> None:
    run_script(path, rewrite=REWRITE)


def test_every_story_is_there() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"bracha", "signed_echo", "equivocation", "ordering", "viewchange", "catchup",
            "ub", "uub", "moving"} <= names


# -- the runner itself ----------------------------------------------------------------------


def test_an_altered_expectation_is_reported_with_file_line_and_diff(tmp_path: Path) -> None:
    original = (TESTDATA / "bracha.txt").read_text()
    chunks = parse_script(original, "bracha.txt")
    lines = original.splitlines()
    # Alter one line of the third case's expected output.
    case = [c for c in chunks if not isinstance(c, str)][2]
    target = case.line + 1  # index (0-based) of the case's first output line
    assert lines[target] == case.expected[0]
    lines[target] = lines[target] + " (tampered)"
    altered = tmp_path / "altered.txt"
    altered.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScriptMismatch) as caught:
        run_script(altered)
    message = str(caught.value)
    assert f"altered.txt:{case.line}:" in message
    assert f"`{case.command}`" in message
    assert "-" + case.expected[0] + " (tampered)" in message
    assert "+" + case.expected[0] in message
    # The rewrite mode repairs the file to the original byte for byte.
    run_script(altered, rewrite=True)
    assert altered.read_text() == original


def test_an_unknown_command_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "unknown.txt"
    script.write_text("cluster n=4\n----\nn=4 f=1 q=3 f+1=2 2f+1=3 brb=bracha variant=bb\n\n"
                      "# comment\nfrobnicate 1\n----\n")
    with pytest.raises(ScriptError, match=r"unknown.txt:6: frobnicate 1: unknown command"):
        run_script(script)


def test_malformed_commands_are_errors() -> None:
    interpreter = Interpreter()
    with pytest.raises(ScriptError, match="no cluster yet"):
        interpreter.execute("step")
    interpreter.execute("cluster n=4")
    for bad in ("submit 9 x", "run loud=1", "drop 1-2", "send-as 1 -> 2 brb.send counter=0",
                "send-as 1 -> 2 ord.order view=0 slot=0 refs=3:0", "cluster n=4 colour=red",
                "tick 1 every=0"):
        with pytest.raises(ScriptError):
            interpreter.execute(bad)


def test_a_command_without_separator_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "broken.txt"
    script.write_text("cluster n=4\nstep\n")
    with pytest.raises(ScriptError, match=r"broken.txt:1: expected a line '----'"):
        run_script(script)


def test_transcripts_are_deterministic() -> None:
    path = TESTDATA / "equivocation.txt"
    assert run_script(path, rewrite=False) == run_script(path, rewrite=False)
