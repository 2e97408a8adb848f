"""Camera policies in the Trainer: frames paired with step records by ``image_stamp``, live and from bags."""
import numpy as np
import pytest
import torch

from iil_robot.data.camera import encode_jpeg
from iil_robot.data.frames import stamp_seconds
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.rlpd import RLPDConfig
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.learners.weights import Expected, decode_policy
from tests.records_factory import write_bag

from .helpers import boundary_task_records, episode_events, feed, method_for, restore_from_bags

torch.set_num_threads(1)
H, W = 20, 24
TINY_RLPD = RLPDConfig(hidden=(16, 16), num_qs=2, batch_size=16, utd_ratio=1, image_features=8)
TINY_BC = HGDAggerConfig(hidden=(16,), ensemble=2, batch_size=16, image_features=8)


def frame_ns(step) -> int:
    return max(0, int(round(step.stamp * 1e9)) - 10_000_000)  # the frame was taken 10 ms before the tick


def with_frames(episodes, missing=()):
    """Records naming the frame each step acted on (as the policy node and the mux do); ``missing`` ticks had none."""
    def named(r):
        ns = frame_ns(r)
        stamps = None if r.tick in missing else {"front": stamp_seconds(ns // 10**9, ns % 10**9)}
        return r.__class__(**{**r.__dict__, "image_stamps": stamps})
    return [[named(r) for r in records] for records in episodes]


def pixel(tick: int) -> int:
    return (7 * tick) % 250


def jpeg(tick: int) -> bytes:
    return encode_jpeg(np.full((32, 32, 3), pixel(tick), np.uint8))


def make(tmp_path, algorithm="hgdagger", **kw):
    warnings = []
    config = TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", min_transitions=20, run_dir=str(tmp_path),
                           device="cpu", image_width=W, image_height=H, **kw)
    return Trainer(config, LearnerConfigs(rlpd=TINY_RLPD, hgdagger=TINY_BC), warn=warnings.append), warnings


@pytest.mark.parametrize("algorithm", ["hgdagger", "rlpd"])
def test_live_frames_are_paired_by_stamp_and_steps_without_theirs_are_counted_and_warned(tmp_path, algorithm):
    episodes = with_frames(boundary_task_records(3, 30), missing={5})
    lost = episodes[1][10].tick  # its frame never reached the learner
    trainer, warnings = make(tmp_path, algorithm)
    for records in episodes:
        for r in records:
            if r.image_stamps is not None and r.tick != lost:
                ns = frame_ns(r)
                trainer.add_compressed_frame(stamp_seconds(ns // 10**9, ns % 10**9), jpeg(r.tick))
    feed(trainer, episodes)
    state_only = Trainer(TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", run_dir=str(tmp_path / "s"),
                                       device="cpu"),
                         LearnerConfigs(rlpd=TINY_RLPD, hgdagger=TINY_BC))
    feed(state_only, episodes)
    # tick 5 (no stamp) and the lost frame each cost their own row and the row before (its next frame)
    assert trainer.status()["missing_frames"] == trainer.missing_frames \
        == len(state_only.prior) + len(state_only.online) - len(trainer.prior) - len(trainer.online) >= 2
    assert warnings and "no camera frame" in warnings[0] and "left out of image learning" in warnings[0]
    for buffer in (trainer.prior, trainer.online):
        n = len(buffer)
        assert buffer.images.shape[1:] == (3, H, W) and n > 0
        flat = buffer.images[:n].reshape(n, -1).astype(int)
        assert np.all(np.abs(flat - flat[:, :1]) <= 2)  # each row holds one whole frame (uniform grey)
    weights = trainer.step()
    meta, policy = decode_policy(weights, Expected("toy/v1", 1))
    assert meta.image == (3, H, W)
    assert policy(torch.zeros(1, 1), torch.zeros(1, 3, H, W, dtype=torch.uint8))[0].shape == (1, 4)


def test_images_need_a_camera_learner_and_a_usable_size():
    with pytest.raises(ValueError, match="learns from state only"):
        TrainerConfig(method="pvp", image_width=32, image_height=32)
    with pytest.raises(ValueError, match="at least 17"):
        TrainerConfig(image_width=16, image_height=16)
    with pytest.raises(ValueError, match="both be 0"):
        TrainerConfig(image_width=32)


def test_a_state_only_trainer_ignores_frames(tmp_path):
    trainer = Trainer(TrainerConfig(observation_spec="toy/v1", min_transitions=20, run_dir=str(tmp_path), device="cpu"),
                      LearnerConfigs(rlpd=TINY_RLPD))
    trainer.add_compressed_frame(1.0, b"anything")
    feed(trainer, with_frames(boundary_task_records(2, 20)))
    assert trainer.frames is None and trainer.prior.images is None and "missing_frames" not in trainer.status()


def test_the_rebuild_from_bags_pairs_the_recorded_frames_as_live_pairing_does(tmp_path):
    episodes = with_frames(boundary_task_records(4, 30, seed=3))
    records = [r for e in episodes for r in e]
    events = episode_events(episodes)
    frames = [(frame_ns(r), jpeg(r.tick)) for r in records if r.tick != records[40].tick]
    write_bag(tmp_path / "bags" / "session_000", records, events, frames)

    rebuilt, warnings = make(tmp_path / "run", bags_dir=str(tmp_path / "bags"), frame_buffer=50)  # less than the bags hold
    restore_from_bags(rebuilt)
    live, _ = make(tmp_path / "live")
    for ns, data in frames:
        live.add_compressed_frame(stamp_seconds(ns // 10**9, ns % 10**9), data)
    feed(live, episodes)  # the last episode stays open in both (its end applies when a later step comes)
    assert rebuilt.restored["steps"] == len(records)
    assert rebuilt.missing_frames == live.missing_frames == 2 and warnings
    assert len(rebuilt.frames) == 50
    for a, b in ((rebuilt.prior, live.prior), (rebuilt.online, live.online)):
        assert len(a) == len(b) > 0
        np.testing.assert_array_equal(a.state()["images"], b.state()["images"])
        np.testing.assert_array_equal(a.state()["observations"], b.state()["observations"])
