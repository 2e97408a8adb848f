import pytest

from iil_robot.data.episodes import EpisodeSplitter, EpisodeSummary, TickGaps, split_episodes
from iil_robot.data.records import RecordError
from tests.records_factory import event, step, steps


def ticks(episode):
    return [s.tick for s in episode.steps]


def test_outcome_events_split_a_session_without_start_events():
    records = steps("pppppppppp")  # stamps 0.00 .. 0.45
    episodes = split_episodes(records, [event("success", 0.2, "operator"), event("failure", 0.4, "operator")])
    assert [ticks(e) for e in episodes] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [e.outcome for e in episodes] == ["success", "failure", "unfinished"]
    assert [e.origin for e in episodes] == ["operator", "operator", ""]
    assert episodes[0].start == 0.0 and episodes[0].end == 0.2
    assert episodes[2].end == records[-1].stamp


def test_step_at_the_event_stamp_belongs_after_the_boundary():
    episodes = split_episodes(steps("pppp"), [event("success", 0.1)])
    assert [ticks(e) for e in episodes] == [[0, 1], [2, 3]]


def test_start_event_drops_an_implicit_reset_phase_and_closes_an_explicit_episode_as_unfinished():
    records = steps("pppppppppp")
    events = [event("start", 0.0), event("timeout", 0.15), event("start", 0.3), event("start", 0.4)]
    splitter = EpisodeSplitter()
    for e in events:
        splitter.add_event(e)
    done = []
    for s in records:
        done += splitter.add_step(s)
    done += splitter.flush()
    assert [(ticks(e), e.outcome) for e in done] == [([0, 1, 2], "timeout"), ([6, 7], "unfinished"), ([8, 9], "unfinished")]
    assert splitter.between_steps == 3  # ticks 3, 4, 5: after the timeout, before the next start


def test_steps_after_the_last_episode_of_a_session_with_start_events_are_between_episodes():
    """The reset after the last end, when the recording stops: no episode (a session that uses starts opens
    episodes with them), so it is never labelled."""
    records = steps("pppppppppp")
    episodes = split_episodes(records, [event("start", 0.0), event("success", 0.15), event("start", 0.25),
                                        event("timeout", 0.35)])
    assert [(ticks(e), e.outcome) for e in episodes] == [([0, 1, 2], "success"), ([5, 6], "timeout")]
    splitter = EpisodeSplitter()
    for e in (event("start", 0.0), event("success", 0.15)):
        splitter.add_event(e)
    for s in records:
        splitter.add_step(s)
    assert splitter.flush() == [] and splitter.between_steps == 7  # ticks 3..9


def test_outcome_with_no_open_episode_is_ignored():
    splitter = EpisodeSplitter()
    for e in (event("success", 0.1, "operator"), event("timeout", 0.1)):
        splitter.add_event(e)
    done = []
    for s in steps("pppp"):
        done += splitter.add_step(s)
    done += splitter.flush()
    assert [(ticks(e), e.outcome) for e in done] == [([0, 1], "success"), ([2, 3], "unfinished")]
    assert splitter.ignored_events == 1


def test_live_event_waits_for_a_step_past_its_stamp_and_a_late_event_splits_the_open_episode():
    splitter = EpisodeSplitter()
    records = steps("pppppp")
    assert splitter.add_step(records[0]) == []
    splitter.add_event(event("success", 0.075))  # published before step 1 arrived
    assert splitter.add_step(records[1]) == []  # stamp 0.05 < 0.075: still the same episode
    done = splitter.add_step(records[2])
    assert [ticks(e) for e in done] == [[0, 1]]
    splitter.add_step(records[3])
    splitter.add_step(records[4])
    late = splitter.add_event(event("failure", 0.15))  # arrives after ticks 3 and 4
    assert [ticks(e) for e in late] == [[2]]
    assert [s.tick for s in splitter.open_steps] == [3, 4]


def test_summary_counts_interventions_versions_and_lost_ticks_and_round_trips():
    records = steps("ppHhhppp")
    records[6] = step(9)  # ticks 7 and 8 lost
    episode = split_episodes(records, [event("success", 1.0, "operator")])[0]
    summary = EpisodeSummary.of(episode, operator="ana", task="push")
    assert (summary.steps, summary.interventions, summary.intervention_steps, summary.lost_ticks) == (8, 1, 3, 2)
    assert summary.policy_versions == (0,) and summary.intervention_rate == pytest.approx(3 / 8)
    assert EpisodeSummary.decode(summary.encode()) == summary


def test_summary_decode_rejects_an_unknown_outcome():
    text = EpisodeSummary(0, 0.0, 1.0, "success", "sim", 1, 0, 0, (), 0).encode().replace("success", "won")
    with pytest.raises(RecordError, match="outcome 'won'"):
        EpisodeSummary.decode(text)


def test_tick_gaps_count_ticks_before_the_first_record_and_between_records_across_a_mux_restart():
    """The mux counts ticks from 0: a stream that begins at tick 40 missed 40; a lower tick is a restarted mux."""
    gaps = TickGaps()
    assert [gaps.add(t) for t in (40, 41, 44, 44, 45, 5, 6, 8)] == [40, 0, 2, 0, 0, 5, 0, 1]
    assert (gaps.before_first, gaps.between) == (45, 3)
