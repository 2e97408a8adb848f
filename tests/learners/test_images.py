"""Camera policies: DrQ's random shift and the image encoder pinned, image buffers, RLPD and
HG-DAgger updates on images + proprioception, the weights round trip, and the policy runner
holding on a stale camera frame."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from iil_robot.acting.cameras import CameraFrame, RecentFrames
from iil_robot.acting.policy import PolicyConfig, PolicyRunner
from iil_robot.data.actions import ACTION_SPACES
from iil_robot.data.records import Observation
from iil_robot.data.transitions import StepClass, Transitions
from iil_robot.learners.buffers import ReplayBuffer
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner
from iil_robot.learners.networks import ConvEncoder, random_shift
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner
from iil_robot.learners.weights import WeightsError, WeightsMeta, decode_policy, encode_policy

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights


IMAGE = (3, 24, 24)


def test_random_shift_with_zero_pad_is_the_identity_and_keeps_shape_and_dtype():
    images = torch.randint(0, 256, (5, 3, 24, 24), dtype=torch.uint8)
    assert torch.equal(random_shift(images, 0), images)
    out = random_shift(images, 4, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_random_shift_translates_each_image_with_replicated_borders():
    # a ramp along x: a shift by dx moves every column by dx, clamped at the borders (replicate padding)
    ramp = torch.arange(10, dtype=torch.float32).repeat(1, 1, 10, 1)  # [1, 1, 10, 10], pixel = column index
    generator = torch.Generator().manual_seed(3)
    expected_shifts = torch.randint(0, 5, (2, 1), generator=torch.Generator().manual_seed(3))
    dy, dx = (int(v) - 2 for v in expected_shifts[:, 0])
    out = random_shift(ramp, 2, generator)[0, 0]
    assert torch.equal(out, torch.arange(10, dtype=torch.float32).add(dx).clamp(0, 9).repeat(10, 1)), (dx, out[0])
    # different images get different shifts
    many = random_shift(ramp.expand(64, 1, 10, 10), 2, torch.Generator().manual_seed(1))
    assert len({tuple(m[0, 0].tolist()) for m in many}) == 5  # all five x-offsets occur
    assert dy in range(-2, 3)


def test_encoder_output_shape_range_and_seeded_init():
    torch.manual_seed(0)
    encoder = ConvEncoder((3, 64, 64), features=50)
    out = encoder(torch.randint(0, 256, (7, 3, 64, 64), dtype=torch.uint8))
    assert out.shape == (7, 50) and out.abs().max() <= 1.0  # tanh
    assert encoder.head[0].in_features == 32 * 25 * 25  # stride 2 then three valid 3x3 convs: 31 -> 25
    torch.manual_seed(0)
    assert torch.equal(ConvEncoder((3, 64, 64), features=50).head[0].weight, encoder.head[0].weight)
    with pytest.raises(ValueError, match="too small"):
        ConvEncoder((3, 12, 12))


def image_transitions(n: int, seed: int = 0, human: bool = False) -> Transitions:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 5)).astype(np.float32)
    images = rng.integers(0, 256, (n, *IMAGE), dtype=np.uint8)
    return Transitions(obs, rng.uniform(-0.2, 0.2, (n, 4)).astype(np.float32), np.zeros(n, np.float32), obs.copy(),
                       np.zeros(n, bool), np.zeros(n, bool), np.full(n, human),
                       np.full(n, StepClass.INTERVENTION if human else StepClass.ROBOT, np.int8),
                       images, images.copy())


def test_image_buffer_keeps_images_with_their_rows_and_refuses_state_only_data():
    buffer = ReplayBuffer(5, 4, capacity=8, image=IMAGE)
    data = image_transitions(10)
    buffer.add(data, np.zeros((10, 4), np.float32))
    assert len(buffer) == 8
    batch = buffer.sample(4, np.random.default_rng(0))
    assert batch.images.shape == (4, *IMAGE) and batch.images.dtype == torch.uint8
    for obs, image in zip(batch.observations, batch.images):  # each image is the one of its row
        row = int(np.flatnonzero((data.observations == obs.numpy()).all(1))[0])
        assert np.array_equal(image.numpy(), data.images[row])
    with pytest.raises(ValueError, match="images None do not fit"):
        buffer.add(Transitions.empty(5, 4), np.zeros((0, 4), np.float32))


def test_rlpd_trains_the_encoder_through_the_critic_and_not_through_the_actor():
    config = RLPDConfig(hidden=(32, 32), num_qs=3, batch_size=8, utd_ratio=2, image_features=16)
    learner = RLPDLearner(5, 4, config, image=IMAGE)
    online = ReplayBuffer(5, 4, 64, image=IMAGE)
    online.add(image_transitions(64), np.zeros((64, 4), np.float32))
    before = [p.detach().clone() for p in learner.policy.encoder.parameters()]
    info = learner.train_step(online, online, np.random.default_rng(0))
    assert all(torch.isfinite(v) for v in info.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.policy.encoder.parameters()))
    # the actor loss leaves the encoder without gradient (DrQ: the actor sees detached features)
    learner.policy.encoder.zero_grad(set_to_none=True)
    loss, _ = learner.actor_loss(online.sample(8, np.random.default_rng(1)))
    loss.backward()
    assert all(p.grad is None for p in learner.policy.encoder.parameters())


def test_frozen_encoder_stays_at_its_initialisation():
    config = RLPDConfig(hidden=(32, 32), num_qs=2, batch_size=8, utd_ratio=1, image_features=16, freeze_encoder=True)
    learner = RLPDLearner(5, 4, config, image=IMAGE)
    buffer = ReplayBuffer(5, 4, 32, image=IMAGE)
    buffer.add(image_transitions(32), np.zeros((32, 4), np.float32))
    before = [p.detach().clone() for p in learner.policy.encoder.parameters()]
    learner.train_step(buffer, buffer, np.random.default_rng(0))
    assert all(torch.equal(a, b) for a, b in zip(before, learner.policy.encoder.parameters()))


def test_hgdagger_on_images_fits_the_operator_and_exports_a_camera_policy():
    config = HGDAggerConfig(hidden=(64, 64), ensemble=2, batch_size=32, image_features=16, lr=3e-3, image_pad=2)
    learner = HGDAggerLearner(5, 4, config, image=IMAGE)
    data = image_transitions(64, human=True)
    # the operator's action is a function of the image only: the policy must use the camera to fit it
    data = Transitions(**{**data.__dict__, "actions": (data.images.reshape(64, -1).mean(1, keepdims=True) / 255.0 * 0.4 - 0.2)
                          .repeat(4, 1).astype(np.float32)})
    prior = ReplayBuffer(5, 4, 64, image=IMAGE)
    prior.add(data, learner.action_box.to_unit(data.actions))
    rng = np.random.default_rng(0)
    first = float(learner.train_step(prior, prior, rng)["bc_loss"])
    for _ in range(150):
        last = float(learner.train_step(prior, prior, rng)["bc_loss"])
    assert last < 0.5 * first

    meta = WeightsMeta(1, "hgdagger", "cam/v1", 5, TRANSLATION, 4, config.hidden, 2, learner.updates, 0.0,
                       image=IMAGE, image_features=16, cameras=("front",))
    _, policy = decode_policy(encode_policy(learner.policy, meta))
    obs, pixels = torch.from_numpy(data.observations[:3]), torch.from_numpy(data.images[:3])
    assert torch.allclose(policy(obs, pixels)[0], learner.policy.eval()(obs, pixels)[0])


def camera_weights(cameras=("front",), version=1, image=IMAGE) -> bytes:
    shape = (3 * len(cameras), *image[1:])
    learner = RLPDLearner(5, 4, RLPDConfig(hidden=(16, 16), num_qs=2, image_features=8), image=shape)
    meta = WeightsMeta(version, "rlpd", "cam/v1", 5, TRANSLATION, 4, (16, 16), 1, 0, 0.0, image=shape, image_features=8,
                       cameras=tuple(cameras))
    return encode_policy(learner.policy, meta)


@pytest.mark.parametrize("image, cameras, why", [
    ((1, 24, 24), ("front",), "image"), ((6, 24, 24), ("front",), "cameras"), ((3, 24, 24), (), "cameras"),
    ((6, 24, 24), ("front", "front"), "distinct"),
])
def test_weights_refuse_a_bad_image_shape_or_camera_list(image, cameras, why):
    learner = RLPDLearner(5, 4, RLPDConfig(hidden=(16, 16), num_qs=2, image_features=8), image=IMAGE)
    meta = WeightsMeta(1, "rlpd", "cam/v1", 5, TRANSLATION, 4, (16, 16), 1, 0, 0.0, image=image, image_features=8,
                       cameras=cameras)
    with pytest.raises(WeightsError, match=why):
        decode_policy(encode_policy(learner.policy, meta))


def frames(*entries) -> dict[str, RecentFrames]:
    """{camera: RecentFrames} from (camera, stamp[, rgb]) entries."""
    out: dict[str, RecentFrames] = {}
    for name, stamp, *rgb in entries:
        out.setdefault(name, RecentFrames()).add(CameraFrame(rgb[0] if rgb else np.zeros((24, 24, 3), np.uint8), stamp))
    return out


def camera_runner(cameras=("front",)) -> PolicyRunner:
    runner = PolicyRunner(PolicyConfig(camera_timeout=0.15, cameras=",".join(cameras)))
    runner.install(runner.prepare(camera_weights(cameras)))
    return runner


@pytest.mark.parametrize("frame_age, proposes, why", [
    (0.05, True, ""),
    (0.5, False, "camera front stale"),   # the camera stalled: the mux holds
    (None, False, "camera front no frame yet"),
])
def test_a_stalled_camera_makes_the_observation_stale(frame_age, proposes, why):
    runner = camera_runner()
    now = 100.0
    observation = Observation((0.1,) * 5, "cam/v1", now - 0.01)  # the state itself is fresh
    recent = {} if frame_age is None else frames(("front", observation.stamp - frame_age))
    proposal, reason = runner.act(observation, now, recent)
    assert (proposal is not None) == proposes
    assert why in reason


def test_camera_timeout_holds_a_state_policy_too_and_the_proposal_names_its_frames():
    observation = Observation((0.1,) * 5, "s/v1", 10.0)
    runner = PolicyRunner(PolicyConfig(camera_timeout=0.1, cameras="front,wrist"))
    assert runner.act(observation, 10.0, None)[0] is None
    proposal, why = runner.act(observation, 10.0, frames(("front", 9.95)))
    assert proposal is None and why == "holding: camera wrist no frame yet (is the camera node running?)"
    assert runner.act(observation, 10.0, frames(("front", 9.95), ("wrist", 9.97)))[0].image_stamps == {"front": 9.95,
                                                                                                        "wrist": 9.97}
    # without camera_timeout a state policy still names fresh frames (an image learner needs them), not stale ones
    state = PolicyRunner(PolicyConfig(observation_timeout=0.2, cameras="front,wrist"))
    assert state.act(observation, 10.0, frames(("front", 9.9), ("wrist", 9.0)))[0].image_stamps == {"front": 9.9}
    assert state.act(observation, 10.0, frames(("front", 9.0)))[0].image_stamps is None
    assert state.act(observation, 10.0, None)[0].image_stamps is None


def test_a_frame_of_another_size_is_resized_to_the_policy_image_and_a_non_rgb_one_refused():
    camera = camera_runner()
    observation = Observation((0.1,) * 5, "cam/v1", 10.0)
    proposal, _ = camera.act(observation, 10.0, frames(("front", 10.0, np.zeros((8, 8, 3), np.uint8))))
    assert proposal is not None and proposal.image_stamps == {"front": 10.0}  # resized like the learner's (frame_chw)
    proposal, reason = camera.act(observation, 10.0, frames(("front", 10.0, np.zeros((24, 24), np.uint8))))
    assert proposal is None and "expected an RGB uint8 frame" in reason


def test_a_two_camera_policy_takes_both_images_in_the_weights_order():
    runner = camera_runner(("front", "wrist"))
    observation = Observation((0.1,) * 5, "cam/v1", 10.0)
    black, white = np.zeros((24, 24, 3), np.uint8), np.full((24, 24, 3), 255, np.uint8)
    a = runner.act(observation, 10.0, frames(("front", 9.99, black), ("wrist", 9.99, white)))[0]
    b = runner.act(observation, 10.0, frames(("front", 9.99, white), ("wrist", 9.99, black)))[0]
    assert a is not None and b is not None and a.action != b.action  # each camera feeds its own channels
    assert a.image_stamps == {"front": 9.99, "wrist": 9.99}


@pytest.mark.parametrize("policy_cameras, lacking", [
    ("front", "it lacks ['wrist']"), ("front,wrist,top", "the weights lack ['top']"), ("", "it lacks ['front', 'wrist']")])
def test_weights_for_another_camera_set_are_refused_naming_the_difference(policy_cameras, lacking):
    runner = PolicyRunner(PolicyConfig(cameras=policy_cameras))
    with pytest.raises(WeightsError, match=re.escape(lacking)):
        runner.prepare(camera_weights(("front", "wrist")))
    assert PolicyRunner(PolicyConfig(cameras="wrist,front")).prepare(camera_weights(("front", "wrist"))).version == 1
