"""Human-in-the-loop learning on a real arm: observer, episode manager, SpaceMouse gate, mux, policy, recorder, learner.

    ros2 launch iil_robot intervention.launch.py robot:=panda method:=rlif action_space:=translation

``robot`` names a robot profile (``config/profiles/<robot>.yaml``, or the path of your own): the
arm's topics (remapped on every node), joints, frames and limits; the learner and the policy bound
their actions (``action_space``) by the mux's speed limits under that profile. The arm's drivers (franka_ros2 or
ur_robot_driver, MoveIt Servo, the gripper controller) and your perception of object and goal run
separately. To train on a second machine with a GPU, start only the learner there (same
ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET) and pass ``learner:=false`` here.
``sim.launch.py`` runs this same graph on the simulated arm.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from iil_robot.config.profiles import action_parameters, load_profile
from launch import LaunchDescription

ARGUMENTS = {
    "robot": ("panda", "robot profile: fetch, panda, ur5e (config/profiles) or the path of a profile YAML"),
    "rate": ("20.0", "control rate (Hz) of the policy and the mux"),
    "input": ("device", "gate input: device (pyspacemouse), joy (spacenav/joy) or twist (spacenav/twist)"),
    "method": ("rlif", "learning method (iil_robot/learners/methods.py), e.g. rlif or hgdagger"),
    "action_space": ("translation", "what the policy learns, each with the gripper: translation, translation_yaw or 6dof"),
    "action_frame": ("base", "frame of the learned velocities: base (the command frame) or tool (the end effector's; "
                     "add its orientation, ee_orientation, to the profile's observer)"),
    "device": ("auto", "learner device: auto (CUDA when available), cpu or cuda"),
    "output_dir": ("recordings", "where the recorder writes its bags"),
    "run_dir": ("runs/learner", "learner checkpoints and TensorBoard logs"),
    "learner": ("true", "start the learner here (false when it runs on another machine)"),
    "use_sim_time": ("false", "use /clock (replay)"),
    "camera": ("false", "start the camera node publishing camera/<name>/image_raw and its JPEG for the bags (cameras: "
               "config/camera.yaml or the overlay)"),
    "camera_source": ("0", "camera: V4L2 index (0), device path (/dev/video2) or a video file of camera front (type device)"),
    "cameras": ("front", "camera names, comma-separated (e.g. front,wrist), in the order the policy and the learner stack "
                "their images; the recorder records each one's JPEG topic; each needs a block under `cameras` in the "
                "camera node's parameter file"),
    "camera_file": ("", "the camera node's parameter file (empty: config/camera.yaml)"),
    "arm_status": ("true", "start the arm_status relay where the robot profile configures one (panda: the robot mode)"),
    "overlay": ("", "a parameter file applied last to every node (sim.launch.py: config/sim.yaml); empty: none"),
}


def intervention_nodes(context) -> list[Node]:
    """The nodes a real arm runs, under the robot profile's names (``sim.launch.py`` adds the two stand-ins)."""
    share = FindPackageShare("iil_robot")
    arg = LaunchConfiguration
    profile = load_profile(arg("robot").perform(context))
    remappings = list(profile.remappings.items())
    sim_time = {"use_sim_time": arg("use_sim_time")}

    overlay = [arg("overlay").perform(context)] if arg("overlay").perform(context) else []
    action = action_parameters(profile, arg("action_space").perform(context),  # bounded by the mux's limits
                               frame=arg("action_frame").perform(context))

    def node(executable: str, name: str, overrides: dict, own_file: str | None = None, condition=None,
             file: str | None = None) -> Node:
        """``own_file``: the node's parameter file in config/; ``file``: another path in its place."""
        files = [file] if file else [PathJoinSubstitution([share, "config", own_file])] if own_file else []
        return Node(package="iil_robot", executable=executable, name=name, output="screen",
                    parameters=files + [profile.node_parameters(name)] + overlay + [{**overrides, **sim_time}],
                    remappings=remappings, condition=condition)

    # one list of camera names for the camera node, the policy, the learner and the recorder
    cameras = arg("cameras").perform(context)
    camera = arg("camera").perform(context).lower() == "true"
    camera_file = arg("camera_file").perform(context) or None
    # quoted: launch_ros reads parameter strings as YAML, and a device index "0" must stay a string
    source = {"cameras.front.source": f'"{arg("camera_source").perform(context)}"'} if "front" in cameras.split(",") else {}

    relay = []
    if profile.node_parameters("arm_status"):  # a driver that reports faults only in its own message type
        relay = [node("arm_status", "arm_status", {}, condition=IfCondition(arg("arm_status")))]
    return relay + [
        node("observer", "observer", {}),
        node("episode_manager", "episode_manager", {}),
        node("spacemouse_gate", "spacemouse_gate", {"input": arg("input")}, "spacemouse_gate.yaml"),
        node("mux", "mux", {"rate": arg("rate")}, "mux.yaml"),
        node("policy", "policy", {"rate": arg("rate"), **action, **({"cameras": cameras} if camera else {})}, "policy.yaml"),
        node("recorder", "recorder", {"output_dir": arg("output_dir"), "cameras": cameras}, "recorder.yaml"),
        node("learner", "learner", {"method": arg("method"), "device": arg("device"), "run_dir": arg("run_dir"),
                                    "bags_dir": arg("output_dir"), "cameras": cameras, **action}, "learner.yaml",
             IfCondition(arg("learner"))),
        node("camera", "camera", source, "camera.yaml", IfCondition(arg("camera")), file=camera_file),
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=d, description=text) for name, (d, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=intervention_nodes)])
