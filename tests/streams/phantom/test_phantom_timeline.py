"""The course of phantom cases: PitVis order, returns, pauses, instruments, determinism."""

import itertools

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.labels import OUT_OF_PATIENT
from orstream.streams.phantom.difficulty import DIFFICULTIES, get_difficulty
from orstream.streams.phantom.renderer import case_rng
from orstream.streams.phantom.timeline import STEP_INSTRUMENTS, CasePlan, build_plan


def plan(video: int, seconds: int = 900, difficulty: str = "normal", seed: int = 0) -> CasePlan:
    return build_plan(case_rng(seed, video, 0), video, seconds, get_difficulty(difficulty))


@pytest.mark.parametrize("seconds", [1, 2, 3, 5, 8, 30, 900, 3600])
def test_segments_tile_the_case(seconds: int) -> None:
    for video in range(1, 6):
        p = plan(video, seconds)
        assert p.segments[0].start == 0 and p.segments[-1].end == seconds
        for before, after in zip(p.segments, p.segments[1:], strict=False):
            assert before.end == after.start and before.end > before.start
        steps = p.steps_per_second()
        assert len(steps) == seconds and set(steps) <= set(range(-1, 15)) - {0}
        assert len(p.waypoints) == len(p.segments)


def test_long_cases_start_and_end_outside_the_patient() -> None:
    for video in range(1, 11):
        p = plan(video)
        assert p.segments[0].step == OUT_OF_PATIENT and p.segments[-1].step == OUT_OF_PATIENT
        inside = [s.step for s in p.segments if s.step != OUT_OF_PATIENT]
        assert inside[0] in (1, 2) and inside[-1] >= 12


def test_steps_follow_pitvis_order_with_short_returns() -> None:
    returns = 0
    for video in range(1, 21):
        inside = [s for s in plan(video).segments if s.step != OUT_OF_PATIENT]
        main: list[int] = []
        for k, segment in enumerate(inside):
            if main and segment.step < main[-1]:
                # A return: short, and the interrupted step resumes right after it.
                returns += 1
                assert k + 1 < len(inside) and inside[k + 1].step == main[-1]
                assert segment.end - segment.start < 0.5 * (inside[k + 1].end - inside[k - 1].start)
            elif not main or segment.step != main[-1]:
                main.append(segment.step)
        assert main == sorted(set(main))
    assert returns > 0


def test_durations_vary_and_some_steps_are_skipped() -> None:
    lengths: dict[int, set[int]] = {}
    skipped = 0
    for video in range(1, 21):
        p = plan(video)
        present = {s.step for s in p.segments}
        skipped += len(set(range(1, 15)) - present)
        for step in range(1, 15):
            total = int(np.sum(p.steps_per_second() == step))
            if total:
                lengths.setdefault(step, set()).add(total)
    assert skipped > 0
    assert all(len(v) > 3 for v in lengths.values())
    assert len(lengths) == 14


def test_mid_case_pauses_outside_the_patient() -> None:
    pauses = [s for video in range(1, 21) for s in plan(video).segments if s.pause]
    assert pauses and all(s.step == OUT_OF_PATIENT for s in pauses)


def test_at_most_two_instruments_plausible_for_the_step() -> None:
    for video in range(1, 11):
        p = plan(video, difficulty="hard")
        assert p.appearances
        for item in p.appearances:
            step = p.step_at(item.start + 0.01)
            assert step != OUT_OF_PATIENT
            assert item.code in {code for code, _ in STEP_INSTRUMENTS[step]}
            assert p.step_at(item.end - 0.01) == step  # leaves before the step changes
        for t in np.arange(0.0, p.seconds, 0.1):
            assert sum(item.insertion(t) > 0 for item in p.appearances) <= 2


def test_every_instrument_is_used_by_some_step() -> None:
    used = {code for pairs in STEP_INSTRUMENTS.values() for code, _ in pairs}
    assert used == set(range(1, 19))


def test_same_seed_same_plan_and_video_numbers_differ() -> None:
    assert plan(3) == plan(3)
    assert plan(3) != plan(4)
    assert plan(3, seed=1) != plan(3, seed=2)


def test_harder_cases_return_and_pause_more() -> None:
    def events(difficulty: str) -> int:
        count = 0
        for video in range(1, 31):
            segments = plan(video, difficulty=difficulty).segments
            count += sum(a.step > b.step > 0 for a, b in itertools.pairwise(segments))
            count += sum(s.pause for s in segments)
        return count

    assert events("easy") < events("normal") < events("hard")


def test_difficulty_names() -> None:
    assert set(DIFFICULTIES) == {"easy", "normal", "hard"}
    with pytest.raises(OrstreamError, match="unknown difficulty 'extreme'"):
        get_difficulty("extreme")
