"""The whole loop on the simulated arm, from the same parameter files as ``iil-robot sim``.

    ros2 launch iil_robot sim.launch.py task:=push operator_level:=0.7 method:=rlif

``iil-robot sim`` does the same without ``launch`` (which the pip wheels lack) and adds the
dashboard, the run folder and the report.
"""
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "task": ("push", "Fetch task: reach, push or pick_and_place"),
    "observation_spec": ("fetch_push/v1", "fetch_<task>/v1, matching task"),
    "operator_model": ("value", "simulated operator: value, random, demo or never"),
    "operator_level": ("0.7", "simulated operator quality in [0, 1]"),
    "method": ("rlif", "learning method (iil_robot/learners/methods.py), e.g. rlif or hgdagger"),
    "output_dir": ("runs/sim/bags", "where the recorder writes its bags"),
    "run_dir": ("runs/sim/learner", "learner checkpoints and TensorBoard logs"),
    "seed": ("0", "seed of the sim and the operator"),
    "camera": ("false", "render the sim arm's camera and run the camera node on it (source sim; needs MUJOCO_GL=egl)"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("iil_robot")
    arg = LaunchConfiguration
    sim = PathJoinSubstitution([share, "config", "sim.yaml"])

    def node(executable: str, name: str, own: str | None, overrides: dict, remap=(), condition=None) -> Node:
        files = ([PathJoinSubstitution([share, "config", own])] if own else []) + [sim]
        return Node(package="iil_robot", executable=executable, name=name, output="screen",
                    parameters=files + [overrides], remappings=list(remap), condition=condition)

    nodes = [
        # every node starts at once: the first episode waits until the mux's step records reach the recorder and learner
        node("sim_arm", "sim_arm", None, {"task": arg("task"), "seed": arg("seed"), "camera": arg("camera"),
                                          "await_step_subscribers": "recorder,learner"}),
        node("sim_operator", "sim_operator", None, {"task": arg("task"), "model": arg("operator_model"),
                                                     "level": arg("operator_level"), "seed": arg("seed")}),
        node("spacemouse_gate", "spacemouse_gate", "spacemouse_gate.yaml", {}),
        node("mux", "mux", "mux.yaml", {}),
        node("policy", "policy", "policy.yaml", {"observation_spec": arg("observation_spec")}),
        node("recorder", "recorder", "recorder.yaml", {"output_dir": arg("output_dir"), "task": arg("task")}),
        node("learner", "learner", "learner.yaml", {"method": arg("method"), "observation_spec": arg("observation_spec"),
                                                    "run_dir": arg("run_dir")}),
        node("camera", "camera", "camera.yaml", {"source": "sim"}, condition=IfCondition(arg("camera"))),
    ]
    declared = [DeclareLaunchArgument(name, default_value=d, description=text) for name, (d, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + nodes)
