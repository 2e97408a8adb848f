"""The dashboard's bookkeeping and text, without ROS."""
import pytest

from iil_robot.data.records import EpisodeEvent, StepRecord
from iil_robot.nodes.console.dashboard import GraphState, render

ACTION = (0.0,) * 7


def step(tick, source="policy", onset=False, version=3):
    return StepRecord(tick, float(tick), source, source, ACTION, ACTION, None, source == "human", source == "human",
                      onset, False, None, None, version, "", False)


def test_counts_episodes_interventions_and_lost_ticks():
    state = GraphState()
    for tick, source, onset in [(0, "policy", False), (1, "human", True), (2, "human", False), (5, "policy", False)]:
        assert state.on_step(step(tick, source, onset)) == []
    assert state.on_episode_event(EpisodeEvent("success", "sim", 6.0)) == []  # finished by the first step after it
    assert state.on_episode_event(EpisodeEvent("start", "sim", 6.1)) == []
    (done,) = state.on_step(step(7))
    assert (done.index, done.steps, done.human_steps, done.onsets, done.outcome) == (0, 4, 2, 1, "success")
    assert state.finished == [done] and (state.current.index, state.current.steps) == (1, 1)
    assert state.lost_ticks == 3 and state.policy_version == 3


def test_the_totals_say_how_many_are_in_episodes_as_the_report_counts_them():
    """The mux counts every takeover and records every tick, holds between episodes included; the run
    report counts the episodes' own: the dashboard shows both, so the two never seem to disagree."""
    from iil_robot.data.records import InterventionEvent

    state = GraphState()
    state.on_episode_event(EpisodeEvent("start", "sim", -0.5))
    for tick, source, onset in [(0, "policy", False), (1, "human", True), (2, "policy", False)]:
        state.on_step(step(tick, source, onset))
    state.on_episode_event(EpisodeEvent("success", "sim", 2.5))
    for tick in (3, 4):  # holds while the arm resets
        state.on_step(step(tick, "hold"))
    state.on_episode_event(EpisodeEvent("start", "sim", 4.5))
    state.on_step(step(5, "human", True))
    state.on_intervention(InterventionEvent(True, "spacemouse", 3.5, "engaged", 3, 0.0))  # the mux counts one more, in the reset
    lines = render(state, "t", None, 0.0)
    assert "interventions: 3 (2 in episodes)" in lines[2], lines[2]
    assert lines[5].startswith("step records: 6 (4 in episodes)"), lines[5]


def test_a_step_that_arrives_after_the_event_that_ended_its_episode_counts_in_that_episode():
    """Steps and events come on different topics: the sim's success at tick 3 can arrive before tick 3's step."""
    state = GraphState()
    for tick in range(3):
        state.on_step(step(tick))
    state.on_episode_event(EpisodeEvent("success", "sim", 3.5))
    assert state.on_step(step(3)) == []  # stamp 3.0: still the ending episode
    (done,) = state.on_step(step(4))
    assert (done.steps, done.outcome) == (4, "success") and state.current.steps == 1


def test_an_event_older_than_steps_already_received_finishes_the_episode_at_once():
    state = GraphState()
    for tick in range(4):
        state.on_step(step(tick))
    (done,) = state.on_episode_event(EpisodeEvent("timeout", "sim", 2.5))
    assert (done.steps, done.outcome) == (3, "timeout") and state.current.steps == 1


def test_render_says_when_all_episodes_are_done():
    state = GraphState()
    state.on_step(step(0))
    state.on_episode_event(EpisodeEvent("timeout", "sim", 1.0))
    state.on_step(step(1))
    lines = render(state, "title", target_episodes=1, elapsed=65.0)
    assert lines[0].endswith("elapsed 01:05")
    assert lines[1].startswith("all 1 episodes done") and "successes 0/1" in lines[1]
    assert render(state, "title", target_episodes=5, elapsed=1.0)[1].startswith("episode 2/5")


def test_a_raised_help_request_rings_once_and_shows_until_withdrawn():
    state = GraphState()
    assert [state.on_help_request(r) for r in (False, True, True, False, True)] == [False, True, False, False, True]
    assert state.help_requests == 2
    assert "ASKS FOR HELP" in render(state, "t", None, 0.0)[-1]
    state.on_help_request(False)
    assert not any("ASKS FOR HELP" in line for line in render(state, "t", None, 0.0))


def test_the_learner_line_shows_the_warm_start_until_it_ends():
    state = GraphState()
    state.learner = {"updates": "0", "warm_start_done": "120", "warm_start_total": "500"}
    assert any("warm start on the operator's data [#####---------------] 120/500 updates" in line
               for line in render(state, "t", None, 0.0))
    state.learner = {"updates": "7", "updates_per_s": "3.0", "warm_start_done": "500", "warm_start_total": "500"}
    assert "learner: updates 7, updates_per_s 3.0" in render(state, "t", None, 0.0)



def test_a_progress_line_shows_the_reset_and_a_wait_for_the_operators_start():
    state = GraphState()
    state.episode_state = "resetting"
    state.episode = {"state": "resetting", "state_seconds": "2.4", "reset_distance": "0.050", "reset_from": "0.200",
                     "reset_timeout": "10"}
    assert "reset [###############-----] 0.05 m to go, 2 s (gives up after 10 s)" in render(state, "t", None, 0.0)
    state.episode_state, state.episode = "ready", {"state": "ready", "state_seconds": "0.2"}
    assert not any("waiting for the operator" in line for line in render(state, "t", None, 0.0))  # auto start follows at once
    state.episode = {"state": "ready", "state_seconds": "3.0"}
    assert "ready: waiting for the operator to start the next episode (key n)" in render(state, "t", None, 0.0)
    state.episode_state, state.episode = "resetting", {"reset_distance": "garbage"}
    assert render(state, "t", None, 0.0)  # a malformed value from the graph does not break the view


def test_the_learner_line_shows_the_training_threads_cpu_and_a_starved_learners_warning():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    def learner(level, message, **values):
        status = DiagnosticStatus(name="learner", level=level, message=message)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return DiagnosticArray(status=[status])

    state = GraphState()
    state.on_diagnostics(learner(DiagnosticStatus.OK, "training", updates="9", training_cpu_percent="48",
                                 training_wait_percent="50"))
    line = next(line for line in render(state, "t", None, 0.0) if line.startswith("learner:"))
    assert line == "learner: updates 9, training cpu 48 % (waits 50 %)"
    state.on_diagnostics(learner(DiagnosticStatus.WARN, "training; starved of CPU: ...", updates="9",
                                 training_cpu_percent="1", training_wait_percent="97", warning="starved of CPU: ..."))
    line = next(line for line in render(state, "t", None, 0.0) if line.startswith("learner:"))
    assert line.endswith("training cpu 1 % (waits 97 %); starved of CPU: ...")
    state.on_diagnostics(learner(DiagnosticStatus.OK, "training", updates="90", fusion="compiling"))
    assert "learner: updates 90, fusion compiling" in render(state, "t", None, 0.0)


@pytest.mark.parametrize("ratio, warned", [("0.31", True), ("0.50", False), ("0.92", False), ("-", False)])
def test_the_console_shows_updates_per_env_step_and_warns_when_the_learner_falls_behind_its_budget(ratio, warned):
    state = GraphState()
    state.learner = {"updates": "90", "updates_per_env_step": ratio, "budget_per_env_step": "0.5",
                     "sizes": "cpu sizes: 5 critics [128, 128], UTD 2, batch 128"}
    lines = render(state, "t", None, 0.0)
    line = next(line for line in lines if line.startswith("learner:"))
    assert (f", {ratio} updates/env step (budget 0.5)" in line) == (ratio != "-")
    warnings = [line for line in lines if "learner falling behind" in line]
    assert warnings == ([f"! learner falling behind: {ratio} updates per env step, below its budget of 0.5 (cpu sizes: 5 "
                         "critics [128, 128], UTD 2, batch 128; the learner's log says what would help)"] if warned else [])


# -- camera thumbnail (iil_robot.nodes.console.thumbnail, no ROS) ----------------------------------------------

import base64  # noqa: E402

import numpy as np  # noqa: E402

from iil_robot.data.camera import encode_jpeg  # noqa: E402
from iil_robot.nodes.console.thumbnail import THUMBNAIL_FILE, ThumbnailWriter, inline_image, inline_protocol  # noqa: E402


def frame(value: int) -> bytes:
    return encode_jpeg(np.full((16, 16, 3), value, np.uint8))


def test_the_newest_frame_is_written_to_the_run_folder_at_most_once_per_period(tmp_path):
    clock = [0.0]
    writer = ThumbnailWriter(tmp_path / "run" / THUMBNAIL_FILE, period=1.0, clock=lambda: clock[0])
    written = []
    for t, value in [(0.0, 10), (0.3, 20), (0.9, 30), (1.0, 40), (1.5, 50), (2.2, 60)]:
        clock[0] = t
        written.append(writer.offer(frame(value)))
    assert written == [True, False, False, True, False, True] and writer.written == 3
    assert (tmp_path / "run" / THUMBNAIL_FILE).read_bytes() == frame(60) == writer.latest
    assert [p.name for p in (tmp_path / "run").iterdir()] == [THUMBNAIL_FILE]  # no temporary file left


def test_the_thumbnail_is_replaced_atomically_by_a_rename(tmp_path, monkeypatch):
    import iil_robot.nodes.console.thumbnail as thumbnail

    path = tmp_path / THUMBNAIL_FILE
    writer = ThumbnailWriter(path, period=0.0)
    writer.offer(frame(1))
    renames = []
    real_replace = thumbnail.os.replace

    def replace(source, target):
        assert path.read_bytes() == frame(1)  # until the rename, readers see the whole old frame
        renames.append((source.name, target.name))
        real_replace(source, target)

    monkeypatch.setattr(thumbnail.os, "replace", replace)
    writer.offer(frame(2))
    assert renames == [(f".{THUMBNAIL_FILE}.tmp", THUMBNAIL_FILE)] and path.read_bytes() == frame(2)


@pytest.mark.parametrize("environ, expected", [
    ({"TERM": "xterm-kitty"}, "kitty"),
    ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, "kitty"),
    ({"TERM_PROGRAM": "iTerm.app"}, "iterm"),
    ({"TERM_PROGRAM": "WezTerm"}, "iterm"),
    ({"TERM": "xterm-256color"}, None),
    ({"TERM": "dumb"}, None),
    ({}, None),
])
def test_inline_images_only_where_the_terminal_has_a_protocol(environ, expected):
    assert inline_protocol(environ) == expected


def test_inline_image_escape_sequences():
    jpeg = frame(100)
    iterm = inline_image(jpeg, "iterm", columns=16, rows=8)
    assert iterm.startswith("\x1b]1337;File=inline=1;") and iterm.endswith("\x07") and "width=16;height=8" in iterm
    assert base64.b64decode(iterm.split(":", 1)[1][:-1]) == jpeg
    kitty = inline_image(jpeg, "kitty", columns=16, rows=8)
    assert kitty.startswith("\x1b_Ga=T,f=100,c=16,r=8,m=0;") and kitty.endswith("\x1b\\")
    assert base64.b64decode(kitty.split(";", 1)[1][:-2])[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="unknown inline image protocol"):
        inline_image(jpeg, "sixel")


def test_the_redraw_meter_gives_the_rate_over_its_window_and_the_runs_summary():
    from iil_robot.nodes.console.dashboard import RedrawMeter

    meter = RedrawMeter(window=2.0)
    assert meter.rate() is None and meter.summary() == "0 redraw(s)"
    for i in range(21):  # 4 Hz for 5 s, each draw 2 ms
        meter.add(0.25 * i, 0.25 * i + 0.002)
    assert meter.rate() == pytest.approx(4.0)
    assert len(meter.times) == 9  # only the window's
    assert meter.summary() == "21 redraws in 5.0 s (4.0 Hz, target 4), drawing took 2.0 ms at p99"
    meter.add(9.0, 9.001)  # a stall: the window's rate drops
    assert meter.rate() is None or meter.rate() < 4.0
    lines = render(GraphState(), "title", None, 65.0, redraw_hz=3.96)
    assert lines[0] == "title   elapsed 01:05   redraw 4.0 Hz"
