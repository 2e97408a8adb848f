"""Fixtures shared across the test tree."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests import domains
from tests.fakes import FakeHidrawTree


@pytest.fixture
def domain_id() -> Iterator[int]:
    """A ROS domain of this test's own (``tests/domains.py``), released when it ends."""
    claim = domains.claim()
    yield claim.first
    claim.release()


@pytest.fixture
def domain_block() -> Iterator[range]:
    """Three consecutive ROS domains of this test's own (a benchmark that runs graphs side by side)."""
    claim = domains.claim(3)
    yield claim.ids
    claim.release()


@pytest.fixture
def hidraw_tree(tmp_path: Path) -> FakeHidrawTree:
    (tmp_path / "dev").mkdir()
    (tmp_path / "sys").mkdir()
    return FakeHidrawTree(sys_root=tmp_path / "sys", dev_root=tmp_path / "dev")


# Property-based tests (hypothesis): a bounded example count, so the whole property suite stays well under a minute
# in CI; HYPOTHESIS_PROFILE=thorough runs many more examples by hand.
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
