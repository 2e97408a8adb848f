"""Learners: RLPD for RLIF, HG-DAgger, their buffers and networks, the weights message."""
from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer, sample_symmetric
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.learners.weights import Expected, WeightsError, WeightsMeta, decode_policy, encode_policy

__all__ = [
    "ActionBox", "Batch", "Expected", "HGDAggerConfig", "HGDAggerLearner", "Policy", "PolicyShape", "RLPDConfig",
    "RLPDLearner", "ReplayBuffer", "Trainer", "TrainerConfig", "WeightsError", "WeightsMeta", "decode_policy",
    "encode_policy", "sample_symmetric",
]
