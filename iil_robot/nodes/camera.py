"""``camera`` node: frames from a V4L2 device, a video file or the sim arm's rendered view, cut to
the policy's input and published raw and JPEG-compressed.

Publishes ``camera/image_raw`` (sensor_msgs/Image, rgb8), ``camera/image_raw/compressed``
(sensor_msgs/CompressedImage, JPEG, the name image_transport's compressed plugin uses),
``camera/camera_info`` (size only, uncalibrated) and ``/diagnostics``. Source ``sim`` subscribes
to the sim arm's ``image`` (its MuJoCo render; nothing is rendered twice). Each image is stamped
with its capture time. A camera that fails or stalls publishes nothing new and says so on
``/diagnostics`` (ERROR); a policy that needs images sees its newest frame age and holds. See
``iil_robot.data.camera``.
"""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.time import Duration
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from iil_robot.data.camera import (
    CameraConfig,
    CameraError,
    CaptureThread,
    Frame,
    StallMonitor,
    encode_jpeg,
    preprocess,
    source_kind,
)
from iil_robot.nodes.common import SENSOR_QOS, IilNode, declare_config, run

RANGES = {"rate": (0.5, 240.0), "capture_width": (0, 8192), "capture_height": (0, 8192), "crop": (0, 8192),
          "width": (8, 4096), "height": (8, 4096), "jpeg_quality": (1, 100), "stall_timeout": (0.01, 60.0),
          "reconnect_period": (0.1, 60.0)}
LEVELS = {"waiting": DiagnosticStatus.WARN, "ok": DiagnosticStatus.OK, "stalled": DiagnosticStatus.ERROR,
          "failed": DiagnosticStatus.ERROR}


class CameraNode(IilNode):
    def __init__(self) -> None:
        super().__init__("camera")
        self.config: CameraConfig = declare_config(self, CameraConfig, ranges=RANGES)
        self.kind = source_kind(self.config.source)
        self.monitor = StallMonitor(self.config.stall_timeout)
        self.published_index = 0
        self.last_state = "waiting"

        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.jpeg_pub = self.create_publisher(CompressedImage, "camera/image_raw/compressed", SENSOR_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.capture: CaptureThread | None = None
        self.sim_frame: tuple[Frame, object] | None = None  # (frame, stamp of the sim arm's image)
        if self.kind == "sim":
            self.create_subscription(Image, "image", self._on_sim_image, SENSOR_QOS)
        else:
            self.capture = CaptureThread(self.config)
            self.capture.start()
        self.create_timer(1.0 / self.config.rate, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        c = self.config
        self.get_logger().info(f"{self.kind} source {c.source!r} at {c.rate:g} Hz -> {c.width}x{c.height} (crop {list(c.crop)})")

    def _on_sim_image(self, msg: Image) -> None:
        if msg.encoding != "rgb8" or len(msg.data) != msg.height * msg.width * 3:
            self.get_logger().error(f"sim image is {msg.encoding} {msg.width}x{msg.height} with {len(msg.data)} bytes: "
                                    "expected rgb8; ignored", throttle_duration_sec=2.0)
            return
        rgb = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        index = self.sim_frame[0].index + 1 if self.sim_frame else 1
        self.sim_frame = (Frame(rgb, index, time.monotonic()), msg.header.stamp)

    def _on_tick(self) -> None:
        now = time.monotonic()
        if self.sim_frame is not None:
            frame, stamp = self.sim_frame
        else:
            frame = self.capture.latest() if self.capture is not None else None
            stamp = None
        if frame is not None and frame.index != self.published_index:
            self.published_index = frame.index
            if stamp is None:  # the capture time on the node clock
                stamp = (self.get_clock().now() - Duration(seconds=now - frame.monotonic)).to_msg()
            try:
                self._publish(preprocess(frame.rgb, self.config.crop, self.config.width, self.config.height), stamp)
            except CameraError as err:
                self.get_logger().error(f"{err}", throttle_duration_sec=2.0)
                return
            self.monitor.frame(frame.monotonic)
        state, message = self._state(now)
        if state != self.last_state:
            if state == "ok":  # rclpy: one severity per call site
                self.get_logger().info(f"camera ok: {message}")
            else:
                self.get_logger().error(f"camera {state}: {message}")
            self.last_state = state
            self._publish_diagnostics()

    def _state(self, now: float) -> tuple[str, str]:
        error = self.capture.error if self.capture is not None else ""
        return self.monitor.state(now, error)

    def _publish(self, rgb: np.ndarray, stamp) -> None:
        h, w = rgb.shape[:2]
        image = Image(height=h, width=w, encoding="rgb8", step=w * 3, data=rgb.tobytes())
        jpeg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=encode_jpeg(rgb, self.config.jpeg_quality))
        info = CameraInfo(height=h, width=w)
        for msg in (image, jpeg, info):
            msg.header.stamp, msg.header.frame_id = stamp, self.config.frame_id
        self.image_pub.publish(image)
        self.jpeg_pub.publish(jpeg)
        self.info_pub.publish(info)

    def _publish_diagnostics(self) -> None:
        state, message = self._state(time.monotonic())
        status = DiagnosticStatus(name="camera", hardware_id=self.config.source, level=LEVELS[state],
                                  message=f"{state}: {message}")
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("state", state), ("frames", self.monitor.frames), ("source", self.config.source),
            ("size", f"{self.config.width}x{self.config.height}"))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def _stop(node: CameraNode) -> None:
    if node.capture is not None:
        node.capture.stop()


def main(args: list[str] | None = None) -> int:
    return run(CameraNode, on_exit=_stop, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
