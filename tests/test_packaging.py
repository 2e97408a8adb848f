"""The package builds as a ROS 2 ament_python package with colcon, as a user on a ROS machine would."""
import shutil
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).parent / "colcon"


def console_scripts() -> list[str]:
    return [ep.name for ep in distribution("iil_robot").entry_points if ep.group == "console_scripts"]


@pytest.fixture
def workspace_copy(tmp_path) -> Path:
    """The tracked files of this repository, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for name in files:
        source = ROOT / name
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target)
    return repo / "ros2_ws"


def test_colcon_build_installs_nodes_launch_and_config(workspace_copy):
    result = subprocess.run([str(COLCON), "build", "--symlink-install"], cwd=workspace_copy,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    install = workspace_copy / "install" / "iil_robot"
    executables = sorted(p.name for p in (install / "lib" / "iil_robot").iterdir())
    assert executables == sorted(console_scripts())
    share = install / "share" / "iil_robot"
    assert (share / "package.xml").exists()
    assert (share / "launch" / "command_path.launch.py").exists()
    assert {p.name for p in (share / "config").iterdir()} >= {"mux.yaml", "spacemouse_gate.yaml"}
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "iil_robot").exists()


def test_every_node_module_has_a_console_script():
    nodes = {p.stem for p in (ROOT / "iil_robot" / "nodes").glob("*.py")} - {"__init__", "common"}
    targets = {ep.value.split(":")[0].rsplit(".", 1)[-1] for ep in distribution("iil_robot").entry_points
               if ep.group == "console_scripts"}
    assert nodes <= targets
