"""`iil-robot replay`: summary, JSON, plots, export (read back without pickle), repair."""
import json

import numpy as np
import pytest

from iil_robot.cli.main import main
from iil_robot.data.bags import SplitBagWriter, TopicSpec, typestore
from iil_robot.data.episodes import split_episodes
from iil_robot.data.labels import LabelConfig, label_episodes
from iil_robot.data.recordings import load_dataset, load_recording, training_data
from iil_robot.data.transitions import Transitions
from tests.records_factory import event, steps

STRING = "std_msgs/msg/String"


def cdr(text: str) -> bytes:
    return typestore().serialize_cdr(typestore().types[STRING](data=text), STRING)


@pytest.fixture
def session(tmp_path):
    """Two episodes: one with an intervention (success), one without (timeout), then 3 steps open."""
    records = steps("ppppHhhppp") + steps("pppppp", 10) + steps("ppp", 16)
    events = [event("start", 0.0), event("success", 0.5 - 0.01, "operator"), event("start", 0.5),
              event("timeout", 0.8 - 0.01), event("start", 0.8)]
    clock = [0.0]
    writer = SplitBagWriter(tmp_path / "bags" / "s_000", clock=lambda: clock[0])
    writer.open()
    step_id, event_id = (writer.add_topic(TopicSpec("/step", STRING)),
                         writer.add_topic(TopicSpec("/episode/event", STRING, "latched")))
    stream = sorted([(r.stamp, step_id, r.encode()) for r in records] + [(e.stamp, event_id, e.encode()) for e in events])
    for stamp, topic, text in stream:
        clock[0] = stamp
        writer.write(topic, int(stamp * 1e9) + 1, cdr(text))
    writer.set_custom_data("iil_robot.recording", json.dumps({"operator": "ana", "task": "push"}))
    writer.close()
    return tmp_path / "bags", records, events


def test_summary_json_counts_episodes_outcomes_and_interventions(session, capsys):
    bags, _, _ = session
    assert main(["replay", str(bags), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [(e["outcome"], e["steps"], e["interventions"]) for e in summary["episodes"]] == [
        ("success", 10, 1), ("timeout", 6, 0), ("unfinished", 3, 0)]
    t = summary["totals"]
    assert t["episodes"] == 3 and t["interventions"] == 1 and t["steps"] == 19
    assert t["intervention_rate"] == pytest.approx(3 / 19) and t["policy_versions"] == [0]
    assert t["outcomes"] == {"success": 1, "timeout": 1, "unfinished": 1}
    assert summary["operator"] == "ana" and summary["task"] == "push"


def test_summary_counts_the_mux_ticks_no_bag_holds(tmp_path, capsys):
    """A recorder that subscribed at mux tick 40 and lost ticks 43 (at the episode's end) and 46 (inside the
    unfinished episode after it): episode summaries see only the gap inside an episode, the totals every tick the
    bags miss."""
    records = [s for s in steps("pppppppp", 40) if s.tick not in (43, 46)]
    writer = SplitBagWriter(tmp_path / "bags" / "late_000", clock=lambda: 0.0)
    writer.open()
    step_id, event_id = (writer.add_topic(TopicSpec("/step", STRING)),
                         writer.add_topic(TopicSpec("/episode/event", STRING, "latched")))
    writer.write(event_id, 1, cdr(event("start", 2.0).encode()))
    writer.write(event_id, 2, cdr(event("success", 2.2, "operator").encode()))  # ticks 40..43 in the episode, 44.. after
    writer.write(event_id, 3, cdr(event("start", 2.2).encode()))  # the next one, unfinished
    for r in records:
        writer.write(step_id, int(r.stamp * 1e9), cdr(r.encode()))
    writer.close()
    assert main(["replay", str(tmp_path / "bags"), "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["totals"]
    assert (t["lost_ticks"], t["ticks_missing_between_records"], t["ticks_before_first_record"]) == (1, 2, 40)
    assert main(["replay", str(tmp_path / "bags")]) == 0
    assert "40 mux ticks before the first record" in capsys.readouterr().out


def test_text_summary_and_a_plot_per_episode(session, tmp_path, capsys):
    bags, _, _ = session
    assert main(["replay", str(bags), "--plots", str(tmp_path / "plots")]) == 0
    assert "3 episodes" in capsys.readouterr().out
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["episode_000.png", "episode_001.png", "episode_002.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_export_writes_the_labelled_dataset_the_labelling_module_makes(session, tmp_path, capsys):
    bags, records, events = session
    out = tmp_path / "data.npz"
    assert main(["replay", str(bags), "--export", str(out), "--window", "2", "--outcomes", "success", "timeout", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    data = load_dataset(out)
    expected = label_episodes([e for e in split_episodes(records, events) if e.outcome != "unfinished"],
                              LabelConfig(pre_intervention_window=2))
    for name in ("rlif", "dagger"):
        assert isinstance(data[name], Transitions)
        for field in ("observations", "actions", "rewards", "terminals", "truncations", "classes"):
            np.testing.assert_array_equal(getattr(data[name], field), getattr(getattr(expected, name), field))
    assert data["rlif"].rewards.tolist().count(-1.0) == 1
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["format"] == "iil_robot.dataset" and sidecar["label_config"]["pre_intervention_window"] == 2
    assert sidecar["datasets"] == {"rlif": len(data["rlif"]), "dagger": 3} \
        == {k: summary["export"][k] for k in ("rlif", "dagger")}


def test_training_hook_and_load_recording_agree(session):
    bags, records, events = session
    recording = load_recording([bags])
    assert recording.steps == records and len(recording.episodes) == 3
    assert len(training_data([bags]).rlif) == len(label_episodes(recording.episodes).rlif)


def test_repair_flag_recovers_a_crashed_bag_and_a_missing_path_is_an_error(session, tmp_path, capsys):
    bags, _, _ = session
    (bags / "s_000" / "metadata.yaml").unlink()
    assert main(["replay", str(bags), "--json"]) == 1
    assert "--repair" in capsys.readouterr().err
    assert main(["replay", str(bags), "--repair", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["episodes"] == 3
    assert main(["replay", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_train_learns_the_action_space_asked_for_and_the_policy_node_of_that_space_loads_it(session, tmp_path, capsys):
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.data.actions import ActionConfig
    from iil_robot.learners.checkpoints import read_state
    from iil_robot.learners.weights import WeightsError

    bags, _, _ = session
    out = tmp_path / "out"
    assert main(["replay", str(bags), "--train", "hgdagger", "--action-space", "translation_yaw", "--updates", "2",
                 "--out", str(out), "--observation-spec", "toy/v1", "--device", "cpu", "--json"]) == 0
    weights = str(out / "weights.safetensors")
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights", fallback_weights=weights),
                          ActionConfig("translation_yaw"))
    assert runner.active.meta.action_fields == ("vx", "vy", "vz", "wz", "gripper")
    assert read_state(out / "checkpoint.safetensors")["action_space"] == "translation_yaw"
    with pytest.raises(WeightsError, match=r"the weights have extra \['wz'\]"):
        PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights", fallback_weights=weights))


def test_train_in_the_tool_frame_needs_the_orientation_in_the_recorded_observations(session, tmp_path, capsys):
    bags, _, _ = session  # its observations name no fields
    assert main(["replay", str(bags), "--train", "hgdagger", "--action-frame", "tool", "--updates", "2",
                 "--out", str(tmp_path / "out"), "--device", "cpu"]) == 1
    assert "action.frame tool needs the end effector's orientation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("learner, algorithm", [("hgdagger", "hgdagger"), ("rlif", "rlpd")])
def test_train_writes_weights_the_policy_node_loads_and_a_checkpoint(session, tmp_path, capsys, learner, algorithm):
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.learners.checkpoints import read_state

    bags, records, events = session
    out = tmp_path / "out"
    assert main(["replay", str(bags), "--train", learner, "--updates", "5", "--out", str(out),
                 "--observation-spec", "toy/v1", "--device", "cpu", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    expected = label_episodes(split_episodes(records, events))
    assert trained["updates"] == 5 and trained["algorithm"] == algorithm
    assert trained["prior"] == (len(expected.dagger) if learner == "hgdagger" else int(expected.rlif.interventions.sum()))
    assert trained["online"] == int((~expected.rlif.interventions).sum())
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights",
                                       fallback_weights=str(out / "weights.safetensors")))
    assert runner.active.meta.algorithm == algorithm and runner.active.meta.obs_dim == 2
    state = read_state(out / "checkpoint.safetensors")
    assert (state["algorithm"], state["updates"], state["observation_spec"]) == (algorithm, 5, "toy/v1")
    # A second run into the same directory would overwrite the checkpoint: refused, saying what to do.
    assert main(["replay", str(bags), "--train", learner, "--updates", "5", "--out", str(out), "--device", "cpu"]) == 1
    assert "choose another output directory" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["pvp", "haco", "thrifty"])
def test_train_seeds_every_learner_with_the_seed_given(session, tmp_path, capsys, method):
    from iil_robot.learners.checkpoints import read_state

    bags, _, _ = session
    out = tmp_path / "out"
    assert main(["replay", str(bags), "--train", method, "--updates", "2", "--out", str(out), "--seed", "3",
                 "--device", "cpu", "--json"]) == 0
    state = read_state(out / "checkpoint.safetensors")
    assert state["method"] == method and {state[name]["seed"] for name in ("rlpd", "hgdagger", "pvp", "haco")} == {3}
    assert state["hgdagger"]["goal_critic"] == (method == "thrifty")


@pytest.mark.parametrize("method", ["dagger", "iwr", "sirius", "dart"])
def test_train_each_imitation_method_from_bags_with_the_mixture_head(session, tmp_path, capsys, method):
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.data.labels import LabelConfig

    bags, records, events = session
    out = tmp_path / method
    assert main(["replay", str(bags), "--train", method, "--head", "mixture", "--updates", "3", "--out", str(out),
                 "--observation-spec", "toy/v1", "--device", "cpu", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    expected = label_episodes(split_episodes(records, events), LabelConfig(label_every_step=method == "dagger"))
    assert trained["algorithm"] == "hgdagger" and trained["prior"] == len(expected.dagger)
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights",
                                       fallback_weights=str(out / "weights.safetensors")))
    assert runner.active.meta.head == "mixture"


def test_train_hgdagger_without_operator_steps_says_what_is_missing(session, tmp_path, capsys):
    bags, _, _ = session
    assert main(["replay", str(bags), "--train", "hgdagger", "--outcomes", "timeout", "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 1
    assert "record demos or interventions" in capsys.readouterr().err


def test_train_a_camera_policy_pairs_the_recorded_frames_with_the_steps(tmp_path, capsys):
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.data.camera import encode_jpeg
    from iil_robot.data.frames import stamp_seconds
    from tests.records_factory import write_bag

    ns = {r.tick: int(round(r.stamp * 1e9)) + 1000 for r in steps("ppppHhhppp")}
    records = [r.__class__(**{**r.__dict__, "image_stamps": {"front": stamp_seconds(ns[r.tick] // 10**9, ns[r.tick] % 10**9)}})
               for r in steps("ppppHhhppp")]
    frames = [(ns[r.tick], encode_jpeg(np.full((32, 32, 3), 10 * r.tick, np.uint8))) for r in records if r.tick != 2]
    write_bag(tmp_path / "bags" / "s_000", records, [event("start", 0.0), event("success", 0.5, "operator")], frames)
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path / "bags"), "--train", "rlif", "--image-size", "24", "20", "--updates", "2",
                 "--out", str(out), "--observation-spec", "toy/v1", "--device", "cpu", "--json"]) == 0
    captured = capsys.readouterr()
    trained = json.loads(captured.out)["train"]
    # 10 steps, the last one terminal: 10 rows; tick 2's frame is missing (rows 1 and 2 lose a frame)
    assert trained["image"] == [3, 20, 24] and trained["missing_frames"] == 2
    assert trained["prior"] + trained["online"] == 8 and "no camera frame" in captured.err
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights", cameras="front",
                                       fallback_weights=str(out / "weights.safetensors")))
    assert runner.active.meta.image == (3, 20, 24) and runner.active.meta.cameras == ("front",)
    assert main(["replay", str(tmp_path / "bags"), "--train", "rlif", "--image-size", "24", "20", "--cameras", "front,wrist",
                 "--out", str(tmp_path / "o2"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "no camera frames on /camera/wrist/image_raw/compressed in the bags" in err and "front" not in err


def test_train_a_two_camera_policy_pairs_each_steps_frames_of_both_cameras(tmp_path, capsys):
    from iil_robot.acting.policy import PolicyConfig, PolicyRunner
    from iil_robot.data.camera import encode_jpeg
    from iil_robot.data.frames import stamp_seconds
    from tests.records_factory import write_bag

    ns = {(c, r.tick): int(round(r.stamp * 1e9)) + offset for r in steps("ppppHhhppp") for c, offset in
          (("front", 1000), ("wrist", 3_000_000))}
    records = [r.__class__(**{**r.__dict__, "image_stamps": {c: stamp_seconds(ns[c, r.tick] // 10**9, ns[c, r.tick] % 10**9)
                                                             for c in ("front", "wrist")}}) for r in steps("ppppHhhppp")]
    # the front's frame of tick 2 and the wrist's of tick 6 were not recorded
    frames = {c: [(ns[c, r.tick], encode_jpeg(np.full((32, 32, 3), 10 * r.tick + (100 if c == "wrist" else 0), np.uint8)))
                  for r in records if (c, r.tick) not in {("front", 2), ("wrist", 6)}] for c in ("front", "wrist")}
    write_bag(tmp_path / "bags" / "s_000", records, [event("start", 0.0), event("success", 0.5, "operator")],
              camera_frames=frames)
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path / "bags"), "--train", "hgdagger", "--image-size", "24", "20", "--cameras",
                 "front,wrist", "--updates", "2", "--out", str(out), "--observation-spec", "toy/v1", "--device", "cpu",
                 "--json"]) == 0
    captured = capsys.readouterr()
    trained = json.loads(captured.out)["train"]
    # rows 1 and 2 lack the front's frame (theirs or their next), rows 5 and 6 the wrist's
    assert trained["image"] == [6, 20, 24] and trained["cameras"] == ["front", "wrist"]
    assert trained["missing_frames"] == 4 and trained["missing_frames_by_camera"] == {"front": 2, "wrist": 2}
    assert "2 front's, 2 wrist's" in captured.err
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1", fallback="weights", cameras="wrist,front",
                                       fallback_weights=str(out / "weights.safetensors")))
    assert runner.active.meta.image == (6, 20, 24) and runner.active.meta.cameras == ("front", "wrist")
    with pytest.raises(SystemExit):
        main(["replay", str(tmp_path / "bags"), "--train", "rlif", "--image-size", "24", "20", "--cameras", "front,front"])
    assert "names a camera twice" in capsys.readouterr().err
