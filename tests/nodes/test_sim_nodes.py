"""The simulated arm and operator through real rclpy topics, in separate processes."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from iil_robot.cli.graph import NodeSpec
from iil_robot.config import config_path
from iil_robot.config.profiles import load_profile
from iil_robot.data.records import EpisodeEvent, Observation, StepRecord
from iil_robot.nodes.common import COMMAND_QOS, EVENTS_QOS, LATCHED_QOS, RECORD_QOS, SENSOR_QOS, twist_stamped
from tests.nodes.conftest import assert_stops_with

STARTUP = 60.0  # MuJoCo and gymnasium-robotics import slowly on a loaded machine
DT = 1.0 / 20.0


def sim_arm(**parameters) -> NodeSpec:
    return NodeSpec("sim_arm", "iil_robot.nodes.sim_arm", parameters={"task": "push", **parameters})


def observer(profile: str = "fetch") -> NodeSpec:
    """The observer as the main job starts it for the push task."""
    loaded = load_profile(profile)
    return NodeSpec("observer", "iil_robot.nodes.observer", parameters=loaded.node_parameters("observer"),
                    remappings=loaded.remappings)


def positions(poses) -> np.ndarray:
    return np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for m in poses.messages])


def test_sim_arm_moves_as_commanded_and_a_zero_command_holds_it_still(graph, probe):
    graph.start(sim_arm())
    observations = probe.collect(PoseStamped, "ee_pose", SENSOR_QOS)  # what franka's current_pose carries
    cmd = probe.publisher(TwistStamped, "arm/cmd", COMMAND_QOS)
    probe.wait_for(lambda: len(observations) >= 5 and cmd.get_subscription_count() > 0, STARTUP, "sim_arm observations")

    # no command at all: the arm stays where it is
    start = len(observations)
    probe.wait_for(lambda: len(observations) >= start + 20, 30.0, "20 ticks without a command")
    idle = positions(observations)[start:start + 20]
    assert np.abs(idle - idle[0]).max() < 1e-3

    # 0.1 m/s along +y: about 5 mm per 50 ms tick, x and z unchanged
    command = twist_stamped((0.0, 0.1, 0.0, 0.0, 0.0, 0.0), "base_link", probe.node.get_clock().now().to_msg())
    timer = probe.node.create_timer(0.02, lambda: cmd.publish(command))
    start = len(observations)
    probe.wait_for(lambda: len(observations) >= start + 40, 30.0, "40 commanded ticks")
    timer.cancel()
    moving = positions(observations)[start + 10:start + 40]  # skip discovery and the arm's spin-up
    per_tick = np.diff(moving, axis=0)
    assert np.median(per_tick[:, 1]) == pytest.approx(0.1 * DT, rel=0.25)
    assert np.abs(np.median(per_tick[:, [0, 2]], axis=0)).max() < 0.1 * 0.1 * DT

    # explicit zero command: the arm stops and stays
    zero = twist_stamped((0.0,) * 6, "base_link", probe.node.get_clock().now().to_msg())
    timer = probe.node.create_timer(0.02, lambda: cmd.publish(zero))
    start = len(observations)
    probe.wait_for(lambda: len(observations) >= start + 30, 30.0, "30 ticks of zero command")
    timer.cancel()
    held = positions(observations)[start + 10:start + 30]
    assert np.abs(held - held[0]).max() < 1e-3


def test_sim_arm_never_ends_an_episode_and_its_scene_reset_draws_a_new_goal(graph, probe):
    """Episodes are the episode manager's: the simulated arm publishes no event; putting the block back and drawing
    a new goal is the simulator-only service a person's hands stand for."""
    graph.start(sim_arm(seed=3))
    events = probe.collect(String, "episode/event", EVENTS_QOS)
    goals = probe.collect(PoseStamped, "goal_pose", SENSOR_QOS)
    client = probe.node.create_client(Trigger, "/sim_arm/reset_scene")
    probe.wait_for(lambda: client.service_is_ready() and len(goals) >= 5, STARTUP, "the scene reset service and goals")
    goals_before = {tuple(np.round(p, 6)) for p in positions(goals)}
    future = client.call_async(Trigger.Request())
    probe.wait_for(future.done, 10.0, "the scene reset reply")
    assert future.result().success and future.result().message == "scene 1 (seed 4)"
    count = len(goals)
    probe.wait_for(lambda: len(goals) > count + 120, 30.0, "a goal pose after the reset, and 6 s more (past push's limit)")
    assert tuple(np.round(positions(goals)[-1], 6)) not in goals_before  # a new scene: a new seed, a new goal
    assert events.messages == []


def test_the_whole_loop_runs_without_hardware_and_the_operator_steps_in(graph, probe):
    """sim_arm + observer + episode manager + policy (holding still, no weights yet) + mux + gate + simulated operator."""
    from iil_robot.cli.sim import sim_overrides

    graph.start(sim_arm())
    graph.start(observer())
    fetch = load_profile("fetch")
    graph.start(NodeSpec("episode_manager", "iil_robot.nodes.episode_manager",
                         parameters={**fetch.node_parameters("episode_manager"),
                                     **sim_overrides(fetch, "push")["episode_manager"]}))
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", params_files=(str(config_path("policy.yaml")),)))
    graph.start(NodeSpec("mux", "iil_robot.nodes.mux", params_files=(str(config_path("mux.yaml")),)))
    graph.start(NodeSpec("spacemouse_gate", "iil_robot.nodes.spacemouse_gate",
                         params_files=(str(config_path("spacemouse_gate.yaml")),),
                         parameters={"input": "joy", "release_time": 0.1}))
    graph.start(NodeSpec("sim_operator", "iil_robot.nodes.sim_operator",
                         parameters={"task": "push", "model": "value", "level": 1.0}))
    steps = probe.collect(String, "step", RECORD_QOS)
    decisions = probe.collect(String, "operator/decision", EVENTS_QOS)

    def records():
        """Step records from the policy's first proposal on (under load its process may come up last)."""
        decoded = [StepRecord.decode(m.data) for m in steps.messages]
        first = next((i for i, r in enumerate(decoded) if r.policy_action is not None), len(decoded))
        return decoded[first:]

    probe.wait_for(lambda: any(r.onset for r in records()), STARTUP, "an intervention onset in the step records")
    probe.wait_for(lambda: any(json.loads(m.data)["onset"] for m in decisions.messages), 10.0, "the operator's decision")
    decision = next(json.loads(m.data) for m in decisions.messages if json.loads(m.data)["onset"])
    assert decision["model"] == "value" and decision["reason"]
    probe.wait_for(lambda: len([r for r in records() if r.source == "human"]) >= 5, 20.0, "operator-driven ticks")
    human = [r for r in records() if r.source == "human"]
    # the policy kept proposing while the operator drove (a loaded machine may miss an odd tick)
    assert sum(r.observation is not None and r.policy_action is not None for r in human) >= 0.8 * len(human)
    assert any(np.abs(r.executed_action[:3]).max() > 0.01 for r in human)  # the operator moved the arm


def test_bad_sim_parameters_stop_with_a_clear_message(graph):
    assert_stops_with(graph, sim_arm(task="stack"), "parameter 'task'='stack'", startup=STARTUP)
    assert_stops_with(graph, NodeSpec("sim_operator", "iil_robot.nodes.sim_operator", parameters={"model": "psychic"}),
                      "model", startup=STARTUP)


def test_lockstep_runs_one_sim_step_per_step_record_faster_than_real_time(graph, probe):
    graph.start(sim_arm(lockstep=True))
    graph.start(observer())
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", params_files=(str(config_path("policy.yaml")),),
                         parameters={"act_on_observation": True}))
    graph.start(NodeSpec("mux", "iil_robot.nodes.mux", params_files=(str(config_path("mux.yaml")),)))
    steps = probe.collect(String, "step", RECORD_QOS)
    observations = probe.collect(String, "observation", RECORD_QOS)
    probe.wait_for(lambda: len(steps) >= 20 and len(observations) >= 20, STARTUP, "the lockstep loop to run")
    start_steps, start_obs, t0 = len(steps), len(observations), time.monotonic()
    probe.wait_for(lambda: len(steps) >= start_steps + 100, 30.0, "100 more ticks")
    elapsed = time.monotonic() - t0
    rate = (len(steps) - start_steps) / elapsed
    assert rate > 20.0, f"lockstep ran at {rate:.1f} ticks/s, no faster than real time (20 Hz)"
    # one observation per sim step, one sim step per step record (a few may be in flight at the edges)
    assert abs((len(observations) - start_obs) - (len(steps) - start_steps)) <= 6


def test_sim_arm_publishes_its_cameras_as_a_camera_driver_does(graph, probe):
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from iil_robot.data.camera import decode_jpeg
    from iil_robot.nodes.common import SENSOR_QOS

    graph.start(sim_arm(cameras=["external_camera_0", "gripper_camera_rgb"], image_size=64))
    images = {n: probe.collect(Image, f"{n}/image_raw", SENSOR_QOS) for n in ("external_camera_0", "gripper_camera_rgb")}
    jpeg = probe.collect(CompressedImage, "external_camera_0/image_raw/compressed", SENSOR_QOS)
    info = probe.collect(CameraInfo, "external_camera_0/camera_info", SENSOR_QOS)
    probe.wait_for(lambda: all(len(i) >= 3 for i in images.values()) and len(jpeg) and len(info), STARTUP, "camera topics")
    image = images["external_camera_0"].messages[-1]
    assert (image.width, image.height, image.encoding, image.header.frame_id) == (64, 64, "rgb8",
                                                                                 "external_camera_0_optical_frame")
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(64, 64, 3)
    assert pixels.std() > 5  # a rendered scene, not a blank frame
    gripper = np.frombuffer(bytes(images["gripper_camera_rgb"].messages[-1].data), np.uint8).reshape(64, 64, 3)
    assert np.abs(gripper.astype(int) - pixels).mean() > 5  # another viewpoint
    assert decode_jpeg(jpeg.messages[-1].data).shape == (64, 64, 3)
    k = info.messages[-1].k
    assert k[2] == k[5] == 32.0 and k[0] == k[4] > 0 and info.messages[-1].distortion_model == "plumb_bob"


def test_sim_arm_refuses_an_unknown_camera_naming_the_models_cameras(graph):
    assert_stops_with(graph, sim_arm(cameras=["wrist"]), "external_camera_0", startup=STARTUP)


def test_the_robot_gated_sim_operator_answers_a_help_request_and_lets_go_when_it_is_withdrawn(graph, probe):
    from sensor_msgs.msg import Joy
    from std_msgs.msg import Bool

    from iil_robot.data.records import Proposal
    from iil_robot.nodes.common import LATCHED_QOS
    from iil_robot.sim.spec import REACH_LAYOUT
    from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    values = tuple(float(v) for v in env.reset(seed=0)[0])
    env.close()
    graph.start(NodeSpec("sim_operator", "iil_robot.nodes.sim_operator",
                         parameters={"task": "reach", "model": "robot_gated", "level": 1.0}))
    joys = probe.collect(Joy, "spacenav/joy", SENSOR_QOS)
    decisions = probe.collect(String, "operator/decision", EVENTS_QOS)
    pose_pubs = {name: probe.publisher(PoseStamped, name, SENSOR_QOS) for name in ("ee_pose", "goal_pose")}
    obs_pub = probe.publisher(JointState, "joint_states", SENSOR_QOS)
    proposal_pub = probe.publisher(String, "policy/proposal", RECORD_QOS)
    help_pub = probe.publisher(Bool, "help/request", LATCHED_QOS)
    start = EpisodeEvent("start", "test", time.time())  # the operator acts inside episodes only
    probe.publisher(String, "episode/event", EVENTS_QOS).publish(String(data=start.encode()))
    layout = REACH_LAYOUT

    def pose(position) -> PoseStamped:
        msg = PoseStamped()
        msg.header.frame_id = "base_link"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = position
        return msg

    def feed():  # the policy holds still (a bad action on reach: no progress) and a new arm tick arrives
        now = time.time()
        proposal_pub.publish(String(data=Proposal((0.0,) * 7, values, 1, now, now).encode()))
        pose_pubs["ee_pose"].publish(pose(values[layout.grip_pos]))
        pose_pubs["goal_pose"].publish(pose(values[layout.goal]))
        obs_pub.publish(JointState(name=["r_gripper_finger_joint", "l_gripper_finger_joint"],
                                   position=list(values[layout.gripper_state])))

    def decided(kind):
        return [d for d in (json.loads(m.data) for m in decisions.messages) if d[kind]]

    probe.wait_for(lambda: len(joys) > 3 and obs_pub.get_subscription_count() > 0, STARTUP, "the operator's device", every=feed)
    count = len(joys)
    probe.wait_for(lambda: len(joys) > count + 10, 10.0, "device states while nobody asks", every=feed)
    assert not any(m.buttons[1] for m in joys.messages[count:]) and not decided("onset")  # not asked: hands off

    help_pub.publish(Bool(data=True))
    probe.wait_for(lambda: decided("onset"), 15.0, "the operator answering the request", every=feed)
    onset = decided("onset")[0]
    assert onset["model"] == "robot_gated" and onset["needed"] is True and "help requested" in onset["reason"]
    probe.wait_for(lambda: joys.messages[-1].buttons[1] == 1, 5.0, "the takeover button held", every=feed)

    help_pub.publish(Bool(data=False))
    probe.wait_for(lambda: decided("offset"), 15.0, "the operator letting go", every=feed)
    assert decided("offset")[0]["reason"].startswith("handed back")
    probe.wait_for(lambda: joys.messages[-1].buttons[1] == 0 and not any(joys.messages[-1].axes), 5.0, "the device released",
                   every=feed)


def test_hostile_inputs_are_logged_and_the_sim_operator_keeps_a_finite_device(graph, probe):
    from sensor_msgs.msg import Joy
    from std_msgs.msg import Bool, Float64

    from iil_robot.data.records import Proposal
    from iil_robot.nodes.common import LATCHED_QOS
    from iil_robot.nodes.peers.hostile import hostile_events, hostile_proposals
    from iil_robot.sim.spec import REACH_LAYOUT as layout
    from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    values = tuple(float(v) for v in env.reset(seed=0)[0])
    env.close()
    process = graph.start(NodeSpec("sim_operator", "iil_robot.nodes.sim_operator",
                                   parameters={"task": "reach", "model": "robot_gated", "level": 1.0}))
    joys = probe.collect(Joy, "spacenav/joy", SENSOR_QOS)
    decisions = probe.collect(String, "operator/decision", EVENTS_QOS)
    pose_pubs = {name: probe.publisher(PoseStamped, name, SENSOR_QOS) for name in ("ee_pose", "goal_pose")}
    joint_pub = probe.publisher(JointState, "joint_states", SENSOR_QOS)
    proposal_pub = probe.publisher(String, "policy/proposal", RECORD_QOS)
    event_pub = probe.publisher(String, "episode/event", EVENTS_QOS)
    gripper_pub = probe.publisher(Float64, "human/gripper", LATCHED_QOS)
    help_pub = probe.publisher(Bool, "help/request", LATCHED_QOS)
    event_pub.publish(String(data=EpisodeEvent("start", "test", time.time()).encode()))  # it acts inside episodes only

    def pose(position) -> PoseStamped:
        msg = PoseStamped()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = position
        return msg

    def feed(ee=values[layout.grip_pos], fingers=values[layout.gripper_state]):
        now = time.time()
        proposal_pub.publish(String(data=Proposal((0.0,) * 7, values, 1, now, now).encode()))
        pose_pubs["ee_pose"].publish(pose(ee))
        pose_pubs["goal_pose"].publish(pose(values[layout.goal]))
        joint_pub.publish(JointState(name=["r_gripper_finger_joint", "l_gripper_finger_joint"], position=list(fingers)))

    def feed_hostile():  # a corrupt arm: NaN poses and fingers, between the hostile records
        feed(ee=(math.nan, 0.0, math.inf), fingers=(math.nan, 0.0))

    probe.wait_for(lambda: len(joys) > 3 and joint_pub.get_subscription_count() > 0, STARTUP, "the operator's device", every=feed)
    for _, text in hostile_proposals():
        proposal_pub.publish(String(data=text))
    for _, text in hostile_events():
        event_pub.publish(String(data=text))
    gripper_pub.publish(Float64(data=math.nan))
    # the help request goes out only once the corrupt arm has reached the operator: a good joint state still queued
    # behind the request would otherwise be judged, rightly, on the last good scene
    probe.wait_for(lambda: "non-finite finger positions" in process.log_path.read_text(), 10.0, "the corrupt arm seen",
                   every=feed_hostile)
    help_pub.publish(Bool(data=True))  # asked while its view of the arm is corrupt: it must not deflect with NaN
    count = len(joys)
    probe.wait_for(lambda: len(joys) > count + 25, 10.0, "device states under hostile input", every=feed_hostile)
    assert process.popen.poll() is None
    assert all(math.isfinite(a) for m in joys.messages for a in m.axes), "a NaN reached the device"
    assert not any(d["onset"] for d in (json.loads(m.data) for m in decisions.messages)), "judged a corrupt scene"
    log = process.log_path.read_text()
    for phrase in ("undecodable proposal", "undecodable episode event", "ignoring ee_pose with a non-finite position",
                   "non-finite finger positions", "ignoring human/gripper = nan"):
        assert phrase in log, phrase
    assert log.count("undecodable proposal") <= 3, "throttled"
    probe.wait_for(lambda: any(json.loads(m.data)["onset"] for m in decisions.messages), 15.0,
                   "the operator answering the request once the arm is whole again", every=feed)


def test_sim_arm_stays_silent_until_the_mux_reaches_the_awaited_nodes(graph, probe):
    """As ``sim.launch.py`` runs it: every node starts at once, and nothing may happen (no observation, so no episode)
    before the recorder receives the mux's step records."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    graph.start(sim_arm(await_step_subscribers="recorder,learner"))
    poses = probe.collect(PoseStamped, "ee_pose", SENSOR_QOS)
    diagnostics = probe.publisher(DiagnosticArray, "/diagnostics", 10)

    def mux_reports(nodes: str, matched: int) -> None:
        status = DiagnosticStatus(name="mux: arbitration", values=[
            KeyValue(key="step_subscriber_nodes", value=nodes), KeyValue(key="step_subscribers", value=str(matched))])
        diagnostics.publish(DiagnosticArray(status=[status]))

    probe.wait_for(lambda: "waiting for the mux to report learner, recorder" in graph.tail("sim_arm", 20)
                   and diagnostics.get_subscription_count() > 0, STARTUP, "sim_arm waiting")
    # only the learner matched, then both named but one not matched yet: the arm stays silent
    probe.spin_for(0.0)
    for _ in range(20):
        mux_reports("learner", 1)
        mux_reports("learner,recorder", 1)
        probe.spin_for(0.05)
    assert poses.messages == []
    probe.wait_for(lambda: len(poses) > 0, 10.0, "the arm's first pose",
                   every=lambda: mux_reports("dashboard,learner,recorder", 3))


@pytest.mark.parametrize("profile", ["panda", "ur5e"])
def test_under_a_robot_profile_the_sim_arm_speaks_its_names_and_the_observer_reads_them(graph, probe, profile):
    loaded = load_profile(profile)
    arm = loaded.node_parameters("sim_arm")
    graph.start(NodeSpec("sim_arm", "iil_robot.nodes.sim_arm", parameters={"task": "push", **arm},
                         remappings=loaded.remappings))
    graph.start(observer(profile))
    joints = probe.collect(JointState, loaded.remappings["joint_states"], SENSOR_QOS)
    poses = probe.collect(PoseStamped, loaded.remappings["ee_pose"], SENSOR_QOS)
    observations = probe.collect(String, "observation", RECORD_QOS)
    probe.wait_for(lambda: len(observations) >= 3 and len(joints) and len(poses), STARTUP,
                   f"observations, joint states and poses of the {profile} profile")
    assert list(joints.messages[-1].name) == [n for n in arm["joint_names"] if n]
    assert poses.messages[-1].header.frame_id == arm["frame_id"]
    observation = Observation.decode(observations.messages[-1].data)
    fingers = loaded.node_parameters("observer")["fields.fingers.joints"]
    assert observation.fields[:5] == ("ee.x", "ee.y", "ee.z", *(f"fingers.{j}" for j in fingers))
    assert observation.spec == loaded.node_parameters("observer")["observation_spec"]


def test_a_command_in_another_frame_is_refused_and_the_arm_holds(graph, probe):
    graph.start(sim_arm())
    poses = probe.collect(PoseStamped, "ee_pose", SENSOR_QOS)
    cmd = probe.publisher(TwistStamped, "arm/cmd", COMMAND_QOS)
    probe.wait_for(lambda: len(poses) >= 5 and cmd.get_subscription_count() > 0, STARTUP, "sim_arm poses")
    command = twist_stamped((0.0, 0.2, 0.0, 0.0, 0.0, 0.0), "tool0", probe.node.get_clock().now().to_msg())
    timer = probe.node.create_timer(0.02, lambda: cmd.publish(command))
    start = len(poses)
    probe.wait_for(lambda: len(poses) >= start + 30, 30.0, "30 ticks of a command in the wrong frame")
    timer.cancel()
    held = positions(poses)[start + 5:start + 30]
    assert np.abs(held - held[0]).max() < 1e-3
    probe.wait_for(lambda: "arm/cmd in frame 'tool0', not 'base_link': refused" in graph.tail("sim_arm", 50), 10.0,
                   "the refusal in the log")


def test_the_episode_manager_refuses_a_request_in_the_wrong_state_and_the_arm_holds(graph, probe):
    """Success while resetting is refused, saying why; start while resetting too; the episode lock stays held."""
    from std_msgs.msg import Bool

    from iil_robot.nodes.common import LATCHED_QOS

    graph.start(NodeSpec("episode_manager", "iil_robot.nodes.episode_manager",
                         parameters={"reset_pose": [0.0, 0.0, 1.0], "reset_timeout": 60.0, "success_fields": ["ee", "goal"]}))
    fields = ("ee.x", "ee.y", "ee.z", "goal.x", "goal.y", "goal.z")
    observations = probe.publisher(String, "observation", RECORD_QOS)
    requests = probe.publisher(String, "episode/request", EVENTS_QOS)
    states = probe.collect(String, "episode/state", LATCHED_QOS)
    hold = probe.collect(Bool, "episode/hold", LATCHED_QOS)
    events = probe.collect(String, "episode/event", EVENTS_QOS)

    def tick():  # the end effector far from the reset pose: the reset keeps driving
        observations.publish(String(data=Observation((0.0,) * 3 + (1.0,) * 3, "toy/v1", time.time(), fields).encode()))

    probe.wait_for(lambda: states.messages and states.messages[-1].data == "resetting", STARTUP, "the first reset", every=tick)
    requests.publish(String(data="success"))
    requests.publish(String(data="start"))
    probe.wait_for(lambda: "start refused: cannot start an episode while resetting" in graph.tail("episode_manager", 20),
                   10.0, "the refusals in the log", every=tick)
    assert "success refused: no episode is running (resetting)" in graph.tail("episode_manager", 20)
    probe.wait_for(lambda: hold.messages, 10.0, "the episode lock (latched)", every=tick)
    assert events.messages == [] and hold.messages[-1].data is True and states.messages[-1].data == "resetting"


def test_an_episode_ends_at_the_first_step_the_policy_did_not_drive_after_the_hold(graph, probe):
    """The end event waits for the mux: a policy tick taken before the episode lock reached the mux stays inside the
    episode; the event is stamped with the first step after the hold that the policy did not drive."""
    from std_msgs.msg import Bool

    from iil_robot.nodes.common import LATCHED_QOS
    from tests.records_factory import step

    graph.start(NodeSpec("episode_manager", "iil_robot.nodes.episode_manager",
                         parameters={"success_fields": ["ee", "goal"], "end_wait": 10.0}))
    fields = ("ee.x", "ee.y", "ee.z", "goal.x", "goal.y", "goal.z")
    observations = probe.publisher(String, "observation", RECORD_QOS)
    steps = probe.publisher(String, "step", RECORD_QOS)
    states = probe.collect(String, "episode/state", LATCHED_QOS)
    hold = probe.collect(Bool, "episode/hold", LATCHED_QOS)
    events = probe.collect(String, "episode/event", EVENTS_QOS)

    def observe(ee: float):
        observations.publish(String(data=Observation((ee,) * 3 + (1.0,) * 3, "toy/v1", time.time(), fields).encode()))

    probe.wait_for(lambda: states.messages and states.messages[-1].data == "running", STARTUP, "the first episode",
                   every=lambda: observe(0.0))
    observe(1.0)  # at the goal: success
    probe.wait_for(lambda: hold.messages and hold.messages[-1].data is True, 10.0, "the episode lock")
    policy_tick = time.time() + 1.0
    steps.publish(String(data=step(1, "policy", stamp=policy_tick).encode()))
    probe.spin_for(0.5)
    assert [EpisodeEvent.decode(m.data).event for m in events.messages] == ["start"]  # the end still waits
    steps.publish(String(data=step(2, "hold", stamp=policy_tick + 0.05).encode()))
    probe.wait_for(lambda: len(events.messages) == 2, 10.0, "the success event")
    end = EpisodeEvent.decode(events.messages[-1].data)
    assert end.event == "success" and end.stamp == pytest.approx(policy_tick + 0.05)


def test_a_success_classifier_on_the_camera_ends_a_running_episode(graph, probe):
    """A user's image model, named by module and attribute, judges the camera; a white image means done."""
    from sensor_msgs.msg import Image

    graph.start(NodeSpec("episode_manager", "iil_robot.nodes.episode_manager",
                         parameters={"success_classifier": "tests.acting.classifiers:bright", "success_threshold": 0.9,
                                     "time_limit": 0.0, "end_wait": 0.1}))
    observations = probe.publisher(String, "observation", RECORD_QOS)
    images = probe.publisher(Image, "camera/front/image_raw", SENSOR_QOS)
    states = probe.collect(String, "episode/state", LATCHED_QOS)
    events = probe.collect(String, "episode/event", EVENTS_QOS)

    def observe():
        observations.publish(String(data=Observation((0.0,) * 3, "toy/v1", time.time(), ("ee.x", "ee.y", "ee.z")).encode()))

    def image(value: int) -> Image:
        return Image(height=4, width=4, encoding="rgb8", step=12, data=bytes([value]) * 48)

    probe.wait_for(lambda: states.messages and states.messages[-1].data == "running", STARTUP, "the first episode",
                   every=observe)
    for _ in range(5):
        images.publish(image(0))  # dark: not done
        probe.spin_for(0.1)
    images.publish(Image(height=4, width=4, encoding="mono8", step=4, data=bytes(16)))  # refused by name
    assert [EpisodeEvent.decode(m.data).event for m in events.messages] == ["start"]
    probe.wait_for(lambda: len(events.messages) == 2, 10.0, "the success", every=lambda: images.publish(image(255)))
    assert EpisodeEvent.decode(events.messages[-1].data).event == "success"
    assert "success camera: image encoding 'mono8' is not a colour image" in graph.tail("episode_manager", 30)


def test_a_success_classifier_that_cannot_be_loaded_stops_the_manager_with_its_name(graph):
    spec = NodeSpec("episode_manager", "iil_robot.nodes.episode_manager",
                    parameters={"success_classifier": "tests.acting.classifiers:missing"})
    assert_stops_with(graph, spec, "'tests.acting.classifiers' has no 'missing'")


def test_sim_arm_takes_its_gripper_as_a_position_controller_and_refuses_a_bad_command(graph, probe):
    from std_msgs.msg import Float64MultiArray

    # push blocks the fingers: pick_and_place moves them
    graph.start(sim_arm(task="pick_and_place", gripper_open_position=0.04, gripper_closed_position=0.0))
    joints = probe.collect(JointState, "joint_states", SENSOR_QOS)
    gripper = probe.publisher(Float64MultiArray, "gripper/commands", COMMAND_QOS)
    probe.wait_for(lambda: len(joints) >= 5 and gripper.get_subscription_count() > 0, STARTUP, "sim_arm joint states")

    def width() -> float:
        last = joints.messages[-1]
        return sum(p for n, p in zip(last.name, last.position) if "finger" in n)

    opened = width()
    gripper.publish(Float64MultiArray(data=[0.0]))  # the closed position
    probe.wait_for(lambda: width() < opened - 0.02, 10.0, "the fingers closing")
    closed = width()
    gripper.publish(Float64MultiArray(data=[0.01, 0.02]))  # two positions for a one-joint controller
    probe.wait_for(lambda: "gripper/commands needs one finite position" in graph.tail("sim_arm", 20), 10.0, "the refusal")
    probe.spin_for(0.5)
    assert width() <= closed + 1e-3  # it kept its command


def test_the_observer_gives_the_goal_in_the_end_effectors_frame(graph, probe):
    """A field relative to the end effector (relative_to, expressed_in) from the arm's own topics: R^T (goal - ee),
    with R the end effector's orientation, checked against the absolute fields of the same observation."""
    loaded = load_profile("fetch")
    parameters = loaded.node_parameters("observer") | {
        "fields": ["ee", "fingers", "object", "goal", "ee_orientation", "goal_in_ee"],
        "fields.ee_orientation.kind": "orientation", "fields.ee_orientation.topic": "ee_pose",
        "fields.goal_in_ee.kind": "position", "fields.goal_in_ee.topic": "goal_pose",
        "fields.goal_in_ee.relative_to": "ee", "fields.goal_in_ee.expressed_in": "ee_orientation"}
    graph.start(sim_arm(action_space="6dof"))
    graph.start(NodeSpec("observer", "iil_robot.nodes.observer", parameters=parameters, remappings=loaded.remappings))
    observations = probe.collect(String, "observation", RECORD_QOS)
    probe.wait_for(lambda: len(observations) >= 3, STARTUP, "observations with the goal in the end effector's frame")
    observation = Observation.decode(observations.messages[-1].data)
    values = dict(zip(observation.fields, observation.values))
    from iil_robot.data.rotation import matrix_from_quaternion

    rotation = matrix_from_quaternion([values[f"ee_orientation.{c}"] for c in ("qx", "qy", "qz", "qw")])
    offset = np.array([values[f"goal.{a}"] - values[f"ee.{a}"] for a in "xyz"])
    relative = [values[f"goal_in_ee-ee@ee_orientation.{a}"] for a in "xyz"]
    assert relative == pytest.approx(rotation.T @ offset, abs=1e-9)
    assert not np.allclose(rotation, np.eye(3), atol=1e-3)  # the simulated gripper points down: the axes differ
