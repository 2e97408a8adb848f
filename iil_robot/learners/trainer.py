"""The learner's loop without ROS: step records in, updates, weights bytes and checkpoints out.

The learner node is a wiring diagram around ``Trainer``: it hands over decoded step records
and episode events, calls ``step()`` whenever it is idle, and publishes what ``step()``
returns. Labelling is ``iil_robot.data.labels`` (a :class:`LiveLabeller`: the episode splitter and
``label_episode``, the code offline replay runs). RLPD: the operator's transitions (demos and
interventions) go to the prior buffer, the policy's to the online buffer (sampled 50/50).
HG-DAgger: the prior buffer holds the labels' HG-DAgger samples (the operator's commands; with
``labels.label_every_step``, DAgger's label of every visited step), the online buffer the policy's
steps, which IWR and Sirius (``hgdagger.weighting``) learn from too.

Restarts (``restore``): the checkpoint in ``run_dir`` holds networks, optimisers and counters.
Bags are the source of truth for data: with ``bags_dir`` set, the buffers are rebuilt from the
bags under it on every start (through the same labeller, so they hold exactly what live
labelling gave) and are not checkpointed; with ``bags_dir`` empty they are saved next to the
checkpoint (``buffers.safetensors``) and reloaded from there.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from iil_robot.data.actions import DEFAULT_ACTION_SPACE, ActionConfig
from iil_robot.data.camera import CameraError
from iil_robot.data.frames import FrameStore, attach_images, camera_names, message_rgb
from iil_robot.data.labels import LabelConfig, LabelError, Labelled, LiveLabeller
from iil_robot.data.records import EpisodeEvent, StepRecord, layout_difference
from iil_robot.data.tool_frame import orientation_indices
from iil_robot.data.transitions import StepClass, Transitions
from iil_robot.learners.buffers import ActionBox, ReplayBuffer
from iil_robot.learners.checkpoints import CheckpointError, load_arrays, load_checkpoint, read_state, save_arrays, save_checkpoint
from iil_robot.learners.configs import LearnerConfigs, configure
from iil_robot.learners.methods import METHODS, algorithm, method
from iil_robot.learners.sizes import SIZES, CpuSizes, chosen_size, sized
from iil_robot.learners.weights import LIMITS, WeightsMeta, encode_policy

if TYPE_CHECKING:
    from iil_robot.data.recordings import Recording

ScalarLogger = Callable[[str, float, int], None]
MAX_CAMERAS = LIMITS["cameras"]
"""Cameras a policy may take (the weights' limit)."""


@dataclass(frozen=True)
class TrainerConfig:
    """The learner process: what it trains, when it publishes and checkpoints, where it runs."""

    method: str = "rlif"
    """Learning method, a name of ``learners/methods.py`` (e.g. ``rlif``, ``hgdagger``, ``iwr``)."""
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
    """Directory of the recorder's bags: buffers are rebuilt from them on start (not checkpointed); empty = checkpointed
    buffers."""
    step_topic: str = "/step"
    """Topic of the step records in the bags (fully qualified, as recorded)."""
    event_topic: str = "/episode/event"
    """Topic of the episode events in the bags."""
    event_delay: float = 1.0
    """Seconds an episode event may arrive after its stamp; older steps of an open episode are labelled early."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
    size: str = "auto"
    """Network sizes and update budget: ``gpu``, the algorithm configs' own (``*.hidden``, ``*.batch_size``,
    ``rlpd.num_qs``, ``rlpd.utd_ratio``: GPU-sized by default); ``cpu``, the ``cpu.*`` sizes in place of those left at
    their defaults (what a CPU trains in real time beside the control loop); ``auto``, ``cpu`` when training on the CPU,
    else ``gpu``."""
    normalize_observations: bool = True
    """Standardise observations with the mean and std of the data present at the first update (then
    fixed; they travel in the weights and the checkpoint)."""
    min_obs_std: float = 0.01
    """Floor of the per-feature std used to standardise (observation units, e.g. metres)."""
    warm_start_updates: int = 0
    """Updates on the operator's data before the first weights are published: HG-DAgger trains as
    usual; RLPD fits its critics and clones the actor's mean (``RLPDLearner.warm_start_step``;
    skipped if the prior buffer is still empty)."""
    num_threads: int = 1
    """Torch CPU threads (keep the control loop's core free)."""
    nice: int = 19
    """Niceness added to the learner process (0-19); 19: every control-path process preempts training. A learner
    that leads its own session nices the session's autogroup too (Linux shares the CPU between sessions first)."""
    idle_priority: bool = False
    """Train under Linux's SCHED_IDLE policy: the training thread gets only CPU time no other
    process wants, so it never delays a control tick (niceness alone still lets it hold a core
    for a scheduler slice). Receiving records and publishing weights keep the normal priority.
    Off by default: with any other busy process on the machine the learner then barely trains."""
    seed: int = 0
    """Seed of the learner's sampling."""
    image_width: int = 0
    """Camera policies (rlpd, hgdagger): width (px) of the images learned from (frames are resized to it, as the
    policy node does); 0 with ``image_height`` 0 = state only."""
    image_height: int = 0
    """Camera policies: height (px) of the images learned from."""
    cameras: str = "front"
    """Camera policies: comma-separated names of the cameras learned from (each camera node's
    ``camera/<name>/image_raw/compressed``, live and in the bags), paired with the steps by their stamps in the steps'
    ``image_stamps``; their images are stacked in this order (3 channels each) in the weights."""
    frame_buffer: int = 3000
    """Camera policies: newest frames kept per camera for pairing with step records (150 s at 20 Hz); a step whose
    frame was dropped before its episode was labelled is left out of image learning (counted)."""

    def __post_init__(self) -> None:
        chosen = method(self.method)
        if (self.image_width > 0) != (self.image_height > 0) or (self.image and min(self.image[1:]) < 17):
            raise ValueError(f"image_width {self.image_width} and image_height {self.image_height} must both be 0 (state only) "
                             "or both at least 17 (the image encoder's smallest input)")
        if self.image and not chosen.images:
            raise ValueError(f"method {self.method!r} learns from state only; camera policies: "
                             f"{[m.name for m in METHODS.values() if m.images]} (set image_width and image_height to 0)")
        names = camera_names(self.cameras)  # raises on a camera named twice
        if self.image and not 1 <= len(names) <= MAX_CAMERAS:
            raise ValueError(f"cameras {self.cameras!r} must name 1 to {MAX_CAMERAS} cameras to learn from, comma-separated "
                             "(e.g. front,wrist), or set image_width and image_height to 0 for a state-only policy")
        if self.frame_buffer < 1:
            raise ValueError(f"frame_buffer {self.frame_buffer} must be >= 1")
        if self.min_obs_std <= 0:
            raise ValueError(f"min_obs_std {self.min_obs_std} must be > 0")
        if self.warm_start_updates < 0:
            raise ValueError(f"warm_start_updates {self.warm_start_updates} must be >= 0")
        if self.event_delay < 0:
            raise ValueError(f"event_delay {self.event_delay} must be >= 0 seconds")
        if self.size not in SIZES:
            raise ValueError(f"size {self.size!r} is unknown; choose one of {SIZES} (auto: cpu sizes when training on the CPU)")

    @property
    def algorithm(self) -> str:
        """The method's learner (``learners/methods.py``): the name its weights and checkpoints carry."""
        return METHODS[self.method].algorithm

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The cameras learned from, in the order their images are stacked; () for a state-only learner."""
        return camera_names(self.cameras) if self.image_width > 0 else ()

    @property
    def image(self) -> tuple[int, ...]:
        """(channels, height, width) of the images learned from: 3 channels per camera; () = state only."""
        return (3 * len(self.camera_names), self.image_height, self.image_width) if self.image_width > 0 else ()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    def __init__(self, config: TrainerConfig, configs: LearnerConfigs = LearnerConfigs(), labels: LabelConfig = LabelConfig(),
                 action: ActionConfig = ActionConfig(), clock: Callable[[], float] = time.monotonic,
                 log_scalar: ScalarLogger | None = None, warn: Callable[[str], None] | None = None,
                 cpu_sizes: CpuSizes = CpuSizes()) -> None:
        """``configs`` and ``labels`` as given; the method sets its own labelling and sampling in them (``configure``),
        and ``config.size`` the network sizes (``cpu_sizes`` in place of the configs' where it picks ``cpu``).
        ``action``: the learned action space and its bounds (the mux's limits); the labels are made in that space.

        Raises:
            ValueError: a config contradicts the method.
        """
        self.method = method(config.method)
        self.algorithm = algorithm(self.method.algorithm)
        configs, labels = configure(self.method, configs, replace(labels, action_space=action.space, action_frame=action.frame))
        self.config = config
        self.action, self.action_box = action, ActionBox.of(action)
        self.clock, self.log_scalar = clock, log_scalar
        self.device = resolve_device(config.device)
        self.size = chosen_size(config.size, self.device)
        """``cpu`` or ``gpu``: the sizes trained with (``TrainerConfig.size``)."""
        self.configs = sized(configs, self.size, cpu_sizes)
        self.labeller = LiveLabeller(labels, config.event_delay)
        self.restored: dict[str, object] = {}
        """What ``restore`` read: bags, skipped bags, steps, events."""
        # The newest restored steps and events, not added twice when they also arrive live (steps queued
        # during the restore; events latched by their publishers, which every late joiner receives again).
        self._replayed_steps: set[tuple[int, float]] = set()
        self._replayed_events: set[tuple[str, str, float]] = set()
        self.rng = np.random.default_rng(config.seed)
        self.learner: Any = None
        """The algorithm's learner (``learners/methods.py``), built at the first labelled data."""
        self.prior: ReplayBuffer | None = None
        self.online: ReplayBuffer | None = None
        self.onset_observations: list[np.ndarray] = []
        self.policy_version = 0
        self.observation_fields: tuple[str, ...] = ()
        """The observations' layout (``Observation.fields``), exported with the weights; empty: unknown."""
        self.normalized = False
        """Whether the observation normalisation has been fitted (at the first update, or restored)."""
        self.dropped = 0
        """Step records and labelled rows of another observation size than the one being learned, left out."""
        self._obs_size: int | None = None
        """The observation size being learned: the layout's, else the networks', else the first record's."""
        self.unframed = 0
        """``action.frame`` tool: step records dropped because no observation layout had named the orientation yet."""
        self.env_steps = 0
        """Step records taken in (one per env step; the bags' too on a restart)."""
        self.warm_start_progress = (0, 0)
        """(updates done, updates planned) of the warm start; checkpointed, so a restart finishes one cut short."""
        self.warn = warn or logging.getLogger("iil_robot.learner").warning
        self.frames = {name: FrameStore((3, *config.image[1:]), config.frame_buffer) for name in config.camera_names}
        """By camera, in the order the images are stacked: its recent frames by stamp (empty for a state-only learner)."""
        self.missing_frames = 0
        """Labelled rows left out of image learning: a step's frame (or the next step's) of a camera was not received."""
        self.missing_by_camera = dict.fromkeys(config.camera_names, 0)
        """By camera: labelled rows that lacked its frame (a row may lack several cameras')."""
        self.bad_frames = 0
        """Camera frames that could not be decoded."""
        self._metrics: dict[str, torch.Tensor] = {}
        self._window = {"records": 0, "interventions": 0, "start": clock(), "updates": 0}
        self._last_publish: tuple[float, int] | None = None
        self._last_checkpoint = clock()

    # -- data in ---------------------------------------------------------------------------

    def add_records(self, records: Sequence[StepRecord]) -> None:
        """Step records in tick order (live or from bags); labelled rows go to the buffers when final."""
        if self._replayed_steps:
            records = [r for r in records if (r.tick, r.stamp) not in self._replayed_steps]
            if records:
                self._replayed_steps.clear()  # past the overlap with the bags
        records = self._of_learned_size(records)
        self.env_steps += len(records)
        if self.action.frame == "tool" and not self.labeller.config.orientation:
            self.unframed += len(records)
            self.warn(f"action.frame tool: {self.unframed} step records dropped so far, the observation layout has not named "
                      f"the end effector's orientation ({self.action.orientation_field}) yet (the observer publishes it "
                      f"with every observation)")
            return
        self._window["records"] += len(records)
        self._window["interventions"] += sum(r.intervention for r in records)
        for labelled in self.labeller.add_steps(records):
            self.add_labelled(labelled)

    def _of_learned_size(self, records: Sequence[StepRecord]) -> Sequence[StepRecord]:
        """The records whose observation has the size being learned. One of another size (another arm's layout, a
        malformed peer's) would stop its whole episode from being labelled, so it is left out here, counted and
        reported."""
        if self.prior is not None:
            self._obs_size = self.prior.obs_dim
        elif self.observation_fields:
            self._obs_size = len(self.observation_fields)
        elif self._obs_size is None:
            self._obs_size = next((len(r.observation) for r in records if r.observation is not None), None)
        kept = [r for r in records if r.observation is None or len(r.observation) == self._obs_size]
        if len(kept) < len(records):
            sizes = sorted({len(r.observation) for r in records if r.observation is not None} - {self._obs_size})
            self.dropped += len(records) - len(kept)
            self.warn(f"left out {len(records) - len(kept)} step records with observations of {sizes} values: this learner "
                      f"learns observations of {self._obs_size} ({self.dropped} left out so far)")
        return kept

    def add_event(self, event: EpisodeEvent) -> None:
        """An episode event: splits episodes (see ``iil_robot.data.episodes``)."""
        if (event.event, event.origin, event.stamp) in self._replayed_events:
            return
        for labelled in self.labeller.add_event(event):
            self.add_labelled(labelled)

    def add_frame(self, camera: str, stamp: float, rgb: np.ndarray) -> None:
        """A frame (RGB (H, W, 3) uint8) of ``camera`` captured at ``stamp``; ignored unless this learner learns from
        that camera (a state-only learner learns from none)."""
        self._keep_frame(camera, lambda store: store.add_rgb(stamp, rgb))

    def add_compressed_frame(self, camera: str, stamp: float, data: bytes) -> None:
        """A JPEG frame of ``camera`` (``camera/<name>/image_raw/compressed``) captured at ``stamp``."""
        self._keep_frame(camera, lambda store: store.add_compressed(stamp, data))

    def add_image_message(self, camera: str, stamp: float, message: Any) -> None:
        """A frame of ``camera`` as a (deserialized) CompressedImage or rgb8/bgr8 Image, e.g. read from a bag."""
        self._keep_frame(camera, lambda store: store.add_rgb(stamp, message_rgb(message)))

    def _keep_frame(self, camera: str, add: Callable[[FrameStore], None]) -> None:
        store = self.frames.get(camera)
        if store is None:
            return
        try:
            add(store)
        except CameraError as err:
            self.bad_frames += 1
            self.warn(f"camera {camera}: frame ignored ({self.bad_frames} so far): {err}")

    def set_observation_layout(self, fields: Sequence[str]) -> None:
        """The layout of the observations being learned from (the observer's ``Observation.fields``); weights carry it,
        so a policy node refuses them for another layout. A later, different layout is refused with a warning: its
        records are of another shape (dropped and counted) or mean something else."""
        fields = tuple(fields)
        if not fields or fields == self.observation_fields:
            return
        if self.observation_fields:
            self.warn(f"the observation layout changed ({layout_difference(self.observation_fields, fields)}): this learner "
                      "keeps learning the first one; restart it with another run_dir for the new one")
            return
        self.observation_fields = fields
        self._locate_orientation()

    def _locate_orientation(self) -> None:
        """``action.frame`` tool: where the labels find the end effector's orientation in the observation layout
        (without it no step record is learned from: a warning says why)."""
        if self.action.frame != "tool" or not self.observation_fields:
            return
        try:
            indices = orientation_indices(self.observation_fields, self.action.orientation_field)
        except ValueError as err:
            self.warn(f"{err}; no step record is learned from until then")
            return
        self.labeller.config = replace(self.labeller.config, orientation=indices)

    def add_labelled(self, labelled: Labelled) -> None:
        """Labelled rows into the buffers (rows of another observation size are dropped and counted;
        camera policies: rows without their frames are left out and counted)."""
        rlif, dagger = labelled.rlif, labelled.dagger
        if len(rlif) == 0 and len(dagger) == 0:
            return
        if self.learner is None:
            self._build((rlif if len(rlif) else dagger).observations.shape[1])
        assert self.prior is not None and self.online is not None
        human = rlif.interventions | (rlif.classes == StepClass.DEMO)
        prior = rlif.take(human) if self.algorithm.value_based else dagger
        online = rlif.take(~human)
        if self.frames:
            prior, online = self._with_images(prior), self._with_images(online)
        for buffer, data in ((self.prior, prior), (self.online, online)):
            if len(data) and data.observations.shape[1] != buffer.obs_dim:
                self.dropped += len(data)  # another observation layout than the one being learned
            elif len(data):
                buffer.add(data, self.action_box.to_unit(data.actions), self.action_box.to_unit(data.novice_actions))
        if rlif.observations.shape[1] == self.prior.obs_dim:
            self.onset_observations.extend(rlif.next_observations[rlif.rewards < 0])

    def _with_images(self, data: Transitions) -> Transitions:
        paired = attach_images(data, self.frames)
        if paired.left_out:
            self.missing_frames += paired.left_out
            for camera, rows in paired.missing.items():
                self.missing_by_camera[camera] += rows
            lacking = ", ".join(f"{rows} lack {camera}'s ({len(self.frames[camera])} kept)"
                                for camera, rows in paired.missing.items() if rows)
            self.warn(f"{paired.left_out} of {len(data)} labelled rows have no camera frame with their image_stamps "
                      f"({lacking}; not recorded, not received yet, or no longer among the frames kept): left out of image "
                      f"learning, {self.missing_frames} so far. Check that the camera node runs each of {list(self.frames)} "
                      "and the policy takes them (its cameras parameter).")
        return paired.data

    def _build(self, obs_dim: int) -> None:
        act_dim, image, algo = len(self.action_box.low), self.config.image, self.algorithm
        extra = {"image": image} if algo.images else {}
        self.learner = algo.learner_class()(obs_dim, act_dim, self.configs.of(algo.name), self.action_box, self.device, **extra)
        self.prior = ReplayBuffer(obs_dim, act_dim, self.config.prior_capacity, image)
        self.online = ReplayBuffer(obs_dim, act_dim, self.config.online_capacity, image)

    # -- training --------------------------------------------------------------------------

    def status(self) -> dict[str, int]:
        """Counters for diagnostics: updates, buffer sizes, published version, dropped records, env steps taken in.

        Safe to call from another thread while training runs (it reads each attribute once).
        """
        learner, prior, online = self.learner, self.prior, self.online
        return {
            "updates": learner.updates if learner is not None else 0,
            "prior": len(prior) if prior is not None else 0,
            "online": len(online) if online is not None else 0,
            "version": self.policy_version,
            "dropped": self.dropped,
            "env_steps": self.env_steps,
            "warm_start_done": self.warm_start_progress[0],
            "warm_start_total": self.warm_start_progress[1],
        } | self._frame_status()

    def _frame_status(self) -> dict[str, int]:
        """Camera policies: frames kept and rows left out, in all and by camera (``frames.<camera>``)."""
        if not self.frames:
            return {}
        kept = {camera: len(store) for camera, store in self.frames.items()}
        return ({"frames": sum(kept.values()), "missing_frames": self.missing_frames, "bad_frames": self.bad_frames}
                | {f"frames.{camera}": n for camera, n in kept.items()}
                | {f"missing_frames.{camera}": n for camera, n in self.missing_by_camera.items()})

    def ready(self) -> bool:
        if self.learner is None or len(self.prior) + len(self.online) < self.config.min_transitions:
            return False
        return self.algorithm.value_based or len(self.prior) > 0  # a supervised learner needs operator labels

    def step(self) -> bytes | None:
        """One learner update if there is enough data; returns weights bytes when they are due.

        While the warm start runs, one warm-start update instead and no weights: the caller takes in new data
        between steps, so the warm start learns from what arrives meanwhile and a stop never waits for all of it."""
        if not self.ready():
            return None
        if self._warm_start_step():
            return None
        self.update()
        return self.export() if self._publish_due() else None

    def update(self) -> None:
        """One learner update (call only when ``ready()``); the first one fits the normalisation and runs the
        whole warm start (or what a stop left of it)."""
        while self._warm_start_step():
            pass
        self._metrics = self.learner.train_step(self.prior, self.online, self.rng)
        self._window["updates"] += 1
        if self.learner.updates % self.config.log_every_updates == 0:
            self._log()

    def warm_start(self, updates: int) -> None:
        """``updates`` warm-start updates on the operator's data (see ``TrainerConfig.warm_start_updates``)."""
        self._plan_warm_start(updates)
        while self._warm_start_step():
            pass

    def _plan_warm_start(self, updates: int) -> None:
        if not self.normalized:
            self._fit_normalization()
        if self.algorithm.value_based and len(self.prior) == 0:
            return  # no operator data to start from
        self.warm_start_progress = (0, updates)

    def _warm_start_step(self) -> bool:
        """One update of the warm start if it is not done (planning it first on fresh networks); whether it ran."""
        if not self.normalized:
            self._plan_warm_start(self.config.warm_start_updates)
        done, total = self.warm_start_progress
        if done >= total:
            return False
        if self.algorithm.value_based:
            self._metrics = self.learner.warm_start_step(self.prior, self.rng)
        else:
            self._metrics = self.learner.train_step(self.prior, self.online, self.rng)
        self.warm_start_progress = (done + 1, total)
        return True

    def _fit_normalization(self) -> None:
        self.normalized = True
        if not self.config.normalize_observations:
            return
        observations = np.concatenate([b.observations[: len(b)] for b in (self.prior, self.online)])
        self.learner.policy.fit_normalization(torch.from_numpy(observations).to(self.device), self.config.min_obs_std)

    def _publish_due(self) -> bool:
        if self._last_publish is None:
            return True
        when, updates = self._last_publish
        new = self.learner.updates - updates
        return new >= self.config.publish_every_updates or (new > 0 and self.clock() - when >= self.config.publish_period)

    def export(self) -> bytes:
        """The current policy as a weights message with the next version number."""
        if not self.algorithm.value_based and self.onset_observations:
            self.learner.fit_doubt_threshold(np.asarray(self.onset_observations))
        self.policy_version += 1
        self._last_publish = (self.clock(), self.learner.updates)
        shape = self.learner.policy.shape
        meta = WeightsMeta(
            policy_version=self.policy_version, algorithm=shape.algorithm, observation_spec=self.config.observation_spec,
            obs_dim=shape.obs_dim, action_spec=self.action.spec, act_dim=shape.act_dim, hidden=tuple(shape.hidden),
            ensemble=shape.ensemble, updates=self.learner.updates, stamp=time.time(),
            doubt_threshold=getattr(self.learner, "doubt_threshold", None), head=shape.head, components=shape.components,
            image=shape.image, image_features=shape.image_features, goal_critic=shape.goal_critic,
            observation_fields=self.observation_fields if len(self.observation_fields) == shape.obs_dim else (),
            cameras=self.config.camera_names if shape.image else (),
            action_fields=self.action.action_space.fields,
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
        """Networks, optimisers, counters (and the buffers unless ``bags_dir`` is set) to ``run_dir``."""
        if self.learner is None:
            return
        state = {
            "algorithm": self.algorithm.name, "method": self.method.name, "observation_spec": self.config.observation_spec,
            "obs_dim": self.prior.obs_dim, "updates": self.learner.updates, "policy_version": self.policy_version,
            "doubt_threshold": getattr(self.learner, "doubt_threshold", None), "normalized": self.normalized,
            "warm_start_progress": list(self.warm_start_progress),
            "observation_fields": list(self.observation_fields),
            "action_space": self.action.space,
            "action_frame": self.action.frame,
            "image": list(self.config.image),
            "cameras": list(self.config.camera_names),
            **{name: asdict(config) for name, config in self.configs.as_dict().items()},
        }
        save_checkpoint(self.checkpoint_path, self.learner.modules(), self.learner.optimizers(), self.learner.extra_tensors(),
                        state)
        self._last_checkpoint = self.clock()
        if self.config.bags_dir:
            return  # the bags are the source of the buffers
        buffers = ({f"prior/{k}": v for k, v in self.prior.state().items()}
                   | {f"online/{k}": v for k, v in self.online.state().items()})
        buffers["onsets"] = np.asarray(self.onset_observations, np.float32).reshape(-1, self.prior.obs_dim)
        save_arrays(self.buffers_path, buffers)
        self._last_checkpoint = self.clock()

    def restore(self, recording: Recording | None = None) -> bool:
        """Start from what earlier runs left; returns whether a checkpoint was resumed.

        Networks, optimisers and counters come from ``run_dir``'s checkpoint if there is one. With
        ``bags_dir`` set, the buffers are rebuilt from ``recording``, what the bags under it hold (the
        caller reads them: ``iil_robot.data.recordings.read_bags_dir``; None: no bags yet, empty buffers);
        else they are reloaded from ``buffers.safetensors``. Call it once, before any live data.

        Raises:
            CheckpointError: the checkpoint is unreadable or for another algorithm / observation spec.
            LabelError: the recording cannot be labelled.
        """
        resumed = self._load_checkpoint()
        if self.config.bags_dir:
            if recording is not None and not self.observation_fields:
                self.set_observation_layout(recording.observation_fields)  # first: tool-frame labels need it
            self._rebuild(recording)
        elif resumed and self.buffers_path.exists():
            arrays = load_arrays(self.buffers_path)
            for name, buffer in (("prior", self.prior), ("online", self.online)):
                buffer.load_state({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(name + "/")})
            self.onset_observations = list(arrays["onsets"])
        return resumed

    def _load_checkpoint(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        state = read_state(self.checkpoint_path)
        for key in ("algorithm", "observation_spec"):
            if state.get(key) != getattr(self.config, key):
                raise CheckpointError(
                    f"checkpoint {self.checkpoint_path} is for {key}={state.get(key)!r}, this learner has "
                    f"{getattr(self.config, key)!r}: use another run_dir or delete the checkpoint")
        if "action_space" not in state:
            self.warn(f"checkpoint {self.checkpoint_path} names no action space (written before action spaces): "
                      f"read as {DEFAULT_ACTION_SPACE!r}")
        if state.get("action_space", DEFAULT_ACTION_SPACE) != self.action.space:
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} is for action space {state.get('action_space', DEFAULT_ACTION_SPACE)!r}, "
                f"this learner has {self.action.space!r} (action.space): use another run_dir or delete the checkpoint")
        if state.get("action_frame", "base") != self.action.frame:  # a checkpoint from before frames: base
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} is for action frame {state.get('action_frame', 'base')!r}, this learner "
                f"has {self.action.frame!r} (action.frame): use another run_dir or delete the checkpoint")
        if list(state.get("image", [])) != list(self.config.image):
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} is for camera images {state.get('image', [])} (channels, height, width), "
                f"this learner has {list(self.config.image)}: set image_width/image_height (and cameras) to match, or use "
                "another run_dir")
        if "cameras" in state and list(state["cameras"]) != list(self.config.camera_names):
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} learned from cameras {list(state['cameras'])} (in that order), this "
                f"learner has {list(self.config.camera_names)}: set cameras to match, or use another run_dir")
        if self.learner is None:
            self._build(int(state["obs_dim"]))
        load_checkpoint(self.checkpoint_path, self.learner.modules(), self.learner.optimizers(), self.learner.extra_tensors())
        self.learner.updates, self.policy_version = int(state["updates"]), int(state["policy_version"])
        self.normalized = bool(state.get("normalized", self.learner.updates > 0))
        self.observation_fields = tuple(state.get("observation_fields", ()))
        self._locate_orientation()
        done, total = state.get("warm_start_progress", (0, 0))
        self.warm_start_progress = (int(done), int(total))
        if not self.algorithm.value_based:
            self.learner.doubt_threshold = state.get("doubt_threshold")
        return True

    def _rebuild(self, recording: Recording | None) -> None:
        """Feed the recording's events and steps (stamp order) through the live labeller, without ending
        the last episode: live steps continue it, as if the learner had never stopped."""
        if recording is None:
            self.restored = {"bags": 0, "skipped": [], "steps": 0, "events": 0}
            return
        events = sorted(recording.events, key=lambda e: e.stamp)
        steps = sorted(recording.steps, key=lambda s: (s.stamp, s.tick))
        for event in events:
            self.add_event(event)
        try:
            if not self.frames:
                self.add_records(steps)
            else:  # frames and steps in stamp order: the bounded frame stores hold what live pairing would
                self._replay_with_frames(steps, sorted(recording.frames, key=lambda f: f[1]))
        except LabelError as err:
            raise LabelError(f"cannot label the bags under {self.config.bags_dir}: {err}") from err
        # The newest ones may arrive again on the live topics (recorded and queued meanwhile).
        self._replayed_steps = {(s.tick, s.stamp) for s in steps[-RECENT:]}
        self._replayed_events = {(e.event, e.origin, e.stamp) for e in events[-RECENT:]}
        self.restored = {"bags": len(recording.bags) - len(recording.skipped), "skipped": [str(b) for b in recording.skipped],
                         "steps": len(steps), "events": len(events), "undecodable": recording.undecodable}


    def _replay_with_frames(self, steps: list[StepRecord], frames: list[tuple[str, float, Any]]) -> None:
        """Steps in small chunks, each after the (camera, stamp, message) frames up to its last stamp (a frame precedes
        the steps acting on it), as they arrived live: the bounded frame stores then hold what live pairing had."""
        i = 0
        for start in range(0, len(steps), REPLAY_CHUNK):
            chunk = steps[start:start + REPLAY_CHUNK]
            while i < len(frames) and frames[i][1] <= chunk[-1].stamp:
                self.add_image_message(*frames[i])
                i += 1
            self.add_records(chunk)


REPLAY_CHUNK = 10
"""Steps fed at a time when rebuilding a camera policy's buffers from bags (0.5 s at 20 Hz)."""
RECENT = 2000
"""Restored steps/events (the newest) checked against the first live ones for duplicates (100 s at 20 Hz)."""
