"""Fixtures shared by the test packages."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})


def _file_system_of(path: Path) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    best, kind = "", ""
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
                if inside and len(point) > len(best):
                    best, kind = point, fields[2]
    except OSError:  # not Linux: assume a disk
        return ""
    return kind


@pytest.fixture
def disk_path(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory on a disk-backed file system, where an fsync costs what it costs
    in production: ``tmp_path``, unless that is in memory (tmpfs) - then a directory under
    the repository's ``.pytest-disk/``, removed afterwards."""
    if _file_system_of(tmp_path) not in _MEMORY_FILE_SYSTEMS:
        yield tmp_path
        return
    root = Path(__file__).resolve().parents[1] / ".pytest-disk"
    path = root / uuid.uuid4().hex
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if root.exists() and not os.listdir(root):
            root.rmdir()
