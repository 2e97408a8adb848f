"""Robot profiles are parameter files a user writes: whatever a file holds, loading it fails only with ProfileError."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.config.profiles import ProfileError, RobotProfile, load_profile

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=4), max_leaves=20)
PROFILES = st.dictionaries(st.sampled_from(["description", "remappings", "parameters", "extra"]), VALUES, max_size=3)


def load_text(tmp_path_factory, text: str | bytes):
    path = tmp_path_factory.mktemp("profile") / "mine.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return load_profile(path)


@given(data=PROFILES)
def test_any_yaml_structure_loads_or_is_refused_as_a_profile_error(tmp_path_factory, data):
    try:
        profile = load_text(tmp_path_factory, yaml.safe_dump(data))
    except ProfileError:
        return
    assert isinstance(profile, RobotProfile)
    assert all(isinstance(v, dict) for v in profile.parameters.values())


@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_load_or_are_refused_as_a_profile_error(tmp_path_factory, raw):
    try:
        load_text(tmp_path_factory, raw)
    except ProfileError:
        pass


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("parameters: {mux: 3}", "parameters must map node names"),
])
def test_hostile_profile_files_are_named_with_what_to_fix(tmp_path_factory, raw, match):
    with pytest.raises(ProfileError, match=match):
        load_text(tmp_path_factory, raw)


def test_a_profile_with_yaml_anchors_writes_back_without_aliases_that_rcl_refuses(tmp_path_factory):
    profile = load_text(tmp_path_factory, "parameters:\n  mux: {workspace.min_xyz: &box [0.1, 0.2, 0.3]}\n"
                                          "  episode_manager: {workspace_min: *box}\n")
    assert profile.parameters["episode_manager"]["workspace_min"] == [0.1, 0.2, 0.3]
    assert "&" not in yaml.safe_dump(profile.parameters)
