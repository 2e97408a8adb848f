"""Hostile weights messages: refused with a WeightsError, before anything is allocated, whatever the bytes say."""
import json
import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.learners import weights
from iil_robot.learners.weights import Expected, WeightsError, decode_policy, encode_policy, read_meta
from tests.learners.test_weights import make


def with_meta(data: bytes, **changes) -> bytes:
    """``data`` with its iil_robot metadata changed (the tensors unchanged)."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    meta = json.loads(header["__metadata__"]["iil_robot"])
    header["__metadata__"]["iil_robot"] = json.dumps({**meta, **changes})
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + size:]


@pytest.fixture
def no_network_built(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network was built for a message that claims more than it holds")
    monkeypatch.setattr(weights, "Policy", refuse)


@pytest.mark.parametrize("algorithm, changes, maximum, match", [
    ("rlpd", {"hidden": [4096] * 8}, 10**9, "but the message holds 190"),  # 1.6 KB claiming an 8 x 4096 network
    ("rlpd", {"hidden": [4096] * 8}, weights.MAX_PARAMETERS, "over this node's maximum"),
    ("hgdagger", {"hidden": [4096] * 8, "ensemble": 32}, weights.MAX_PARAMETERS, "over this node's maximum"),  # gigabytes
])
def test_a_small_message_claiming_a_huge_network_is_refused_at_once_without_building_it(no_network_built, algorithm,
                                                                                       changes, maximum, match):
    data = with_meta(encode_policy(*make(algorithm, ensemble=3 if algorithm == "hgdagger" else 1)), **changes)
    assert len(data) < 8000
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=match):
        decode_policy(data, Expected("toy/v1", 3, max_parameters=maximum))
    assert time.perf_counter() - start < 0.05


def test_a_network_over_the_configured_maximum_is_refused():
    data = encode_policy(*make())
    decode_policy(data, Expected("toy/v1", 3))
    with pytest.raises(WeightsError, match="over this node's maximum of 100"):
        decode_policy(data, Expected("toy/v1", 3, max_parameters=100))


@pytest.mark.parametrize("field, value, match", [
    ("stamp", "9" * 400, "'stamp'"), ("obs_dim", "9" * 5000, "not valid JSON"), ("stamp", "NaN", "NaN"),
    ("updates", "1" * 30, "'updates'"), ("hidden", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_hostile_numbers_and_nesting_in_the_metadata_are_weights_errors(field, value, match):
    data = encode_policy(*make())
    marker = 123456789.0
    raw = with_meta(data, **{field: marker})
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    header["__metadata__"]["iil_robot"] = header["__metadata__"]["iil_robot"].replace(str(marker), value)
    text = json.dumps(header).encode()
    hostile = struct.pack("<Q", len(text)) + text + raw[8 + size:]
    with pytest.raises(WeightsError, match=match):
        read_meta(hostile)


@given(data=st.data())
def test_any_byte_flip_or_truncation_is_a_weights_error_or_a_valid_policy(data):
    good = encode_policy(*make())
    cut = data.draw(st.integers(0, len(good)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=4))
    raw = bytearray(good[:cut] + good[cut:] if data.draw(st.booleans()) else good[:cut])
    for at, byte in flips:
        if at < len(raw):
            raw[at] = byte
    try:
        decode_policy(bytes(raw), Expected("toy/v1", 3))
    except WeightsError as err:
        assert str(err)


SCALARS = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=5)


@given(changes=st.dictionaries(st.sampled_from(["hidden", "ensemble", "obs_dim", "act_dim", "image", "components", "head",
                                                "stamp", "policy_version", "goal_critic", "image_features"]),
                               st.recursive(SCALARS,
                                            lambda inner: st.lists(inner, max_size=9), max_leaves=12), max_size=3))
def test_any_metadata_change_is_a_weights_error_or_a_valid_policy(changes):
    try:
        decode_policy(with_meta(encode_policy(*make()), **changes), Expected("toy/v1", 3))
    except WeightsError as err:
        assert str(err)
