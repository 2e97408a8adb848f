"""Learner checkpoints without pickle: tensors in safetensors, everything else in JSON.

One file holds the networks, the optimiser states (their tensors flattened to
``optim/<name>/<param index>/<key>``, their param groups in JSON) and the counters, so a
checkpoint is replaced atomically (write a temporary file, then ``os.replace``).
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file


class CheckpointError(ValueError):
    """A checkpoint is unreadable or belongs to another learner configuration."""


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    flat: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        flat.update({f"module/{name}/{k}": v for k, v in module.state_dict().items()})
    groups: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        sd = optimizer.state_dict()
        groups[name] = sd["param_groups"]
        for index, entry in sd["state"].items():
            for key, value in entry.items():
                flat[f"optim/{name}/{index}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    flat.update({f"tensor/{k}": v.detach() for k, v in tensors.items()})
    flat = {k: v.detach().to("cpu").contiguous() for k, v in flat.items()}
    metadata = {"iil_robot": json.dumps({"state": state, "param_groups": groups})}
    _atomic(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))


def _metadata(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return json.loads(header["__metadata__"]["iil_robot"])


def read_state(path: Path) -> dict[str, Any]:
    """The JSON part (counters, configuration) of a checkpoint."""
    try:
        return _metadata(path)["state"]
    except (OSError, KeyError, TypeError, ValueError, RecursionError, struct.error) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def load_checkpoint(path: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Restore modules, optimisers and tensors in place; return the saved state dict."""
    try:
        meta = _metadata(path)
        flat = load_file(str(path))
        for name, module in modules.items():
            prefix = f"module/{name}/"
            module.load_state_dict({k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}, strict=True)
        for name, optimizer in optimizers.items():
            prefix = f"optim/{name}/"
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in flat.items():
                if key.startswith(prefix):
                    index, field = key[len(prefix):].split("/", 1)
                    state.setdefault(int(index), {})[field] = value
            groups = meta["param_groups"][name]
            for group in groups:
                if "betas" in group:
                    group["betas"] = tuple(group["betas"])
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor.copy_(flat[f"tensor/{name}"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, RecursionError, struct.error) as err:
        raise CheckpointError(f"cannot restore checkpoint {path}: {err}; delete it to start afresh") from err
    return meta["state"]


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _atomic(path, lambda tmp: save_numpy({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp)))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_numpy(str(path))
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from err
