"""``iil-robot console`` in a pseudo-terminal against a running graph: keys in, screen out."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

from iil_robot.cli.graph import NodeSpec, loopback_env
from iil_robot.data.camera import encode_jpeg
from iil_robot.data.records import EpisodeEvent, Observation
from iil_robot.nodes.common import EVENTS_QOS, RECORD_QOS, SENSOR_QOS

STARTUP = 60.0


def test_the_console_shows_the_episode_state_and_its_keys_reach_the_episode_manager(graph, probe, domain_id, tmp_path):
    graph.start(NodeSpec("episode_manager", "iil_robot.nodes.episode_manager", parameters={"time_limit": 0.0}))
    observations = probe.publisher(String, "observation", RECORD_QOS)
    events = probe.collect(String, "episode/event", EVENTS_QOS)
    frames = probe.publisher(CompressedImage, "camera/front/image_raw/compressed", SENSOR_QOS)
    jpeg = encode_jpeg(np.full((8, 8, 3), 200, np.uint8))

    def tick() -> None:
        observations.publish(String(data=Observation((0.0,), "toy/v1", time.time(), ("x.v",)).encode()))

    master, slave = pty.openpty()
    console = subprocess.Popen([sys.executable, "-m", "iil_robot.cli", "console", "--domain-id", str(domain_id),
                                "--seconds", "120", "--frames-dir", str(tmp_path)],
                               stdin=slave, stdout=slave, stderr=slave, env=loopback_env(domain_id),
                               start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    screen = bytearray()

    def read() -> str:
        try:
            while chunk := os.read(master, 65536):
                screen.extend(chunk)
        except (BlockingIOError, OSError):
            pass
        return screen.decode(errors="replace")

    try:
        probe.wait_for(lambda: "(running)" in read(), STARTUP, "the console showing a running episode", every=tick)
        assert "keys: n start  s success  f failure  r reset" in read()
        os.write(master, b"s")
        probe.wait_for(lambda: any(EpisodeEvent.decode(m.data).event == "success" for m in events.messages), 10.0,
                       "the success the key asked for", every=tick)
        probe.wait_for(lambda: "(asked: success)" in read(), 10.0, "the console saying what it asked", every=tick)
        frame_file = tmp_path / "camera_latest.jpg"
        probe.wait_for(frame_file.exists, 10.0, "the newest camera frame",
                       every=lambda: frames.publish(CompressedImage(format="jpeg", data=jpeg)))
        assert frame_file.read_bytes() == jpeg
        probe.wait_for(lambda: f"camera: newest frame in {frame_file}" in read(), 10.0, "the frame's path on the screen")
        probe.wait_for(lambda: re.search(r"redraw \d+\.\d Hz", read()), 10.0, "the measured redraw rate in the title")
        os.write(master, b"q")
        assert console.wait(timeout=20) == 0
        summary = re.search(r"console: (\d+) redraws in ([\d.]+) s \(([\d.]+) Hz, target 4\), drawing took ([\d.]+) ms",
                            read())
        assert summary, read()[-2000:]
        redraws, seconds, hz = int(summary[1]), float(summary[2]), float(summary[3])
        assert redraws >= 2 and seconds > 0 and hz == pytest.approx((redraws - 1) / seconds, rel=0.05, abs=0.1)
        print(f"console redraw rate: {summary[0]}")
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
        os.close(master)
