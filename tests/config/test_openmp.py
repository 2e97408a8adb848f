"""The learner's OpenMP settings reach torch only when set before it loads: checked in fresh processes."""
import os
import subprocess
import sys

import pytest

SHOW = "import os, sys; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"


def python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


@pytest.mark.parametrize("module", ["iil_robot.bench.learner", "iil_robot.nodes.learner"])
def test_the_learner_and_its_benchmark_set_a_passive_wait_policy_before_torch_loads(module):
    assert python(f"import {module}; " + SHOW) == "PASSIVE True"


def test_the_learner_node_finds_its_settings_in_time():
    assert python("import iil_robot.nodes.learner as node; print(node.OPENMP_PROBLEM)") == "None"


def test_a_wait_policy_in_the_environment_wins():
    assert python("import iil_robot.bench.learner; " + SHOW, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE True"


def test_set_after_torch_loaded_it_says_that_it_comes_too_late():
    out = python("import torch; from iil_robot.config.openmp import openmp_defaults; print(openmp_defaults())")
    assert out.startswith("torch was imported before the learner's OpenMP settings (OMP_WAIT_POLICY) were set")
