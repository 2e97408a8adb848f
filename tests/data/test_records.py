"""Record encodings: round trips, versioning and clear errors on bad input."""
import json

import pytest

from iil_robot.data.records import (
    EpisodeEvent,
    InterventionEvent,
    Observation,
    Proposal,
    RecordError,
    StepRecord,
)

ACTION = (0.1, -0.2, 0.0, 0.0, 0.0, 0.05, 1.0)


def make_step(**overrides):
    fields = dict(
        tick=3, stamp=12.5, source="human", source_name="spacemouse", executed_action=ACTION,
        policy_action=(0.0,) * 7, human_action=ACTION, human_engaged=True, intervention=True,
        onset=True, offset=False, observation=(1.0, 2.0, 3.5), obs_stamp=12.45, policy_version=7,
        hold_reason="", limited=False,
    )
    fields.update(overrides)
    return StepRecord(**fields)


def test_proposal_round_trip():
    proposal = Proposal(ACTION, (0.5, 0.25), policy_version=4, obs_stamp=1.0, stamp=1.01, uncertainty=0.2)
    assert Proposal.decode(proposal.encode()) == proposal


def test_step_record_round_trip_with_and_without_optional_fields():
    for step in (make_step(), make_step(policy_action=None, human_action=None, observation=None,
                                        obs_stamp=None, policy_version=None, source="hold", hold_reason="stale:policy")):
        assert StepRecord.decode(step.encode()) == step


def test_step_record_json_names_its_format_and_version():
    data = json.loads(make_step().encode())
    assert data["format"] == "iil_robot.step" and data["version"] == 3
    assert data["executed_action"] == list(ACTION)


def test_each_cameras_frame_stamp_round_trips_in_proposals_and_step_records():
    stamps = {"front": 1700000000.123456789, "wrist": 1700000000.1}
    proposal = Proposal(ACTION, (0.5,), policy_version=4, obs_stamp=1.0, stamp=1.01, image_stamps=stamps)
    assert Proposal.decode(proposal.encode()) == proposal
    assert json.loads(proposal.encode())["image_stamps"] == stamps  # exact: the learner pairs frames by them
    step = make_step(image_stamps={"front": 12.4})
    assert StepRecord.decode(step.encode()) == step
    assert StepRecord.decode(make_step().encode()).image_stamps is None


def test_older_records_decode_version_1_without_and_version_2_with_the_front_cameras_stamp():
    old_step = {k: v for k, v in json.loads(make_step().encode()).items() if k != "image_stamps"} | {"version": 1}
    assert StepRecord.decode(json.dumps(old_step)) == make_step()
    v2 = old_step | {"version": 2, "image_stamp": 12.5}
    assert StepRecord.decode(json.dumps(v2)).image_stamps == {"front": 12.5}
    old_proposal = json.loads(proposal_json())
    assert "image_stamps" not in old_proposal and Proposal.decode(proposal_json()).image_stamps is None


@pytest.mark.parametrize("field, value, named", [
    ("image_stamps", {"front": "12.0"}, "camera 'front'"), ("image_stamps", {"front": True}, "camera 'front'"),
    ("image_stamps", [1.0], "image_stamps"), ("image_stamps", {"": 1.0}, "image_stamps"),
    ("image_stamp", "12.0", "image_stamp"),
])
def test_a_bad_frame_stamp_is_refused(field, value, named):
    data = json.loads(make_step().encode()) | {field: value}
    with pytest.raises(RecordError, match=named):
        StepRecord.decode(json.dumps(data))


def test_intervention_and_episode_events_round_trip():
    event = InterventionEvent(True, "spacemouse", 3.0, "deflection 0.40 > 0.25", 2, 0.0)
    assert InterventionEvent.decode(event.encode()) == event
    episode = EpisodeEvent("success", "operator", 9.0)
    assert EpisodeEvent.decode(episode.encode()) == episode


def proposal_json(**overrides):
    data = {"format": "iil_robot.proposal", "version": 1, "action": list(ACTION), "observation": [0.0],
            "policy_version": 1, "obs_stamp": 0.0, "stamp": 0.0}
    data.update(overrides)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (proposal_json(format="iil_robot.step"), "format is 'iil_robot.step'"),
        (proposal_json(version=4), "version 4 is not supported"),
        (proposal_json(action=[0.0] * 6), "must have 7 values"),
        (proposal_json(action=[0.0] * 6 + ["x"]), "gripper must be a number, got str"),
        (proposal_json(action=[0.0] * 6 + [1.5]), "gripper closure 1.5"),
        (proposal_json(action=[0.0] * 6 + [1.5]).replace("1.5", "NaN"), "NaN is not a number JSON allows"),
        (proposal_json(observation=[1.0, "Infinity"]).replace('"Infinity"', "Infinity"), "Infinity is not a number JSON allows"),
        (proposal_json(policy_version="3"), "policy_version"),
        (proposal_json(policy_version=True), "got a bool"),
        (json.dumps({"format": "iil_robot.proposal", "version": 1}), "missing field 'action'"),
    ],
)
def test_bad_proposals_are_refused_naming_the_problem(text, match):
    with pytest.raises(RecordError, match=match):
        Proposal.decode(text)


def test_unknown_step_source_is_refused():
    with pytest.raises(RecordError, match="step source 'robot'"):
        make_step(source="robot")


def test_encoding_a_nan_is_impossible():
    with pytest.raises(ValueError):
        make_step(stamp=float("nan")).encode()


def test_observation_round_trip_and_refuses_nan():
    obs = Observation((0.1, 0.2), "fetch_push/v1", 3.0)
    assert Observation.decode(obs.encode()) == obs
    bad = obs.encode().replace("0.2", "NaN")
    with pytest.raises(RecordError, match="NaN is not a number JSON allows"):
        Observation.decode(bad)
