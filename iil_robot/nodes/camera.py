"""``camera`` node: one or more named cameras, each a V4L2 device or video file (a bare USB camera) or
a camera driver's ROS image topic (``usb_cam``, ``realsense2_camera``, the sim arm), cut to the
policy's input and published raw and JPEG-compressed.

Cameras are configured twist_mux-style, ``cameras.<name>.*`` (see ``iil_robot.data.camera.CameraConfig``);
with none configured the node runs one device camera ``front`` on ``/dev/video0``. For each camera
``<name>`` it publishes ``camera/<name>/image_raw`` (sensor_msgs/Image, rgb8),
``camera/<name>/image_raw/compressed`` (JPEG, the name image_transport's compressed plugin uses) and
``camera/<name>/camera_info`` (size only), plus ``/diagnostics`` (one status per camera). A device
frame is stamped with its capture time; a topic camera's frame keeps its driver's stamp, so the
policy can pair it with the observation. A camera that fails, stalls, or sends images the node must
refuse (another encoding or size, a corrupt JPEG, no stamp) publishes nothing new and says why,
throttled and on ``/diagnostics`` (ERROR): the policy's frame grows old and the arm holds.
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.time import Duration
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from iil_robot.data.camera import (
    CameraConfig,
    CameraError,
    CaptureThread,
    StallMonitor,
    check_size,
    decode_jpeg,
    encode_jpeg,
    image_rgb,
    preprocess,
)
from iil_robot.nodes.common import SENSOR_QOS, IilNode, declare_config, override_names, run

RANGES = {"rate": (0.5, 240.0), "capture_width": (0, 8192), "capture_height": (0, 8192), "crop": (0, 8192),
          "width": (8, 4096), "height": (8, 4096), "jpeg_quality": (1, 100), "stall_timeout": (0.01, 60.0),
          "reconnect_period": (0.1, 60.0)}
LEVELS = {"waiting": DiagnosticStatus.WARN, "ok": DiagnosticStatus.OK, "stalled": DiagnosticStatus.ERROR,
          "failed": DiagnosticStatus.ERROR}
DEFAULT_CAMERA = "front"


class Camera:
    """One named camera's publishers and health."""

    def __init__(self, node: IilNode, name: str, config: CameraConfig) -> None:
        self.name, self.config, self.prefix = name, config, f"cameras.{name}."
        self.monitor = StallMonitor(config.stall_timeout)
        self.error = ""  # the last refused input (topic cameras) or capture failure
        self.last_state = "waiting"
        base = f"camera/{name}/"
        self.image_pub = node.create_publisher(Image, base + "image_raw", SENSOR_QOS)
        self.jpeg_pub = node.create_publisher(CompressedImage, base + "image_raw/compressed", SENSOR_QOS)
        self.info_pub = node.create_publisher(CameraInfo, base + "camera_info", SENSOR_QOS)
        self.capture = CaptureThread(config) if config.type == "device" else None
        self.published_index = 0

    def publish(self, rgb, stamp) -> None:
        """Crop, resize and publish a frame. Raises CameraError (another size, a crop that does not fit)."""
        c = self.config
        check_size(rgb, c, self.prefix)
        rgb = preprocess(rgb, c.crop, c.width, c.height, f"{self.prefix}crop")
        h, w = rgb.shape[:2]
        image = Image(height=h, width=w, encoding="rgb8", step=w * 3, data=rgb.tobytes())
        jpeg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=encode_jpeg(rgb, c.jpeg_quality))
        info = CameraInfo(height=h, width=w)
        for msg in (image, jpeg, info):
            msg.header.stamp, msg.header.frame_id = stamp, c.frame_id
        self.image_pub.publish(image)
        self.jpeg_pub.publish(jpeg)
        self.info_pub.publish(info)

    def state(self, now: float) -> tuple[str, str]:
        return self.monitor.state(now, self.capture.error if self.capture is not None else self.error)


class CameraNode(IilNode):
    def __init__(self) -> None:
        super().__init__("camera")
        self.cameras = [Camera(self, name, declare_config(self, CameraConfig, f"cameras.{name}.", RANGES))
                        for name in override_names(self, "cameras") or [DEFAULT_CAMERA]]
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for camera in self.cameras:
            c = camera.config
            if camera.capture is not None:
                camera.capture.start()
                self.create_timer(1.0 / c.rate, lambda camera=camera: self._on_device_tick(camera))
            else:
                kind = Image if c.type == "image" else CompressedImage
                self.create_subscription(kind, c.topic, lambda msg, camera=camera: self._on_image(camera, msg), SENSOR_QOS)
            source = c.source if c.type == "device" else f"{c.topic} ({c.type})"
            self.get_logger().info(f"camera {camera.name}: {source} -> camera/{camera.name}/image_raw {c.width}x{c.height} "
                                   f"(crop {list(c.crop)})")
        self.create_timer(0.1, self._check_states)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_device_tick(self, camera: Camera) -> None:
        frame = camera.capture.latest()
        if frame is None or frame.index == camera.published_index:
            return
        camera.published_index = frame.index
        stamp = (self.get_clock().now() - Duration(seconds=time.monotonic() - frame.monotonic)).to_msg()  # capture time
        self._publish(camera, lambda: frame.rgb, stamp)

    def _on_image(self, camera: Camera, msg: Image | CompressedImage) -> None:
        if msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0:
            self._refuse(camera, "image has no stamp (0): the policy pairs frames by stamp; set the driver's clock "
                         "(or use_sim_time on both)")
            return
        if isinstance(msg, CompressedImage):
            self._publish(camera, lambda: decode_jpeg(msg.data), msg.header.stamp)
        else:
            self._publish(camera, lambda: image_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data), msg.header.stamp)

    def _publish(self, camera: Camera, frame, stamp) -> None:
        try:
            camera.publish(frame(), stamp)
        except CameraError as err:
            self._refuse(camera, str(err))
            return
        camera.error = ""
        camera.monitor.frame(time.monotonic())

    def _refuse(self, camera: Camera, why: str) -> None:
        camera.error = f"refused: {why}"
        self.get_logger().error(f"camera {camera.name}: {camera.error}; nothing published (the policy holds)",
                                throttle_duration_sec=2.0)

    def _check_states(self) -> None:
        now = time.monotonic()
        for camera in self.cameras:
            state, message = camera.state(now)
            if state != camera.last_state:
                if state == "ok":  # rclpy: one severity per call site
                    self.get_logger().info(f"camera {camera.name} ok: {message}")
                else:
                    self.get_logger().error(f"camera {camera.name} {state}: {message}")
                camera.last_state = state
                self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for camera in self.cameras:
            state, message = camera.state(now)
            c = camera.config
            source = c.source if c.type == "device" else c.topic
            status = DiagnosticStatus(name=f"camera: {camera.name}", hardware_id=source, level=LEVELS[state],
                                      message=f"{state}: {message}")
            status.values = [KeyValue(key=k, value=str(v)) for k, v in (
                ("state", state), ("frames", camera.monitor.frames), ("type", c.type), ("source", source),
                ("size", f"{c.width}x{c.height}"))]
            array.status.append(status)
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        # Capture threads sit in OpenCV's C++ code: one still running when the process ends aborts it.
        for camera in self.cameras:
            if camera.capture is not None:
                camera.capture.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run(CameraNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
