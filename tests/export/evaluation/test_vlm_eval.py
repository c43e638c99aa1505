"""`orstream eval vlm` on a tiny phantom case and slide with a tiny random vlm package: every
question asked with and without reasoning, scored exactly."""

import json
from pathlib import Path

import pytest

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.export.evaluation.vlm import evaluate_vlm
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.vlm.answering.answer_engine import NO_REASONING
from orstream.vlm.questions.slide_questions import SLIDE_KINDS
from orstream.vlm.questions.surgical_questions import SURGICAL_KINDS
from tests.vlm_checkpoints import tiny_vlm_package


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("vlm_eval")
    write_dataset(PhantomSpec(1, 16, seed=5, width=160, height=96, fps=2.0), root / "cases")
    write_slide_dataset(root / "slides", 1, seed=3, size=1024)
    return tiny_vlm_package(root / "model"), root / "cases", root / "slides"


def test_every_question_is_scored_with_and_without_reasoning(
    data: tuple[Path, Path, Path],
) -> None:
    package, cases, slides = data
    report = evaluate_vlm(
        package, cases, slides, videos=[1], slide_names=["slide_001"], max_new_tokens=6
    )
    scores = report.as_json()
    assert scores["questions"] == scores["without_reasoning"]["questions"] == len(report.answers)
    assert report.cases == ["slide_001", "video_01"]
    assert set(scores["by_type"]) <= set(SURGICAL_KINDS) | set(SLIDE_KINDS)
    assert {"step_now", "tumour_present"} <= set(scores["by_type"])
    for key in ("accuracy", "format_ok"):
        assert 0.0 <= scores[key] <= 1.0 and 0.0 <= scores["without_reasoning"][key] <= 1.0
    assert all(a["without"].startswith(NO_REASONING) for a in report.answers)
    assert not any(a["with"].startswith(NO_REASONING) for a in report.answers)


def test_the_command_prints_json_and_writes_the_answers(
    data: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package, cases, _ = data
    answers = tmp_path / "answers.json"
    code = main(
        [
            "eval",
            "vlm",
            "--package",
            str(package),
            "--data",
            str(cases),
            "--videos",
            "1",
            "--max-questions",
            "5",
            "--max-new-tokens",
            "4",
            "--answers",
            str(answers),
            "--json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["questions"] == 5 and "without_reasoning" in printed
    assert len(json.loads(answers.read_text())) == 5


def test_missing_data_and_missing_held_out_slides_are_one_clear_line(
    data: tuple[Path, Path, Path],
) -> None:
    package, _, slides = data
    with pytest.raises(OrstreamError, match="give --data"):
        evaluate_vlm(package, None, None)
    with pytest.raises(OrstreamError, match="no slide 'slide_055'"):
        evaluate_vlm(package, None, slides)  # the record names slide_055, not in this phantom
