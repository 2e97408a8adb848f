"""The safe command path on a real arm: SpaceMouse gate + arbitration mux.

    ros2 launch iil_robot command_path.launch.py command_topic:=/servo_node/delta_twist_cmds frame_id:=panda_link0

The policy (proposals on ``policy/proposal``) and the arm driver are started separately; until
a policy proposes, the mux holds the arm with explicit zeros and the operator can drive it.
"""
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "command_topic": ("arm/cmd", "TwistStamped topic the arm listens to, e.g. /servo_node/delta_twist_cmds"),
    "gripper_topic": ("arm/gripper", "std_msgs/Float64 gripper closure topic (0 open, 1 closed)"),
    "frame_id": ("base_link", "frame of the commands (MoveIt Servo: its planning frame)"),
    "input": ("device", "gate input: device (pyspacemouse), joy (spacenav/joy) or twist (spacenav/twist)"),
    "mux_params": (None, "mux parameter file (default: the shipped config/mux.yaml)"),
    "gate_params": (None, "gate parameter file (default: the shipped config/spacemouse_gate.yaml)"),
    "use_sim_time": ("false", "use /clock (replay, simulation)"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("iil_robot")
    shipped = {
        "mux_params": PathJoinSubstitution([share, "config", "mux.yaml"]),
        "gate_params": PathJoinSubstitution([share, "config", "spacemouse_gate.yaml"]),
    }
    arg = LaunchConfiguration
    common = {"frame_id": arg("frame_id"), "use_sim_time": arg("use_sim_time")}
    gate = Node(
        package="iil_robot",
        executable="spacemouse_gate",
        name="spacemouse_gate",
        parameters=[arg("gate_params"), {"input": arg("input"), **common}],
        output="screen",
    )
    mux = Node(
        package="iil_robot",
        executable="mux",
        name="mux",
        parameters=[arg("mux_params"), common],
        remappings=[("arm/cmd", arg("command_topic")), ("arm/gripper", arg("gripper_topic"))],
        output="screen",
    )
    declared = [
        DeclareLaunchArgument(name, default_value=shipped.get(name, default), description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription(declared + [gate, mux])
