"""Questions drawn from a case's per-second annotations: facts, determinism, scoring."""

import numpy as np

from orstream.pitvis.csv_files import Annotations
from orstream.vlm.questions.answer_scoring import AnswerScore, score_answer
from orstream.vlm.questions.question_items import QuestionItem, format_answer, split_by_case
from orstream.vlm.questions.surgical_questions import SURGICAL_KINDS, case_questions

# 16 s: out of patient 0-3, step 1 at 4-9, step 2 at 10-15.
STEPS = [-1] * 4 + [1] * 6 + [2] * 6
SLOTS = [(-1, -2)] * 4 + [(0, -2)] * 2 + [(16, -2)] * 2 + [(16, 5)] * 2 + [(17, -2)] * 6


def annotations(video: int = 3) -> Annotations:
    return Annotations(
        video=video,
        time=np.arange(16),
        step=np.array(STEPS),
        instruments=np.array(SLOTS),
    )


def by_id(items: list[QuestionItem]) -> dict[str, QuestionItem]:
    return {item.id: item for item in items}


def test_each_window_asks_what_its_last_seconds_show() -> None:
    items = by_id(case_questions(annotations(), seed=1, window_s=8, stride_s=4))
    # Window 0-7 ends in step 1 with the suction; the step began at second 5 of the clip.
    assert items["video_03/out_of_patient/00008"].answer == "no"
    assert items["video_03/step_now/00008"].answer == "nasal corridor creation"
    assert items["video_03/step_next/00008"].answer == "anterior sphenoidotomy"
    assert items["video_03/instruments_visible/00008"].answer == "suction"
    assert items["video_03/instrument_count/00008"].answer == "1"
    assert items["video_03/step_duration/00008"].answer == "4"
    assert items["video_03/which_first/00008"].answer == "out of patient"
    # Window 4-11 ends with the drill only; the suction showed first, the drill last.
    assert items["video_03/instruments_visible/00012"].answer == "surgical drill"
    first = items["video_03/which_first/00012"]
    asked = [
        name for name in ("suction", "freer elevator", "surgical drill") if name in first.question
    ]
    assert len(asked) == 2 and first.answer == asked[0]
    # Window 8-15 ends in the last step: nothing comes next, the step began inside it.
    assert "video_03/step_next/00016" not in items
    assert items["video_03/step_duration/00016"].answer == "6"
    window = items["video_03/step_now/00016"]
    assert (window.case, window.start_s, window.end_s) == ("video_03", 8, 16)
    assert {item.kind for item in items.values()} <= set(SURGICAL_KINDS)


def test_a_window_ending_out_of_patient_asks_only_that() -> None:
    items = case_questions(annotations(), seed=1, window_s=4, stride_s=4)
    first = [item for item in items if item.end_s == 4]
    assert [(item.kind, item.answer) for item in first] == [("out_of_patient", "yes")]


def test_the_same_seed_gives_the_same_items_and_another_rewords_them() -> None:
    one = case_questions(annotations(), seed=7, window_s=6, stride_s=2)
    assert one == case_questions(annotations(), seed=7, window_s=6, stride_s=2)
    other = case_questions(annotations(), seed=8, window_s=6, stride_s=2)
    assert [i.id for i in one] == [i.id for i in other]
    facts = [(i.id, i.answer) for i in one if i.kind != "which_first"]
    assert facts == [(i.id, i.answer) for i in other if i.kind != "which_first"]
    assert [i.question for i in one] != [i.question for i in other]


def test_answers_are_scored_for_format_and_correctness() -> None:
    items = by_id(case_questions(annotations(), seed=1, window_s=8, stride_s=2))
    both = items["video_03/instruments_visible/00010"]
    assert both.answer == "freer elevator and suction"
    assert score_answer(both, both.target) == AnswerScore(True, True)
    assert score_answer(both, format_answer("x", "Freer elevator, suction.")).correct
    assert not score_answer(both, format_answer("x", "suction")).correct
    assert score_answer(both, "suction and freer elevator") == AnswerScore(False, False)
    malformed = "<think>x</think> <answer>suction</answer> more"
    assert score_answer(both, malformed) == AnswerScore(False, False)
    nested = f"<think></think><answer>why</think><answer>{both.answer}</answer>"
    assert score_answer(both, nested) == AnswerScore(False, False)
    assert score_answer(both, f"<think><think>x</think><answer>{both.answer}</answer>") == (
        AnswerScore(False, False)
    )
    count = items["video_03/instrument_count/00010"]
    assert score_answer(count, format_answer("two", " 2 ")).correct
    assert not score_answer(count, format_answer("two", "two")).correct


def test_held_out_cases_keep_all_their_questions() -> None:
    items = case_questions(annotations(3), 1) + case_questions(annotations(4), 1)
    train, test = split_by_case(items, ["video_04"])
    assert {i.case for i in train} == {"video_03"}
    assert {i.case for i in test} == {"video_04"}
    assert len(train) + len(test) == len(items)
    assert QuestionItem.from_json(test[0].to_json()) == test[0]
