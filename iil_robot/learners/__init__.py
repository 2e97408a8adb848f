"""Learners: RLPD for RLIF, HG-DAgger, their buffers and networks, the weights message."""
from .buffers import ActionBox, Batch, ReplayBuffer, sample_symmetric
from .hgdagger import HGDAggerConfig, HGDAggerLearner
from .networks import Policy, PolicyShape
from .rlpd import RLPDConfig, RLPDLearner
from .trainer import Trainer, TrainerConfig
from .weights import Expected, WeightsError, WeightsMeta, decode_policy, encode_policy

__all__ = [
    "ActionBox", "Batch", "Expected", "HGDAggerConfig", "HGDAggerLearner", "Policy", "PolicyShape", "RLPDConfig",
    "RLPDLearner", "ReplayBuffer", "Trainer", "TrainerConfig", "WeightsError", "WeightsMeta", "decode_policy",
    "encode_policy", "sample_symmetric",
]
