import pytest
import torch

from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.rlpd import RLPDConfig
from iil_robot.learners.sizes import CpuSizes, chosen_size, describe, sized
from iil_robot.learners.trainer import Trainer, TrainerConfig


@pytest.mark.parametrize("size, device, expected", [
    ("auto", "cpu", "cpu"), ("auto", "cuda", "gpu"), ("auto", "cuda:1", "gpu"),
    ("cpu", "cuda", "cpu"), ("gpu", "cpu", "gpu"), ("cpu", "cpu", "cpu"),
])
def test_the_size_follows_the_device_the_learner_trains_on_unless_chosen(size, device, expected):
    assert chosen_size(size, torch.device(device)) == expected


def test_an_unknown_size_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"size 'large' is unknown; choose one of \('auto', 'cpu', 'gpu'\)"):
        TrainerConfig(size="large")


@pytest.mark.parametrize("cuda, device, size", [(False, "cpu", "cpu"), (True, "cuda", "gpu")])
def test_without_cuda_the_trainer_takes_the_cpu_sizes_and_with_it_the_gpu_sized_defaults(monkeypatch, cuda, device, size):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cpu = CpuSizes(hidden=(32, 32), num_qs=3, utd_ratio=1, batch_size=64)
    trainer = Trainer(TrainerConfig(), cpu_sizes=cpu)  # device auto, size auto
    assert (trainer.device.type, trainer.size) == (device, size)
    rlpd = trainer.configs.rlpd
    if cuda:
        assert (rlpd.hidden, rlpd.num_qs, rlpd.utd_ratio, rlpd.batch_size) == ((256, 256), 10, 4, 256)
    else:
        assert (rlpd.hidden, rlpd.num_qs, rlpd.num_min_qs, rlpd.utd_ratio, rlpd.batch_size) == ((32, 32), 3, 2, 1, 64)
        assert (trainer.configs.hgdagger.hidden, trainer.configs.pvp.batch_size) == ((32, 32), 64)


def test_on_a_cpu_a_size_set_to_other_than_its_default_stays_and_the_rest_of_the_config_too():
    configs = LearnerConfigs(rlpd=RLPDConfig(hidden=(512, 512), num_min_qs=2, cql_alpha=1.0),
                             hgdagger=HGDAggerConfig(batch_size=32))
    cpu = CpuSizes(hidden=(64,), num_qs=1, utd_ratio=3, batch_size=100)
    out = sized(configs, "cpu", cpu)
    assert (out.rlpd.hidden, out.rlpd.num_qs, out.rlpd.num_min_qs, out.rlpd.utd_ratio, out.rlpd.batch_size) == \
        ((512, 512), 1, 1, 3, 100)
    assert out.rlpd.cql_alpha == 1.0
    assert (out.hgdagger.hidden, out.hgdagger.batch_size) == ((64,), 32)
    assert sized(configs, "gpu", cpu) == configs


def test_the_sizes_read_in_one_line():
    configs = sized(LearnerConfigs(), "cpu", CpuSizes(hidden=(64, 64), num_qs=4, utd_ratio=2, batch_size=128))
    assert describe(configs, "rlpd") == "4 critics [64, 64], UTD 2, batch 128"
    assert describe(configs, "hgdagger") == "networks [64, 64], batch 128"


def test_bad_cpu_sizes_are_refused():
    with pytest.raises(ValueError, match="hidden needs at least one layer"):
        CpuSizes(hidden=())
