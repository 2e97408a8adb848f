import pytest
import torch

from iil_robot.learners.checkpoints import CheckpointError
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.rlpd import RLPDConfig
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.learners.weights import Expected, decode_policy

from .helpers import boundary_task_records, feed

torch.set_num_threads(1)
TINY_RLPD = RLPDConfig(hidden=(16, 16), num_qs=3, batch_size=32, utd_ratio=2)
TINY_BC = HGDAggerConfig(hidden=(16,), ensemble=2, batch_size=32, learn_doubt_threshold=True)


def trainer(tmp_path, algorithm="rlpd", **kw):
    config = TrainerConfig(algorithm=algorithm, observation_spec="toy/v1", min_transitions=50, run_dir=str(tmp_path),
                           publish_every_updates=5, device="cpu", **kw)
    logged = []
    return Trainer(config, TINY_RLPD, TINY_BC, log_scalar=lambda *a: logged.append(a)), logged


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
    assert again.restore()
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
        trainer(tmp_path, "hgdagger")[0].restore()
