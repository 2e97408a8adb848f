"""The recorder node in its own process: a live run read back with rosbags and mcap_ros2, a
SIGKILL that loses at most split_period, the episode services, and a bad parameter."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger

from iil_robot.cli.graph import NodeSpec, loopback_env
from iil_robot.config import config_path
from iil_robot.data.bags import find_bags, read_messages, repair_bag, unlisted_files
from iil_robot.data.episodes import EpisodeSummary
from iil_robot.data.records import EpisodeEvent, StepRecord
from iil_robot.nodes.common import COMMAND_QOS, EVENTS_QOS, RECORD_QOS, SENSOR_QOS
from tests.nodes.conftest import assert_stops_with
from tests.records_factory import step

STARTUP = 30.0


def recorder_spec(output: Path, **parameters) -> NodeSpec:
    return NodeSpec("recorder", "iil_robot.nodes.recorder", params_files=(str(config_path("recorder.yaml")),),
                    parameters={"output_dir": str(output), **parameters})


def wait_matched(probe, publishers) -> None:
    probe.wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers), STARTUP, "the recorder's subscriptions")


def image(i: int) -> CompressedImage:
    """A camera frame as the camera node publishes it (its bytes stand in for a JPEG)."""
    msg = CompressedImage(format="jpeg")
    msg.header.frame_id = "front"
    msg.data = np.full(4096, i % 256, np.uint8).tobytes()
    return msg


def test_live_run_read_back_with_rosbags_and_mcap_matches_what_was_published(graph, probe, tmp_path):
    graph.start(recorder_spec(tmp_path, operator="ana", task="push"))
    step_pub = probe.publisher(String, "step", RECORD_QOS)
    cmd_pub = probe.publisher(TwistStamped, "arm/cmd", COMMAND_QOS)
    image_pub = probe.publisher(CompressedImage, "camera/front/image_raw/compressed", SENSOR_QOS)
    event_pub = probe.publisher(String, "episode/event", EVENTS_QOS)
    summaries = probe.collect(String, "episode/summary", EVENTS_QOS)
    start = probe.node.create_client(Trigger, "/recorder/episode/start")
    wait_matched(probe, [step_pub, cmd_pub, image_pub, event_pub])
    probe.wait_for(start.service_is_ready, STARTUP, "the /recorder/episode/start service")

    future = start.call_async(Trigger.Request())
    probe.wait_for(future.done, 5.0, "the start service reply")
    assert future.result().success
    started = float(future.result().message.split(" at ")[1])
    records = [step(i, "human" if 10 <= i < 15 else "policy", onset=i == 10, stamp=started + 0.01 + i * 0.01)
               for i in range(40)]
    sent_cmds = []
    for i, r in enumerate(records):
        step_pub.publish(String(data=r.encode()))
        cmd = TwistStamped()
        cmd.twist.linear.x = float(i)
        cmd.header.frame_id = "base_link"
        cmd_pub.publish(cmd)
        sent_cmds.append(i)
        if i % 4 == 0:
            image_pub.publish(image(i))
        if i == 29:  # ends the episode between ticks 29 and 30
            event_pub.publish(String(data=EpisodeEvent("success", "operator", r.stamp + 0.005).encode()))
        probe.spin_for(0.002)
    probe.wait_for(lambda: len(summaries) >= 1, 10.0, "the episode summary")
    summary = EpisodeSummary.decode(summaries.messages[0].data)
    assert (summary.outcome, summary.steps, summary.interventions, summary.intervention_steps) == ("success", 30, 1, 5)
    assert (summary.operator, summary.task) == ("ana", "push")
    graph.stop("recorder")  # SIGINT: closes the open file and writes the final metadata.yaml

    [bag] = find_bags([tmp_path])
    assert unlisted_files(bag) == []
    by_topic: dict[str, list] = {}
    for m in read_messages(bag):
        by_topic.setdefault(m.topic, []).append(m.message)
    assert [StepRecord.decode(m.data) for m in by_topic["/step"]] == records
    assert [m.twist.linear.x for m in by_topic["/arm/cmd"]] == sent_cmds
    assert [m.header.frame_id for m in by_topic["/arm/cmd"]] == ["base_link"] * 40
    images = by_topic["/camera/front/image_raw/compressed"]
    assert len(images) == 10 and images[3].data.tolist() == [12] * 4096
    events = [EpisodeEvent.decode(m.data) for m in by_topic["/episode/event"]]
    assert [(e.event, e.origin) for e in events] == [("start", "service"), ("success", "operator")]
    written = [EpisodeSummary.decode(m.data) for m in by_topic["/recorder/episode"]]
    assert [(s.outcome, s.steps) for s in written] == [("success", 30)]  # the 10 after it: between episodes

    # The same files through the mcap library's ROS 2 decoder.
    counts: dict[str, int] = {}
    steps_mcap = []
    for path in sorted(bag.glob("*.mcap"), key=lambda p: int(p.stem.rsplit("_", 1)[1])):
        with open(path, "rb") as f:
            for _, channel, _, msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
                counts[channel.topic] = counts.get(channel.topic, 0) + 1
                if channel.topic == "/step":
                    steps_mcap.append(StepRecord.decode(msg.data))
    assert counts["/step"] == 40 and counts["/arm/cmd"] == 40 and counts["/camera/front/image_raw/compressed"] == 10
    assert steps_mcap == records


def test_sigkill_leaves_a_bag_rosbags_reads_up_to_split_period_before_the_kill(graph, probe, tmp_path):
    graph.start(recorder_spec(tmp_path, split_period=0.5, flush_period=0.1))
    step_pub = probe.publisher(String, "step", RECORD_QOS)
    wait_matched(probe, [step_pub])
    sent: list[tuple[float, StepRecord]] = []
    t0 = time.monotonic()

    def publish_due() -> None:  # 100 Hz from the probe's spin loop
        while len(sent) < (time.monotonic() - t0) * 100:
            r = step(len(sent))
            step_pub.publish(String(data=r.encode()))
            sent.append((time.monotonic(), r))

    probe.wait_for(lambda: time.monotonic() - t0 > 2.5, 10.0, "2.5 s of step records", every=publish_due)
    killed_at = time.monotonic()
    graph.kill("recorder")
    graph.processes["recorder"].popen.wait(5.0)

    [bag] = find_bags([tmp_path])
    got = [StepRecord.decode(m.message.data) for m in read_messages(bag, ["/step"])]
    assert got == [r for _, r in sent[:len(got)]], "records read back in order, unchanged"
    lost = [t for t, r in sent[len(got):]]
    # Everything received more than split_period (0.5 s) before the kill is readable; allow
    # 0.25 s for transport and scheduling on a loaded machine.
    assert not lost or lost[0] > killed_at - 0.75, f"lost {killed_at - lost[0]:.2f} s before the kill"

    report = repair_bag(bag)  # recovers the flushed chunks of the unterminated file
    repaired = [StepRecord.decode(m.message.data) for m in read_messages(bag, ["/step"])]
    assert repaired[:len(got)] == got and len(repaired) >= len(got)
    assert repaired == [r for _, r in sent[:len(repaired)]]
    # recovered_messages counts every topic in the recovered file (diagnostics too), not only /step
    assert report.recovered_messages >= len(repaired) - len(got) or report.dropped_files


def test_hostile_records_are_recorded_as_received_logged_and_kept_out_of_the_episodes(graph, probe, tmp_path):
    from iil_robot.nodes.peers.hostile import hostile_events, hostile_steps

    process = graph.start(recorder_spec(tmp_path))
    step_pub = probe.publisher(String, "step", RECORD_QOS)
    event_pub = probe.publisher(String, "episode/event", EVENTS_QOS)
    summaries = probe.collect(String, "episode/summary", EVENTS_QOS)
    wait_matched(probe, [step_pub, event_pub])
    hostile = [text for _, text in hostile_steps() + hostile_events()]
    event_pub.publish(String(data=EpisodeEvent("start", "operator", 0.0).encode()))
    good = [step(i, stamp=0.01 + i * 0.05) for i in range(20)]
    for record, text in zip(good, hostile):  # a hostile message after each good record, on alternating topics
        step_pub.publish(String(data=record.encode()))
        (step_pub if len(text) % 2 else event_pub).publish(String(data=text))
        probe.spin_for(0.002)
    for text in hostile[len(good):]:
        step_pub.publish(String(data=text))
    event_pub.publish(String(data=EpisodeEvent("success", "operator", 2.0).encode()))
    after = step(20, stamp=2.01)  # a step past the event's stamp closes the episode
    step_pub.publish(String(data=after.encode()))
    probe.wait_for(lambda: len(summaries) >= 1, 10.0, "the episode summary")
    summary = EpisodeSummary.decode(summaries.messages[0].data)
    assert (summary.outcome, summary.steps, summary.lost_ticks) == ("success", 20, 0)  # the hostile ones left out
    probe.wait_for(lambda: "undecodable step record(s) or episode event(s)" in process.log_path.read_text(), 5.0,
                   "the recorder's report of undecodable records")
    assert process.popen.poll() is None
    assert graph.stop("recorder")["recorder"] == 0
    log = process.log_path.read_text()
    assert log.count("undecodable step record(s)") <= 5, "one report a second at most (not one per record: 47 of them)"
    [bag] = find_bags([tmp_path])
    written = [m.message.data for m in read_messages(bag, ["/step", "/episode/event"])]
    assert sorted(written) == sorted([r.encode() for r in good + [after]] + hostile + [e.encode() for e in (
        EpisodeEvent("start", "operator", 0.0), EpisodeEvent("success", "operator", 2.0))])  # every message, as received


def test_bad_parameter_stops_the_node_with_a_clear_message(graph, tmp_path):
    assert_stops_with(graph, recorder_spec(tmp_path, **{"topics.step.qos": "fast"}), "topics.step.qos")


def test_cameras_names_each_cameras_jpeg_topic_once_beside_the_explicit_list(graph, probe, tmp_path):
    """``cameras: front,wrist`` records both cameras' JPEG frames; a topic the explicit list already names (an older
    parameter file's camera entry) is subscribed to once."""
    old = {"topics.old_camera.topic": "camera/front/image_raw/compressed",
           "topics.old_camera.type": "sensor_msgs/msg/CompressedImage", "topics.old_camera.qos": "sensor"}
    process = graph.start(recorder_spec(tmp_path, cameras="front,wrist", **old))
    pubs = {name: probe.publisher(CompressedImage, f"camera/{name}/image_raw/compressed", SENSOR_QOS)
            for name in ("front", "wrist")}
    wait_matched(probe, list(pubs.values()))
    assert all(pub.get_subscription_count() == 1 for pub in pubs.values())
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    sent = [0]

    def publish_frames() -> None:  # a camera's best-effort stream: frames before the match on the recorder's side are lost
        for name, pub in pubs.items():
            pub.publish(image(sent[0] % 100 + (100 if name == "wrist" else 0)))
        sent[0] += 1

    def received() -> int:
        values = [dict((kv.key, kv.value) for kv in s.values) for m in diagnostics.messages for s in m.status
                  if s.name == "recorder"]
        return int(values[-1]["received"]) if values else 0

    probe.wait_for(lambda: received() >= 10, 20.0, "the recorder to receive frames", every=publish_frames)
    assert graph.stop("recorder") == {"recorder": 0}
    log = process.log_path.read_text()
    assert log.count("/camera/front/image_raw/compressed") == 1 and "/camera/wrist/image_raw/compressed" in log, log[-2000:]
    [bag] = find_bags([tmp_path])
    firsts = {name: {int(m.message.data[0]) for m in read_messages(bag, [f"/camera/{name}/image_raw/compressed"])}
              for name in ("front", "wrist")}
    assert firsts["front"] and max(firsts["front"]) < 100 and firsts["wrist"] and min(firsts["wrist"]) >= 100, firsts


def test_bad_camera_names_stop_the_node_naming_the_parameter(graph, tmp_path):
    assert_stops_with(graph, recorder_spec(tmp_path, cameras="front,front"), "parameter 'cameras'='front,front'")


def test_replay_play_republishes_a_recorded_bag_with_clock(graph, probe, tmp_path, domain_id):
    graph.start(recorder_spec(tmp_path / "rec"))
    step_pub = probe.publisher(String, "step", RECORD_QOS)
    wait_matched(probe, [step_pub])
    records = [step(i) for i in range(20)]
    for r in records:
        step_pub.publish(String(data=r.encode()))
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)

    def written() -> int:
        values = [dict((kv.key, kv.value) for kv in s.values) for m in diagnostics.messages for s in m.status
                  if s.name == "recorder"]
        return int(values[-1]["written"]) if values else 0

    probe.wait_for(lambda: written() >= 20, 10.0, "the recorder to write the steps")
    graph.stop("recorder")
    got = probe.collect(String, "step", RECORD_QOS)
    clock = probe.collect(Clock, "/clock", 10)
    player = subprocess.Popen([sys.executable, "-m", "iil_robot.cli", "replay", str(tmp_path / "rec"), "--play", "--delay", "3"],
                              env=loopback_env(domain_id), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        probe.wait_for(lambda: len(got) >= 20, 30.0, "the played step records")
        assert [StepRecord.decode(m.data) for m in got.messages] == records
        assert clock.messages and clock.messages[-1].clock.sec > 0
        assert player.wait(10.0) == 0
    finally:
        if player.poll() is None:
            player.kill()
