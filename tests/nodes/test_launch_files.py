"""Launch files, loaded against minimal stand-ins of ``launch``/``launch_ros`` (absent from pip).

Every executable must be a console script, every parameter file must exist where the package
installs it, every parameter named must be declared by its node, every remapped topic must be
one the node uses, and every launch configuration must be declared as an argument.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
import types
from pathlib import Path

import pytest
import rclpy
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def install_stand_ins(monkeypatch) -> None:
    classes = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument"],
        "launch.conditions": ["IfCondition"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module_name, names in classes.items():
        module = types.ModuleType(module_name)
        for name in names:
            setattr(module, name, type(name, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def installed_files() -> dict[str, Path]:
    """share/iil_robot/<dir>/<file> -> source path, from setup.py's data_files globs."""
    text = (ROOT / "setup.py").read_text()
    mapping = {}
    for target, pattern in re.findall(r'\(f"share/\{PACKAGE\}/(\w+)", glob\(f?"([^"]+)"\)\)', text):
        for source in ROOT.glob(pattern.replace("{PACKAGE}", "iil_robot")):
            mapping[f"{target}/{source.name}"] = source
    return mapping


def resolve(value, arguments: dict) -> object:
    """Turn stand-in substitutions into values: share paths -> source files, configurations -> defaults."""
    name = type(value).__name__
    if name == "LaunchConfiguration":
        return resolve(arguments[value.args[0]], arguments)
    if name == "PathJoinSubstitution":
        parts = value.args[0]
        assert type(parts[0]).__name__ == "FindPackageShare" and parts[0].args[0] == "iil_robot"
        relative = "/".join(parts[1:])
        files = installed_files()
        assert relative in files, f"share/iil_robot/{relative} is not installed by setup.py"
        return files[relative]
    return value


def flatten(prefix: str, data: dict) -> list[str]:
    names = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        names += flatten(full + ".", value) if isinstance(value, dict) else [full]
    return names


def console_scripts() -> dict[str, str]:
    """Console scripts of the installed iil_robot distribution (from setup.py)."""
    from importlib.metadata import distribution

    return {ep.name: ep.value for ep in distribution("iil_robot").entry_points if ep.group == "console_scripts"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_references_only_what_exists(path, monkeypatch, domain_id, tmp_path):
    install_stand_ins(monkeypatch)
    description = load(path)
    entities = description.args[0]
    arguments = {e.args[0]: e.kwargs.get("default_value") for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    nodes = [e for e in entities if type(e).__name__ == "Node"]
    assert nodes, "no nodes in the launch file"
    scripts = console_scripts()
    for node in nodes:
        kw = node.kwargs
        assert kw["package"] == "iil_robot"
        assert kw["executable"] in scripts, f"{kw['executable']} is not a console script"
        files, names = [], []
        for entry in kw.get("parameters", []):
            entry = resolve(entry, arguments)
            if isinstance(entry, Path):
                assert entry.is_file(), entry
                files.append(entry)
                data = yaml.safe_load(entry.read_text())
                if kw["name"] in data:  # an overlay such as sim.yaml may not touch every node
                    names += flatten("", data[kw["name"]]["ros__parameters"])
            else:
                names += list(entry)
        assert any(kw["name"] in yaml.safe_load(f.read_text()) for f in files), f"no parameter file for {kw['name']}"
        remapped = [src for src, _ in kw.get("remappings", [])]
        check_node_declares(scripts[kw["executable"]], files, names, remapped, domain_id, tmp_path, monkeypatch)


# Node-specific test settings: no device thread, and nothing written outside the test's folder.
TEST_OVERRIDES = {"spacemouse_gate": ["input:=joy"], "recorder": ["output_dir:={tmp}/bags"],
                  "learner": ["run_dir:={tmp}/learner", 'bags_dir:=""'], "camera": ["source:=sim"]}


def check_node_declares(entry_point: str, files: list[Path], names: list[str], remapped: list[str], domain_id: int, tmp: Path,
                        monkeypatch) -> None:
    module_name = entry_point.split(":")[0]
    module = importlib.import_module(module_name)
    # What a node sets for its whole process must not outlive it here: a learner built in the test process left it,
    # and every node the later tests started, at nice 19.
    if hasattr(module, "lower_priority"):
        monkeypatch.setattr(module, "lower_priority", lambda nice: None)
    if "torch" in sys.modules:
        monkeypatch.setattr(sys.modules["torch"], "set_num_threads", lambda n: None)
    nice, threads = os.nice(0), set(threading.enumerate())
    node_class = next(v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module_name
                      and issubclass(v, rclpy.node.Node))
    args = ["--ros-args"] + [a for f in files for a in ("--params-file", str(f))]
    for override in TEST_OVERRIDES.get(module_name.rsplit(".", 1)[-1], []):
        args += ["-p", override.format(tmp=tmp)]
    rclpy.init(args=args, domain_id=domain_id)  # the nodes use the default context
    try:
        node = node_class()
        try:
            undeclared = [n for n in names if n not in ("use_sim_time",) and not node.has_parameter(n)]
            assert undeclared == [], f"{node.get_name()} does not declare {undeclared}"
            topics = {p.topic_name.lstrip("/") for p in node.publishers} | {s.topic_name.lstrip("/") for s in node.subscriptions}
            assert set(remapped) <= topics, f"remapped topics {set(remapped) - topics} are not used by {node.get_name()}"
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert os.nice(0) == nice
    assert set(threading.enumerate()) <= threads, f"{module_name}: threads left running after destroy_node"
