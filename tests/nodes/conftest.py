"""Fixtures for tests that run real rclpy nodes in separate processes.

Every test gets its own ROS_DOMAIN_ID with discovery on localhost only, a Graph whose
processes are all stopped (by PID) at teardown, and a Probe: an in-test node to publish,
collect and wait on events (never on bare sleeps).
"""
from __future__ import annotations

import os

import pytest

from iil_robot.cli.graph import Graph, loopback_env

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

@pytest.fixture
def graph(domain_id, tmp_path):
    g = Graph(loopback_env(domain_id), tmp_path / "logs")
    yield g
    g.stop()


@pytest.fixture
def probe(domain_id):
    from tests.nodes.ros_probe import Probe

    p = Probe(domain_id)
    yield p
    p.close()


def assert_stops_with(graph, spec, message: str, startup: float = 30.0) -> None:
    """The node exits with code 2 and a [FATAL] line naming the problem."""
    process = graph.start(spec)
    assert process.popen.wait(timeout=startup) == 2
    log = process.log_path.read_text()
    assert "[FATAL]" in log and message in log, log[-2000:]
