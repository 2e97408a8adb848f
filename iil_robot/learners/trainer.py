"""The learner's loop without ROS: step records in, updates, weights bytes and checkpoints out.

The learner node is a wiring diagram around ``Trainer``: it hands over decoded step records
and episode boundaries, calls ``step()`` whenever it is idle, and publishes what ``step()``
returns. Human-driven transitions (demos and interventions) go to the prior buffer, policy-driven
ones to the online buffer (RLPD samples them 50/50).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..records import StepRecord
from ..transitions import StepClass, Transitions
from .buffers import ActionBox, ReplayBuffer
from .checkpoints import CheckpointError, load_arrays, load_checkpoint, read_state, save_arrays, save_checkpoint
from .hgdagger import HGDAggerConfig, HGDAggerLearner
from .labelling import DEFAULT_LABEL_FN, LabelFn, LiveLabeller
from .rlpd import RLPDConfig, RLPDLearner
from .weights import ACTION_SPEC, WeightsMeta, encode_policy

ScalarLogger = Callable[[str, float, int], None]


@dataclass(frozen=True)
class TrainerConfig:
    """The learner process: what it trains, when it publishes and checkpoints, where it runs."""

    algorithm: str = "rlpd"
    """``rlpd`` (RLIF) or ``hgdagger``."""
    observation_spec: str = "unknown/v1"
    """Observation layout name the weights declare (must match the arm's ``Observation.spec``)."""
    min_transitions: int = 256
    """Transitions needed before the first update."""
    prior_capacity: int = 200_000
    """Capacity of the prior buffer (demos and interventions)."""
    online_capacity: int = 200_000
    """Capacity of the online buffer (policy-driven steps)."""
    publish_every_updates: int = 50
    """Publish weights after this many updates..."""
    publish_period: float = 5.0
    """...or after this many seconds with at least one new update, whichever comes first."""
    checkpoint_period: float = 60.0
    """Seconds between checkpoints (and one on exit)."""
    log_every_updates: int = 10
    """TensorBoard scalars every this many updates."""
    run_dir: str = "runs/learner"
    """Checkpoints and TensorBoard logs go here; a restart resumes from it."""
    bags_dir: str = ""
    """Directory of bags to rebuild the buffers from on start; empty = use the checkpointed buffers."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
    num_threads: int = 1
    """Torch CPU threads (keep the control loop's core free)."""
    nice: int = 10
    """Niceness added to the learner process (0-19)."""
    seed: int = 0
    """Seed of the learner's sampling."""

    def __post_init__(self) -> None:
        if self.algorithm not in ("rlpd", "hgdagger"):
            raise ValueError(f"algorithm {self.algorithm!r} must be 'rlpd' or 'hgdagger'")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    def __init__(self, config: TrainerConfig, rlpd: RLPDConfig = RLPDConfig(), hgdagger: HGDAggerConfig = HGDAggerConfig(),
                 action_box: ActionBox = ActionBox(), label_fn: LabelFn = DEFAULT_LABEL_FN,
                 clock: Callable[[], float] = time.monotonic, log_scalar: ScalarLogger | None = None) -> None:
        self.config, self.rlpd_config, self.hgdagger_config = config, rlpd, hgdagger
        self.action_box, self.clock, self.log_scalar = action_box, clock, log_scalar
        self.device = resolve_device(config.device)
        self.labeller = LiveLabeller(label_fn)
        self.rng = np.random.default_rng(config.seed)
        self.learner: RLPDLearner | HGDAggerLearner | None = None
        self.prior: ReplayBuffer | None = None
        self.online: ReplayBuffer | None = None
        self.onset_observations: list[np.ndarray] = []
        self.policy_version = 0
        self.dropped = 0
        self._metrics: dict[str, torch.Tensor] = {}
        self._window = {"records": 0, "interventions": 0, "start": clock(), "updates": 0}
        self._last_publish: tuple[float, int] | None = None
        self._last_checkpoint = clock()

    # -- data in ---------------------------------------------------------------------------

    def add_records(self, records: Sequence[StepRecord]) -> None:
        self._window["records"] += len(records)
        self._window["interventions"] += sum(r.intervention for r in records)
        data = self.labeller.add(records)
        if data is not None:
            self.add_transitions(data)

    def episode_boundary(self) -> None:
        self.labeller.boundary()

    def add_transitions(self, data: Transitions) -> None:
        if self.learner is None:
            self._build(data.observations.shape[1])
        assert self.prior is not None and self.online is not None
        if data.observations.shape[1] != self.prior.obs_dim:
            self.dropped += len(data)  # another observation layout than the one being learned
            return
        human = data.interventions | (data.classes == StepClass.DEMO)
        unit = self.action_box.to_unit(data.actions)
        for buffer, keep in ((self.prior, human), (self.online, ~human)):
            if keep.any():
                buffer.add(_select(data, keep), unit[keep])
        self.onset_observations.extend(data.next_observations[data.rewards < 0])

    def _build(self, obs_dim: int) -> None:
        act_dim = len(self.action_box.low)
        if self.config.algorithm == "rlpd":
            self.learner = RLPDLearner(obs_dim, act_dim, self.rlpd_config, self.action_box, self.device)
        else:
            self.learner = HGDAggerLearner(obs_dim, act_dim, self.hgdagger_config, self.action_box, self.device)
        self.prior = ReplayBuffer(obs_dim, act_dim, self.config.prior_capacity)
        self.online = ReplayBuffer(obs_dim, act_dim, self.config.online_capacity)

    # -- training --------------------------------------------------------------------------

    def ready(self) -> bool:
        if self.learner is None or len(self.prior) + len(self.online) < self.config.min_transitions:
            return False
        return self.config.algorithm == "rlpd" or len(self.prior.human_data()[0]) > 0

    def step(self) -> bytes | None:
        """One learner update if there is enough data; returns weights bytes when they are due."""
        if not self.ready():
            return None
        self._metrics = self.learner.train_step(self.prior, self.online, self.rng)
        self._window["updates"] += 1
        if self.learner.updates % self.config.log_every_updates == 0:
            self._log()
        return self.export() if self._publish_due() else None

    def _publish_due(self) -> bool:
        if self._last_publish is None:
            return True
        when, updates = self._last_publish
        new = self.learner.updates - updates
        return new >= self.config.publish_every_updates or (new > 0 and self.clock() - when >= self.config.publish_period)

    def export(self) -> bytes:
        """The current policy as a weights message with the next version number."""
        if isinstance(self.learner, HGDAggerLearner) and self.onset_observations:
            self.learner.fit_doubt_threshold(np.asarray(self.onset_observations))
        self.policy_version += 1
        self._last_publish = (self.clock(), self.learner.updates)
        shape = self.learner.policy.shape
        meta = WeightsMeta(
            policy_version=self.policy_version, algorithm=shape.algorithm, observation_spec=self.config.observation_spec,
            obs_dim=shape.obs_dim, action_spec=ACTION_SPEC, act_dim=shape.act_dim, hidden=tuple(shape.hidden),
            ensemble=shape.ensemble, updates=self.learner.updates, stamp=time.time(),
            doubt_threshold=getattr(self.learner, "doubt_threshold", None),
        )
        return encode_policy(self.learner.policy, meta)

    def _log(self) -> None:
        if self.log_scalar is None:
            return
        step, now, w = self.learner.updates, self.clock(), self._window
        for name, value in self._metrics.items():
            self.log_scalar(f"train/{name}", float(value), step)  # the only host sync, every log_every_updates
        self.log_scalar("perf/updates_per_s", w["updates"] / max(now - w["start"], 1e-9), step)
        self.log_scalar("data/prior_size", len(self.prior), step)
        self.log_scalar("data/online_size", len(self.online), step)
        if w["records"]:
            self.log_scalar("data/intervention_rate", w["interventions"] / w["records"], step)
        self._window = {"records": 0, "interventions": 0, "start": now, "updates": 0}

    # -- checkpoints -----------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.config.run_dir) / "checkpoint.safetensors"

    @property
    def buffers_path(self) -> Path:
        return Path(self.config.run_dir) / "buffers.safetensors"

    def checkpoint_due(self) -> bool:
        return self.learner is not None and self.clock() - self._last_checkpoint >= self.config.checkpoint_period

    def save(self) -> None:
        """Networks, optimisers, counters (and the buffers unless bags are the source) to ``run_dir``."""
        if self.learner is None:
            return
        state = {
            "algorithm": self.config.algorithm, "observation_spec": self.config.observation_spec,
            "obs_dim": self.prior.obs_dim, "updates": self.learner.updates, "policy_version": self.policy_version,
            "doubt_threshold": getattr(self.learner, "doubt_threshold", None),
            "rlpd": asdict(self.rlpd_config), "hgdagger": asdict(self.hgdagger_config),
        }
        save_checkpoint(self.checkpoint_path, self.learner.modules(), self.learner.optimizers(), self.learner.extra_tensors(), state)
        buffers = {f"prior/{k}": v for k, v in self.prior.state().items()} | {f"online/{k}": v for k, v in self.online.state().items()}
        buffers["onsets"] = np.asarray(self.onset_observations, np.float32).reshape(-1, self.prior.obs_dim)
        save_arrays(self.buffers_path, buffers)
        self._last_checkpoint = self.clock()

    def restore(self, bag_records: Iterable[Sequence[StepRecord]] | None = None) -> bool:
        """Resume from ``run_dir`` if it holds a checkpoint; refill the buffers from ``bag_records``
        (one sequence of step records per bag or episode) if given, else from the saved buffers."""
        if bag_records is not None:
            for records in bag_records:
                self.labeller.boundary()
                self.add_records(records)
            self.labeller.boundary()
        if not self.checkpoint_path.exists():
            return False
        state = read_state(self.checkpoint_path)
        for key in ("algorithm", "observation_spec"):
            if state.get(key) != getattr(self.config, key):
                raise CheckpointError(
                    f"checkpoint {self.checkpoint_path} is for {key}={state.get(key)!r}, this learner has "
                    f"{getattr(self.config, key)!r}: use another run_dir or delete the checkpoint")
        if self.learner is None:
            self._build(int(state["obs_dim"]))
        load_checkpoint(self.checkpoint_path, self.learner.modules(), self.learner.optimizers(), self.learner.extra_tensors())
        self.learner.updates, self.policy_version = int(state["updates"]), int(state["policy_version"])
        if isinstance(self.learner, HGDAggerLearner):
            self.learner.doubt_threshold = state.get("doubt_threshold")
        if bag_records is None and self.buffers_path.exists():
            arrays = load_arrays(self.buffers_path)
            for name, buffer in (("prior", self.prior), ("online", self.online)):
                buffer.load_state({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(name + "/")})
            self.onset_observations = list(arrays["onsets"])
        return True


def _select(data: Transitions, keep: np.ndarray) -> Transitions:
    return Transitions(**{k: v[keep] for k, v in asdict_arrays(data).items()})


def asdict_arrays(data: Transitions) -> dict[str, np.ndarray]:
    return {name: getattr(data, name) for name in data.__dataclass_fields__}


def bag_step_records(bags_dir: str) -> Iterable[Sequence[StepRecord]]:
    """Step records of every bag under ``bags_dir``, one sequence per bag (rebuild hook).

    Needs ``iil_robot.bags`` (the recorder's reader, being written in parallel); until it lands
    this raises, and the learner falls back to its checkpointed buffers.
    """
    try:
        from .. import bags  # type: ignore[attr-defined]
    except ImportError as err:
        raise ValueError(
            "rebuilding buffers from bags needs iil_robot.bags, which this build does not have yet; "
            "leave bags_dir empty to resume from the checkpointed buffers") from err
    return bags.read_step_records(bags_dir)  # pragma: no cover - the reader's API lands with iil_robot.bags
