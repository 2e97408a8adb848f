"""Camera frames for the learners: the bounded store, labelling's frame stamps and pairing by stamp."""
import numpy as np
import pytest

from iil_robot.data.camera import CameraError, encode_jpeg
from iil_robot.data.episodes import Episode
from iil_robot.data.frames import FrameStore, attach_images, frame_chw
from iil_robot.data.labels import label_episode
from tests.records_factory import steps

IMAGE = (3, 20, 24)


def grey(value: int, shape=(40, 48)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def with_frames(records, missing=()):
    """Each step acted on a frame taken 10 ms before it; ``missing`` ticks had none."""
    return [r.__class__(**{**r.__dict__, "image_stamps": None if r.tick in missing else {"front": r.stamp - 0.01}})
            for r in records]


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
    paired, missing = attach_images(rlif, store, "front")
    assert attach_images(rlif, store, "wrist")[1] == len(rlif)  # another camera's frames: none of these
    # rows 0 (next is 1), 1, 4 (next is 5), 5 lose a frame; the last step forms no transition (timeout)
    assert missing == 4 and len(paired) == len(rlif) - 4
    assert paired.images.shape == (len(paired), *IMAGE) and paired.images.dtype == np.uint8
    np.testing.assert_array_equal(paired.images[:, 0, 0, 0], paired.observations[:, 0])  # frame of tick t has value t
    np.testing.assert_array_equal(paired.next_images[:, 0, 0, 0], paired.next_observations[:, 0])


def test_rows_without_stamps_are_all_left_out_and_counted():
    rlif = label_episode(Episode(0, tuple(steps("pppp")), 0.0, 1.0, "timeout")).rlif  # no camera at all
    paired, missing = attach_images(rlif, FrameStore(IMAGE, 10), "front")
    assert len(paired) == 0 and missing == len(rlif) == 3 and paired.images.shape == (0, *IMAGE)
