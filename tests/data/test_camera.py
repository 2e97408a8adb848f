"""Camera core: crop and resize, JPEG round trip, capture from a generated video file (paced,
looped or ending), and the stall monitor's states."""
from __future__ import annotations

import numpy as np
import pytest

from iil_robot.data.camera import (
    CameraConfig,
    CameraError,
    CaptureThread,
    StallMonitor,
    check_size,
    decode_jpeg,
    encode_jpeg,
    image_rgb,
    open_capture,
    preprocess,
    source_kind,
)
from tests.fakes import brightness, wait_until, write_test_video


@pytest.mark.parametrize("source, kind", [("0", "device"), ("12", "device"), ("/dev/video2", "device"),
                                          ("clip.mp4", "file"), ("/tmp/a.avi", "file")])
def test_source_kind(source, kind):
    assert source_kind(source) == kind


def test_preprocess_crops_then_resizes_to_the_policy_input():
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[10:30, 20:60] = (200, 100, 50)  # the crop region is one colour, the rest black
    out = preprocess(rgb, (20, 10, 40, 20), 16, 8)
    assert out.shape == (8, 16, 3) and out.dtype == np.uint8
    assert np.all(out == (200, 100, 50))
    assert np.array_equal(preprocess(rgb, (0, 0, 0, 0), 80, 60), rgb)  # no crop, same size: unchanged


def test_preprocess_rejects_a_crop_outside_the_frame_and_non_rgb_frames():
    with pytest.raises(CameraError, match="does not fit the 80x60 frame"):
        preprocess(np.zeros((60, 80, 3), np.uint8), (50, 0, 40, 10), 8, 8)
    with pytest.raises(CameraError, match="RGB uint8"):
        preprocess(np.zeros((60, 80), np.uint8), (0, 0, 0, 0), 8, 8)


def test_jpeg_round_trip_keeps_the_image_and_the_channel_order():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 220  # red
    back = decode_jpeg(encode_jpeg(rgb, 95))
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).max() <= 4
    with pytest.raises(CameraError, match="cannot decode"):
        decode_jpeg(b"not a jpeg")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="crop"):
        CameraConfig(crop=(0, 0, 10))
    with pytest.raises(ValueError, match="jpeg_quality"):
        CameraConfig(jpeg_quality=0)


def test_open_capture_names_a_missing_file(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        open_capture(CameraConfig(source=str(tmp_path / "missing.avi")))


def test_capture_thread_reads_a_video_file_in_order_and_loops(tmp_path):
    video = write_test_video(tmp_path / "clip.avi", frames=10)
    capture = CaptureThread(CameraConfig(source=str(video), rate=200.0, loop=True))
    capture.start()
    try:
        levels = []

        def collect() -> bool:
            frame = capture.latest()
            if frame is not None and (not levels or levels[-1][0] != frame.index):
                levels.append((frame.index, int(np.median(frame.rgb[40:, :, 0]))))
            return len(levels) > 0 and levels[-1][0] >= 15

        wait_until(collect, 10.0, "15 frames of the looping file")
    finally:
        capture.stop()
    assert capture.error == ""
    assert [index for index, _ in levels] == list(range(1, len(levels) + 1))  # each frame once, none skipped
    # every frame seen shows the grey level of its position in the file (index 11 = frame 0 again)
    for index, level in levels:
        assert abs(level - brightness((index - 1) % 10)) <= 3, (index, level)


def test_capture_thread_without_loop_ends_and_says_so(tmp_path):
    video = write_test_video(tmp_path / "clip.avi", frames=5)
    capture = CaptureThread(CameraConfig(source=str(video), rate=200.0, loop=False, reconnect_period=0.1))
    capture.start()
    try:
        wait_until(lambda: capture.latest() is not None and capture.ended, 10.0, "the end of the file")  # taking frames reads on
    finally:
        capture.stop()
    assert capture.latest().index == 5
    assert "ended" in capture.error


@pytest.mark.parametrize("frames_at, now, error, expected", [
    ((), 1.0, "", "waiting"),
    ((), 1.0, "cannot open camera source '0'", "failed"),
    ((0.8,), 1.0, "", "ok"),
    ((0.1,), 1.0, "", "stalled"),
    ((0.1,), 1.0, "returned no frame", "failed"),
])
def test_stall_monitor_states(frames_at, now, error, expected):
    monitor = StallMonitor(stall_timeout=0.5)
    for t in frames_at:
        monitor.frame(t)
    state, message = monitor.state(now, error)
    assert state == expected
    if error:
        assert error in message


RGB = bytes(range(12))  # a 2x2 image: pixels (0,1,2) (3,4,5) / (6,7,8) (9,10,11)


@pytest.mark.parametrize("encoding, width, height, step, data, first_pixel", [
    ("rgb8", 2, 2, 6, RGB, (0, 1, 2)),
    ("bgr8", 2, 2, 6, RGB, (2, 1, 0)),                         # converted to RGB
    ("rgb8", 2, 2, 8, RGB[:6] + b"xx" + RGB[6:] + b"yy", (0, 1, 2)),  # padded rows (step > width x 3)
])
def test_image_messages_become_rgb_frames(encoding, width, height, step, data, first_pixel):
    rgb = image_rgb(encoding, width, height, step, data)
    assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 0]) == first_pixel and tuple(rgb[1, 1]) in ((9, 10, 11), (11, 10, 9))


@pytest.mark.parametrize("encoding, width, height, step, data, named", [
    ("16UC1", 2, 2, 4, bytes(8), "'16UC1' is not a colour image"),
    ("mono8", 2, 2, 2, bytes(4), "'mono8' is not a colour image"),
    ("rgb8", 2, 2, 6, bytes(11), "has 11 bytes"),
    ("rgb8", 2, 2, 4, bytes(8), "step 4"),
    ("rgb8", 0, 2, 0, b"", "0x2"),
])
def test_image_messages_of_another_encoding_or_malformed_are_refused_by_name(encoding, width, height, step, data, named):
    with pytest.raises(CameraError, match=named):
        image_rgb(encoding, width, height, step, data)


def test_a_topic_camera_refuses_another_size_naming_both_and_the_parameters():
    config = CameraConfig(type="image", topic="cam/image_raw", capture_width=640, capture_height=480)
    check_size(np.zeros((480, 640, 3), np.uint8), config, "cameras.wrist.")
    with pytest.raises(CameraError, match=r"image is 320x240, expected 640x480: set cameras.wrist.capture_width"):
        check_size(np.zeros((240, 320, 3), np.uint8), config, "cameras.wrist.")
    check_size(np.zeros((240, 320, 3), np.uint8), CameraConfig(type="image", topic="t"))  # 0 = any size
    with pytest.raises(CameraError, match=r"width=400 height=300 does not fit the 320x240 frame: set cameras.wrist.crop"):
        preprocess(np.zeros((240, 320, 3), np.uint8), (0, 0, 400, 300), 64, 64, "cameras.wrist.crop")


@pytest.mark.parametrize("fields, named", [({"type": "depth"}, "type 'depth'"), ({"type": "image"}, "needs a topic"),
                                           ({"type": "device", "source": ""}, "source is empty")])
def test_a_camera_config_names_what_is_missing(fields, named):
    with pytest.raises(ValueError, match=named):
        CameraConfig(**fields)
