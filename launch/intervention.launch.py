"""Human-in-the-loop learning on a real arm: SpaceMouse gate, mux, policy, recorder, learner.

    ros2 launch iil_robot intervention.launch.py command_topic:=/servo_node/delta_twist_cmds \\
        frame_id:=panda_link0 observation_spec:=my_arm/v1 method:=rlif

The arm side (MoveIt Servo or a ros2_controllers twist controller, and an observer node that
publishes the policy's input on ``observation`` as iil_robot.observation JSON) runs separately.
To train on a second machine with a GPU, start only the learner there (same ROS_DOMAIN_ID,
ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET) and pass ``learner:=false`` here.
"""
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "command_topic": ("arm/cmd", "TwistStamped topic the arm listens to, e.g. /servo_node/delta_twist_cmds"),
    "gripper_topic": ("arm/gripper", "std_msgs/Float64 gripper closure topic (0 open, 1 closed)"),
    "frame_id": ("base_link", "frame of the commands (MoveIt Servo: its planning frame)"),
    "rate": ("20.0", "control rate (Hz) of the policy and the mux"),
    "input": ("device", "gate input: device (pyspacemouse), joy (spacenav/joy) or twist (spacenav/twist)"),
    "observation_spec": ("", "the observer's Observation.spec, e.g. my_arm/v1 (weights for another are refused)"),
    "method": ("rlif", "learning method (iil_robot/learners/methods.py), e.g. rlif or hgdagger"),
    "device": ("auto", "learner device: auto (CUDA when available), cpu or cuda"),
    "output_dir": ("recordings", "where the recorder writes its bags"),
    "run_dir": ("runs/learner", "learner checkpoints and TensorBoard logs"),
    "learner": ("true", "start the learner here (false when it runs on another machine)"),
    "use_sim_time": ("false", "use /clock (replay)"),
    "camera": ("false", "start the camera node (opencv) publishing camera/image_raw and its JPEG for the bags"),
    "camera_source": ("0", "camera: V4L2 index (0), device path (/dev/video2) or a video file"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("iil_robot")
    arg = LaunchConfiguration

    def params(name: str) -> PathJoinSubstitution:
        return PathJoinSubstitution([share, "config", f"{name}.yaml"])

    sim_time = {"use_sim_time": arg("use_sim_time")}
    nodes = [
        Node(package="iil_robot", executable="spacemouse_gate", name="spacemouse_gate", output="screen",
             parameters=[params("spacemouse_gate"), {"input": arg("input"), "frame_id": arg("frame_id"), **sim_time}]),
        Node(package="iil_robot", executable="mux", name="mux", output="screen",
             parameters=[params("mux"), {"frame_id": arg("frame_id"), "rate": arg("rate"), **sim_time}],
             remappings=[("arm/cmd", arg("command_topic")), ("arm/gripper", arg("gripper_topic"))]),
        Node(package="iil_robot", executable="policy", name="policy", output="screen",
             parameters=[params("policy"), {"rate": arg("rate"), "observation_spec": arg("observation_spec"), **sim_time}]),
        Node(package="iil_robot", executable="recorder", name="recorder", output="screen",
             parameters=[params("recorder"), {"output_dir": arg("output_dir"), **sim_time}],
             remappings=[("arm/cmd", arg("command_topic")), ("arm/gripper", arg("gripper_topic"))]),
        Node(package="iil_robot", executable="learner", name="learner", output="screen",
             parameters=[params("learner"), {"method": arg("method"), "device": arg("device"),
                                              "observation_spec": arg("observation_spec"), "run_dir": arg("run_dir"),
                                              "bags_dir": arg("output_dir"), **sim_time}],
             condition=IfCondition(arg("learner"))),
        Node(package="iil_robot", executable="camera", name="camera", output="screen",
             parameters=[params("camera"), {"source": arg("camera_source"), **sim_time}],
             condition=IfCondition(arg("camera"))),
    ]
    declared = [DeclareLaunchArgument(name, default_value=d, description=text) for name, (d, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + nodes)
