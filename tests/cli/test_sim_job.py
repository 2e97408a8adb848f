"""The main job end to end, as a user runs it, and its run folder."""
import argparse
import json
import os
import re
import subprocess
import sys

import pytest

from iil_robot.cli.sim import parse_overrides
from iil_robot.data.bags import find_bags, read_messages
from iil_robot.data.recordings import load_recording


def run_sim(*args, timeout=400):
    env = dict(os.environ)
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # the job must keep DDS on loopback itself
    return subprocess.run([sys.executable, "-m", "iil_robot.cli", "sim", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_short_run_leaves_bags_a_report_and_a_learning_policy(tmp_path, domain_id):
    run = tmp_path / "run"
    # A small learner at nice 0: this checks that the loop closes, not how fast the shipped networks train (the
    # figures in docs/benchmarks.md). At nice 19 the learner gives way to every other process, and on a test machine busy with
    # other work it got ~1 % of a core and no weights within 8 short episodes (its diagnostics say "starved of CPU";
    # tests/nodes/test_learner_node.py checks that warning).
    small = ["learner.rlpd.hidden=[64,64]", "learner.rlpd.num_qs=2", "learner.rlpd.batch_size=64", "learner.rlpd.utd_ratio=1",
             "learner.nice=0"]
    # the operator at 0.7, not the default 0.9: a weaker operator lets the time limit end some of the 8 episodes
    proc = run_sim("--task", "reach", "--operator-level", "0.7", "--episodes", "8", "--run-dir", str(run),
                   "--domain-id", str(domain_id),
                   "--set", "learner.min_transitions=32", "--set", "learner.publish_every_updates=5",
                   "--set", "learner.publish_period=1.0", "--set", "learner.event_delay=0.2",
                   "--set", "learner.warm_start_updates=20", *[a for s in small for a in ("--set", s)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DDS on loopback" in proc.stdout and "report:" in proc.stdout
    final = re.search(r"\[sim\] learner: (\d+) updates, policy version (\d+)", proc.stdout)
    assert final and int(final.group(1)) > 0 and int(final.group(2)) >= 1, \
        proc.stdout[-2000:] + "\nthe learner's log:\n" + (run / "logs" / "learner.log").read_text()[-3000:]  # seen live

    # bags decode, and hold one step record per control tick (consecutive mux ticks, none lost)
    recording = load_recording([run / "bags"])
    assert recording.undecodable == 0
    ticks = [s.tick for s in recording.steps]
    assert len(ticks) > 100 and sorted(ticks) == list(range(min(ticks), max(ticks) + 1))
    # the arm started only once the recorder was subscribed: the mux's holds before the first episode are in the bag
    first_start = min(e.stamp for e in recording.events if e.event == "start")
    assert min(s.stamp for s in recording.steps) < first_start
    assert len([e for e in recording.episodes if e.outcome in ("success", "timeout")]) >= 5
    # the episode manager decides episodes; the policy never drives outside a running one (resets are driven by the
    # reset source), and the time limit ends some
    assert {e.origin for e in recording.events} == {"episode_manager"}
    assert any(e.event == "timeout" for e in recording.events)
    inside = {s.tick for e in recording.episodes for s in e.steps}
    outside = [s for s in recording.steps if s.tick not in inside]
    # an episode ends where the mux stopped the policy (the end event waits for the lock to reach the mux)
    late = [s for s in outside if s.source == "policy"]
    assert outside and late == [], late
    assert any(s.source_name == "reset" for s in outside)
    # the manager's states are in the bags too: each episode runs, ends and resets
    states = [m.message.data for bag in find_bags([run / "bags"]) for m in read_messages(bag, ["/episode/state"])]
    assert {"running", "ended", "resetting"} <= set(states), states

    # the policy version advanced: the learner's weights reached the policy and drove the arm
    versions = {s.policy_version for s in recording.steps if s.policy_version is not None}
    assert max(versions) >= 1, versions

    report = (run / "report" / "report.md").read_text()
    assert "success rate" in report and (run / "report" / "learning_curve.png").stat().st_size > 1000
    assert "lost ticks: 0 inside episodes, 0 in all" in report
    # the learner's sizes (size auto on this CPU keeps the ones set above) and its pace, on the console and in the report
    sizes = "cpu sizes: 2 critics [64, 64], UTD 1, batch 64"
    assert re.search(r"updates per env step \(budget 0\.5\), " + re.escape(sizes), proc.stdout), proc.stdout[-2000:]
    # the shipped learner.yaml fuses the updates: a short run ends while the child compiles, or just after
    assert re.search(rf"- learner: {final.group(1)} updates \({re.escape(sizes)}; fusion (compiling|on)\)", report), report
    assert json.loads((run / "run.json").read_text())["episodes_done"] >= 5
    assert {p.name for p in (run / "logs").iterdir()} >= {"sim_arm.log", "mux.log", "learner.log", "recorder.log"}


def test_a_6dof_run_learns_and_acts_with_7_value_actions(tmp_path, domain_id):
    """The issue's check: ``iil-robot sim --action-space 6dof`` learns and acts in the whole twist and the gripper
    (a small learner at nice 0 and a few push episodes: this checks the loop, not training speed)."""
    run = tmp_path / "run"
    small = ["learner.rlpd.hidden=[32,32]", "learner.rlpd.num_qs=2", "learner.rlpd.batch_size=32", "learner.rlpd.utd_ratio=1",
             "learner.nice=0", "learner.rlpd.compile=false",  # at nice 0 a compile's child would slow the nodes
             "learner.min_transitions=32", "learner.publish_every_updates=5",
             "learner.publish_period=1.0", "learner.event_delay=0.2", "learner.warm_start_updates=0"]
    proc = run_sim("--action-space", "6dof", "--task", "push", "--episodes", "8", "--run-dir", str(run),
                   "--domain-id", str(domain_id),
                   *[a for s in small for a in ("--set", s)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["action_space"] == "6dof"
    learner_log = (run / "logs" / "learner.log").read_text()
    assert "action space 6dof (vx, vy, vz, wx, wy, wz, gripper)" in learner_log
    recording = load_recording([run / "bags"])
    assert any(name.startswith("ee_orientation.") for name in recording.observation_fields)  # the policy sees its turn
    learned = [s for s in recording.steps if s.source == "policy" and (s.policy_version or 0) >= 1]
    assert learned, "no step was driven by learned weights: " + learner_log[-2000:]
    # the learned policy proposes, and the arm executes, angular velocities within the mux's limit
    turning = [s for s in learned if any(abs(w) > 1e-4 for w in s.executed_action[3:6])]
    assert turning and all(sum(w * w for w in s.executed_action[3:6]) ** 0.5 <= 1.0 + 1e-6 for s in turning)
    assert "refused weights" not in (run / "logs" / "policy.log").read_text()


def test_a_tool_frame_run_learns_and_acts_in_the_end_effectors_frame(tmp_path, domain_id):
    """``iil-robot sim --action-frame tool --action-space 6dof``: the policy node acts in the tool frame on learned
    weights of that frame (a small learner and a few reach episodes: this checks the loop, not learning)."""
    run = tmp_path / "run"
    small = ["learner.rlpd.hidden=[32,32]", "learner.rlpd.num_qs=2", "learner.rlpd.batch_size=32", "learner.rlpd.utd_ratio=1",
             "learner.nice=0", "learner.rlpd.compile=false",  # at nice 0 a compile's child would slow the nodes
             "learner.min_transitions=32", "learner.publish_every_updates=5",
             "learner.publish_period=1.0", "learner.event_delay=0.2", "learner.warm_start_updates=0"]
    proc = run_sim("--action-frame", "tool", "--action-space", "6dof", "--task", "reach", "--episodes", "8", "--run-dir",
                   str(run), "--domain-id", str(domain_id), *[a for s in small for a in ("--set", s)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["action_frame"] == "tool"
    policy_log = (run / "logs" / "policy.log").read_text()
    assert "in the end effector's frame (its orientation: observation field ee_orientation)" in policy_log
    assert "acting with rlpd weights version" in policy_log, (run / "logs" / "learner.log").read_text()[-2000:]
    assert "refused weights" not in policy_log and "no proposal: holding" not in policy_log


def test_a_run_with_two_cameras_records_both_and_acts_on_a_camera_policy(tmp_path, domain_id):
    """``--cameras front,wrist``: the sim arm renders both, the camera node publishes them as camera front and wrist,
    the bags hold both cameras' frames, every step record the policy made carries both frames' stamps, and a camera
    learner (image size set) learns from both and drives the arm (a tiny learner and eight reach episodes: its first weights
    come some 20 s into the run on a loaded machine)."""
    run = tmp_path / "run"
    small = ["learner.rlpd.hidden=[32,32]", "learner.rlpd.num_qs=2", "learner.rlpd.batch_size=32", "learner.rlpd.utd_ratio=1",
             "learner.nice=0", "learner.rlpd.compile=false",  # at nice 0 a compile's child would slow the nodes
             "learner.min_transitions=32", "learner.publish_every_updates=5",
             "learner.publish_period=1.0", "learner.event_delay=0.2", "learner.warm_start_updates=5",
             "learner.image_width=24", "learner.image_height=24"]
    proc = run_sim("--cameras", "front,wrist", "--task", "reach", "--episodes", "8", "--run-dir", str(run),
                   "--domain-id", str(domain_id), *[a for s in small for a in ("--set", s)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["cameras"] == ["front", "wrist"]  # --resume keeps them
    recording = load_recording([run / "bags"], cameras=("front", "wrist"))
    frames = {camera: {stamp for name, stamp, _ in recording.frames if name == camera} for camera in ("front", "wrist")}
    assert all(len(stamps) > 50 for stamps in frames.values()), {c: len(s) for c, s in frames.items()}
    proposed = [s for s in recording.steps if s.source == "policy"]
    # before camera weights the policy acts without a frame that lags the observation (a loaded machine): most have both
    both = [s for s in proposed if set(s.image_stamps or {}) == {"front", "wrist"}]
    assert len(both) > len(proposed) / 2, [s.image_stamps for s in proposed]
    # each stamp names a frame in the bags (the learner pairs them by it, live and on --resume)
    assert all(stamp in frames[camera] for s in proposed for camera, stamp in (s.image_stamps or {}).items())
    learner_log = (run / "logs" / "learner.log").read_text()
    assert "from the state and images of camera(s) front, wrist at 24x24" in learner_log
    learned = [s for s in proposed if (s.policy_version or 0) >= 1]
    assert learned, "no step was driven by learned weights: " + learner_log[-2000:]
    assert all(s in both for s in learned)  # camera weights act only on a frame of each camera (else the arm holds)
    assert "refused weights" not in (run / "logs" / "policy.log").read_text()


def test_cameras_are_checked_and_a_camera_policy_without_cameras_is_refused(tmp_path):
    from iil_robot.cli.sim import add_arguments, camera_overrides, run, sim_cameras

    assert sim_cameras("front, wrist") == ("front", "wrist")
    for bad, why in (("front,side", "no simulated camera side"), ("front,front", "names a camera twice")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            sim_cameras(bad)
    both = camera_overrides(("wrist", "front"))  # the order given is the order the images are stacked in
    assert both["sim_arm"]["cameras"] == ["gripper_camera_rgb", "external_camera_0"]
    wrist = {k: v for k, v in both["camera"].items() if k.startswith("cameras.wrist.")}  # a topic camera, as a driver's
    assert (wrist["cameras.wrist.type"], wrist["cameras.wrist.topic"]) == ("image", "gripper_camera_rgb/image_raw")
    assert both["policy"]["cameras"] == both["learner"]["cameras"] == both["recorder"]["cameras"] == "wrist,front"
    assert camera_overrides(()) == {"recorder": {"cameras": ""}}  # no camera node, no camera topic recorded
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--run-dir", str(tmp_path / "run"), "--set", "learner.image_width=32"])
    with pytest.raises(SystemExit, match="a camera policy needs cameras; add --cameras front"):
        run(args)
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_overrides_are_read_as_yaml_and_bad_ones_say_the_form():
    assert parse_overrides(["learner.min_transitions=64", "sim_arm.task=reach", "gate.x="]) == {
        "learner": {"min_transitions": 64}, "sim_arm": {"task": "reach"}, "gate": {"x": ""}}
    with pytest.raises(SystemExit, match="NODE.PARAM=VALUE"):
        parse_overrides(["min_transitions=64"])


def test_resume_continues_the_run_with_the_learner_rebuilt_from_the_bags(tmp_path, domain_id):
    run = tmp_path / "run"
    first = run_sim("--task", "reach", "--episodes", "2", "--run-dir", str(run), "--domain-id", str(domain_id),
                    "--set", "learner.min_transitions=32")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    again = run_sim("--resume", str(run), "--episodes", "2", "--domain-id", str(domain_id), "--set", "learner.min_transitions=32")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert json.loads((run / "run.json").read_text())["episodes_done"] >= 4
    assert len(list((run / "bags").iterdir())) == 2  # one session bag per invocation
    learner_log = (run / "logs" / "learner.log").read_text()
    rebuilt = re.search(r"rebuilt buffers from \d+ bag\(s\) under \S+: (\d+) steps", learner_log)
    assert rebuilt and int(rebuilt.group(1)) > 50
    recording = load_recording([run / "bags"])
    assert len([e for e in recording.episodes if e.outcome in ("success", "timeout")]) >= 4
    report = (run / "report" / "report.md").read_text()
    finished_rows = re.findall(r"^\| \d+ \| (success|timeout) \|", report, re.M)
    assert len(finished_rows) >= 4  # the report covers both sessions


def graph_processes(domain_id: int) -> list[int]:
    """PIDs of the node processes in ROS domain ``domain_id`` (from their environment)."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                nodes = b"iil_robot.nodes." in (entry / "cmdline").read_bytes()
                if nodes and f"ROS_DOMAIN_ID={domain_id}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass  # ended meanwhile, or not ours to read
    return found


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_terminated_sim_job_stops_every_node_it_started(tmp_path, sig, domain_id):
    """Each node runs in a session of its own: a killed job left all of them running. The signal comes while the
    job starts the other nodes, where one interrupted Popen used to lose its process."""
    import signal

    assert graph_processes(domain_id) == []
    env = dict(os.environ)
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
    job = subprocess.Popen([sys.executable, "-m", "iil_robot.cli", "sim", "--task", "reach", "--episodes", "50",
                            "--run-dir", str(tmp_path / "run"), "--domain-id", str(domain_id)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in job.stdout:  # the listeners are up; the job now starts the other nodes
            if "recorder and learner up" in line:
                break
        assert len(graph_processes(domain_id)) >= 2
        job.send_signal(getattr(signal, sig))
        rest = job.communicate(timeout=120)[0]
        assert "interrupted: stopping every node" in rest, rest[-2000:]
        assert graph_processes(domain_id) == []
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        for pid in graph_processes(domain_id):
            os.kill(pid, 9)
