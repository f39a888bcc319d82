"""``btob demo``: four members over TCP, one a Byzantine sequencer."""

from __future__ import annotations

from pathlib import Path


def test_demo_on_tcp_passes_and_its_logs_check(tmp_path: Path) -> None:
    from btob.cli.main import main

    assert main(["demo", "--messages", "300", "--log-dir", str(tmp_path / "d")]) == 0
    assert main(["check", str(tmp_path / "d")]) == 0
