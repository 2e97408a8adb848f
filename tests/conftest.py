"""Fixtures shared across the test tree."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeHidrawTree


@pytest.fixture
def hidraw_tree(tmp_path: Path) -> FakeHidrawTree:
    (tmp_path / "dev").mkdir()
    (tmp_path / "sys").mkdir()
    return FakeHidrawTree(sys_root=tmp_path / "sys", dev_root=tmp_path / "dev")
