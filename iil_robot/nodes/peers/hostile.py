"""Hostile inputs for the nodes, for ``bench sync``, ``iil-robot soak`` and the node tests.

Each generator returns ``(kind, payload)`` pairs: what an attacker or a clumsy user could send on a topic. None
of them is valid: a node that receives one must refuse it (a RecordError or WeightsError, logged) and keep running
in its safe state.
"""
from __future__ import annotations

import json
import struct
import time

import torch

from iil_robot.data.actions import ACTION_SPACES
from iil_robot.data.records import EpisodeEvent, Observation, Proposal, StepRecord
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.weights import WeightsMeta, encode_policy

TRANSLATION = ACTION_SPACES["translation"]
"""The action space of the weights it sends (the policy node's default)."""
BLOAT_BYTES = 4 * 1024 * 1024
"""The extra tensor of the ``bloated`` weights message: a large message that still matches no network."""


def encode_weights(version: int, obs_dim: int, spec: str, hidden: tuple[int, ...] = (256, 256)) -> bytes:
    """Valid RLPD actor weights (the bench's size by default)."""
    torch.manual_seed(version)
    policy = Policy(PolicyShape("rlpd", obs_dim, 4, hidden))
    meta = WeightsMeta(version, "rlpd", spec, obs_dim, TRANSLATION.spec, TRANSLATION.size, hidden, 1, version, time.time())
    return encode_policy(policy, meta)


def _split(data: bytes) -> tuple[dict, bytes]:
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]), data[8 + size:]


def _join(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _with_meta(data: bytes, raw: dict[str, str] | None = None, **changes: object) -> bytes:
    """``data`` with metadata fields changed; ``raw`` writes a field's JSON text as given (NaN, 5000 digits)."""
    header, body = _split(data)
    meta = {**json.loads(header["__metadata__"]["iil_robot"]), **changes}
    text = json.dumps(meta)
    for name, literal in (raw or {}).items():
        text = text.replace(f'"{name}": {json.dumps(meta[name])}', f'"{name}": {literal}', 1)
    header["__metadata__"]["iil_robot"] = text
    return _join(header, body)


def _nan_tensors(data: bytes) -> bytes:
    """The same header, every float32 value NaN (a corrupt payload of exactly the right layout)."""
    header, body = _split(data)
    return _join(header, struct.pack("<f", float("nan")) * (len(body) // 4))


def _bloated(data: bytes) -> bytes:
    header, body = _split(data)
    header["bloat"] = {"dtype": "F32", "shape": [BLOAT_BYTES // 4], "data_offsets": [len(body), len(body) + BLOAT_BYTES]}
    return _join(header, body + bytes(BLOAT_BYTES))


def _zero_std(version: int, obs_dim: int, spec: str) -> bytes:
    torch.manual_seed(version)
    policy = Policy(PolicyShape("rlpd", obs_dim, 4, (256, 256)))
    with torch.no_grad():
        policy.obs_std.zero_()
    meta = WeightsMeta(version, "rlpd", spec, obs_dim, TRANSLATION.spec, TRANSLATION.size, (256, 256), 1, 0, time.time())
    return encode_policy(policy, meta)


def hostile_weights(obs_dim: int, spec: str, version: int = 1_000_000) -> list[tuple[str, bytes]]:
    """Weights messages a policy node acting on ``obs_dim`` observations of ``spec`` must refuse, each newer than any
    real version (so each goes through the whole validation, not the cheap version check)."""
    good = encode_weights(version, obs_dim, spec)
    return [
        ("claims an 8 x 4096 network", _with_meta(good, hidden=[4096] * 8)),
        ("claims a 32-member 8 x 4096 ensemble", _with_meta(good, algorithm="hgdagger", hidden=[4096] * 8, ensemble=32)),
        ("claims more than it holds", _with_meta(good, hidden=[2048, 2048])),
        ("NaN tensors", _nan_tensors(good)),
        ("truncated", good[:-1000]),
        ("bloated with a 4 MB tensor", _bloated(good)),
        ("zero observation std", _zero_std(version, obs_dim, spec)),
        ("another observation layout", encode_weights(version, obs_dim + 1, spec)),
        ("another observation spec", encode_weights(version, obs_dim, "other/v1")),
        ("a 5000-digit version", _with_meta(good, raw={"policy_version": "9" * 5000})),
        ("a NaN stamp", _with_meta(good, raw={"stamp": "NaN"})),
        ("deeply nested metadata", _with_meta(good, raw={"hidden": "[" * 100_000 + "]" * 100_000})),
        ("a pickle", b"\x80\x04\x95pickle" + bytes(64)),
        ("empty", b""),
    ]


HOSTILE_JSON = {
    "NaN": "NaN",
    "a 400-digit number": "9" * 400,
    "a 5000-digit number": "9" * 5000,
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "a string": '"fast"',
    "null": "null",
}
"""JSON values that no numeric record field may take (``null`` only where the field is not optional)."""
NULLABLE = frozenset({"obs_stamp", "policy_version", "observation", "uncertainty", "risk", "image_stamps"})


def _replace_field(text: str, name: str, literal: str) -> str:
    """``text`` (a record's JSON) with field ``name``'s value written as ``literal``."""
    record = json.loads(text)
    marker = "__HOSTILE__"
    record[name] = marker
    return json.dumps(record).replace(f'"{marker}"', literal, 1)


def _hostile_records(good: str, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each numeric field of ``fields`` written as each hostile value, then whole texts that are not such records."""
    out = [(f"{name} = {kind}", _replace_field(good, name, literal)) for name in fields for kind, literal in HOSTILE_JSON.items()
           if not (kind == "null" and name in NULLABLE)]
    return out + [("not JSON", good[: len(good) // 2]), ("a bare nest", "[" * 100_000 + "]" * 100_000),
                  ("a list", "[1, 2, 3]"), ("another format", good.replace('"iil_robot.', '"other.', 1))]


def hostile_steps() -> list[tuple[str, str]]:
    good = StepRecord(7, 1.0, "policy", "policy", (0.01,) + (0.0,) * 6, None, None, False, False, False, False,
                      (0.1, 0.2, 0.3), 0.9, 1, "", False).encode()
    return _hostile_records(good, ("tick", "stamp", "executed_action", "obs_stamp", "policy_version", "observation"))


def hostile_proposals() -> list[tuple[str, str]]:
    good = Proposal((0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (1.0,), 1, 0.0, 0.0).encode()
    return _hostile_records(good, ("action", "obs_stamp", "stamp", "policy_version"))


def hostile_observations(spec: str = "fetch_push/v1") -> list[tuple[str, str]]:
    good = Observation((0.1, 0.2, 0.3), spec, 1.0).encode()
    return _hostile_records(good, ("values", "stamp"))


def hostile_events() -> list[tuple[str, str]]:
    good = EpisodeEvent("success", "operator", 1.0).encode()
    return _hostile_records(good, ("stamp",))
