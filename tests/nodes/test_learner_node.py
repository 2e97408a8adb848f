"""The learner node in its own process: records and episode events in, weights out, checkpoint, resume;
buffers rebuilt from bags on start."""
import os
import re
import shutil

import pytest
import torch
from std_msgs.msg import String, UInt8MultiArray

from iil_robot.cli.graph import NodeSpec
from iil_robot.learners.rlpd import compiler, native_bfloat16
from iil_robot.learners.weights import Expected, decode_policy
from iil_robot.nodes.common import EVENTS_QOS, LATCHED_QOS, RECORD_QOS
from tests.learners.helpers import boundary_task_records, episode_events
from tests.nodes.conftest import assert_stops_with
from tests.records_factory import write_bag


def spec(run_dir, **extra):
    return NodeSpec("learner", "iil_robot.nodes.learner", parameters={
        "observation_spec": "toy/v1", "min_transitions": 50, "run_dir": str(run_dir), "device": "cpu",
        "publish_every_updates": 20, "rlpd.hidden": [16, 16], "rlpd.num_qs": 3, "rlpd.batch_size": 32, **extra,
    })


BUSY = {"rlpd.hidden": [256, 256], "rlpd.num_qs": 10, "rlpd.batch_size": 256, "size": "gpu"}
"""Learner settings whose updates keep the training thread busy (the shipped network sizes)."""


def send_episodes(probe, episodes) -> None:
    """Publish each episode's start event, step records and end event once the learner subscribes to both topics."""
    steps = probe.publisher(String, "step", RECORD_QOS)
    events = probe.publisher(String, "episode/event", EVENTS_QOS)
    probe.wait_for(lambda: steps.get_subscription_count() > 0 and events.get_subscription_count() > 0, 30.0,
                   "the learner's step and episode/event subscriptions")
    ends = iter(episode_events(episodes))
    for episode in episodes:
        events.publish(String(data=next(ends).encode()))
        for record in episode:
            steps.publish(String(data=record.encode()))
        events.publish(String(data=next(ends).encode()))


def test_learner_node_trains_from_step_records_and_episode_events_publishes_weights_and_resumes(graph, probe, tmp_path):
    graph.start(spec(tmp_path / "run"))
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    send_episodes(probe, boundary_task_records(4, 40))
    probe.wait_for(lambda: len(received) >= 2, 60.0, "two weights messages")
    meta, _ = decode_policy(received.messages[1].data.tobytes(), Expected("toy/v1", 1))  # a third may follow meanwhile
    assert meta.algorithm == "rlpd" and meta.policy_version == 2 and meta.updates >= 20

    assert graph.stop("learner")["learner"] == 0
    assert (tmp_path / "run" / "checkpoint.safetensors").exists() and (tmp_path / "run" / "tensorboard").is_dir()
    graph.start(spec(tmp_path / "run"))
    probe.wait_for(lambda: "resumed from" in graph.tail("learner", 50), 60.0, "the learner resuming from its checkpoint")
    # the stopped learner may publish once more as it stops; by now all of that has arrived
    before = max(decode_policy(m.data.tobytes())[0].policy_version for m in received.messages)

    def newest():
        return decode_policy(received.messages[-1].data.tobytes())[0]

    probe.wait_for(lambda: newest().policy_version > before, 60.0, "weights from the resumed learner")
    assert newest().updates >= meta.updates


def test_learner_node_started_on_bags_trains_from_them_without_live_data(graph, probe, tmp_path):
    episodes = boundary_task_records(5, 40)
    write_bag(tmp_path / "bags" / "session_000", [r for e in episodes for r in e], episode_events(episodes))
    graph.start(spec(tmp_path / "run", bags_dir=str(tmp_path / "bags")))
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    probe.wait_for(lambda: len(received) >= 1, 60.0, "weights trained from the bags")
    assert "rebuilt buffers from 1 bag(s)" in graph.tail("learner", 50)


def test_a_slow_learner_loses_no_step_record(graph, probe, tmp_path):
    """Updates far slower than the records arrive: the buffers still hold every labelled row."""
    from diagnostic_msgs.msg import DiagnosticArray

    from iil_robot.data.episodes import split_episodes
    from iil_robot.data.labels import label_episodes

    graph.start(spec(tmp_path / "run", min_transitions=1, **{
        "rlpd.hidden": [256, 256], "rlpd.num_qs": 10, "rlpd.batch_size": 256, "rlpd.utd_ratio": 20, "size": "gpu",
        "event_delay": 0.0}))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
    steps = probe.publisher(String, "step", RECORD_QOS)
    events = probe.publisher(String, "episode/event", EVENTS_QOS)
    probe.wait_for(lambda: steps.get_subscription_count() > 0 and events.get_subscription_count() > 0, 30.0,
                   "the learner's subscriptions")
    episodes = boundary_task_records(7, 100)  # 6 whole episodes + the start of a 7th, at ~10x a 20 Hz loop
    ends = episode_events(episodes)
    sent = iter(ends)
    for index, episode in enumerate(episodes):
        events.publish(String(data=next(sent).encode()))
        for record in episode if index < 6 else episode[:5]:  # the 7th's first steps close the 6th
            steps.publish(String(data=record.encode()))
            probe.spin_for(0.005)
        if index < 6:
            events.publish(String(data=next(sent).encode()))
    labelled = label_episodes(split_episodes([r for e in episodes[:6] for r in e], ends[:12]))
    expected = len(labelled.rlif)

    def buffered() -> int:
        for array in reversed(diagnostics.messages):
            for status in array.status:
                if status.name == "learner":
                    values = {kv.key: kv.value for kv in status.values}
                    return int(values["prior"]) + int(values["online"])
        return -1

    probe.wait_for(lambda: buffered() == expected, 60.0, f"{expected} transitions in the learner's buffers")


SCHED_IDLE = 5  # the scheduling-policy field of /proc/PID/task/TID/stat


def thread_policies(pid: int) -> list[int]:
    """The scheduling policy of each thread of a process (Linux)."""
    from pathlib import Path

    policies = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        policies.append(int(fields[38]))  # field 41 of stat(5), counted after the ")" of the name
    return policies


def test_the_training_thread_runs_at_idle_priority_and_the_rest_of_the_learner_does_not(graph, probe, tmp_path):
    process = graph.start(spec(tmp_path / "run", idle_priority=True))
    probe.wait_for(lambda: SCHED_IDLE in thread_policies(process.pid), 60.0, "a learner thread under SCHED_IDLE")
    policies = thread_policies(process.pid)
    assert policies.count(SCHED_IDLE) == 1 and len(policies) > 1  # only training: records and weights keep normal priority


def autogroup(pid: int) -> str:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return ""


@pytest.mark.skipif(not autogroup(os.getpid()), reason="a kernel without autogroup scheduling")
def test_a_learner_leading_its_own_session_nices_its_autogroup(graph, probe, tmp_path):
    """The graph starts every node in a session of its own, and under autogroup scheduling sessions share the CPU
    as equals before niceness counts: the learner's nice 19 alone left the control ticks waiting on it."""
    process = graph.start(spec(tmp_path / "run"))
    assert os.getsid(process.pid) == process.pid
    probe.wait_for(lambda: autogroup(process.pid).strip().endswith("nice 19"), 60.0, "the learner's autogroup at nice 19")
    assert autogroup(os.getpid()) != autogroup(process.pid)  # the test's own session keeps its priority


def learner_status(diagnostics) -> tuple[int, str, dict[str, str]] | None:
    """The newest learner status received: (level, message, values)."""
    for array in reversed(diagnostics.messages):
        for status in array.status:
            if status.name == "learner":
                level = status.level if isinstance(status.level, int) else ord(status.level)
                return level, status.message, {kv.key: kv.value for kv in status.values}
    return None


CAMERAS = ("front", "wrist")


def test_a_two_camera_learner_pairs_each_cameras_frames_by_stamp_and_a_policy_node_acts_on_its_weights(graph, probe,
                                                                                                        tmp_path):
    """Two camera topics into the learner, frames paired with the step records by their stamps (a lost wrist frame
    counted for the wrist); its weights into a policy node that lists the same cameras in another order."""
    import time

    import numpy as np
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image

    from iil_robot.data.records import Observation, Proposal
    from iil_robot.nodes.common import SENSOR_QOS
    from tests.learners.test_trainer_images import camera_ns, jpeg, with_frames

    graph.start(spec(tmp_path / "run", image_width=24, image_height=20, cameras="front,wrist", **{"rlpd.image_features": 8}))
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    frames = {c: probe.publisher(CompressedImage, f"camera/{c}/image_raw/compressed", SENSOR_QOS) for c in CAMERAS}
    steps = probe.publisher(String, "step", RECORD_QOS)
    events = probe.publisher(String, "episode/event", EVENTS_QOS)
    probe.wait_for(lambda: min(p.get_subscription_count() for p in (*frames.values(), steps, events)) > 0, 30.0,
                   "the learner's camera, step and episode/event subscriptions")

    def frame(camera: str, ns: int, data: bytes) -> CompressedImage:
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=data)
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
        return msg

    # best effort: frames sent before the learner's reader has matched the probe's writer are lost; send one of each
    # camera (a stamp no step names) until the learner's diagnostics count them
    def counted(camera: str) -> bool:
        status = learner_status(diagnostics)
        return status is not None and status[2].get(f"frames.{camera}", "0") != "0"

    for camera in CAMERAS:
        probe.wait_for(lambda: counted(camera), 30.0, f"the learner receiving {camera} frames",  # noqa: B023
                       every=lambda: frames[camera].publish(frame(camera, 999_999 * 10**9, jpeg(0, camera))))  # noqa: B023
    episodes = with_frames(boundary_task_records(4, 40), cameras=CAMERAS)
    lost = episodes[1][10].tick  # its wrist frame is never sent
    ends = iter(episode_events(episodes))
    for episode in episodes:
        events.publish(String(data=next(ends).encode()))
        for record in episode:
            for camera in CAMERAS:
                if (camera, record.tick) != ("wrist", lost):
                    frames[camera].publish(frame(camera, camera_ns(record, camera), jpeg(record.tick, camera)))
            steps.publish(String(data=record.encode()))
        events.publish(String(data=next(ends).encode()))
    try:
        probe.wait_for(lambda: len(received) >= 1, 90.0, "weights of a two-camera policy")
        probe.wait_for(lambda: int(learner_status(diagnostics)[2].get("missing_frames.wrist", "0")) >= 2, 30.0,
                       "the rows without their wrist frame counted")
    except AssertionError as err:
        raise AssertionError(f"{err}; {learner_status(diagnostics)}; the learner's log:\n{graph.tail('learner', 30)}") from err
    meta, _ = decode_policy(received.messages[-1].data.tobytes(), Expected("toy/v1", 1))
    assert meta.image == (6, 20, 24) and meta.cameras == CAMERAS

    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={
        "rate": 20.0, "cameras": "wrist,front", "camera_timeout": 0.5, "observation_timeout": 0.5}))
    raw = {c: probe.publisher(Image, f"camera/{c}/image_raw", SENSOR_QOS) for c in CAMERAS}
    observations = probe.publisher(String, "observation", SENSOR_QOS)
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)

    def feed():
        stamp = probe.node.get_clock().now().to_msg()
        for camera, value in (("front", 60), ("wrist", 190)):
            image = Image(height=20, width=24, encoding="rgb8", step=24 * 3, data=np.full((20, 24, 3), value, np.uint8).tobytes())
            image.header.stamp = stamp
            raw[camera].publish(image)
        observations.publish(String(data=Observation((0.1,), "toy/v1", time.time()).encode()))

    def newest() -> Proposal | None:
        return Proposal.decode(proposals.messages[-1].data) if proposals.messages else None

    probe.wait_for(lambda: newest() is not None and newest().policy_version >= 1, 60.0,
                   "the policy node's proposals with the learner's weights", every=feed)
    assert set(newest().image_stamps) == set(CAMERAS)


def test_the_renamed_camera_parameter_stops_the_learner_naming_its_new_name(graph, tmp_path):
    assert_stops_with(graph, spec(tmp_path / "run", camera="wrist"), "parameter 'camera' was replaced by 'cameras'",
                      startup=90.0)


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="a kernel without scheduler statistics")
def test_a_learner_starved_of_cpu_says_so_on_diagnostics(graph, probe, tmp_path):
    """At nice 19 the learner gives way to every other process: one that keeps its CPU busy stops training without
    an error, and only the training thread's wait for a CPU tells that from a learner with nothing to do."""
    import subprocess
    import sys
    from pathlib import Path

    from diagnostic_msgs.msg import DiagnosticArray

    process = graph.start(spec(tmp_path / "run", min_transitions=1, **BUSY))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
    send_episodes(probe, boundary_task_records(3, 40))
    probe.wait_for(lambda: (s := learner_status(diagnostics)) is not None and int(s[2]["updates"]) > 0
                   and int(s[2].get("training_cpu_percent", "0")) > 20, 90.0, "the learner training")
    assert learner_status(diagnostics)[0] == 0

    # a busy process at normal priority on the one CPU the learner may use (own session: its own autogroup too)
    cpu = min(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), {cpu})
            except ProcessLookupError:
                pass  # the thread ended meanwhile
        probe.wait_for(lambda: learner_status(diagnostics)[0] == 1, 60.0, "a WARN from the starved learner")
    finally:
        hog.kill()
        hog.wait()
    level, message, values = learner_status(diagnostics)
    assert "starved of CPU: the training thread waited for one" in message and "at nice 19" in message, message
    assert int(values["training_wait_percent"]) > 50
    probe.wait_for(lambda: learner_status(diagnostics)[0] == 0, 60.0, "the learner's diagnostics OK again once the CPU is free")


def test_on_the_cpu_the_learner_takes_the_cpu_sizes_and_reports_its_updates_per_env_step(graph, probe, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray

    graph.start(spec(tmp_path / "run", **{"rlpd.hidden": [256, 256], "rlpd.num_qs": 10, "rlpd.batch_size": 256,
                                          "cpu.hidden": [16, 16], "cpu.num_qs": 2, "cpu.batch_size": 32}))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
    sizes = "cpu sizes: 2 critics [16, 16], UTD 2, batch 32"
    probe.wait_for(lambda: f"{sizes} (size auto on cpu; budget 0.5 updates per env step)" in graph.tail("learner", 20),
                   60.0, "the start-up line naming the sizes")
    episodes = boundary_task_records(5, 40)
    send_episodes(probe, episodes[:3])  # two of them labelled: past min_transitions, training starts
    probe.wait_for(lambda: (s := learner_status(diagnostics)) is not None and s[1].startswith("training"), 60.0,
                   "training")
    send_episodes(probe, episodes[3:])  # env steps while it trains
    probe.wait_for(lambda: learner_status(diagnostics)[2]["updates_per_env_step"] != "-", 60.0, "updates per env step")
    values = learner_status(diagnostics)[2]
    assert values["sizes"] == sizes and values["budget_per_env_step"] == "0.5" and values["precision"] == "float32"
    assert float(values["updates_per_env_step"]) >= 0.0 and int(values["env_steps"]) == 200


@pytest.mark.skipif(shutil.which(compiler()) is None, reason="torch.compile on CPU needs a C++ compiler")
def test_a_fusing_learner_trains_while_it_compiles_and_says_when_its_updates_are_fused(graph, probe, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray

    graph.start(spec(tmp_path / "run", **{"rlpd.compile": True, "rlpd.mixed_precision": True, "min_transitions": 1}))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    send_episodes(probe, boundary_task_records(2, 40))
    probe.wait_for(lambda: (s := learner_status(diagnostics)) is not None and s[2].get("fusion") in ("compiling", "on"),
                   60.0, "the compile under way")
    probe.wait_for(lambda: len(received) >= 1, 60.0, "weights, whether or not the compile has ended")
    probe.wait_for(lambda: learner_status(diagnostics)[2].get("fusion") == "on", 600.0, "fused updates")
    updates = int(learner_status(diagnostics)[2]["updates"])
    probe.wait_for(lambda: int(learner_status(diagnostics)[2]["updates"]) > updates, 60.0, "fused updates running")
    log = graph.tail("learner", 200)
    assert "fusing the updates: a child process compiles them with torch.compile" in log
    # the child compiled the bfloat16 losses where the CPU multiplies bfloat16 natively, else it says why not
    precision = learner_status(diagnostics)[2]["precision"]
    native = native_bfloat16(torch.device("cpu")) is None
    assert precision == "bfloat16 matmuls" if native else precision.startswith("float32: mixed_precision is off because")
    assert f"the losses multiply in {precision}" in log
    assert re.search(r"fused: the updates run torch.compile's kernels \(the child compiled for \d+ s; compiling in place "
                     r"from its caches took \d+\.\d s\)", log), log


def test_a_stop_during_the_warm_start_checkpoints_it_within_the_launch_grace_period_and_a_restart_finishes_it(
        graph, probe, tmp_path):
    """ros2 launch (and the sim job) send SIGTERM 5 s after SIGINT. A learner in its warm start (minutes at the
    shipped settings) used to be caught waiting for it: a traceback, exit code 1, no checkpoint."""
    import time

    from diagnostic_msgs.msg import DiagnosticArray

    from iil_robot.learners.checkpoints import read_state

    settings = dict(min_transitions=1, warm_start_updates=100_000, nice=0, **BUSY)  # nice 0: on a loaded machine too
    graph.start(spec(tmp_path / "run", **settings))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
    send_episodes(probe, boundary_task_records(2, 40))
    probe.wait_for(lambda: (s := learner_status(diagnostics)) is not None and int(s[2]["warm_start_done"]) > 0,
                   90.0, "the warm start under way")
    started = time.monotonic()
    code = graph.stop("learner")["learner"]
    took, log = time.monotonic() - started, (graph.log_dir / "learner.log").read_text()
    assert code == 0 and took < 5.0, f"exit code {code} after {took:.1f} s:\n{log[-3000:]}"
    assert "Traceback" not in log, log
    done, total = read_state(tmp_path / "run" / "checkpoint.safetensors")["warm_start_progress"]
    assert 0 < done < total == 100_000

    diagnostics.messages.clear()
    graph.start(spec(tmp_path / "run", **settings))
    probe.wait_for(lambda: (s := learner_status(diagnostics)) is not None and int(s[2]["warm_start_done"]) > done,
                   90.0, f"the restarted learner's warm start past {done} updates")
    assert int(learner_status(diagnostics)[2]["updates"]) == 0  # still in the warm start: no update, no weights yet


def test_hostile_records_are_logged_and_the_learner_trains_on_the_good_ones(graph, probe, tmp_path):
    from iil_robot.nodes.peers.hostile import hostile_events, hostile_observations, hostile_steps

    process = graph.start(spec(tmp_path / "run"))
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    steps = probe.publisher(String, "step", RECORD_QOS)
    events = probe.publisher(String, "episode/event", EVENTS_QOS)
    observations = probe.publisher(String, "observation", RECORD_QOS)
    probe.wait_for(lambda: min(p.get_subscription_count() for p in (steps, events, observations)) > 0, 30.0,
                   "the learner's subscriptions")
    for publisher, hostile in ((steps, hostile_steps()), (events, hostile_events()), (observations, hostile_observations())):
        for _, text in hostile:
            publisher.publish(String(data=text))
            probe.spin_for(0.002)
    # (a reliable message lost in a burst is resent at DDS's next heartbeat, up to 3 s later)
    probe.wait_for(lambda: all(f"undecodable {what}" in process.log_path.read_text()
                               for what in ("step record", "episode event", "observation")), 30.0, "the learner's refusals")
    assert not received.messages  # nothing learned from them
    send_episodes(probe, boundary_task_records(4, 40))
    probe.wait_for(lambda: len(received) >= 1, 60.0, "weights trained on the good records")
    assert process.popen.poll() is None
    log = process.log_path.read_text()
    assert "[FATAL]" not in log and "Traceback" not in log, log[-3000:]
    # throttled to one line a second, however slowly a loaded machine works through the burst
    stamps = [float(t) for t in re.findall(r"\[(\d+\.\d+)\] \[learner\]: undecodable step record", log)]
    assert len(stamps) < len(hostile_steps()) and len(stamps) <= 1 + (stamps[-1] - stamps[0]), log[-3000:]
