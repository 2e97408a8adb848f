"""Camera frames for the learners: the bounded store, labelling's frame stamps and pairing by stamp."""
import numpy as np
import pytest

from iil_robot.data.camera import CameraError, encode_jpeg
from iil_robot.data.episodes import Episode
from iil_robot.data.frames import FrameStore, attach_images, camera_names, compressed_topic, frame_chw
from iil_robot.data.labels import label_episode
from tests.records_factory import steps

IMAGE = (3, 20, 24)


def grey(value: int, shape=(40, 48)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def with_frames(records, missing=(), cameras=("front",)):
    """Each step acted on a frame of each camera taken 10 ms before it (the wrist's 5 ms before it); ``missing`` ticks
    had none."""
    offset = {"front": 0.01, "wrist": 0.005}
    return [r.__class__(**{**r.__dict__, "image_stamps": None if r.tick in missing
                           else {c: r.stamp - offset[c] for c in cameras}}) for r in records]


def test_the_store_resizes_to_the_learners_image_and_keeps_only_the_newest():
    store = FrameStore(IMAGE, capacity=3)
    for i in range(5):
        store.add_rgb(float(i), grey(10 * i))
    assert len(store) == 3 and store.get(0.0) is None and store.get(1.0) is None
    frame = store.get(4.0)
    assert frame.shape == IMAGE and frame.dtype == np.uint8 and (frame == 40).all()
    store.add_compressed(5.0, encode_jpeg(grey(100)))
    assert abs(int(store.get(5.0).mean()) - 100) <= 2 and store.get(2.0) is None
    with pytest.raises(CameraError, match="cannot decode"):
        store.add_compressed(6.0, b"not a jpeg")
    assert frame_chw(grey(7, IMAGE[1:]), IMAGE).shape == IMAGE


def test_labelling_carries_each_steps_frame_stamp_and_the_next_steps():
    records = with_frames(steps("ppHhpp"), missing={4})
    labelled = label_episode(Episode(0, tuple(records), 0.0, 1.0, "success"))
    rlif = labelled.rlif
    stamps = {r.tick: r.stamp - 0.01 for r in records}
    assert [s["front"] for s in rlif.image_stamps[:3]] == [stamps[0], stamps[1], stamps[2]]
    assert [s["front"] for s in rlif.next_image_stamps[:3]] == [stamps[1], stamps[2], stamps[3]]
    assert rlif.image_stamps[4] is None and rlif.next_image_stamps[3] is None  # tick 4 had no frame
    assert rlif.next_image_stamps[-1] == rlif.image_stamps[-1]  # a terminal's next is itself


def test_rows_are_paired_by_exact_stamp_and_rows_without_their_frames_are_counted():
    records = with_frames(steps("pppHhhpp"), missing={5})
    rlif = label_episode(Episode(0, tuple(records), 0.0, 1.0, "timeout")).rlif
    store = FrameStore(IMAGE, capacity=100)
    for r in records:
        if r.image_stamps is not None and r.tick != 1:  # the frame of tick 1 never arrived
            store.add_rgb(r.image_stamps["front"], grey(r.tick))
    result = attach_images(rlif, {"front": store})
    paired, missing = result.data, result.left_out
    assert attach_images(rlif, {"wrist": store}).missing == {"wrist": len(rlif)}  # another camera's frames: none of these
    # rows 0 (next is 1), 1, 4 (next is 5), 5 lose a frame; the last step forms no transition (timeout)
    assert missing == 4 and result.missing == {"front": 4} and len(paired) == len(rlif) - 4
    assert paired.images.shape == (len(paired), *IMAGE) and paired.images.dtype == np.uint8
    np.testing.assert_array_equal(paired.images[:, 0, 0, 0], paired.observations[:, 0])  # frame of tick t has value t
    np.testing.assert_array_equal(paired.next_images[:, 0, 0, 0], paired.next_observations[:, 0])


def test_rows_without_stamps_are_all_left_out_and_counted():
    rlif = label_episode(Episode(0, tuple(steps("pppp")), 0.0, 1.0, "timeout")).rlif  # no camera at all
    result = attach_images(rlif, {"front": FrameStore(IMAGE, 10), "wrist": FrameStore(IMAGE, 10)})
    assert len(result.data) == 0 and result.left_out == len(rlif) == 3 and result.data.images.shape == (0, 6, *IMAGE[1:])
    assert result.missing == {"front": 3, "wrist": 3}


def two_camera_stores(records, lost=()):
    """Every step's front frame (grey = tick) and wrist frame (grey = 100 + tick), but the wrist frames of ``lost``."""
    stores = {"front": FrameStore(IMAGE, 100), "wrist": FrameStore(IMAGE, 100)}
    for r in records:
        if r.image_stamps is not None:
            stores["front"].add_rgb(r.image_stamps["front"], grey(r.tick))
            if r.tick not in lost and "wrist" in r.image_stamps:
                stores["wrist"].add_rgb(r.image_stamps["wrist"], grey(100 + r.tick))
    return stores


def test_a_row_is_paired_only_with_every_cameras_frame_and_the_rows_lacking_one_are_counted_by_camera():
    records = with_frames(steps("pppHhhpp"), cameras=("front", "wrist"))
    rlif = label_episode(Episode(0, tuple(records), 0.0, 1.0, "timeout")).rlif
    result = attach_images(rlif, two_camera_stores(records, lost={3}))
    # the wrist's frame of tick 3 never arrived: rows 2 (next is 3) and 3 lose it; the front has every frame
    assert result.left_out == 2 and result.missing == {"front": 0, "wrist": 2} and len(result.data) == len(rlif) - 2
    paired = result.data
    assert paired.images.shape == (len(paired), 6, *IMAGE[1:]) and paired.next_images.shape == paired.images.shape
    np.testing.assert_array_equal(paired.images[:, 0, 0, 0], paired.observations[:, 0])  # front first: channels 0-2
    np.testing.assert_array_equal(paired.images[:, 3, 0, 0], 100 + paired.observations[:, 0])  # then the wrist: 3-5
    np.testing.assert_array_equal(paired.next_images[:, 3, 0, 0], 100 + paired.next_observations[:, 0])
    assert 2.0 not in paired.observations[:, 0] and 3.0 not in paired.observations[:, 0]


def test_the_cameras_order_is_the_order_of_their_images():
    records = with_frames(steps("pppp"), cameras=("front", "wrist"))
    rlif = label_episode(Episode(0, tuple(records), 0.0, 1.0, "timeout")).rlif
    stores = two_camera_stores(records)
    swapped = attach_images(rlif, {"wrist": stores["wrist"], "front": stores["front"]}).data
    np.testing.assert_array_equal(swapped.images[:, :3], attach_images(rlif, stores).data.images[:, 3:])
    np.testing.assert_array_equal(swapped.images[:, 0, 0, 0], 100 + swapped.observations[:, 0])


def test_a_step_that_names_only_some_cameras_is_left_out_for_the_others():
    records = with_frames(steps("pppp"), cameras=("front", "wrist"))
    records[1] = records[1].__class__(**{**records[1].__dict__, "image_stamps": {"front": records[1].stamp - 0.01}})
    rlif = label_episode(Episode(0, tuple(records), 0.0, 1.0, "timeout")).rlif
    result = attach_images(rlif, two_camera_stores(records))
    assert result.left_out == 2 and result.missing == {"front": 0, "wrist": 2}  # rows 0 (its next) and 1


def test_camera_lists_and_topics():
    assert camera_names(" front, wrist ,") == ("front", "wrist") and camera_names("") == ()
    with pytest.raises(ValueError, match="names a camera twice"):
        camera_names("front,front")
    assert compressed_topic("wrist") == "/camera/wrist/image_raw/compressed"
