"""The weights message: a policy's tensors as safetensors bytes, with JSON metadata.

Layout: a standard safetensors file (8-byte little-endian header length, JSON header, raw
little-endian tensor data); the header's ``__metadata__`` holds one key, ``iil_robot``, whose
value is the JSON of ``WeightsMeta`` (format ``iil_robot.weights``, version 1). The tensors are
the ``Policy`` state dict: the acting network plus the normalisation (``obs_mean``,
``obs_std``: observations are standardised; ``action_low``, ``action_high``: the tanh output in
[-1, 1] is mapped onto that box), and with ``goal_critic: true`` the goal-probability critic
``goal_critic.*`` (ThriftyDAgger's Q_G, for the risk of help requests; messages without it stay valid
and give no risk).

``decode_policy`` is the only way received bytes become a network: it parses the header as
JSON, checks every field against what the receiver expects (algorithm, observation and action
spec, sizes; ``action_spec`` names the action space and frame, ``iil_robot.data.actions``), builds the
network from the metadata with bounded sizes, requires exactly its
tensor names, shapes and dtype, and finite values. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from iil_robot.data.actions import DEFAULT_ACTION_SPACE, ActionSpace, action_frame_of_spec, action_space, action_space_of_spec
from iil_robot.data.records import layout_difference
from iil_robot.learners.methods import ALGORITHMS
from iil_robot.learners.networks import HEADS, Policy, PolicyShape

WEIGHTS_FORMAT = "iil_robot.weights"
WEIGHTS_VERSION = 1
MAX_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
"""Largest safetensors header accepted (a policy's is a few kB): a bigger one is refused before it is parsed."""
MAX_PARAMETERS = 20_000_000
"""Default largest network (parameters, all tensors together) a receiver accepts: 80 MB of float32."""
LIMITS = {"obs_dim": 4096, "act_dim": 64, "hidden": 4096, "layers": 8, "ensemble": 32, "components": 32, "image_side": 512,
          "image_features": 1024, "cameras": 8}


class WeightsError(ValueError):
    """A weights message is unreadable or does not fit the receiver; the old policy keeps acting."""


@dataclass(frozen=True)
class WeightsMeta:
    policy_version: int
    """Increases with every publication of a learner (checkpointed, so it survives restarts)."""
    algorithm: str
    """``rlpd``, ``hgdagger``, ``pvp`` or ``haco``: which network the tensors are (all but hgdagger: a tanh-Gaussian actor)."""
    observation_spec: str
    """Name of the observation layout the policy was trained on (``Observation.spec``)."""
    obs_dim: int
    action_spec: str
    """The action space and frame (``ActionConfig.spec``, e.g. ``translation_gripper/v1``: vx, vy, vz, gripper in the
    command frame; ``tool_translation_gripper/v1``: the same in the end effector's frame)."""
    act_dim: int
    hidden: tuple[int, ...]
    ensemble: int
    """Members (1 for RLPD's actor)."""
    updates: int
    """Learner updates behind these weights."""
    stamp: float
    """time.time() when encoded (for the sync benchmark and logs)."""
    doubt_threshold: float | None = None
    """HG-DAgger's learned doubt threshold, if any."""
    head: str = "l2"
    """Supervised learners' action head: ``l2`` or ``mixture`` (absent in older messages: ``l2``)."""
    components: int = 1
    """Gaussian components per member of a ``mixture`` head."""
    image: tuple[int, ...] = ()
    """Camera images (channels, height, width) the policy also takes: the RGB images of ``cameras`` stacked as
    channels (3 per camera, in that order); empty = none."""
    image_features: int = 50
    """Output size of its image encoder."""
    goal_critic: bool = False
    """The tensors include the goal-probability critic Q_G (HG-DAgger with ``goal_critic``); absent: False."""
    observation_fields: tuple[str, ...] = ()
    """The observation layout the policy was trained on (``Observation.fields``); empty: not named."""
    cameras: tuple[str, ...] = ()
    """Names of the cameras whose images make up ``image`` (``camera/<name>/image_raw``), in channel order."""
    action_fields: tuple[str, ...] = ()
    """The action's values (``ActionSpace.fields``); empty: a message written before action spaces (its
    ``action_spec`` alone names the space)."""

    @property
    def action_space(self) -> ActionSpace:
        return action_space_of_spec(self.action_spec)

    @property
    def action_frame(self) -> str:
        """``base`` or ``tool`` (``iil_robot.data.actions.ACTION_FRAMES``): the frame of the action's velocities."""
        return action_frame_of_spec(self.action_spec)

    @property
    def shape(self) -> PolicyShape:
        return PolicyShape(self.algorithm, self.obs_dim, self.act_dim, self.hidden, self.ensemble, head=self.head,
                           components=self.components, image=self.image, image_features=self.image_features,
                           goal_critic=self.goal_critic)


@dataclass(frozen=True)
class Expected:
    """What the receiver accepts; None = anything (within the size limits)."""

    observation_spec: str | None = None
    obs_dim: int | None = None
    action_space: str = DEFAULT_ACTION_SPACE
    """The receiver's action space (the policy node's ``action.space``)."""
    action_frame: str = "base"
    """The receiver's action frame (the policy node's ``action.frame``)."""
    algorithms: tuple[str, ...] = tuple(ALGORITHMS)
    observation_fields: tuple[str, ...] = ()
    """The observations' layout; empty: not checked."""
    max_parameters: int = MAX_PARAMETERS
    """Largest network accepted; a message claiming more is refused before anything is built."""
    cameras: tuple[str, ...] | None = None
    """The cameras the receiver has; weights for another camera set are refused. None: not checked."""


def encode_policy(policy: Policy, meta: WeightsMeta) -> bytes:
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in policy.state_dict().items()}
    header = {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, **asdict(meta)}
    return save_tensors(tensors, metadata={"iil_robot": json.dumps(header, allow_nan=False)})


def _strict_json(text: bytes | str, what: str) -> object:
    """JSON without NaN or Infinity; every parse failure (deep nesting, huge integers included) is a WeightsError."""
    def refuse(name: str) -> float:
        raise WeightsError(f"{what} holds {name}, which is not a number")
    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError as err:
        raise WeightsError(f"{what} is nested too deeply") from err
    except (UnicodeDecodeError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise WeightsError(f"{what} is not valid JSON: {str(err)[:120]}") from err


def _header(data: bytes) -> dict:
    """The safetensors header (tensor entries and ``__metadata__``), read without touching the tensors."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WeightsError(f"weights must be bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise WeightsError(f"weights message of {len(data)} bytes exceeds the limit of {MAX_BYTES}")
    if len(data) < 8:
        raise WeightsError(f"weights message of {len(data)} bytes is truncated (no safetensors header)")
    (size,) = struct.unpack("<Q", bytes(data[:8]))
    if size > MAX_HEADER_BYTES:
        raise WeightsError(f"safetensors header of {size} bytes exceeds the limit of {MAX_HEADER_BYTES}: not a policy")
    if size > len(data) - 8:
        raise WeightsError(f"safetensors header claims {size} bytes but the message has {len(data) - 8}: "
                           "truncated or not safetensors")
    header = _strict_json(bytes(data[8:8 + size]), "not an iil_robot weights message: safetensors header")
    if not isinstance(header, dict):
        raise WeightsError("safetensors header is not a JSON object: not a weights message")
    return header


def read_meta(data: bytes) -> WeightsMeta:
    """Parse and check the metadata of a weights message without touching its tensors."""
    metadata = _header(data).get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("iil_robot"), str):
        raise WeightsError("not an iil_robot weights message (no iil_robot metadata in the safetensors header)")
    meta = _strict_json(metadata["iil_robot"], "iil_robot metadata")
    if not isinstance(meta, dict) or meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"metadata format is {meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}, "
                           f"expected {WEIGHTS_FORMAT!r}")
    if meta.get("version") != WEIGHTS_VERSION:
        raise WeightsError(f"{WEIGHTS_FORMAT} version {str(meta.get('version'))[:20]!r} is not supported "
                           f"(this build reads {WEIGHTS_VERSION})")
    return _meta_from_json(meta)


def _meta_from_json(meta: dict) -> WeightsMeta:
    def get(name: str, kind: type | tuple[type, ...], optional: bool = False):
        value = meta.get(name)
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            raise WeightsError(f"weights metadata field {name!r} = {str(value)[:40]} must be {kind}")
        if isinstance(value, int) and not -2**63 <= value < 2**63:
            raise WeightsError(f"weights metadata field {name!r} = {str(value)[:40]}... is out of range")
        return value

    hidden = get("hidden", list)
    if not 1 <= len(hidden) <= LIMITS["layers"] \
            or not all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= LIMITS["hidden"] for h in hidden):
        raise WeightsError(f"weights metadata hidden={hidden!r}: 1..{LIMITS['layers']} sizes in 1..{LIMITS['hidden']}")
    out = WeightsMeta(
        policy_version=get("policy_version", int), algorithm=get("algorithm", str),
        observation_spec=get("observation_spec", str), obs_dim=get("obs_dim", int),
        action_spec=get("action_spec", str), act_dim=get("act_dim", int), hidden=tuple(hidden),
        ensemble=get("ensemble", int), updates=get("updates", int), stamp=float(get("stamp", (int, float))),  # int64: no overflow
        doubt_threshold=get("doubt_threshold", (int, float), optional=True),
        head=get("head", str, optional=True) or "l2", components=get("components", int, optional=True) or 1,
        image=tuple(_image(meta.get("image", []))), image_features=meta.get("image_features", 50),
        goal_critic=meta.get("goal_critic", False),
        observation_fields=_names(meta.get("observation_fields", [])),
        cameras=_cameras(meta.get("cameras", [])),
        action_fields=_names(meta.get("action_fields", []), "action_fields"),
    )
    if not isinstance(out.goal_critic, bool):
        raise WeightsError(f"weights metadata goal_critic={out.goal_critic!r} must be true or false")
    if out.algorithm not in ALGORITHMS:
        raise WeightsError(f"weights metadata algorithm={out.algorithm!r} is unknown; expected one of {sorted(ALGORITHMS)}")
    supervised = ALGORITHMS[out.algorithm].actor == "ensemble"
    if out.goal_critic and (not supervised or out.image):
        raise WeightsError(f"weights metadata goal_critic=true is only for state-only supervised policies, not {out.algorithm!r}"
                           f"{' with a camera' if out.image else ''}")
    if out.head not in HEADS:
        raise WeightsError(f"weights metadata head={out.head!r} must be one of {HEADS}")
    if out.head == "mixture" and not supervised:
        raise WeightsError(f"weights metadata head='mixture' is only for the supervised learners, not {out.algorithm!r}")
    if isinstance(out.image_features, bool) or not isinstance(out.image_features, int) \
            or not 1 <= out.image_features <= LIMITS["image_features"]:
        raise WeightsError(f"weights metadata image_features={out.image_features!r} "
                           f"must be an integer in 1..{LIMITS['image_features']}")
    for name in ("obs_dim", "act_dim", "ensemble", "components"):
        if not 1 <= getattr(out, name) <= LIMITS[name]:
            raise WeightsError(f"weights metadata {name}={getattr(out, name)} is out of range [1, {LIMITS[name]}]")
    if out.image and 3 * len(out.cameras) != out.image[0]:
        raise WeightsError(f"weights metadata image {list(out.image)} has {out.image[0]} channels, but cameras "
                           f"{list(out.cameras)} give 3 each ({3 * len(out.cameras)})")
    if out.observation_fields and len(out.observation_fields) != out.obs_dim:
        raise WeightsError(f"weights metadata names {len(out.observation_fields)} observation fields for obs_dim {out.obs_dim}")
    _check_action(out)
    return out


def _check_action(meta: WeightsMeta) -> None:
    """The action spec names a known space whose size and fields the metadata agrees with."""
    try:
        space = meta.action_space
    except ValueError as err:
        raise WeightsError(f"weights metadata: {err}") from err
    if meta.act_dim != space.size:
        raise WeightsError(f"weights metadata act_dim={meta.act_dim} does not fit action spec {meta.action_spec!r} "
                           f"({space.size} values: {', '.join(space.fields)})")
    if meta.action_fields and meta.action_fields != space.fields:
        raise WeightsError(f"weights metadata action_fields {list(meta.action_fields)[:8]} do not match action spec "
                           f"{meta.action_spec!r} ({', '.join(space.fields)})")


def _names(value: object, name: str = "observation_fields") -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > LIMITS["obs_dim"] or not all(isinstance(v, str) and len(v) <= 256
                                                                                for v in value):
        raise WeightsError(f"weights metadata {name} must be a list of at most {LIMITS['obs_dim']} names")
    return tuple(value)


def _cameras(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > LIMITS["cameras"] or len(set(map(str, value))) != len(value) \
            or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        raise WeightsError(f"weights metadata cameras={str(value)[:80]} must be at most {LIMITS['cameras']} distinct names")
    return tuple(value)


def _image(value: object) -> list[int]:
    """``[]`` or ``[3 * cameras, H, W]`` (RGB per camera) with sides in 17..image_side (the encoder's smallest input)."""
    if value == []:
        return []
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            or value[0] % 3 or not 3 <= value[0] <= 3 * LIMITS["cameras"] \
            or not all(17 <= v <= LIMITS["image_side"] for v in value[1:]):
        raise WeightsError(f"weights metadata image={value!r} must be [] or [3 x cameras, height, width] "
                           f"with at most {LIMITS['cameras']} cameras and sides in 17..{LIMITS['image_side']}")
    return value


def check_expected(meta: WeightsMeta, expected: Expected) -> None:
    if meta.algorithm not in expected.algorithms:
        raise WeightsError(f"algorithm {meta.algorithm!r} is not one this policy node runs {expected.algorithms}")
    if expected.observation_spec is not None and meta.observation_spec != expected.observation_spec:
        raise WeightsError(f"weights were trained on observation spec {meta.observation_spec!r}, "
                           f"this arm publishes {expected.observation_spec!r}")
    difference = layout_difference(meta.observation_fields, expected.observation_fields)
    if meta.observation_fields and expected.observation_fields and difference:
        raise WeightsError(f"weights were trained on another observation layout: this arm's observations have {difference} "
                           "compared to the weights'; train on this profile's observations")
    if expected.cameras is not None and set(meta.cameras) != set(expected.cameras):
        missing, extra = sorted(set(meta.cameras) - set(expected.cameras)), sorted(set(expected.cameras) - set(meta.cameras))
        raise WeightsError(f"weights take cameras {list(meta.cameras)}, this policy node has {list(expected.cameras)}"
                           + (f": it lacks {missing}" if missing else "") + (f"; the weights lack {extra}" if extra else "")
                           + ": set the policy's cameras parameter (and the camera node's cameras) to the weights' set")
    if expected.obs_dim is not None and meta.obs_dim != expected.obs_dim:
        raise WeightsError(f"weights take {meta.obs_dim} observation values, the observations have {expected.obs_dim}")
    theirs, ours = meta.action_space, action_space(expected.action_space)
    if theirs != ours:
        raise WeightsError(f"weights act in action space {theirs.name!r} ({', '.join(theirs.fields)}), this policy node in "
                           f"{ours.name!r} ({', '.join(ours.fields)}): the weights have {ours.difference(theirs)}; set "
                           f"action.space to {theirs.name!r} on the policy node, or train in {ours.name!r}")
    if meta.action_frame != expected.action_frame:
        raise WeightsError(f"weights act in the {meta.action_frame} frame (action spec {meta.action_spec!r}), this policy node "
                           f"in the {expected.action_frame} frame: set action.frame to {meta.action_frame!r} on the policy "
                           f"node, or train with action.frame {expected.action_frame!r}")


def claimed_parameters(meta: WeightsMeta) -> int:
    """A lower bound on the parameters of the network ``meta`` describes, from its layer sizes alone (no network
    is built): each member's chain of linear layers, obs_dim -> hidden... -> act_dim."""
    sizes = (meta.obs_dim, *meta.hidden, meta.act_dim)
    return meta.ensemble * sum(a * b for a, b in zip(sizes, sizes[1:]))


def _tensor_entries(header: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of each tensor the safetensors header lists."""
    entries = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        sizes_ok = isinstance(shape, list) and all(type(n) is int and 0 <= n < 2**40 for n in shape)
        if not sizes_ok:
            raise WeightsError(f"safetensors header entry {str(name)[:60]!r} has no valid shape")
        entries[name] = (str(entry.get("dtype")), tuple(shape))
    return entries


def screen(data: bytes, expected: Expected = Expected()) -> WeightsMeta:
    """The checks that need neither the tensors nor a network (well under a millisecond for a policy's header):
    the header, the metadata, what the receiver expects, and the claimed size against the maximum and against the
    tensors the header lists. A message that fails them is refused on arrival. Raises WeightsError."""
    header = _header(data)
    meta = read_meta(data)
    check_expected(meta, expected)
    _check_claimed_size(meta, header, expected)
    return meta


def _check_claimed_size(meta: WeightsMeta, header: dict, expected: Expected) -> None:
    claimed = claimed_parameters(meta)
    if claimed > expected.max_parameters:
        raise WeightsError(f"weights metadata describes a network of at least {claimed} parameters (hidden={list(meta.hidden)}, "
                           f"ensemble={meta.ensemble}), over this node's maximum of {expected.max_parameters}")
    held = sum(math.prod(shape) for _, shape in _tensor_entries(header).values())
    if claimed > held:
        raise WeightsError(f"weights metadata describes a network of at least {claimed} parameters, but the message holds "
                           f"{held}: the metadata does not match the tensors")


def _check_layout(meta: WeightsMeta, header: dict, expected: Expected) -> None:
    """After ``screen``: compare the header's tensors with the network's, built on the meta device (no memory)."""
    entries = _tensor_entries(header)
    with torch.device("meta"):
        wanted = {k: tuple(v.shape) for k, v in Policy(meta.shape).state_dict().items()}
    total = sum(math.prod(shape) for shape in wanted.values())
    if total > expected.max_parameters:
        raise WeightsError(f"weights metadata describes a network of {total} parameters, over this node's maximum of "
                           f"{expected.max_parameters}")
    if set(entries) != set(wanted):
        missing, extra = sorted(set(wanted) - set(entries)), sorted(set(entries) - set(wanted))
        raise WeightsError(f"tensors do not match a {meta.algorithm} policy of {meta.shape}: missing {missing[:5]}, "
                           f"unexpected {extra[:5]}")
    for name, (dtype, shape) in entries.items():
        if dtype != "F32" or shape != wanted[name]:
            raise WeightsError(f"tensor {name!r} is {dtype} {shape}, expected float32 (F32) {wanted[name]}")


def warm_up() -> None:
    """Build a tiny network on the meta device once: the first use of that device takes about a second, which
    must not fall on the first weights message a running policy node checks."""
    with torch.device("meta"):
        Policy(PolicyShape("rlpd", 1, 1, (1,)))


def decode_policy(data: bytes, expected: Expected = Expected()) -> tuple[WeightsMeta, Policy]:
    """Validate a weights message and build its policy. Raises WeightsError naming what was wrong.

    Everything that can be checked without allocating the network is checked first: the metadata, its sizes
    against ``expected.max_parameters`` and against the tensors the header lists, and each tensor's name, dtype
    and shape; only then are the tensors read and the network built."""
    meta = screen(data, expected)
    _check_layout(meta, _header(data), expected)
    if meta.doubt_threshold is not None and not math.isfinite(meta.doubt_threshold):
        raise WeightsError("doubt_threshold is not finite")
    try:
        tensors = load_tensors(bytes(data))
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise WeightsError(f"safetensors payload is corrupt: {err}") from err
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"tensor {name!r} has non-finite values")
    if not (tensors["obs_std"] > 0).all() or not (tensors["action_low"] < tensors["action_high"]).all():
        raise WeightsError("normalisation is invalid: obs_std must be > 0 and action_low < action_high")
    policy = Policy(meta.shape)
    policy.load_state_dict(tensors, strict=True)
    return meta, policy.eval().requires_grad_(False)
