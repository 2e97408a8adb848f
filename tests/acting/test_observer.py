"""The observer: named fields of standard messages in, the policy's observation out, or nothing and why."""
import math
from types import SimpleNamespace

import pytest

from iil_robot.acting.observer import FieldConfig, Observer, ObserverConfig, ObserverError, transform_values
from iil_robot.data.records import Observation, layout_difference

EE = FieldConfig("ee", "position", "ee_pose", timeout=0.2)
JOINTS = FieldConfig("arm", "joint_positions", "joint_states", joints=("j1", "j2"))
GRIP = FieldConfig("grip", "width", "joint_states", joints=("finger_l", "finger_r"))
CONFIG = ObserverConfig("toy/v1", (EE, JOINTS, GRIP), frame_id="base")
STATE_NAMES = ("j2", "finger_r", "j1", "finger_l")  # message order differs from the profile's


def fed(observer: Observer, stamp: float = 1.0) -> Observer:
    observer.update(EE, stamp, "base", (0.1, 0.2, 0.3))
    state = (2.0, 0.02, 1.0, 0.03)
    observer.update(JOINTS, stamp, "", state, STATE_NAMES)
    observer.update(GRIP, stamp, "", state, STATE_NAMES)
    return observer


def test_values_come_in_field_order_joints_by_name_with_their_layout():
    obs = fed(Observer(CONFIG)).observe(now=1.05)
    assert obs == Observation((0.1, 0.2, 0.3, 1.0, 2.0, 0.05), "toy/v1", 1.0,
                              ("ee.x", "ee.y", "ee.z", "arm.j1", "arm.j2", "grip.width"))
    assert Observation.decode(obs.encode()) == obs


def test_the_observation_is_stamped_with_its_oldest_field():
    observer = fed(Observer(CONFIG), stamp=1.0)
    observer.update(EE, 1.1, "base", (0.1, 0.2, 0.3))
    assert observer.observe(now=1.15).stamp == 1.0


@pytest.mark.parametrize("now, held_by", [
    (1.19, set()),
    (1.21, {"ee", "arm", "grip"}),  # every field older than its timeout
])
def test_a_stale_field_holds_the_observation_back_and_is_named(now, held_by):
    observer = fed(Observer(CONFIG))
    assert (observer.observe(now) is None) == bool(held_by)
    assert set(observer.problems) == held_by
    assert all("stale" in text for text in observer.problems.values())


def test_a_missing_field_is_named_with_its_topic():
    observer = Observer(CONFIG)
    observer.update(EE, 1.0, "base", (0.0, 0.0, 0.0))
    assert observer.observe(1.0) is None
    assert observer.problems == {"arm": "no message on joint_states yet", "grip": "no message on joint_states yet"}


def test_a_field_stamped_in_the_future_is_refused():
    observer = fed(Observer(CONFIG), stamp=5.0)
    assert observer.observe(1.0) is None and "in the future" in observer.problems["ee"]


@pytest.mark.parametrize("field, frame, values, names, message", [
    (EE, "world", (0.0, 0.0, 0.0), (), "ee_pose is in frame 'world', not 'base'"),
    (EE, "base", (0.0, math.nan, 0.0), (), r"non-finite values in \['ee.y'\]"),
    (EE, "base", (0.0, 0.0), (), "gave 2 values, expected 3"),
    (JOINTS, "", (1.0, 2.0), ("j1", "j9"), r"has no joints \['j2'\] .*fix the profile's joint names"),
    (JOINTS, "", (1.0,), ("j1", "j2"), "2 joint names and 1 positions"),
    (GRIP, "", (math.inf, 0.0), ("finger_l", "finger_r"), "non-finite values"),
])
def test_a_message_that_does_not_fit_is_refused_by_name_and_the_field_holds(field, frame, values, names, message):
    observer = fed(Observer(CONFIG))
    with pytest.raises(ObserverError, match=message):
        observer.update(field, 1.1, frame, values, names)
    assert observer.observe(1.1) is None and field.name in observer.problems
    fed(observer, stamp=1.2)  # a good message clears it
    assert observer.observe(1.2) is not None and observer.problems == {}


@pytest.mark.parametrize("make, message", [
    (lambda: FieldConfig("a.b", "position", "t"), "without '.', '-' or '@'"),
    (lambda: FieldConfig("a", "pose", "t"), "kind 'pose' must be one of"),
    (lambda: FieldConfig("a", "position", ""), "give either the topic it reads or the TF child_frame_id .* not neither"),
    (lambda: FieldConfig("a", "position", "t", child_frame_id="tool0"), "not both"),
    (lambda: FieldConfig("a", "force", "", child_frame_id="tool0"),
     r"kind 'force' cannot be read from TF \(child_frame_id 'tool0'\): only \['position', 'orientation'\]"),
    (lambda: FieldConfig("a", "position", "t", timeout=0.0), "timeout 0.0 must be a positive"),
    (lambda: FieldConfig("a", "joint_positions", "t"), "list the joints it reads by name"),
    (lambda: FieldConfig("a", "float64_array", "t"), "give its size"),
    (lambda: ObserverConfig("", (EE,)), "spec name"),
    (lambda: ObserverConfig("x/v1", ()), "has no fields"),
    (lambda: ObserverConfig("x/v1", (EE, EE)), r"fields \['ee'\] are listed more than once"),
    (lambda: FieldConfig("goal-ee", "position", "t"), "without '.', '-' or '@'"),
    (lambda: FieldConfig("v", "linear_velocity", "t", relative_to="ee"), "relative_to 'ee' needs kind position"),
    (lambda: FieldConfig("g", "width", "t", joints=("a",), expressed_in="q"), "expressed_in 'q' rotates one vector"),
    (lambda: FieldConfig("g", "position", "t", relative_to="g"), "cannot be relative to itself"),
    (lambda: ObserverConfig("x/v1", (EE, FieldConfig("g", "position", "t", relative_to="tcp"))),
     "relative_to 'tcp' must name an absolute position field of this observation"),
    (lambda: ObserverConfig("x/v1", (EE, FieldConfig("g", "position", "t", expressed_in="ee"))),
     "expressed_in 'ee' must name an absolute orientation field"),
])
def test_a_wrong_profile_is_refused_saying_what_to_fix(make, message):
    with pytest.raises(ObserverError, match=message):
        make()


@pytest.mark.parametrize("expected, actual, words", [
    (("a", "b"), ("a", "b"), ""),
    (("a", "b"), ("a",), "missing ['b']"),
    (("a",), ("a", "c"), "extra ['c']"),
    (("a", "b"), ("b", "a"), "the same components in another order (first difference at 0: 'a' expected, 'b' given)"),
])
def test_layout_difference_names_what_differs(expected, actual, words):
    assert layout_difference(expected, actual) == words


def transform_stamped(frame: str, child: str, stamp: float, xyz=(0.4, -0.1, 0.3), xyzw=(1.0, 0.0, 0.0, 0.0)):
    """Has the fields of a geometry_msgs/TransformStamped that a TF lookup returns."""
    sec = math.floor(stamp)
    return SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=round((stamp - sec) * 1e9)), frame_id=frame),
        child_frame_id=child,
        transform=SimpleNamespace(translation=SimpleNamespace(x=xyz[0], y=xyz[1], z=xyz[2]),
                                  rotation=SimpleNamespace(x=xyzw[0], y=xyzw[1], z=xyzw[2], w=xyzw[3])))


TF_EE = FieldConfig("ee", "position", "", timeout=0.2, child_frame_id="tool0")
TF_ROT = FieldConfig("rot", "orientation", "", timeout=0.2, child_frame_id="tool0")
TF_CONFIG = ObserverConfig("ur/v1", (TF_EE, TF_ROT, JOINTS), frame_id="base")


@pytest.mark.parametrize("kind, expected", [
    ("position", (0.4, -0.1, 0.3)),
    ("orientation", (1.0, 0.0, 0.0, 0.0)),
])
def test_a_transform_gives_its_translation_or_its_rotation(kind, expected):
    assert transform_values(kind, transform_stamped("base", "tool0", 1.0)) == expected


def test_a_transform_has_no_values_of_other_kinds():
    with pytest.raises(ObserverError, match=r"kind 'force' cannot be read from TF"):
        transform_values("force", transform_stamped("base", "tool0", 1.0))


def feed_tf(observer: Observer, stamp: float, frame: str = "base", xyz=(0.4, -0.1, 0.3)) -> None:
    for field in (TF_EE, TF_ROT):
        transform = transform_stamped(frame, "tool0", stamp, xyz=xyz)
        observer.update(field, stamp, transform.header.frame_id, transform_values(field.kind, transform))
    observer.update(JOINTS, stamp, "", (1.0, 2.0), ("j1", "j2"))


def test_a_tf_field_reads_like_a_pose_topic_and_goes_stale_by_its_stamp():
    assert TF_EE.message_type == "geometry_msgs/TransformStamped" and TF_EE.source == "/tf (tool0)"
    observer = Observer(TF_CONFIG)
    feed_tf(observer, 1.0)
    assert observer.observe(1.1).values == (0.4, -0.1, 0.3, 1.0, 0.0, 0.0, 0.0, 1.0, 2.0)
    observer.update(JOINTS, 1.3, "", (1.0, 2.0), ("j1", "j2"))  # the trigger goes on; TF answers no newer transform
    assert observer.observe(1.3) is None
    assert set(observer.problems) == {"ee", "rot"}
    assert observer.problems["ee"].startswith("stale: the newest message on /tf (tool0) is 0.30 s old")


def test_a_transform_in_another_frame_is_refused_naming_tf():
    observer = Observer(TF_CONFIG)
    with pytest.raises(ObserverError, match=r"/tf \(tool0\) is in frame 'world', not 'base'"):
        feed_tf(observer, 1.0, frame="world")


def test_a_failed_lookup_holds_the_observation_at_once_until_the_next_transform():
    observer = Observer(TF_CONFIG)
    feed_tf(observer, 1.0)
    observer.hold(TF_EE, "TF lookup base -> tool0 failed: frame does not exist")
    assert observer.observe(1.05) is None
    assert observer.observe(1.5) is None  # the old value would be stale by now: the failure stays the reason
    assert observer.problems["ee"] == "TF lookup base -> tool0 failed: frame does not exist"
    feed_tf(observer, 1.1, xyz=(0.5, 0.0, 0.2))
    assert observer.observe(1.1).values[:3] == (0.5, 0.0, 0.2) and observer.problems == {}


EE_Q = FieldConfig("ee_q", "orientation", "ee_pose")
GOAL = FieldConfig("goal", "position", "goal_pose")
GOAL_IN_EE = FieldConfig("goal", "position", "goal_pose", relative_to="ee", expressed_in="ee_q")
FORCE_IN_EE = FieldConfig("f", "force", "wrench", expressed_in="ee_q")
TURN = FieldConfig("turn", "orientation", "object_pose", expressed_in="ee_q")
YAW_90 = (0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))  # the end effector turned 90 degrees about z


def test_fields_relative_to_the_end_effector_are_in_its_frame_and_named_so():
    config = ObserverConfig("rel/v1", (EE, EE_Q, GOAL_IN_EE, FORCE_IN_EE, TURN), frame_id="base")
    observer = Observer(config)
    observer.update(EE, 1.0, "base", (0.5, 0.0, 0.2))
    observer.update(EE_Q, 1.0, "base", YAW_90)
    observer.update(GOAL_IN_EE, 1.0, "base", (0.5, 0.3, 0.1))  # 0.3 m along the base's +y, 0.1 m down
    observer.update(FORCE_IN_EE, 1.0, "base", (2.0, 0.0, 0.0))  # pushing along the base's +x
    observer.update(TURN, 1.0, "base", YAW_90)  # turned as the end effector is
    obs = observer.observe(now=1.05)
    values = dict(zip(obs.fields, obs.values))
    # the base's +y is the tool's +x after a 90 degree turn about z; the base's +x its -y
    assert [values[f"goal-ee@ee_q.{a}"] for a in "xyz"] == pytest.approx([0.3, 0.0, -0.1])
    assert [values[f"f@ee_q.{a}"] for a in ("fx", "fy", "fz")] == pytest.approx([0.0, -2.0, 0.0])
    assert [values[f"turn@ee_q.{c}"] for c in ("qx", "qy", "qz", "qw")] == pytest.approx([0.0, 0.0, 0.0, 1.0])
    assert [values[f"ee.{a}"] for a in "xyz"] == [0.5, 0.0, 0.2]  # the reference itself stays absolute
    # weights learned on the absolute goal are refused on this layout, by name
    absolute = ObserverConfig("rel/v1", (EE, EE_Q, GOAL), frame_id="base").layout
    assert "missing ['goal.x', 'goal.y', 'goal.z']" in layout_difference(absolute, config.layout)


def test_an_offset_without_axes_stays_in_the_frames_axes():
    config = ObserverConfig("rel/v1", (EE, FieldConfig("goal", "position", "goal_pose", relative_to="ee")), frame_id="base")
    observer = Observer(config)
    observer.update(config.fields[0], 1.0, "base", (0.5, 0.0, 0.2))
    observer.update(config.fields[1], 1.0, "base", (0.6, 0.1, 0.2))
    obs = observer.observe(now=1.0)
    assert obs.fields[3:] == ("goal-ee.x", "goal-ee.y", "goal-ee.z") and obs.values[3:] == pytest.approx((0.1, 0.1, 0.0))


def test_a_zero_quaternion_to_express_a_field_in_holds_the_observation_and_says_why():
    observer = Observer(ObserverConfig("rel/v1", (EE, EE_Q, GOAL_IN_EE), frame_id="base"))
    observer.update(EE, 1.0, "base", (0.5, 0.0, 0.2))
    observer.update(EE_Q, 1.0, "base", (0.0, 0.0, 0.0, 0.0))
    observer.update(GOAL_IN_EE, 1.0, "base", (0.5, 0.3, 0.1))
    assert observer.observe(now=1.0) is None
    assert "expressed_in 'ee_q'" in observer.problems["goal"] and "zero length" in observer.problems["goal"]
    observer.update(EE_Q, 1.1, "base", YAW_90)
    assert observer.observe(now=1.1) is not None and not observer.problems
