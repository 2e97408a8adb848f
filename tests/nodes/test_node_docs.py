"""docs/nodes.md lists exactly the parameters the nodes declare (regenerate with ``python -m tests.gen_node_docs``)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from iil_robot.cli.graph import loopback_env
from tests import gen_node_docs

ROOT = Path(__file__).resolve().parents[2]


def test_every_node_executable_has_a_generated_parameter_list():
    scripts = re.findall(r'"(\w+) = iil_robot\.nodes\.(\w+):main"', (ROOT / "setup.py").read_text())
    nodes = {name for name, module in scripts if module != "player"}  # the bag player is a function, no node
    assert nodes == {spec.executable for spec in gen_node_docs.NODES}


def test_nodes_page_matches_the_declared_parameters(domain_id, tmp_path):
    """Builds every node in a child process (DDS on loopback, its own domain) and compares."""
    result = subprocess.run([sys.executable, "-m", "tests.gen_node_docs", "--check"], cwd=ROOT,
                            env=loopback_env(domain_id), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]


def test_a_changed_default_is_caught():
    spec = gen_node_docs.NodeSpec("estop_heartbeat", "", "")
    page = gen_node_docs.PAGE.read_text()
    declared = [gen_node_docs.Declared("rate", 21.0, "Heartbeat rate (Hz)", 1.0, 1000.0)]
    new = gen_node_docs.rewrite(page, {"estop_heartbeat": gen_node_docs.render(spec, declared)})
    assert new != page and "default: 21.0" in new


def test_an_override_the_node_does_not_declare_is_refused(domain_id, tmp_path):
    """A stale override (a renamed parameter) would leave the node built with its defaults: a device opened."""
    code = ("from pathlib import Path; from tests import gen_node_docs as g\n"
            "g.declared_parameters(g.NodeSpec('estop_heartbeat', 'iil_robot.nodes.estop_heartbeat', 'EstopHeartbeat',"
            " {'source': 'sim'}), Path('.'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=loopback_env(domain_id),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "estop_heartbeat: overrides ['source'] are not parameters the node declares" in result.stderr
