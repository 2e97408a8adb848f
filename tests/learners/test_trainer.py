import numpy as np
import pytest
import torch

from iil_robot.data.episodes import split_episodes
from iil_robot.data.labels import label_episodes
from iil_robot.data.records import EpisodeEvent
from iil_robot.learners.buffers import ActionBox
from iil_robot.learners.checkpoints import CheckpointError
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.rlpd import RLPDConfig
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.learners.weights import Expected, decode_policy
from tests.records_factory import write_bag

from .helpers import boundary_task_records, episode_events, feed, method_for, restore_from_bags

torch.set_num_threads(1)
TINY_RLPD = RLPDConfig(hidden=(16, 16), num_qs=3, batch_size=32, utd_ratio=2)
TINY_BC = HGDAggerConfig(hidden=(16,), ensemble=2, batch_size=32, learn_doubt_threshold=True)


def trainer(tmp_path, algorithm="rlpd", **kw):
    config = TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", min_transitions=50, run_dir=str(tmp_path),
                           publish_every_updates=5, device="cpu", **kw)
    logged = []
    return Trainer(config, LearnerConfigs(rlpd=TINY_RLPD, hgdagger=TINY_BC), log_scalar=lambda *a: logged.append(a)), logged


@pytest.mark.parametrize("algorithm", ["rlpd", "hgdagger"])
def test_records_in_weights_out(tmp_path, algorithm):
    t, logged = trainer(tmp_path, algorithm)
    assert t.step() is None  # no data yet
    feed(t, boundary_task_records(4, 30))
    published = [w for w in (t.step() for _ in range(11)) if w is not None]
    assert len(published) == 3  # at the first update, then every 5
    meta, policy = decode_policy(published[-1], Expected("toy/v1", 1))
    assert (meta.policy_version, meta.algorithm, meta.updates) == (3, algorithm, 11)
    assert algorithm == "rlpd" or meta.doubt_threshold is not None
    tags = {tag for tag, _, _ in logged}
    assert {"perf/updates_per_s", "data/prior_size", "data/online_size", "data/intervention_rate"} <= tags


def test_a_restart_resumes_networks_optimisers_counters_and_buffers(tmp_path):
    t, _ = trainer(tmp_path)
    feed(t, boundary_task_records(4, 30))
    for _ in range(6):
        t.step()
    t.save()
    again, _ = trainer(tmp_path)
    assert restore_from_bags(again)
    assert (again.learner.updates, again.policy_version, len(again.prior), len(again.online)) == (
        t.learner.updates, t.policy_version, len(t.prior), len(t.online))
    for a, b in zip(t.learner.critic_opt.state_dict()["state"].values(), again.learner.critic_opt.state_dict()["state"].values()):
        torch.testing.assert_close(a["exp_avg_sq"], b["exp_avg_sq"])
    torch.testing.assert_close(again.learner.log_temp, t.learner.log_temp)
    obs = torch.randn(4, 1)
    torch.testing.assert_close(again.learner.policy(obs)[0], t.learner.policy(obs)[0])
    assert decode_policy(again.export())[0].policy_version == t.policy_version + 1


def test_a_checkpoint_of_another_algorithm_is_refused(tmp_path):
    t, _ = trainer(tmp_path)
    feed(t, boundary_task_records(3, 30))
    t.step()
    t.save()
    with pytest.raises(CheckpointError, match="algorithm"):
        restore_from_bags(trainer(tmp_path, "hgdagger")[0])


def recorded_session(tmp_path, episodes=6, steps=30):
    episodes_ = boundary_task_records(episodes, steps, seed=3)
    records, events = [r for e in episodes_ for r in e], episode_events(episodes_)
    write_bag(tmp_path / "bags" / "session_000", records, events)
    return records, events


def test_buffers_are_rebuilt_from_bags_exactly_as_labelled_and_the_open_episode_continues_live(tmp_path):
    records, events = recorded_session(tmp_path)
    t, _ = trainer(tmp_path / "run", bags_dir=str(tmp_path / "bags"))
    assert not restore_from_bags(t)  # no checkpoint yet; buffers from the bags
    assert t.restored["steps"] == len(records) and t.restored["events"] == len(events)
    # The last episode's end event applies when a later step arrives: it is still open.
    expected = label_episodes(split_episodes(records, events)[:-1]).rlif
    human = expected.interventions
    assert (len(t.prior), len(t.online)) == (human.sum(), (~human).sum()) > (0, 0)
    for buffer, keep in ((t.prior, human), (t.online, ~human)):
        state = buffer.state()
        np.testing.assert_array_equal(state["observations"], expected.observations[keep])
        np.testing.assert_array_equal(state["rewards"], expected.rewards[keep])
        np.testing.assert_array_equal(state["interventions"], expected.interventions[keep])
        np.testing.assert_array_equal(state["classes"], expected.classes[keep])
        np.testing.assert_allclose(state["actions"], ActionBox().to_unit(expected.actions[keep]))
    assert (t.online.rewards[: len(t.online)] < 0).sum() == (expected.rewards < 0).sum() > 0
    # Live: the newest recorded steps arrive again (queued meanwhile), then a new episode.
    more = boundary_task_records(1, 30, seed=4)[0]
    more = [r.__class__(**{**r.__dict__, "tick": r.tick + records[-1].tick + 10, "stamp": r.stamp + records[-1].stamp + 1.0})
            for r in more]
    t.add_records(records[-5:])
    t.add_event(events[-1])  # latched: every late joiner gets it again
    t.add_event(EpisodeEvent("start", "sim", more[0].stamp))
    t.add_records(more)
    all_expected = label_episodes(split_episodes(records + more,
                                                 events + [EpisodeEvent("start", "sim", more[0].stamp)])[:-1]).rlif
    assert len(t.prior) + len(t.online) == len(all_expected)


def test_hgdagger_buffers_from_bags_hold_the_labels_hg_dagger_samples(tmp_path):
    records, events = recorded_session(tmp_path)
    t, _ = trainer(tmp_path / "run", "hgdagger", bags_dir=str(tmp_path / "bags"))
    restore_from_bags(t)
    expected = label_episodes(split_episodes(records, events)[:-1])
    assert len(t.prior) == len(expected.dagger) > 0 and t.prior.interventions[: len(t.prior)].all()
    assert len(t.online) == (~expected.rlif.interventions).sum()


def test_with_bags_the_checkpoint_keeps_networks_and_counters_and_the_buffers_come_from_the_bags(tmp_path):
    recorded_session(tmp_path)
    t, _ = trainer(tmp_path / "run", bags_dir=str(tmp_path / "bags"))
    restore_from_bags(t)
    for _ in range(3):
        t.step()
    t.save()
    assert t.checkpoint_path.exists() and not t.buffers_path.exists()
    again, _ = trainer(tmp_path / "run", bags_dir=str(tmp_path / "bags"))
    assert restore_from_bags(again)
    assert (again.learner.updates, again.policy_version, len(again.prior), len(again.online)) == (
        3, t.policy_version, len(t.prior), len(t.online))
    empty, _ = trainer(tmp_path / "other", bags_dir=str(tmp_path / "no_bags_yet"))
    assert not restore_from_bags(empty) and empty.learner is None


def test_the_first_update_fits_the_normalisation_which_the_weights_and_a_restart_keep(tmp_path):
    t, _ = trainer(tmp_path, warm_start_updates=3)
    feed(t, boundary_task_records(4, 30))
    observations = np.concatenate([b.observations[: len(b)] for b in (t.prior, t.online)])
    assert [t.step() for _ in range(3)] == [None] * 3  # the warm start, one update at a time
    weights = t.step()
    meta, policy = decode_policy(weights, Expected("toy/v1", 1))
    torch.testing.assert_close(policy.obs_mean, torch.tensor(observations.mean(0)), atol=1e-5, rtol=0)
    torch.testing.assert_close(policy.obs_std, torch.tensor(np.maximum(observations.std(0), 0.01)), atol=1e-5, rtol=0)
    assert t.normalized and meta.updates == 1  # the warm start's steps are not counted as updates
    assert (t.status()["warm_start_done"], t.status()["warm_start_total"]) == (3, 3)
    feed(t, boundary_task_records(2, 30, seed=1))  # later data does not move the normalisation
    t.step()
    torch.testing.assert_close(t.learner.policy.obs_mean, policy.obs_mean)
    t.save()
    again, _ = trainer(tmp_path)
    assert restore_from_bags(again) and again.normalized
    torch.testing.assert_close(again.learner.policy.obs_std, policy.obs_std)


def test_without_normalisation_the_weights_keep_the_identity(tmp_path):
    t, _ = trainer(tmp_path, normalize_observations=False)
    feed(t, boundary_task_records(4, 30))
    _, policy = decode_policy(t.step(), Expected("toy/v1", 1))
    assert (policy.obs_mean == 0).all() and (policy.obs_std == 1).all()


@pytest.mark.parametrize("algorithm", ["pvp", "haco"])
def test_pvp_and_haco_train_from_records_export_a_tanh_gaussian_actor_and_resume(tmp_path, algorithm):
    from iil_robot.learners.haco import HACOConfig
    from iil_robot.learners.pvp import PVPConfig

    config = TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", min_transitions=50, run_dir=str(tmp_path),
                           publish_every_updates=5, device="cpu", warm_start_updates=2)

    def make():
        return Trainer(config, LearnerConfigs(pvp=PVPConfig(hidden=(16, 16), batch_size=32),
                                              haco=HACOConfig(hidden=(16, 16), batch_size=32)))

    t = make()
    feed(t, boundary_task_records(4, 30))
    published = [w for w in (t.step() for _ in range(8)) if w is not None]  # 2 warm-start steps, then updates
    meta, policy = decode_policy(published[-1], Expected("toy/v1", 1))
    assert (meta.algorithm, meta.updates, meta.ensemble) == (algorithm, 6, 1)
    assert len(t.prior) > 0 and len(t.online) > 0  # operator rows to the human buffer, the policy's to the novice buffer
    t.save()
    again = make()
    assert restore_from_bags(again) and again.learner.updates == 6
    obs = torch.randn(4, 1)
    torch.testing.assert_close(again.learner.policy(obs)[0], t.learner.policy(obs)[0])
    torch.testing.assert_close(policy(obs)[0], t.learner.policy(obs)[0])


def test_the_live_warm_start_runs_step_by_step_takes_in_new_data_and_a_restart_finishes_it(tmp_path):
    """step() does one warm-start update at a time (the node takes in new records between them and can stop at
    any one); its progress is checkpointed, and a restarted trainer finishes the rest before the first weights."""
    t, _ = trainer(tmp_path, warm_start_updates=50)
    feed(t, boundary_task_records(4, 30))
    assert [t.step() for _ in range(5)] == [None] * 5
    assert t.warm_start_progress == (5, 50) and t.learner.updates == 0
    prior = len(t.prior)
    feed(t, boundary_task_records(2, 30, seed=1))  # arrives during the warm start: learned from at once
    assert len(t.prior) > prior
    t.step()
    assert t.warm_start_progress == (6, 50)
    t.save()

    again, _ = trainer(tmp_path)
    assert restore_from_bags(again) and again.warm_start_progress == (6, 50)
    assert [again.step() for _ in range(44)] == [None] * 44
    weights = again.step()
    assert again.warm_start_progress == (50, 50)
    assert weights is not None and decode_policy(weights)[0].updates == 1


def test_the_weights_and_the_checkpoint_carry_the_observation_layout_and_a_change_is_refused(tmp_path):
    warnings = []
    t, _ = trainer(tmp_path)
    t.warn = warnings.append
    t.set_observation_layout(("x",))
    feed(t, boundary_task_records(4, 30))
    meta, _ = decode_policy(t.export(), Expected("toy/v1", 1, observation_fields=("x",)))
    assert meta.observation_fields == ("x",)
    t.set_observation_layout(("y",))
    assert t.observation_fields == ("x",) and "the observation layout changed (missing ['x']; extra ['y'])" in warnings[0]
    t.save()
    again, _ = trainer(tmp_path)
    assert restore_from_bags(again) and again.observation_fields == ("x",)


@pytest.mark.parametrize("space", ["translation", "translation_yaw", "6dof"])
@pytest.mark.parametrize("algorithm", ["rlpd", "hgdagger", "pvp", "haco"])
def test_every_learner_learns_and_exports_each_action_space_within_the_limits(tmp_path, algorithm, space):
    from dataclasses import replace

    from iil_robot.data.actions import ActionConfig, action_space
    from iil_robot.learners.haco import HACOConfig
    from iil_robot.learners.pvp import PVPConfig

    chosen = action_space(space)
    action = ActionConfig(space, max_linear_speed=0.5, max_angular_speed=2.0)
    config = TrainerConfig(method=method_for(algorithm), observation_spec="toy/v1", min_transitions=50, run_dir=str(tmp_path),
                           publish_every_updates=5, device="cpu")
    t = Trainer(config, LearnerConfigs(rlpd=TINY_RLPD, hgdagger=TINY_BC, pvp=PVPConfig(hidden=(16,), batch_size=32),
                                       haco=HACOConfig(hidden=(16,), batch_size=32)), action=action)
    twist = [[replace(r, executed_action=(r.executed_action[0], 0.1, -0.1, 1.0, -1.0, 4.0, 0.5),  # wz over the bound
                      policy_action=r.executed_action) for r in records] for records in boundary_task_records(4, 30)]
    feed(t, twist)
    buffer = t.prior if len(t.prior) else t.online
    assert buffer.actions.shape[1] == chosen.size
    unit = buffer.actions[: len(buffer)]
    expected_unit = {"vx": None, "vy": 0.2, "vz": -0.2, "wx": 0.5, "wy": -0.5, "wz": 1.0, "gripper": 0.0}  # wz clipped
    for column, name in enumerate(chosen.fields):
        if expected_unit[name] is not None:
            np.testing.assert_allclose(unit[:, column], expected_unit[name], atol=1e-6)
    published = [w for w in (t.step() for _ in range(6)) if w is not None]
    meta, policy = decode_policy(published[-1], Expected("toy/v1", 1, action_space=space))
    assert (meta.act_dim, meta.action_fields) == (chosen.size, chosen.fields)
    low, high = (torch.tensor(b) for b in action.bounds())
    acted = policy(torch.randn(64, 1) * 10)[0]
    assert acted.shape == (64, chosen.size) and bool(((acted >= low - 1e-5) & (acted <= high + 1e-5)).all())


def test_a_checkpoint_of_another_action_space_is_refused_and_one_without_reads_as_translation(tmp_path):
    from iil_robot.data.actions import ActionConfig
    from iil_robot.learners.checkpoints import read_state, save_checkpoint

    t, _ = trainer(tmp_path)
    feed(t, boundary_task_records(4, 30))
    t.step()
    t.save()
    config = t.config
    with pytest.raises(CheckpointError, match="is for action space 'translation', this learner has '6dof'"):
        Trainer(config, LearnerConfigs(rlpd=TINY_RLPD), action=ActionConfig("6dof")).restore()
    state = read_state(t.checkpoint_path)  # as a learner before action spaces wrote it
    del state["action_space"]
    save_checkpoint(t.checkpoint_path, t.learner.modules(), t.learner.optimizers(), t.learner.extra_tensors(), state)
    warnings = []
    old = Trainer(config, LearnerConfigs(rlpd=TINY_RLPD), warn=warnings.append)
    assert old.restore() and old.learner.updates == t.learner.updates
    assert any("names no action space" in w and "'translation'" in w for w in warnings)


def test_the_trainer_counts_the_env_steps_it_takes_in():
    trainer = Trainer(TrainerConfig(device="cpu"))
    first, second = boundary_task_records(2, 30)
    trainer.add_records(first)
    trainer.add_records(second[:7])
    assert trainer.status()["env_steps"] == len(first) + 7


def test_a_step_record_of_another_observation_size_is_left_out_and_its_episode_still_learned(tmp_path):
    """A peer's record with an observation of another size (a hostile or misconfigured publisher on /step) inside an
    episode once stopped the whole learner: labelling refused the episode's mixed sizes."""
    from dataclasses import replace

    clean, _ = trainer(tmp_path / "clean")
    feed(clean, boundary_task_records(4, 30))
    t, _ = trainer(tmp_path / "intruded")
    warnings = []
    t.warn = warnings.append
    episodes = boundary_task_records(4, 30)
    intruder = replace(episodes[1][5], observation=(0.0, 1.0, 2.0), stamp=episodes[1][5].stamp + 0.001)
    episodes[1].insert(6, intruder)
    feed(t, episodes)
    assert t.status()["dropped"] == 1 and t.status()["env_steps"] == 4 * 30
    assert "observations of [3] values" in warnings[0] and "learns observations of 1" in warnings[0]
    assert t.step() is not None  # learns from every good record, the intruder's episode included
    assert (len(t.prior), len(t.online)) == (len(clean.prior), len(clean.online)) and len(t.online) > 0


def test_a_tool_frame_trainer_learns_rotated_actions_once_the_layout_names_the_orientation(tmp_path):
    from dataclasses import replace

    from iil_robot.data.actions import ActionConfig

    yaw_90 = (0.0, 0.0, 2 ** -0.5, 2 ** -0.5)  # the tool's x is the command frame's y
    layout = ("x", "ee_orientation.qx", "ee_orientation.qy", "ee_orientation.qz", "ee_orientation.qw")
    turned = [[replace(r, observation=(*r.observation, *yaw_90)) for r in records] for records in boundary_task_records(4, 30)]
    config = TrainerConfig(method="rlif", observation_spec="toy/v1", min_transitions=50, run_dir=str(tmp_path / "tool"),
                           device="cpu")
    warnings = []
    tool = Trainer(config, LearnerConfigs(rlpd=TINY_RLPD), action=ActionConfig(frame="tool"), warn=warnings.append)
    feed(tool, turned[:1])
    assert tool.unframed == 30 and tool.learner is None and "orientation (ee_orientation)" in warnings[-1]
    tool.set_observation_layout(layout)
    feed(tool, turned[1:])
    base = Trainer(replace(config, run_dir=str(tmp_path / "base")), LearnerConfigs(rlpd=TINY_RLPD))
    feed(base, turned[1:])
    for ours, theirs in ((tool.online, base.online), (tool.prior, base.prior)):
        rows = slice(0, len(theirs))
        assert len(ours) == len(theirs) > 0
        np.testing.assert_allclose(ours.actions[rows, 1], -theirs.actions[rows, 0], atol=1e-6)  # command vx -> tool -vy
        np.testing.assert_allclose(ours.actions[rows, 0], 0.0, atol=1e-6)
    tool.step()
    meta, _ = decode_policy(tool.export(), Expected("toy/v1", 5, action_frame="tool"))
    assert meta.action_spec == "tool_translation_gripper/v1"
    tool.save()
    with pytest.raises(CheckpointError, match="is for action frame 'tool', this learner has 'base' \\(action.frame\\)"):
        Trainer(config, LearnerConfigs(rlpd=TINY_RLPD)).restore()
    again = Trainer(config, LearnerConfigs(rlpd=TINY_RLPD), action=ActionConfig(frame="tool"))
    assert again.restore() and again.labeller.config.orientation == (1, 2, 3, 4)  # from the checkpoint's layout
