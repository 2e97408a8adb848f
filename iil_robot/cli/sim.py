"""``iil-robot sim``: the main job, the whole loop on the simulated arm with a simulated operator.

Starts every node as its own process, from the same parameter files the launch files use
(``config/<node>.yaml`` then ``config/sim.yaml``), with DDS kept on this machine: the sim arm,
the simulated operator (a virtual SpaceMouse), the gate, the mux, the policy, the recorder and
the learner (the recorder and the learner first; the arm last, once the mux reports them subscribed to its step
records), and with ``--cameras front,wrist`` the camera node, on the images the sim arm renders. Runs a number of
episodes with a live dashboard, stops every process cleanly (Ctrl-C too), and leaves a run folder::

    runs/<name>/
      run.json        what was run (used by --resume)
      bags/           the recorder's rosbag2 bags (the source of truth)
      learner/        checkpoints and TensorBoard logs
      logs/           one log per node
      report/         report.md, episodes.png, learning_curve.png, learner.png, report.json
      camera_latest.jpg  the newest camera frame (when a camera node runs), rewritten about once a second

``--resume RUN`` continues a run: the learner reloads its checkpoint and rebuilds its buffers
from the bags, the sim continues with new seeds, and the report covers the whole run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from iil_robot.cli.console import KEYS as EPISODE_KEYS
from iil_robot.cli.console import console_keys, read_key
from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.command.mux import step_records_reach
from iil_robot.config import config_path
from iil_robot.config.profiles import RobotProfile, action_parameters, load_profile, profile_names
from iil_robot.data.actions import ACTION_FRAMES, ACTION_SPACES, DEFAULT_ACTION_SPACE, action_space
from iil_robot.data.frames import camera_names
from iil_robot.learners.methods import METHODS
from iil_robot.sim.spec import CAMERAS, DEFAULT_MAX_EPISODE_STEPS

if TYPE_CHECKING:
    from iil_robot.nodes.console.dashboard import Dashboard

# Stopped in this order, so the recorder and the learner see everything the others sent.
STOP_ORDER = ("episode_manager", "sim_operator", "policy", "sim_arm", "camera", "arm_status", "observer", "spacemouse_gate",
              "mux", "learner", "recorder")
"""The manager first, so no episode starts after the run's last (the next one's reset takes about a second); the
recorder last, so it records everything the others send until they stop."""

STAND_INS = ("sim_arm", "sim_operator")
"""The only nodes a real arm does not run: the arm's drivers and the operator (the rest is intervention.launch.py's)."""
LISTENERS = ("recorder", "learner")
"""Started first and awaited: every episode is recorded and reaches the learner."""
LIVE_METHODS = [m.name for m in METHODS.values() if m.operator == "human_gated" and not m.operator_noise and m.interactive]
"""Methods the graph runs as it is: the others need an operator who labels every step or answers help requests,
noise on the operator's commands, or training once on demos (``bench learning`` runs them all)."""


DEFAULT_TASK = "reach"
DEFAULT_OPERATOR_LEVEL = 0.9
DEFAULT_EPISODES = 150
"""The default run: the task, operator and length that show the policy learning within ten minutes on two CPU cores
(docs/sim.md "What the default run shows"); push needs more updates than a CPU makes in that time."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=DEFAULT_TASK, choices=("reach", "push", "pick_and_place"),
                        help=f"Fetch task (default {DEFAULT_TASK})")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                        help=f"episodes to run (default {DEFAULT_EPISODES}: about seven minutes of reach on 2 cores)")
    parser.add_argument("--method", default="rlif", choices=LIVE_METHODS,
                        help="learning method (default rlif): " + "; ".join(f"{m}: {METHODS[m].summary}" for m in LIVE_METHODS))
    parser.add_argument("--operator-model", default="value", choices=("value", "random", "demo", "never", "robot_gated"),
                        help="robot_gated: steps in only when the policy asks (with --set policy.help.enabled=true)")
    parser.add_argument("--operator-level", type=float, default=DEFAULT_OPERATOR_LEVEL,
                        help=f"simulated operator quality in [0, 1] (default {DEFAULT_OPERATOR_LEVEL})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None, help="run folder (default runs/<date>_<time>)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN", help="continue the run in this folder")
    add_domain_argument(parser, "ROS_DOMAIN_ID of the graph (default: $ROS_DOMAIN_ID or 0)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", dest="overrides",
                        help="override a node parameter, e.g. --set learner.min_transitions=64 (repeatable)")
    parser.add_argument("--robot", default="fetch", choices=profile_names(),
                        help="robot profile (config/profiles): the simulated arm presents itself under its topic, joint and "
                             "frame names, and every node gets its parameters (default fetch)")
    parser.add_argument("--action-space", default=DEFAULT_ACTION_SPACE, choices=list(ACTION_SPACES),
                        help="what the policy learns and proposes, each with the gripper: translation (vx vy vz, default), "
                             "translation_yaw (+ wz) or 6dof (+ wx wy wz); with rotations the observation also carries the "
                             "end effector's orientation and the simulated operator keeps the gripper's")
    parser.add_argument("--action-frame", default="base", choices=list(ACTION_FRAMES),
                        help="frame of the learned velocities: base (the command frame, default) or tool (the end "
                             "effector's; the observation then carries its orientation)")
    parser.add_argument("--cameras", type=sim_cameras, default=(), metavar="NAME[,NAME...]",
                        help=f"cameras the sim arm renders and the camera node publishes, in this order for the policy, the "
                             f"learner and the recorder: {', '.join(f'{k} ({v})' for k, v in CAMERAS.items())}; default none "
                             "(rendering costs CPU). A camera policy also needs --set learner.image_width=W "
                             "--set learner.image_height=H (docs/sim.md)")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the first step record")


def sim_cameras(text: str) -> tuple[str, ...]:
    """``--cameras``: comma-separated names of the sim arm's cameras (``CAMERAS``)."""
    try:
        names = camera_names(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    unknown = [name for name in names if name not in CAMERAS]
    if unknown:
        raise argparse.ArgumentTypeError(f"no simulated camera {', '.join(unknown)}; the sim arm has {', '.join(CAMERAS)}")
    return names


def camera_overrides(cameras: tuple[str, ...] | list[str]) -> dict[str, dict[str, object]]:
    """What the named cameras (of ``CAMERAS``) change in the simulated graph: the sim arm renders their MuJoCo cameras
    and publishes them as a camera driver does; the camera node takes each driver topic as a topic camera of that name,
    exactly as a real driver's; the policy pairs their frames with its observations (their stamps go into the step
    records), the learner learns from them when it has an image size, and the recorder records their JPEG frames.
    No cameras: no camera node (``"camera"`` absent) and no camera topic recorded."""
    names = ",".join(cameras)
    if not cameras:
        return {"recorder": {"cameras": ""}}
    camera: dict[str, object] = {}
    for name in cameras:
        mujoco_camera = CAMERAS[name]
        camera |= {f"cameras.{name}.type": "image", f"cameras.{name}.topic": f"{mujoco_camera}/image_raw",
                   f"cameras.{name}.frame_id": f"{mujoco_camera}_optical_frame"}  # the sim arm's frame of that camera
    return {"sim_arm": {"cameras": [CAMERAS[name] for name in cameras]}, "camera": camera, "policy": {"cameras": names},
            "learner": {"cameras": names}, "recorder": {"cameras": names}}


def _load_run(args: argparse.Namespace) -> tuple[Path, dict]:
    """The run folder and its settings: new, or those of ``--resume``."""
    if args.resume is not None:
        run_json = args.resume / "run.json"
        if not run_json.is_file():
            raise SystemExit(f"--resume {args.resume}: no run.json there; give the folder of an earlier `iil-robot sim` run")
        settings = json.loads(run_json.read_text())
        if "method" not in settings:
            raise SystemExit(f"--resume {args.resume}: run.json names no learning method (a run of an older version); "
                             "start a new run")
        return args.resume, settings
    run_dir = args.run_dir or Path("runs") / datetime.now().strftime("%Y%m%d_%H%M%S")
    if (run_dir / "run.json").exists():
        raise SystemExit(f"{run_dir} already holds a run; use --resume {run_dir} to continue it, or another --run-dir")
    settings = {
        "task": args.task, "method": args.method, "robot": args.robot, "operator_model": args.operator_model,
        "operator_level": args.operator_level, "seed": args.seed, "episodes_done": 0, "action_space": args.action_space,
        "action_frame": args.action_frame, "cameras": list(args.cameras),
    }
    return run_dir, settings


def parse_overrides(items: list[str]) -> dict[str, dict[str, object]]:
    """``["learner.min_transitions=64"]`` -> ``{"learner": {"min_transitions": 64}}`` (values read as YAML)."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not (sep and dot and node and param):
            raise SystemExit(f"--set {item!r}: expected NODE.PARAM=VALUE, e.g. --set learner.min_transitions=64")
        out.setdefault(node, {})[param] = yaml.safe_load(value) if value else ""
    return out


def sim_overrides(profile: RobotProfile, task: str, space: str = DEFAULT_ACTION_SPACE,
                  frame: str = "base") -> dict[str, dict[str, object]]:
    """What the simulated task changes in a profile's parameters: a task without a block (reach) has no object pose,
    so the observer's fields that read one are left out and success is the end effector at the goal; the time
    limit is the task's; the recorder stores the task with each episode; the reset pose and the workspace are the
    simulated arm's (whatever robot it presents itself as), and between episodes the episode manager has the
    simulator put the scene back and starts the next episode by itself; the mux commands the gripper as a position
    controller; where the profile relays a driver's status (``arm_status``, e.g. the Franka robot mode), the relay
    reads the simulated arm's (std_msgs/UInt8, 0 healthy) instead. An action ``space`` with rotations adds the end
    effector's orientation to the observation (``ee_orientation``), lets the gate pass the cap's rotations and has
    the simulated operator keep the gripper's orientation; the tool ``frame`` adds the orientation too (the policy
    rotates its action by it)."""
    observer = profile.node_parameters("observer")
    fields = [f for f in observer.get("fields", [])
              if task != "reach" or observer.get(f"fields.{f}.topic") != "object_pose"]
    rotation: dict[str, dict[str, object]] = {"observer": {}}
    if action_space(space).rotates or frame == "tool":
        fields.append("ee_orientation")
        rotation = {"observer": {"fields.ee_orientation.kind": "orientation", "fields.ee_orientation.topic": "ee_pose"}}
    if action_space(space).rotates:
        rotation |= {"spacemouse_gate": {"active_axes": "6dof"}, "sim_operator": {"correct_orientation": True}}
    success = ["ee", "goal"] if task == "reach" else ["object", "goal"]
    rate = yaml.safe_load(config_path("sim.yaml").read_text())["sim_arm"]["ros__parameters"]["rate"]
    time_limit = DEFAULT_MAX_EPISODE_STEPS[task] / rate
    fetch = load_profile("fetch")
    arm = {k: v for k, v in fetch.node_parameters("episode_manager").items() if k.startswith(("reset_", "workspace_"))}
    workspace = {k: v for k, v in fetch.node_parameters("mux").items() if k.startswith("workspace.")}
    # the simulated arm takes its gripper as a ros2_control position controller would (a Franka hand's or a
    # Robotiq's action server is not there), at its own positions; the profile's binary or continuous mode stays
    gripper = {"gripper.output": "position_controller", "gripper.open_position": 0.05, "gripper.closed_position": 0.0}
    return {**rotation, "observer": {"fields": fields, **rotation["observer"]}, "mux": {**workspace, **gripper},
            "episode_manager": {**arm, "success_fields": success, "time_limit": time_limit, "auto_start": True,
                                "scene_reset_service": "/sim_arm/reset_scene"},
            "recorder": {"task": task}, **_simulated_status(profile)}


def _simulated_status(profile: RobotProfile) -> dict[str, dict[str, object]]:
    """The relay of the profile's driver status, fed by the simulated arm's status (sim_arm ``status_topic``)."""
    relay = profile.node_parameters("arm_status")
    if not relay:
        return {}
    return {"arm_status": {"message_type": "std_msgs/msg/UInt8", "field": "data", "ok_values": [0]},
            "sim_arm": {"status_topic": relay.get("topic", "arm_status")}}


def graph_nodes(run_dir: Path, s: dict, resume: bool, overrides: dict[str, dict[str, object]] | None = None) -> list[NodeSpec]:
    """Every node of the simulated graph, from the shared parameter files plus this run's values."""
    overrides = overrides or {}
    task, profile = s["task"], load_profile(s.get("robot", "fetch"))
    seed = s["seed"] + s["episodes_done"]
    space = s.get("action_space", DEFAULT_ACTION_SPACE)  # run.json of a run before action spaces: translation
    frame = s.get("action_frame", "base")  # a run before action frames: base
    sim = sim_overrides(profile, task, space, frame)
    cameras = camera_overrides(s.get("cameras", []))  # a run before cameras: none
    sim = {name: {**sim.get(name, {}), **cameras.get(name, {})} for name in {*sim, *cameras}}
    action = action_parameters(profile, space, overrides.get("mux"), frame)

    def node(name: str, module: str, own_file: str | None, **parameters) -> NodeSpec:
        files = ((str(config_path(own_file)),) if own_file else ()) + (str(config_path("sim.yaml")),)
        return NodeSpec(name, f"iil_robot.nodes.{module}", params_files=files,
                        parameters={**profile.node_parameters(name), **sim.get(name, {}), **parameters,
                                    **overrides.get(name, {})},
                        remappings=profile.remappings)

    relay = [node("arm_status", "arm_status", None)] if profile.node_parameters("arm_status") else []
    # not config/camera.yaml: its device camera front would open /dev/video0; the sim's cameras are driver topics
    camera = [node("camera", "camera", None)] if "camera" in sim else []
    return relay + camera + [
        node("observer", "observer", None),
        node("episode_manager", "episode_manager", None, seed=seed),
        node("sim_arm", "sim_arm", None, task=task, seed=seed),
        node("sim_operator", "sim_operator", None, task=task, model=s["operator_model"],
             level=float(s["operator_level"]), seed=seed),
        node("spacemouse_gate", "spacemouse_gate", "spacemouse_gate.yaml"),
        node("mux", "mux", "mux.yaml"),
        node("policy", "policy_node", "policy.yaml", **action),
        node("recorder", "recorder", "recorder.yaml", output_dir=str(run_dir / "bags"),
             operator=f"sim {s['operator_model']} operator, level {s['operator_level']}"),
        node("learner", "learner", "learner.yaml", method=s["method"], **action,
             run_dir=str(run_dir / "learner"), bags_dir=str(run_dir / "bags") if resume else ""),
    ]


def run(args: argparse.Namespace) -> int:
    run_dir, settings = _load_run(args)
    overrides = parse_overrides(args.overrides)
    unknown = set(overrides) - set(STOP_ORDER)
    if unknown:
        raise SystemExit(f"--set: no node named {sorted(unknown)}; the nodes are {', '.join(STOP_ORDER)}")
    cameras = settings.get("cameras", [])
    if not cameras and any(overrides.get("learner", {}).get(f"image_{side}") for side in ("width", "height")):
        raise SystemExit("--set learner.image_width/image_height: a camera policy needs cameras; add --cameras front "
                         "(or front,wrist)")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(settings, indent=2))
    env = loopback_env(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    space = settings.get("action_space", DEFAULT_ACTION_SPACE)
    frame = settings.get("action_frame", "base")
    seen = f", cameras {','.join(cameras)}" if cameras else ""
    title = (f"iil-robot sim: {settings['task']}, {settings['method']}"
             f"{'' if space == DEFAULT_ACTION_SPACE else f' in {space}'}{'' if frame == 'base' else f' ({frame} frame)'}, "
             f"{settings['operator_model']} operator "
             f"at {100 * float(settings['operator_level']):.0f} %{seen}  ({run_dir})")
    interactive = sys.stdout.isatty()
    print(f"[sim] {title}\n[sim] DDS on loopback, domain {args.domain_id}; logs in {run_dir / 'logs'}", flush=True)

    from iil_robot.nodes.console.dashboard import Dashboard  # rclpy only once the environment is set

    graph = Graph(env, run_dir / "logs")
    dashboard = Dashboard(args.domain_id, title, args.episodes, interactive, run_dir, camera=cameras[0] if cameras else "front")
    code = 0
    try:
        specs = graph_nodes(run_dir, settings, args.resume is not None, overrides)
        for spec in specs:
            if spec.name in LISTENERS:
                graph.start(spec)
        code = _await_listeners(graph, dashboard, args)
        if code == 0:
            for spec in specs:
                if spec.name not in LISTENERS + ("sim_arm",):
                    graph.start(spec)
            code = _await_step_subscribers(graph, dashboard, args)
        if code == 0:
            graph.start(next(spec for spec in specs if spec.name == "sim_arm"))
            code = _watch(graph, dashboard, args)
    except KeyboardInterrupt:
        print("\n[sim] interrupted: stopping every node", flush=True)
    finally:
        for name in STOP_ORDER:
            if name in graph.processes:
                graph.stop(name, timeout=10.0)
        graph.stop()
        settings["episodes_done"] += len(dashboard.state.finished)
        (run_dir / "run.json").write_text(json.dumps(settings, indent=2))
        dashboard.close()
    return _finish(run_dir, title, code, dashboard.state.learner)


def _report_crashed(graph: Graph) -> bool:
    """Print the report of every node that died; whether one did."""
    dead = graph.crashed()
    for process in dead:
        print(f"[sim] {graph.report(process)}", flush=True)
    return bool(dead)


def _await_listeners(graph: Graph, dashboard: "Dashboard", args: argparse.Namespace) -> int:
    """Spin until the recorder and the learner report on /diagnostics (they are listening), so no episode runs
    before it can be recorded and learned from (the learner's start-up, torch and a rebuild from the bags, can take
    many seconds on a loaded machine). 1 if one died or did not report within ``--startup-timeout``."""
    started = time.monotonic()
    print(f"[sim] starting {' and '.join(LISTENERS)} first ...", flush=True)
    while not (dashboard.state.recorder and dashboard.state.learner):
        dashboard.spin_for(0.2)
        if _report_crashed(graph):
            return 1
        if time.monotonic() - started > args.startup_timeout:
            silent = [name for name, state in (("recorder", dashboard.state.recorder), ("learner", dashboard.state.learner))
                      if not state]
            print(f"[sim] {' and '.join(silent)} did not report on /diagnostics within {args.startup_timeout:.0f} s; "
                  f"see {graph.log_dir}", flush=True)
            return 1
    print(f"[sim] recorder and learner up after {time.monotonic() - started:.1f} s; starting the other nodes", flush=True)
    return 0


def _await_step_subscribers(graph: Graph, dashboard: "Dashboard", args: argparse.Namespace) -> int:
    """Spin until the mux reports the recorder, the learner and this dashboard subscribed to its step records, so the
    arm's first tick is recorded: the recorder reporting on /diagnostics does not mean its process has discovered the
    mux's yet (on a loaded machine the first 2 s of ticks were lost). 1 if a node died or the count did not arrive."""
    started, wanted = time.monotonic(), {*LISTENERS, "dashboard"}
    while not step_records_reach(dashboard.state.mux, wanted):
        dashboard.spin_for(0.2)
        if _report_crashed(graph):
            return 1
        if time.monotonic() - started > args.startup_timeout:
            print(f"[sim] the mux did not report {', '.join(sorted(wanted))} subscribed to its step records within "
                  f"{args.startup_timeout:.0f} s (it reports {dashboard.state.mux.get('step_subscriber_nodes') or 'none'}); "
                  f"see {graph.log_dir}", flush=True)
            return 1
    print("[sim] the mux's step records reach the recorder, the learner and the dashboard; starting the arm", flush=True)
    return 0


def _watch(graph: Graph, dashboard: "Dashboard", args: argparse.Namespace) -> int:
    """Spin the dashboard until enough episodes ended or a node died (then 1)."""
    started = time.monotonic()
    with console_keys() as keys:
        if keys:
            dashboard.keys_line = "keys: n start  s success  f failure  r reset  q stop the run"
        code = _until_done(graph, dashboard, args, started, keys)
    if code:
        return code
    if dashboard.interactive:
        dashboard.draw()
        print(f"[sim] console: {dashboard.redraws.summary()}", flush=True)
    learner = dashboard.state.learner
    said = learner.get("message", "")
    print(f"[sim] learner: {learner.get('updates', 0)} updates, policy version {learner.get('version', 0)}, "
          f"buffers {learner.get('prior', 0)} prior + {learner.get('online', 0)} online, "
          f"{learner.get('updates_per_env_step', '-')} updates per env step (budget {learner.get('budget_per_env_step', '?')}), "
          f"{learner.get('sizes', 'sizes not reported')}"
          + (f"; it reports: {said}" if said and said != "training" else ""), flush=True)
    return 0


def _until_done(graph: Graph, dashboard: "Dashboard", args: argparse.Namespace, started: float, keys: bool) -> int:
    """Spin the dashboard (and take the console's episode keys) until enough episodes ended (0) or a node died (1)."""
    while len(dashboard.state.finished) < args.episodes:
        dashboard.spin_for(0.2)
        key = read_key() if keys else ""
        if key == "q":
            raise KeyboardInterrupt
        if key in EPISODE_KEYS:
            dashboard.request(EPISODE_KEYS[key])
        if _report_crashed(graph):
            print("[sim] stopping the other nodes safely", flush=True)
            return 1
        if dashboard.state.steps == 0 and time.monotonic() - started > args.startup_timeout:
            print(f"[sim] no step record within {args.startup_timeout:.0f} s: the graph did not start; see the logs", flush=True)
            return 1
    return 0


def _finish(run_dir: Path, title: str, code: int, learner: dict[str, str]) -> int:
    from iil_robot.cli.report import write_report  # matplotlib is heavy: only needed at the end

    try:
        report = write_report(run_dir, title, learner)
    except Exception as err:  # the run's data is in the bags whatever happens to the report
        print(f"[sim] could not write the report ({type(err).__name__}: {err}); the bags in {run_dir / 'bags'} are intact",
              flush=True)
        return code or 1
    print(f"[sim] report: {report}", flush=True)
    print(report.read_text().split("\n\n")[1].strip(), flush=True)  # the totals
    print(f"[sim] continue this run with: iil-robot sim --resume {run_dir}", flush=True)
    return code

