"""The camera node in its own process: a generated video file drives it end to end into the
recorder's bag (JPEG frames in order, cropped and resized), a file that ends is a stalled camera
on /diagnostics, a missing device is reported, and a bad parameter stops the node."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from iil_robot.cli.graph import NodeSpec, loopback_env
from iil_robot.config import config_path
from iil_robot.data.bags import find_bags, read_messages
from iil_robot.data.camera import decode_jpeg
from iil_robot.nodes.common import SENSOR_QOS
from tests.fakes import brightness, write_test_video
from tests.nodes.conftest import assert_stops_with

STARTUP = 30.0


def camera_spec(**parameters) -> NodeSpec:
    """The camera node with config/camera.yaml and camera ``front``'s parameters (``cameras.front.<key>``)."""
    return NodeSpec("camera", "iil_robot.nodes.camera", params_files=(str(config_path("camera.yaml")),),
                    parameters={(k if k.startswith("cameras.") else f"cameras.front.{k}"): v for k, v in parameters.items()})


def camera_status(received, name: str = "front") -> list[DiagnosticStatus]:
    return [s for array in received.messages for s in array.status if s.name == f"camera: {name}"]


def test_video_file_drives_the_camera_node_into_the_bag(graph, probe, tmp_path):
    video = write_test_video(tmp_path / "clip.avi", frames=30, width=96, height=72)
    bags = tmp_path / "bags"
    graph.start(NodeSpec("recorder", "iil_robot.nodes.recorder", params_files=(str(config_path("recorder.yaml")),),
                         parameters={"output_dir": str(bags)}))
    raw = probe.collect(Image, "camera/front/image_raw", SENSOR_QOS)
    jpeg = probe.collect(CompressedImage, "camera/front/image_raw/compressed", SENSOR_QOS)
    info = probe.collect(CameraInfo, "camera/front/camera_info", SENSOR_QOS)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    probe.wait_for(lambda: probe.node.count_subscribers("camera/front/image_raw/compressed") >= 2,
                   STARTUP, "the recorder")  # and the probe
    probe.wait_for(lambda: recorder_received(diagnostics) is not None, STARTUP, "the recorder's diagnostics")
    before = recorder_received(diagnostics)
    graph.start(camera_spec(source=str(video), rate=20.0, crop=[8, 8, 80, 56], width=40, height=28))
    probe.wait_for(lambda: len(jpeg) >= 40, STARTUP, "40 JPEG frames")
    # A best-effort stream reaches the recorder only once its process has discovered the camera's, which took
    # over 2 s on a loaded machine: keep the camera going until the recorder has received 45 more messages
    # (besides the frames only /diagnostics, ~2 a second).
    probe.wait_for(lambda: recorder_received(diagnostics) >= before + 45, STARTUP, "45 messages at the recorder")
    graph.stop("camera")

    image = raw.messages[0]
    assert (image.width, image.height, image.encoding, image.header.frame_id) == (40, 28, "rgb8", "camera_color_optical_frame")
    assert (info.messages[0].width, info.messages[0].height) == (40, 28)
    assert all(decode_jpeg(m.data).shape == (28, 40, 3) for m in jpeg.messages)
    assert_consecutive_frames(jpeg.messages)

    graph.stop("recorder")
    [bag] = find_bags([bags])
    recorded = [m.message for m in read_messages(bag, ["/camera/front/image_raw/compressed"])]
    assert len(recorded) >= 30 and recorded[0].format.endswith("jpeg compressed bgr8")
    assert_consecutive_frames(recorded)  # every frame of the file once, in order, looping
    seen = {bytes(m.data) for m in jpeg.messages}
    first = stamp(jpeg.messages[0])
    assert all(bytes(m.data) in seen for m in recorded if stamp(m) >= first)  # the same frames the probe got


def recorder_received(received) -> int | None:
    """The recorder's newest count of messages received, from its /diagnostics (None before the first)."""
    counts = [int(v.value) for array in received.messages for s in array.status if s.name == "recorder"
              for v in s.values if v.key == "received"]
    return max(counts, default=None)


def stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def assert_consecutive_frames(messages) -> None:
    """Each frame is the file's next one (the grey level below the moving square says which), stamps increase."""
    levels = [int(np.median(decode_jpeg(m.data)[14:, :, 0])) for m in messages]
    index = [min(range(30), key=lambda i: abs(brightness(i) - level)) for level in levels]
    assert all(abs(brightness(i) - level) <= 3 for i, level in zip(index, levels)), levels
    steps = [(b - a) % 30 for a, b in zip(index, index[1:])]
    # in order, none skipped: the file is read one frame per frame the node's tick takes
    assert all(d == 1 for d in steps), str(index)
    stamps = [stamp(m) for m in messages]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))


def test_a_video_file_that_ends_is_a_stalled_camera_on_diagnostics(graph, probe, tmp_path):
    # 8 s at 20 Hz: long enough for the probe's subscription to match on a loaded machine (a 2 s clip could end first)
    video = write_test_video(tmp_path / "clip.avi", frames=160)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    jpeg = probe.collect(CompressedImage, "camera/front/image_raw/compressed", SENSOR_QOS)
    graph.start(camera_spec(source=str(video), rate=20.0, loop=False, stall_timeout=0.3))
    probe.wait_for(lambda: len(jpeg) > 0, STARTUP, "frames")
    # On a loaded machine the node can see the stall before the capture thread has read the end of the
    # file: "stalled" (cause unknown) first, then "failed" with the cause. Wait for the cause.
    def ended():
        return [s for s in camera_status(diagnostics) if s.level == DiagnosticStatus.ERROR and "ended" in s.message]

    probe.wait_for(ended, 10.0, "camera stalled with the file's end as the cause")
    assert ended()[0].message.startswith("failed: no new frame for")
    assert int(np.median(decode_jpeg(jpeg.messages[-1].data)[40:, :, 0])) == pytest.approx(brightness(159), abs=3)
    count = len(jpeg)
    probe.spin_for(0.5)
    assert len(jpeg) == count  # nothing published after the stall: never an old frame again


def test_a_missing_device_is_reported_and_nothing_is_published(graph, probe):
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    images = probe.collect(Image, "camera/front/image_raw", SENSOR_QOS)
    graph.start(camera_spec(source="/dev/video_iil_missing"))
    probe.wait_for(lambda: any(s.level == DiagnosticStatus.ERROR for s in camera_status(diagnostics)), STARTUP, "an error")
    error = next(s for s in camera_status(diagnostics) if s.level == DiagnosticStatus.ERROR)
    assert "cannot open camera source '/dev/video_iil_missing'" in error.message
    assert len(images) == 0


def test_a_destroyed_camera_node_stops_its_capture_threads(domain_id):
    """A node destroyed without ``run``'s exit path (a launch test, the docs generator) leaves no capture thread
    behind: one still in OpenCV's code when the process ends aborts it."""
    code = ("import threading, rclpy\n"
            "from iil_robot.nodes.camera import CameraNode\n"
            "rclpy.init(args=['--ros-args', '-p', 'cameras.a.source:=/dev/video_iil_missing',"
            " '-p', 'cameras.b.source:=/dev/video_iil_missing'])\n"
            "node = CameraNode()\n"
            "running = lambda: [t for t in threading.enumerate() if t.name == 'camera-capture']\n"
            "assert len(running()) == 2, running()\n"
            "node.destroy_node()\n"
            "assert not running(), running()\n"
            "rclpy.shutdown()\n"
            "print('stopped')\n")
    result = subprocess.run([sys.executable, "-c", code], env=loopback_env(domain_id), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "stopped" in result.stdout, result.stderr[-2000:]


def test_a_bad_crop_stops_the_node_with_a_message(graph):
    assert_stops_with(graph, camera_spec(source="0", crop=[0, 0, 10]), "crop")


def two_camera_weights(version: int = 1) -> bytes:
    import time

    import torch

    from iil_robot.data.actions import ACTION_SPACES
    from iil_robot.learners.networks import Policy, PolicyShape
    from iil_robot.learners.weights import WeightsMeta, encode_policy

    torch.manual_seed(version)
    shape = PolicyShape("rlpd", 3, 4, (8,), image=(6, 24, 24), image_features=8)
    meta = WeightsMeta(version, "rlpd", "toy/v1", 3, ACTION_SPACES["translation"].spec, 4, (8,), 1, 0, time.time(),
                       image=(6, 24, 24), image_features=8, cameras=("front", "wrist"))
    return encode_policy(Policy(shape), meta)


def test_two_driver_topics_feed_the_camera_node_and_a_two_camera_policy_pairs_them_by_stamp(graph, probe):
    """A bgr8 Image driver (front) and a JPEG driver (wrist) through the camera node into a policy acting on both;
    then a depth image and a corrupt JPEG: each refused by name, the policy holds, and nothing stops."""
    import time

    from std_msgs.msg import String, UInt8MultiArray

    from iil_robot.data.camera import encode_jpeg
    from iil_robot.data.records import Observation, Proposal
    from iil_robot.nodes.common import LATCHED_QOS, RECORD_QOS
    from iil_robot.nodes.learner import weights_message

    graph.start(camera_spec(**{"cameras.front.type": "image", "cameras.front.topic": "drv/front/image_raw",
                               "cameras.front.capture_width": 48, "cameras.front.capture_height": 32,
                               "cameras.front.width": 24, "cameras.front.height": 24,
                               "cameras.wrist.type": "compressed", "cameras.wrist.topic": "drv/wrist/image_raw/compressed",
                               "cameras.wrist.crop": [8, 0, 32, 32], "cameras.wrist.width": 24, "cameras.wrist.height": 24}))
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={
        "rate": 20.0, "cameras": "front,wrist", "camera_timeout": 0.3, "observation_timeout": 0.5}))
    front = probe.publisher(Image, "drv/front/image_raw", SENSOR_QOS)
    wrist = probe.publisher(CompressedImage, "drv/wrist/image_raw/compressed", SENSOR_QOS)
    observations = probe.publisher(String, "observation", SENSOR_QOS)
    weights = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    out = {name: probe.collect(Image, f"camera/{name}/image_raw", SENSOR_QOS) for name in ("front", "wrist")}
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    bad = {"front": None, "wrist": None}

    def feed():
        now = time.time()
        stamp = probe.node.get_clock().now().to_msg()
        bgr = np.zeros((32, 48, 3), np.uint8)
        bgr[..., 0] = 200  # blue in BGR
        image = bad["front"] or Image(height=32, width=48, encoding="bgr8", step=48 * 3, data=bgr.tobytes())
        jpeg = CompressedImage(format="jpeg", data=bad["wrist"] or encode_jpeg(np.full((32, 48, 3), 90, np.uint8)))
        for msg in (image, jpeg):
            msg.header.stamp = stamp
        front.publish(image)
        wrist.publish(jpeg)
        observations.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", now).encode()))

    def newest() -> Proposal | None:
        return Proposal.decode(proposals.messages[-1].data) if proposals.messages else None

    weights.publish(weights_message(two_camera_weights()))
    probe.wait_for(lambda: newest() is not None and newest().policy_version == 1 and newest().image_stamps, 60.0,
                   "proposals of the two-camera weights", every=feed)
    assert set(newest().image_stamps) == {"front", "wrist"}
    assert abs(newest().image_stamps["front"] - newest().obs_stamp) < 0.3  # paired by stamp with the observation
    f = out["front"].messages[-1]
    rgb = np.frombuffer(bytes(f.data), np.uint8).reshape(24, 24, 3)
    assert (f.width, f.height, f.encoding) == (24, 24, "rgb8")
    assert rgb[..., 2].mean() > 150 and rgb[..., 0].mean() < 50  # the driver's bgr8 blue is rgb8 blue
    assert (out["wrist"].messages[-1].width, out["wrist"].messages[-1].height) == (24, 24)

    for name, bad_input, named in (("front", Image(height=32, width=48, encoding="16UC1", step=96, data=bytes(32 * 96)),
                                    "'16UC1' is not a colour image"),
                                   ("wrist", b"\xff\xd8 not a jpeg", "cannot decode a compressed image")):
        bad[name] = bad_input
        probe.wait_for(lambda: named in graph.tail("camera", 200), 20.0, f"the camera node refusing {name}", every=feed)  # noqa: B023
        probe.wait_for(lambda: f"camera {name} stale" in graph.tail("policy", 200), 20.0,  # noqa: B023
                       f"the policy holding on {name}", every=feed)
        count = len(proposals)
        probe.spin_for(0.5)
        assert len(proposals) == count  # holding: no proposal while a camera's frames are refused
        bad[name] = None
    probe.wait_for(lambda: newest().stamp > time.time() - 0.5, 20.0, "proposals again once the inputs are good", every=feed)
    assert graph.processes["camera"].popen.poll() is None and graph.processes["policy"].popen.poll() is None
