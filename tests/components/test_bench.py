"""`make bench`'s figures: the turn streams both sides replay, the goals table, memory readings."""
from __future__ import annotations

import itertools
import os

from components.bench import format_goals, goals, served_cpu_ms
from components.load import resident_mib
from naviyam.bench import turn_stream


def _graph(clients: int, stack_ms: dict[str, float], rps: float) -> dict:
    return {"clients": clients, "throughput_rps": rps, "cpu_ms_per_request": {**stack_ms, "load generator": 2.0}}


def test_turn_streams_are_replayable_and_one_session_each():
    first = list(itertools.islice(turn_stream(3, ["a", "b", "c"], run="r-"), 50))
    again = list(itertools.islice(turn_stream(3, ["a", "b", "c"], run="r-"), 50))
    other = list(itertools.islice(turn_stream(4, ["a", "b", "c"], run="r-"), 50))
    assert first == again and first != other
    assert {t["session_id"] for t in first} == {"bench-r-3"}
    assert {t["text"] for t in first} == {"a", "b", "c"}


def test_served_cpu_leaves_the_load_generator_out():
    assert served_cpu_ms(_graph(1, {"nlu": 3.0, "router": 1.5}, 10.0)) == 4.5


def test_goals_compare_each_figure_with_its_goal():
    report = {
        "cold_start": {"runs": 3, "median_s": 2.4},
        "inprocess": {"cpu_ms_per_turn": 10.0},
        "graph": [_graph(1, {"nlu": 6.0, "ranker": 8.0}, 40.0), _graph(8, {"nlu": 6.0, "ranker": 9.0}, 90.0)],
        "memory": {"nlu": {"rss_mib": 1500.0, "pss_mib": 1200.0}, "ranker": {"rss_mib": 700.0, "pss_mib": 500.0}},
    }
    rows = {name: (value, met) for name, value, _, met in goals(report)}
    assert rows["one-shot `naviyam chat` cold start"][1] is True
    assert rows["served / in-process CPU per turn"] == ("1.4x (14.0 ms / 10.0 ms)", True)
    assert rows["stack resident memory (sum of RSS)"] == ("2200.0 MiB (PSS 1700.0 MiB)", False)
    assert rows["throughput at 8 clients"] == ("90.0 req/s", None)
    text = "\n".join(format_goals(goals(report)))
    assert "MISSED" in text and "met" in text


def test_the_ratio_goal_reads_the_paired_rounds_when_there_are_some():
    rounds = [{"inprocess_ms": 10.0, "served_ms": 13.0, "ratio": 1.3},
              {"inprocess_ms": 12.0, "served_ms": 20.0, "ratio": 1.667},
              {"inprocess_ms": 11.0, "served_ms": 15.0, "ratio": 1.364}]
    report = {"inprocess": {"cpu_ms_per_turn": 5.0}, "graph": [_graph(1, {"nlu": 30.0}, 40.0)],
              "paired": {"rounds": rounds, "turns": 150, "ratio": 1.36, "inprocess_ms": 11.0, "served_ms": 15.0}}
    rows = {name: (value, met) for name, value, _, met in goals(report)}
    # the unpaired 1-client figure (30 ms / 5 ms = 6x) is not what the goal reads
    assert rows["served / in-process CPU per turn"] == (
        "1.36x (15.0 ms / 11.0 ms, median of 3 paired rounds)", True)


def test_a_run_prefix_gives_fresh_sessions_with_the_same_turns():
    earlier = list(itertools.islice(turn_stream(0, ["a", "b", "c"]), 20))
    fresh = list(itertools.islice(turn_stream(0, ["a", "b", "c"], run="x1-"), 20))
    assert [(t["user_id"], t["text"]) for t in earlier] == [(t["user_id"], t["text"]) for t in fresh]
    assert {t["session_id"] for t in earlier}.isdisjoint({t["session_id"] for t in fresh})


def test_resident_memory_of_a_live_process_and_a_gone_one():
    mem = resident_mib({"me": os.getpid(), "gone": 2**22 + 12345})
    assert set(mem) == {"me"} and mem["me"]["rss_mib"] > 10 and 0 < mem["me"]["pss_mib"] <= mem["me"]["rss_mib"]
