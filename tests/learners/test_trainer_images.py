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


CAMERA_DELAY_NS = {"front": 0, "wrist": 5_000_000}
"""Each camera's frame is this much later than the front's (cameras are not synchronised)."""


def camera_ns(step, camera: str = "front") -> int:
    return frame_ns(step) + CAMERA_DELAY_NS[camera]


def camera_stamp(step, camera: str = "front") -> float:
    ns = camera_ns(step, camera)
    return stamp_seconds(ns // 10**9, ns % 10**9)


def with_frames(episodes, missing=(), cameras=("front",)):
    """Records naming the frame of each camera each step acted on (as the policy node and the mux do); ``missing``
    ticks had none."""
    def named(r):
        stamps = None if r.tick in missing else {c: camera_stamp(r, c) for c in cameras}
        return r.__class__(**{**r.__dict__, "image_stamps": stamps})
    return [[named(r) for r in records] for records in episodes]


def pixel(tick: int) -> int:
    return (7 * tick) % 250


def jpeg(tick: int, camera: str = "front") -> bytes:
    """Frame of ``tick``: uniform grey, the front's ``pixel(tick)``, the wrist's ``250 - pixel(tick)``."""
    return encode_jpeg(np.full((32, 32, 3), pixel(tick) if camera == "front" else 250 - pixel(tick), np.uint8))


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
                trainer.add_compressed_frame("front", stamp_seconds(ns // 10**9, ns % 10**9), jpeg(r.tick))
    feed(trainer, episodes)
    state_only = Trainer(TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", run_dir=str(tmp_path / "s"),
                                       device="cpu"),
                         LearnerConfigs(rlpd=TINY_RLPD, hgdagger=TINY_BC))
    feed(state_only, episodes)
    # tick 5 (no stamp) and the lost frame each cost their own row and the row before (its next frame)
    assert trainer.status()["missing_frames"] == trainer.missing_frames \
        == len(state_only.prior) + len(state_only.online) - len(trainer.prior) - len(trainer.online) >= 2
    assert trainer.status()["missing_frames.front"] == trainer.missing_frames
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
    trainer.add_compressed_frame("front", 1.0, b"anything")
    feed(trainer, with_frames(boundary_task_records(2, 20)))
    assert not trainer.frames and trainer.prior.images is None and "missing_frames" not in trainer.status()


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
        live.add_compressed_frame("front", stamp_seconds(ns // 10**9, ns % 10**9), data)
    feed(live, episodes)  # the last episode stays open in both (its end applies when a later step comes)
    assert rebuilt.restored["steps"] == len(records)
    assert rebuilt.missing_frames == live.missing_frames == 2 and warnings
    assert len(rebuilt.frames["front"]) == 50
    for a, b in ((rebuilt.prior, live.prior), (rebuilt.online, live.online)):
        assert len(a) == len(b) > 0
        np.testing.assert_array_equal(a.state()["images"], b.state()["images"])
        np.testing.assert_array_equal(a.state()["observations"], b.state()["observations"])


def test_two_cameras_a_late_frame_waits_for_its_row_and_a_lost_one_leaves_the_row_out_counted_by_camera(tmp_path):
    episodes = with_frames(boundary_task_records(3, 30), cameras=("front", "wrist"))
    lost = episodes[1][10].tick  # its wrist frame never reaches the learner
    # episodes are labelled at their end (event_delay: no row is settled earlier), so a frame may come late till then
    trainer, warnings = make(tmp_path, "rlpd", cameras="front,wrist", event_delay=60.0)
    events = iter(episode_events(episodes))
    for records in episodes:
        trainer.add_event(next(events))
        for r in records:
            trainer.add_compressed_frame("front", camera_stamp(r, "front"), jpeg(r.tick, "front"))
            trainer.add_records([r])
        for r in records:  # the wrist's frames arrive after the steps that acted on them, before their episode ends
            if r.tick != lost:
                trainer.add_compressed_frame("wrist", camera_stamp(r, "wrist"), jpeg(r.tick, "wrist"))
        trainer.add_event(next(events))
    state_only = Trainer(TrainerConfig(observation_spec="toy/v1", run_dir=str(tmp_path / "s"), device="cpu"),
                         LearnerConfigs(rlpd=TINY_RLPD))
    feed(state_only, episodes)
    status = trainer.status()
    # the lost frame costs its own row and the row before (its next frame); the front lacks none
    assert status["missing_frames"] == status["missing_frames.wrist"] == 2 and status["missing_frames.front"] == 0
    assert len(trainer.prior) + len(trainer.online) == len(state_only.prior) + len(state_only.online) - 2
    assert status["frames.front"] == 90 and status["frames.wrist"] == 89 and status["frames"] == 179
    assert len(warnings) == 1 and "2 lack wrist's" in warnings[0] and "front's" not in warnings[0]
    for buffer in (trainer.prior, trainer.online):
        n = len(buffer)
        assert buffer.images.shape[1:] == (6, H, W) and n > 0
        front, wrist = buffer.images[:n, :3].astype(int), buffer.images[:n, 3:].astype(int)
        assert np.all(np.abs(front + wrist - 250) <= 4)  # the front's frame, then the same step's wrist frame
        assert np.abs(front - wrist).max() > 100  # not one camera's frame twice

    meta, _ = decode_policy(trainer.step(), Expected("toy/v1", 1))
    assert meta.image == (6, H, W) and meta.cameras == ("front", "wrist")


def test_a_policy_with_the_same_cameras_in_another_order_acts_on_a_two_camera_learners_weights(tmp_path):
    """The weights name their cameras' order; the policy node stacks its frames in that order, whatever its own."""
    from iil_robot.acting.cameras import CameraFrame, RecentFrames
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.data.records import Observation
    from iil_robot.learners.weights import WeightsError

    episodes = with_frames(boundary_task_records(3, 30), cameras=("front", "wrist"))
    trainer, _ = make(tmp_path, "rlpd", cameras="front,wrist")
    for r in (r for e in episodes for r in e):
        for camera in ("front", "wrist"):
            trainer.add_compressed_frame(camera, camera_stamp(r, camera), jpeg(r.tick, camera))
    feed(trainer, episodes)
    weights = trainer.step()
    assert weights is not None, trainer.status()
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", cameras="wrist,front", camera_timeout=0.5))
    runner.install(runner.prepare(weights))
    frames = {c: RecentFrames() for c in ("front", "wrist")}
    for camera, value in (("front", 10), ("wrist", 200)):
        frames[camera].add(CameraFrame(np.full((32, 32, 3), value, np.uint8), 9.99))
    proposal, why = runner.act(Observation((0.1,), "toy/v1", 10.0), 10.01, frames)
    assert why == "" and proposal.policy_version == 1 and set(proposal.image_stamps) == {"front", "wrist"}
    with pytest.raises(WeightsError, match="cameras"):
        PolicyRunner(PolicyConfig(observation_spec="toy/v1", cameras="front")).prepare(weights)


def test_the_rebuild_from_bags_pairs_two_cameras_frames_as_live_pairing_does(tmp_path):
    episodes = with_frames(boundary_task_records(3, 30, seed=3), cameras=("front", "wrist"))
    records = [r for e in episodes for r in e]
    frames = {c: [(camera_ns(r, c), jpeg(r.tick, c)) for r in records if (c, r.tick) != ("wrist", records[40].tick)]
              for c in ("front", "wrist")}
    write_bag(tmp_path / "bags" / "session_000", records, episode_events(episodes), camera_frames=frames)

    rebuilt, _ = make(tmp_path / "run", bags_dir=str(tmp_path / "bags"), cameras="front,wrist", frame_buffer=50)
    restore_from_bags(rebuilt)
    live, _ = make(tmp_path / "live", cameras="front,wrist")
    for ns, camera in sorted((ns, c) for c in frames for ns, _ in frames[c]):
        live.add_compressed_frame(camera, stamp_seconds(ns // 10**9, ns % 10**9), dict(frames[camera])[ns])
    feed(live, episodes)
    assert rebuilt.missing_by_camera == live.missing_by_camera == {"front": 0, "wrist": 2}
    assert len(rebuilt.frames["front"]) == len(rebuilt.frames["wrist"]) == 50
    for a, b in ((rebuilt.prior, live.prior), (rebuilt.online, live.online)):
        assert len(a) == len(b) > 0 and a.images.shape[1:] == (6, H, W)
        np.testing.assert_array_equal(a.state()["images"], b.state()["images"])


def test_a_checkpoint_is_resumed_only_with_its_cameras_in_their_order(tmp_path):
    from iil_robot.learners.checkpoints import CheckpointError

    episodes = with_frames(boundary_task_records(2, 20), cameras=("front", "wrist"))
    trainer, _ = make(tmp_path, cameras="front,wrist")
    feed(trainer, episodes)
    trainer.save()
    with pytest.raises(CheckpointError, match=r"learned from cameras \['front', 'wrist'\].*set cameras to match"):
        make(tmp_path, cameras="wrist,front")[0].restore()
    assert make(tmp_path, cameras="front,wrist")[0].restore()


@pytest.mark.parametrize("cameras, problem", [("", "must name 1 to 8 cameras"), ("front,front", "names a camera twice"),
                                               (",".join(f"c{i}" for i in range(9)), "must name 1 to 8 cameras")])
def test_a_camera_learner_needs_one_to_eight_distinct_cameras(cameras, problem):
    with pytest.raises(ValueError, match=problem):
        TrainerConfig(image_width=W, image_height=H, cameras=cameras)
    assert TrainerConfig(cameras="").image == ()  # a state-only learner names none
