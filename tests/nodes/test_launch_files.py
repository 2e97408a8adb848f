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


class Context:
    """What a launch context gives an OpaqueFunction here: the launch arguments' values."""

    def __init__(self, arguments: dict):
        self.arguments = arguments


def perform(self, context: Context):
    return str(resolve(context.arguments[self.args[0]], context.arguments))


def install_stand_ins(monkeypatch) -> None:
    classes = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction", "IncludeLaunchDescription"],
        "launch.conditions": ["IfCondition"],
        "launch.launch_description_sources": ["PythonLaunchDescriptionSource"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module_name, names in classes.items():
        module = types.ModuleType(module_name)
        for name in names:
            setattr(module, name, type(name, (Recorded,), {"perform": perform} if name == "LaunchConfiguration" else {}))
        monkeypatch.setitem(sys.modules, module_name, module)


def launch_nodes(path: Path, given: dict | None = None) -> list[tuple[Recorded, dict]]:
    """Every Node a launch file starts (opaque functions run, includes followed), with the arguments it sees."""
    entities = load(path).args[0]
    arguments = {e.args[0]: e.kwargs.get("default_value") for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    unknown = set(given or {}) - set(arguments)
    assert not unknown, f"{path.name} declares no arguments {unknown}"
    arguments.update(given or {})
    nodes: list[tuple[Recorded, dict]] = []
    pending = [e for e in entities if type(e).__name__ != "DeclareLaunchArgument"]
    while pending:
        entity = pending.pop(0)
        kind = type(entity).__name__
        if kind == "Node":
            nodes.append((entity, arguments))
        elif kind == "OpaqueFunction":
            pending += entity.kwargs["function"](Context(arguments))
        elif kind == "IncludeLaunchDescription":
            included = resolve(entity.args[0].args[0], arguments)
            values = {k: resolve(v, arguments) for k, v in entity.kwargs.get("launch_arguments", [])}
            nodes += launch_nodes(included, values)
        else:
            raise AssertionError(f"{path.name}: no stand-in handles {kind}")
    return nodes


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
    nodes = launch_nodes(path)
    assert nodes, "no nodes in the launch file"
    scripts = console_scripts()
    used: set[str] = set()
    remapped: set[str] = set()
    for node, arguments in nodes:
        kw = node.kwargs
        assert kw["package"] == "iil_robot"
        assert kw["executable"] in scripts, f"{kw['executable']} is not a console script"
        files, names, given = [], [], {}
        for entry in kw.get("parameters", []):
            entry = resolve(entry, arguments)
            if isinstance(entry, (Path, str)):
                entry = Path(entry)
                assert entry.is_file(), entry
                files.append(entry)
                data = yaml.safe_load(entry.read_text())
                if kw["name"] in data:  # an overlay such as sim.yaml may not touch every node
                    names += flatten("", data[kw["name"]]["ros__parameters"])
            else:
                names += list(entry)
                given.update({k: resolve(v, arguments) for k, v in entry.items()})
        assert files or given, f"no parameters for {kw['name']}"
        # the dictionaries as launch_ros hands them over: strings read as YAML ("20.0" is a number)
        values = {k: yaml.safe_load(v) if isinstance(v, str) and v else v for k, v in given.items()}
        own = tmp_path / f"{kw['name']}_given.yaml"
        own.write_text(yaml.safe_dump({kw["name"]: {"ros__parameters": {k: v for k, v in values.items() if v != ""}}}))
        remapped |= {src for src, _ in kw.get("remappings", [])}
        used |= check_node_declares(scripts[kw["executable"]], files + [own], names, domain_id, tmp_path, monkeypatch)
    # a robot profile's remappings apply to every node: each must name a topic some node of the graph uses
    assert remapped <= used, f"remapped topics {remapped - used} are used by no node"


# Node-specific test settings: no device thread, and nothing written outside the test's folder.
TEST_OVERRIDES = {"spacemouse_gate": ["input:=joy"], "recorder": ["output_dir:={tmp}/bags"],
                  "learner": ["run_dir:={tmp}/learner", 'bags_dir:=""'],
                  "camera": ["cameras.front.type:=compressed", "cameras.front.topic:=front/image_raw/compressed"],
                  "arm_status": ["message_type:=std_msgs/msg/UInt8"]}  # franka_msgs is not installed here


def check_node_declares(entry_point: str, files: list[Path], names: list[str], domain_id: int, tmp: Path,
                        monkeypatch) -> set[str]:
    """Build the node from ``files``; check it declares ``names``; return the topics it uses."""
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
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert os.nice(0) == nice
    assert set(threading.enumerate()) <= threads, f"{module_name}: threads left running after destroy_node"
    return topics


def test_the_simulated_graph_is_the_real_graph_plus_the_two_stand_ins(monkeypatch, tmp_path):
    """One graph: sim.launch.py and ``iil-robot sim`` run exactly the nodes intervention.launch.py runs on a real arm,
    plus the simulated arm and operator."""
    from iil_robot.cli.sim import STAND_INS, graph_nodes

    install_stand_ins(monkeypatch)
    assert set(STAND_INS) == {"sim_arm", "sim_operator"}
    for robot in ("panda", "ur5e", "fetch"):  # the panda profile adds the arm_status relay of the Franka robot mode
        real = {n.kwargs["name"] for n, _ in launch_nodes(ROOT / "launch" / "intervention.launch.py", {"robot": robot})}
        simulated = {n.kwargs["name"] for n, _ in launch_nodes(ROOT / "launch" / "sim.launch.py", {"robot": robot})}
        job = {spec.name for spec in graph_nodes(tmp_path, {"task": "push", "robot": robot, "method": "rlif", "seed": 0,
                                                             "episodes_done": 0, "operator_model": "value",
                                                             "operator_level": 0.7}, resume=False)}
        assert simulated - {"camera"} == job == real - {"camera"} | set(STAND_INS), (robot, real, simulated, job)
        assert ("arm_status" in job) == (robot == "panda")


def test_the_learner_and_the_policy_get_the_action_space_bounded_by_the_mux_limits_of_the_profile(monkeypatch, tmp_path):
    """One source for the speed limits: the launch file and ``iil-robot sim`` pass the mux's (the profile's, then
    the job's ``--set mux.limits...``) to the learner's and the policy's ``action.*``."""
    from iil_robot.cli.sim import graph_nodes

    install_stand_ins(monkeypatch)
    profile = yaml.safe_load((ROOT / "iil_robot" / "config" / "profiles" / "panda.yaml").read_text())
    profile["parameters"]["mux"]["limits.max_angular_speed"] = 0.6
    path = tmp_path / "slow_panda.yaml"
    path.write_text(yaml.safe_dump(profile))
    launched = {n.kwargs["name"]: n.kwargs["parameters"][-1] for n, _ in launch_nodes(
        ROOT / "launch" / "intervention.launch.py", {"robot": str(path), "action_space": "6dof"})}
    for name in ("learner", "policy"):
        assert {k: launched[name][k] for k in ("action.space", "action.max_linear_speed", "action.max_angular_speed")} \
            == {"action.space": "6dof", "action.max_linear_speed": 0.25, "action.max_angular_speed": 0.6}, name

    settings = {"task": "push", "robot": "panda", "method": "rlif", "seed": 0, "episodes_done": 0,
                "operator_model": "value", "operator_level": 0.7, "action_space": "translation_yaw"}
    job = {spec.name: spec.parameters for spec in graph_nodes(tmp_path, settings, resume=False,
                                                              overrides={"mux": {"limits.max_linear_speed": 0.1}})}
    for name in ("learner", "policy"):
        assert (job[name]["action.space"], job[name]["action.max_linear_speed"], job[name]["action.max_angular_speed"]) \
            == ("translation_yaw", 0.1, 1.0), name
    assert job["observer"]["fields"][-1] == "ee_orientation" and job["observer"]["fields.ee_orientation.kind"] == "orientation"
    assert job["sim_operator"]["correct_orientation"] and job["spacemouse_gate"]["active_axes"] == "6dof"
    plain = {spec.name: spec.parameters for spec in graph_nodes(tmp_path, {**settings, "action_space": "translation"}, False)}
    assert "ee_orientation" not in plain["observer"]["fields"] and "correct_orientation" not in plain["sim_operator"]


def test_the_tool_frame_reaches_the_learner_and_the_policy_and_puts_the_orientation_in_the_observation(monkeypatch, tmp_path):
    from iil_robot.cli.sim import graph_nodes

    install_stand_ins(monkeypatch)
    launched = {n.kwargs["name"]: n.kwargs["parameters"][-1] for n, _ in launch_nodes(
        ROOT / "launch" / "intervention.launch.py", {"robot": "panda", "action_frame": "tool"})}
    assert launched["learner"]["action.frame"] == launched["policy"]["action.frame"] == "tool"
    settings = {"task": "reach", "robot": "fetch", "method": "rlif", "seed": 0, "episodes_done": 0,
                "operator_model": "value", "operator_level": 0.7, "action_space": "translation", "action_frame": "tool"}
    job = {spec.name: spec.parameters for spec in graph_nodes(tmp_path, settings, resume=False)}
    assert job["learner"]["action.frame"] == job["policy"]["action.frame"] == "tool"
    assert job["observer"]["fields"][-1] == "ee_orientation"  # the policy rotates its action by it
    assert "correct_orientation" not in job["sim_operator"]  # translation: the operator leaves the gripper's turn alone
    before_frames = {k: v for k, v in settings.items() if k != "action_frame"}  # a run.json written before frames
    old = {spec.name: spec.parameters for spec in graph_nodes(tmp_path, before_frames, resume=False)}
    assert old["policy"]["action.frame"] == "base" and "ee_orientation" not in old["observer"]["fields"]


def test_sim_launch_cameras_feed_one_list_of_names_to_the_arm_camera_node_policy_learner_and_recorder(monkeypatch, tmp_path,
                                                                                                      domain_id):
    """``sim.launch.py cameras:=front,wrist`` starts the graph ``iil-robot sim --cameras front,wrist`` runs: the camera
    node takes exactly the named cameras from the sim arm's image topics; ``camera:=true`` stays camera front."""
    from iil_robot.cli.sim import graph_nodes

    install_stand_ins(monkeypatch)
    settings = {"task": "reach", "robot": "fetch", "method": "rlif", "seed": 0, "episodes_done": 0,
                "operator_model": "value", "operator_level": 0.7}
    for given, names in (({}, ""), ({"camera": "true"}, "front"), ({"cameras": "front,wrist"}, "front,wrist")):
        launched = {n.kwargs["name"]: n for n, _ in launch_nodes(ROOT / "launch" / "sim.launch.py", given)}
        job = {spec.name: spec.parameters for spec in graph_nodes(tmp_path, {**settings, "cameras": names.split(",") if names
                                                                              else []}, resume=False)}
        last = {name: node.kwargs["parameters"][-1] for name, node in launched.items()}
        assert last["recorder"]["cameras"] == job["recorder"]["cameras"] == names, given
        assert (last["learner"]["cameras"], last["policy"].get("cameras", "")) == (names, names), given
        if names:
            assert job["learner"]["cameras"] == job["policy"]["cameras"] == names
        assert last["sim_arm"].get("cameras") == job["sim_arm"].get("cameras"), given
        if not names:
            assert "camera" not in job
            continue
        # the camera node reads the named cameras from one file, not config/camera.yaml's device camera
        file = Path(resolve(launched["camera"].kwargs["parameters"][0], {}))
        blocks = yaml.safe_load(file.read_text())["camera"]["ros__parameters"]["cameras"]
        assert ",".join(blocks) == names and all(b["type"] == "image" for b in blocks.values())
        assert {f"cameras.{n}.{k}": v for n, b in blocks.items() for k, v in b.items()} == {
            k: v for k, v in job["camera"].items() if k.startswith("cameras.")}
    # the last: front,wrist, which the camera node takes as two topic cameras
    check_node_declares("iil_robot.nodes.camera:main", [file], flatten("cameras.", blocks), domain_id, tmp_path, monkeypatch)
