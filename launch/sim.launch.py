"""The whole loop on the simulated arm: intervention.launch.py's graph plus the two stand-ins.

    ros2 launch iil_robot sim.launch.py task:=reach robot:=fetch operator_level:=0.9 method:=rlif

The simulated arm (``sim_arm``) presents itself under the robot profile's topic, joint and frame
names, and the simulated operator (``sim_operator``) works a virtual SpaceMouse; every other node
is exactly what a real arm runs. ``iil-robot sim`` does the same without ``launch`` (which the pip
wheels lack) and adds the dashboard, the run folder and the report.
"""
import atexit
import os
import tempfile

import yaml
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from iil_robot.cli.sim import DEFAULT_OPERATOR_LEVEL, DEFAULT_TASK, camera_overrides, sim_cameras, sim_overrides
from iil_robot.config import config_path
from iil_robot.config.profiles import load_profile
from iil_robot.sim.spec import CAMERAS
from launch import LaunchDescription

ARGUMENTS = {
    "task": (DEFAULT_TASK, "Fetch task: reach, push or pick_and_place"),
    "robot": ("fetch", "robot profile the simulated arm presents itself as: fetch, panda or ur5e"),
    "operator_model": ("value", "simulated operator: value, random, demo or never"),
    "operator_level": (str(DEFAULT_OPERATOR_LEVEL), "simulated operator quality in [0, 1]"),
    "method": ("rlif", "learning method (iil_robot/learners/methods.py), e.g. rlif or hgdagger"),
    "action_space": ("translation", "what the policy learns, each with the gripper: translation, translation_yaw or 6dof"),
    "action_frame": ("base", "frame of the learned velocities: base (the command frame) or tool (the end effector's)"),
    "output_dir": ("runs/sim/bags", "where the recorder writes its bags"),
    "run_dir": ("runs/sim/learner", "learner checkpoints and TensorBoard logs"),
    "seed": ("0", "seed of the sim and the operator"),
    "cameras": ("", "cameras the sim arm renders and the camera node publishes, comma-separated, in the order the policy "
                "and the learner stack them: " + ", ".join(f"{k} ({v})" for k, v in CAMERAS.items()) + "; empty: none "
                "(needs MUJOCO_GL=egl; a camera policy also needs the learner's image_width and image_height)"),
    "camera": ("false", "true: cameras front (when `cameras` is empty)"),
}


def sim_graph(context) -> list:
    share = FindPackageShare("iil_robot")
    arg = LaunchConfiguration
    task, robot, space = arg("task").perform(context), arg("robot").perform(context), arg("action_space").perform(context)
    frame = arg("action_frame").perform(context)
    profile = load_profile(robot)
    sim = PathJoinSubstitution([share, "config", "sim.yaml"])
    # the task's changes to the profile (observer fields, success, time limit, scene reset) on top of sim.yaml
    overlay = yaml.safe_load(config_path("sim.yaml").read_text())
    changes = sim_overrides(profile, task, space, frame)
    for name, values in changes.items():
        overlay.setdefault(name, {"ros__parameters": {}})["ros__parameters"].update(values)
    camera = arg("camera").perform(context).lower() == "true"
    cameras = sim_cameras(arg("cameras").perform(context) or ("front" if camera else ""))
    rendered = camera_overrides(cameras)
    # the camera node takes the sim arm's image topics as it would camera drivers', from this file alone (the device
    # camera front of config/camera.yaml would open /dev/video0); the policy, the learner and the recorder get the names
    # from intervention.launch.py's `cameras`
    blocks: dict = {}
    for key, value in rendered.get("camera", {}).items():  # cameras.<name>.<field> as the nested blocks of camera.yaml
        _, name, field = key.split(".")
        blocks.setdefault(name, {})[field] = value
    if blocks:
        overlay["camera"] = {"ros__parameters": {"cameras": blocks}}
    with tempfile.NamedTemporaryFile("w", prefix="iil_sim_", suffix=".yaml", delete=False) as file:
        yaml.safe_dump(overlay, file)
    atexit.register(os.unlink, file.name)  # the nodes read it at their start; launch outlives them
    real = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "intervention.launch.py"])),
        launch_arguments={"robot": robot, "input": "joy", "method": arg("method"), "action_space": space, "action_frame": frame,
                          "device": "auto", "output_dir": arg("output_dir"), "run_dir": arg("run_dir"),
                          "camera": "true" if cameras else "false", "cameras": ",".join(cameras), "camera_file": file.name,
                          "overlay": file.name}.items())

    def stand_in(name: str, overrides: dict) -> Node:
        return Node(package="iil_robot", executable=name, name=name, output="screen",
                    parameters=[sim, profile.node_parameters(name), changes.get(name, {}), overrides],
                    remappings=list(profile.remappings.items()))

    return [
        real,
        # every node starts at once: the first episode waits until the mux's step records reach the recorder and learner
        stand_in("sim_arm", {"task": task, "seed": arg("seed"), "await_step_subscribers": "recorder,learner",
                             **rendered.get("sim_arm", {})}),
        stand_in("sim_operator", {"task": task, "model": arg("operator_model"), "level": arg("operator_level"),
                                  "seed": arg("seed")}),
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=d, description=text) for name, (d, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=sim_graph)])
