"""Property-based: no text makes a record decoder raise anything but RecordError, and whatever decodes encodes again.

A decoded record is re-published by the nodes (the mux puts a proposal's fields into its step record), so a
decoder that lets through what the encoder refuses (NaN, an integer too large for a float) kills the node later.
"""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.data.episodes import EpisodeSummary
from iil_robot.data.records import EpisodeEvent, InterventionEvent, Observation, Proposal, RecordError, StepRecord
from tests.data.test_records import ACTION, make_step

GOOD = {
    Proposal: Proposal(ACTION, (0.5, 0.25), 4, 1.0, 1.01, uncertainty=0.2, risk=0.1, image_stamps={"front": 0.9}).encode(),
    StepRecord: make_step(image_stamps={"front": 12.4}).encode(),
    Observation: Observation((0.1, 0.2), "fetch_push/v1", 3.0).encode(),
    EpisodeEvent: EpisodeEvent("success", "operator", 2.0).encode(),
    InterventionEvent: InterventionEvent(True, "spacemouse", 1.0, "engaged", 1, 0.0).encode(),
    EpisodeSummary: EpisodeSummary(0, 1.0, 2.0, "success", "operator", 20, 1, 5, (1, 2), 0, "", "").encode(),
}
DECODERS = list(GOOD)

# Numbers the encoders refuse or that overflow a float, as JSON text; and values of every JSON type.
HOSTILE_NUMBERS = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "9" * 400, "-" + "9" * 400,
                                   "9" * 5000, "1" * 4301, "9223372036854775808", "-1", "1e-400"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def decodes_or_refuses(decoder: type, text: str) -> None:
    try:
        record = decoder.decode(text)
    except RecordError as err:
        assert str(err)
        return
    assert decoder.decode(record.encode()) == record  # what decoded can be published again


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@given(text=st.text(max_size=200))
def test_arbitrary_text_decodes_or_raises_a_record_error(decoder, text):
    decodes_or_refuses(decoder, text)


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@given(data=st.data(), value=JSON_VALUES)
def test_any_field_set_to_any_json_value(decoder, data, value):
    fields = json.loads(GOOD[decoder])
    name = data.draw(st.sampled_from(sorted(fields)))
    decodes_or_refuses(decoder, json.dumps({**fields, name: value}))


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@given(data=st.data(), number=HOSTILE_NUMBERS)
def test_hostile_numbers_in_any_numeric_place(decoder, data, number):
    text = GOOD[decoder]
    places = [i for i, c in enumerate(text) if c.isdigit() and not text[i - 1].isdigit() and text[i - 1] in ":,["]
    at = data.draw(st.sampled_from(places))
    end = at
    while end < len(text) and (text[end].isdigit() or text[end] in ".e-"):
        end += 1
    decodes_or_refuses(decoder, text[:at] + number + text[end:])


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@given(depth=st.integers(1, 200_000), bracket=st.sampled_from(["[", '{"a":']))
def test_deeply_nested_json(decoder, depth, bracket):
    closing = "]" if bracket == "[" else "}"
    decodes_or_refuses(decoder, bracket * depth + "0" + closing * depth)


@pytest.mark.parametrize("text, field", [
    (GOOD[Proposal].replace('"obs_stamp":1.0', '"obs_stamp":NaN'), "NaN"),
    (GOOD[Proposal].replace('"obs_stamp":1.0', '"obs_stamp":' + "9" * 400), "'obs_stamp'"),
    (GOOD[Proposal].replace('"action":[0.1', '"action":[' + "9" * 400), "proposal action vx"),
    (GOOD[Proposal].replace('"obs_stamp":1.0', '"obs_stamp":' + "9" * 5000), "'obs_stamp' is an integer of 5000 digits"),
    (GOOD[Proposal].replace('"policy_version":4', '"policy_version":' + "9" * 30), "'policy_version'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_the_reported_failures_are_record_errors_naming_the_field(text, field):
    with pytest.raises(RecordError, match=field):
        Proposal.decode(text)
