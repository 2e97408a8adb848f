"""Robot profiles: per robot, the topics, joints, frames and limits of every node.

A profile (``config/profiles/<robot>.yaml``) has ``remappings`` (our topic name -> the robot's,
applied to every node, as ``ros2 launch`` remaps) and ``parameters`` (node name -> its ROS 2
parameters, applied after the node's own parameter file). ``intervention.launch.py robot:=NAME``
and ``iil-robot sim --robot NAME`` read them; in the simulator the simulated arm presents itself
under the profile's names, so every profile runs end to end there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iil_robot.config import CONFIG_DIR, config_path

__all__ = ["PROFILE_DIR", "ProfileError", "RobotProfile", "action_parameters", "load_profile", "profile_names"]

PROFILE_DIR = CONFIG_DIR / "profiles"


class ProfileError(ValueError):
    """A robot profile is missing or malformed."""


@dataclass(frozen=True)
class RobotProfile:
    name: str
    description: str
    remappings: dict[str, str] = field(default_factory=dict)
    """Our topic name -> the robot's (for every node)."""
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Node name -> its parameters."""

    def node_parameters(self, node: str) -> dict[str, Any]:
        return dict(self.parameters.get(node, {}))


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> RobotProfile:
    """The profile called ``name_or_path`` (a name under ``config/profiles``, or a YAML file of your own).

    Raises:
        ProfileError: no such profile, or it is malformed (the message says what to fix).
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileError(f"no robot profile {str(name_or_path)!r}: choose one of {profile_names()} or give a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ProfileError(f"robot profile {path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise ProfileError(f"cannot read robot profile {path}: {err.strerror or err}") from err
    except RecursionError as err:
        raise ProfileError(f"robot profile {path} is nested too deeply to be a profile") from err
    except (yaml.YAMLError, ValueError, TypeError) as err:  # PyYAML raises the latter two on some odd scalars
        raise ProfileError(f"robot profile {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict) or set(data) - {"description", "remappings", "parameters"}:
        raise ProfileError(f"robot profile {path} must be a mapping of description, remappings and parameters")
    remappings = data.get("remappings") or {}
    parameters = data.get("parameters") or {}
    if not isinstance(remappings, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in remappings.items()):
        raise ProfileError(f"robot profile {path}: remappings must map topic names to topic names")
    if not isinstance(parameters, dict) or not all(isinstance(v, dict) for v in parameters.values()):
        raise ProfileError(f"robot profile {path}: parameters must map node names to their parameters")
    return RobotProfile(path.stem, str(data.get("description", "")), dict(remappings),
                        {str(k): _unshared(v) for k, v in parameters.items()})


def _unshared(value: Any) -> Any:
    """A copy sharing no list or mapping: a profile's YAML anchors (one box for the mux and the episode manager) must
    not come back as aliases when the parameters are written out again, which rcl's parameter parser refuses."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value



SPEED_LIMITS = ("max_linear_speed", "max_angular_speed")


def action_parameters(profile: RobotProfile, space: str, mux_overrides: dict[str, Any] | None = None,
                      frame: str = "base") -> dict[str, Any]:
    """The learner's and the policy node's ``action.*`` parameters: the learned action space and its ``frame``,
    bounded by the mux's speed limits as the mux gets them (``config/mux.yaml``, then the profile's mux parameters,
    then ``mux_overrides``, e.g. ``--set mux.limits.max_linear_speed=0.1``), so the numbers have one source."""
    limits = yaml.safe_load(config_path("mux.yaml").read_text())["mux"]["ros__parameters"]["limits"]
    mux = {**profile.node_parameters("mux"), **(mux_overrides or {})}
    return {"action.space": space, "action.frame": frame,
            **{f"action.{name}": float(mux.get(f"limits.{name}", limits[name])) for name in SPEED_LIMITS}}
